// patreport on Azure Functions (Flex Consumption), for `azd up`. Creates the resource group and
// deploys resources.bicep into it. Parameters come from main.parameters.json, which maps them to
// azd environment values (`azd env set NAME VALUE`); every parameter with a default here keeps
// that default while its environment value is unset or empty. See docs/deploy.md.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; part of the resource group name and of the unique suffix of every resource.')
param environmentName string

@minLength(1)
@description('Region for all resources; it must offer Flex Consumption (`az functionapp list-flexconsumption-locations`).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse. Default: rg-<environment name>.')
param resourceGroupName string = ''

@description('Object id of the person (or pipeline) running azd; azd fills it in. Gets Key Vault Secrets Officer when a vault is created.')
param principalId string = ''

// ---- Hosting -------------------------------------------------------------------------------

@description('Fall back to the Flex runtime `node` 22 where `custom` 1.0 is not offered; the custom handler runs either way.')
param useNodeRuntime bool = false

@description('Memory of each Flex Consumption instance, in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Maximum Flex Consumption instance count.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

// ---- The app (docs/functions.md) -----------------------------------------------------------

@minLength(1)
@description('PATREPORT_ORGS: the Azure DevOps organizations to report on, comma-separated.')
param organizations string

@description('PATREPORT_ADO_URL: Graph / Token Administration base URL.')
param adoUrl string = 'https://vssps.dev.azure.com'

@description('PATREPORT_AUTH: how scheduled and queued runs reach Azure DevOps (docs/auth.md).')
@allowed(['managed-identity', 'pat', 'refresh-token'])
param authMode string = 'managed-identity'

@description('PATREPORT_HTTP_RUNS: how POST /api/PatReport runs: queue (the app\'s own credential; retried) or on-behalf-of (the caller\'s rights, in the handler process: not retried, and Flex Consumption may recycle an idle instance; needs PATREPORT_API_CLIENT_ID).')
@allowed(['queue', 'on-behalf-of'])
param httpRuns string = 'queue'

@description('PATREPORT_SCHEDULE: the timer, 6-field NCRONTAB in UTC. Default: Mondays 06:00.')
param schedule string = '0 0 6 * * 1'

@description('PATREPORT_CONTAINER: private blob container for reports and run documents.')
@minLength(3)
@maxLength(63)
param reportsContainerName string = 'reports'

@description('PATREPORT_SAS_MINUTES: lifetime of download links (at most 7 days).')
@minValue(1)
@maxValue(10080)
param sasMinutes int = 60

@description('PATREPORT_EXPIRING_DAYS: a PAT expiring within this many days is "expiring".')
@minValue(0)
@maxValue(3650)
param expiringDays int = 30

@description('PATREPORT_CONCURRENCY: PAT listings in flight at once.')
@minValue(1)
@maxValue(256)
param concurrency int = 16

@description('PATREPORT_TIME_BUDGET, in minutes (azd: PATREPORT_TIME_BUDGET_MINUTES): a scan stops starting new work after this long (under the 1-hour functionTimeout).')
@minValue(1)
@maxValue(55)
param timeBudgetMinutes int = 50

@description('PATREPORT_LOG: log filter (tracing syntax).')
param logFilter string = 'info'

// ---- Who may ask for a report (docs/auth.md) -----------------------------------------------

@description('PATREPORT_CALLER_AUTH: bearer (patreport validates the token) or app-service (App Service Authentication with Entra ID in front, set up by this template; needs apiClientId).')
@allowed(['bearer', 'app-service'])
param callerAuth string = 'bearer'

@description('With app-service: send browsers without a session to the Entra sign-in page (true) or answer 401 (false, API callers only).')
param browserSignIn bool = true

@description('PATREPORT_API_CLIENT_ID: client id of the patreport API app registration. Until it is set every HTTP request is refused (403 not_configured).')
param apiClientId string = ''

@description('PATREPORT_ALLOWED_ROLES: app role values allowed to ask, comma-separated.')
param allowedRoles string = 'PatReport.Read'

@description('PATREPORT_ALLOWED_GROUPS: group object ids allowed to ask, comma-separated.')
param allowedGroups string = ''

// ---- Secrets in Key Vault (pat, refresh-token) ---------------------------------------------

@description('PATREPORT_LOGIN_CLIENT_ID: the public client app registration `patreport login` uses (refresh-token mode).')
param loginClientId string = ''

@description('PATREPORT_REFRESH_TOKEN_SECRET: Key Vault secret of the stored sign-in (refresh-token mode).')
param refreshTokenSecretName string = 'patreport-refresh-token'

@description('Key Vault secret holding the PAT (pat mode); AZURE_DEVOPS_PAT is a reference to it.')
param patSecretName string = 'azure-devops-pat'

@description('Create the Key Vault in every auth mode (it is always created for pat and refresh-token).')
param deployKeyVault bool = false

@description('Key Vault secret holding the webhook URLs told of each scheduled report (PATREPORT_NOTIFY, comma-separated); empty: no notifications. Store the secret after the first deployment (docs/notifications.md).')
param notifySecretName string = ''

// The service name in azure.yaml; azd deploy finds the function app by this tag.
var serviceName = 'api'
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'resources.bicep' = {
  name: 'patreport-resources'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    serviceName: serviceName
    principalId: principalId
    useNodeRuntime: useNodeRuntime
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    organizations: organizations
    adoUrl: adoUrl
    authMode: authMode
    httpRuns: httpRuns
    schedule: schedule
    reportsContainerName: reportsContainerName
    sasMinutes: sasMinutes
    expiringDays: expiringDays
    concurrency: concurrency
    timeBudgetMinutes: timeBudgetMinutes
    logFilter: logFilter
    callerAuth: callerAuth
    browserSignIn: browserSignIn
    apiClientId: apiClientId
    allowedRoles: allowedRoles
    allowedGroups: allowedGroups
    loginClientId: loginClientId
    refreshTokenSecretName: refreshTokenSecretName
    patSecretName: patSecretName
    deployKeyVault: deployKeyVault
    notifySecretName: notifySecretName
  }
}

// azd stores these in .azure/<environment>/.env.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output SERVICE_API_NAME string = app.outputs.functionAppName
output FUNCTION_APP_URL string = 'https://${app.outputs.functionAppHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output AZURE_STORAGE_BLOB_ENDPOINT string = app.outputs.storageBlobEndpoint
output AZURE_REPORTS_CONTAINER string = app.outputs.reportsContainerName
output AZURE_MANAGED_IDENTITY_NAME string = app.outputs.identityName
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId
output APPLICATIONINSIGHTS_NAME string = app.outputs.appInsightsName
output APPLICATIONINSIGHTS_CONNECTION_STRING string = app.outputs.appInsightsConnectionString
output AZURE_KEY_VAULT_NAME string = app.outputs.keyVaultName
output AZURE_KEY_VAULT_URI string = app.outputs.keyVaultUri

// Everything patreport runs on, in one resource group: Log Analytics + Application Insights,
// one storage account (Functions host storage, the deployment package, the reports), a
// user-assigned managed identity with its role assignments, an optional Key Vault, a Flex
// Consumption plan and the function app with its app settings.
//
// Plain `resource` declarations only (no registry modules): the shape follows
// Azure/azure-quickstart-templates `function-app-flex-managed-identities`. Deployed by
// main.bicep (subscription scope, azd). See docs/deploy.md.

@description('Primary location for all resources (a region with Flex Consumption).')
param location string

@description('Tags for every resource (azd-env-name).')
param tags object

@description('Short unique suffix for globally unique names.')
param resourceToken string

@description('Name of the azd service in azure.yaml; tagged on the function app so azd deploy finds it.')
param serviceName string

@description('Object id of the person (or pipeline) running azd: gets Key Vault Secrets Officer to store the PAT or run `patreport login`. Empty: none.')
param principalId string

// ---- Hosting -------------------------------------------------------------------------------

@description('Use the Flex runtime `node` 22 instead of `custom` 1.0. The host runs the custom handler either way (host.json customHandler); use this only where the region does not offer `custom`.')
param useNodeRuntime bool

@description('Memory of each Flex Consumption instance, in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int

@description('Maximum Flex Consumption instance count.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

// ---- The app's settings (docs/functions.md, docs/auth.md) ----------------------------------

@description('PATREPORT_ORGS: Azure DevOps organizations, comma-separated.')
param organizations string

@description('PATREPORT_ADO_URL')
param adoUrl string

@description('PATREPORT_AUTH: how scheduled and queued runs reach Azure DevOps.')
@allowed(['managed-identity', 'pat', 'refresh-token'])
param authMode string

@description('PATREPORT_HTTP_RUNS: queue (the app\'s own credential) or on-behalf-of (the caller\'s rights).')
@allowed(['queue', 'on-behalf-of'])
param httpRuns string

@description('PATREPORT_SCHEDULE: 6-field NCRONTAB, UTC.')
param schedule string

@description('PATREPORT_CONTAINER: the private blob container for reports and run documents.')
@minLength(3)
@maxLength(63)
param reportsContainerName string

@description('PATREPORT_SAS_MINUTES: lifetime of download links.')
@minValue(1)
@maxValue(10080)
param sasMinutes int

@description('PATREPORT_EXPIRING_DAYS')
@minValue(0)
@maxValue(3650)
param expiringDays int

@description('PATREPORT_CONCURRENCY')
@minValue(1)
@maxValue(256)
param concurrency int

@description('PATREPORT_TIME_BUDGET, in minutes: kept under host.json functionTimeout (1 hour).')
@minValue(1)
@maxValue(55)
param timeBudgetMinutes int

@description('PATREPORT_LOG: tracing filter.')
param logFilter string

@description('PATREPORT_CALLER_AUTH: bearer (patreport validates the token) or app-service (App Service Authentication, set up below).')
@allowed(['bearer', 'app-service'])
param callerAuth string

@description('With app-service: redirect browsers without a session to sign-in (true) or answer 401 (false).')
param browserSignIn bool

@description('PATREPORT_API_CLIENT_ID: the patreport API app registration callers get tokens for. Empty: every HTTP request is refused (not_configured).')
param apiClientId string

@description('PATREPORT_ALLOWED_ROLES: app role values allowed to ask for reports, comma-separated.')
param allowedRoles string

@description('PATREPORT_ALLOWED_GROUPS: group object ids allowed to ask for reports, comma-separated.')
param allowedGroups string

@description('PATREPORT_LOGIN_CLIENT_ID: the public client app `patreport login` signs in with (refresh-token mode).')
param loginClientId string

@description('Key Vault secret holding the stored sign-in (refresh-token mode).')
param refreshTokenSecretName string

@description('Key Vault secret holding the PAT (pat mode).')
param patSecretName string

@description('Create the Key Vault even when the auth mode does not need it (it is always created for pat and refresh-token).')
param deployKeyVault bool

@description('Key Vault secret holding the notification webhook URLs (PATREPORT_NOTIFY); empty: none.')
param notifySecretName string

// ---- Names and built-in role ids -----------------------------------------------------------

var functionAppName = 'func-patreport-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
// The queues named in PatReport*/function.json (the host moves messages to -poison itself).
var jobsQueueName = 'patreport-jobs'
var poisonQueueName = 'patreport-jobs-poison'

var keyVaultEnabled = deployKeyVault || authMode == 'pat' || authMode == 'refresh-token' || !empty(notifySecretName)
var vaultName = 'kv-${resourceToken}'

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

// ---- Monitoring ----------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    retentionInDays: 30
    sku: {
      name: 'PerGB2018'
    }
  }
}

// Local (instrumentation key) auth off: the app's identity sends telemetry with Entra ID
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING + Monitoring Metrics Publisher below).
resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

// ---- Storage: host storage, deployment package, reports ------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'
    properties: {
      deleteRetentionPolicy: {
        enabled: true
        days: 7
      }
      containerDeleteRetentionPolicy: {
        enabled: true
        days: 7
      }
    }

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }

    resource reportsContainer 'containers' = {
      name: reportsContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }

  resource queueServices 'queueServices' = {
    name: 'default'

    resource jobsQueue 'queues' = {
      name: jobsQueueName
    }

    resource poisonQueue 'queues' = {
      name: poisonQueueName
    }
  }
}

// ---- Identity and role assignments ---------------------------------------------------------

// One identity for everything the app does: host storage, the deployment package, the
// reports (user delegation SAS), App Insights, Key Vault, and (managed-identity mode) Azure
// DevOps, where it must be added to the organization by hand (docs/deploy.md).
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-patreport-${resourceToken}'
  location: location
  tags: tags
}

// Functions host storage (AzureWebJobsStorage__*): blobs (package, timer monitor, locks),
// queues (patreport-jobs, poison), tables.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The app's own needs on the reports (docs/functions.md): write reports and run documents in
// the container (already covered by Blob Data Owner above while both share this account; kept
// so the reports keep working if the host roles are ever narrowed), and Get User Delegation
// Key on the account for the read-only download links.
resource reportsBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobServices::reportsContainer.id, identity.id, roles.storageBlobDataContributor)
  scope: storage::blobServices::reportsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource reportsBlobDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDelegator)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDelegator)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Key Vault (pat, refresh-token, or on request) -----------------------------------------

// RBAC permission model; public network access, because Flex Consumption cannot resolve Key
// Vault references to a network-restricted vault. Purge protection is off so that `azd down
// --purge` and a later `azd up` with the same environment name work (see docs/deploy.md).
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = if (keyVaultEnabled) {
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

// refresh-token: every run reads the stored sign-in and writes the rotated one back
// (docs/auth.md): Secrets Officer. Otherwise (the PAT reference): Secrets User, read only.
var vaultRole = authMode == 'refresh-token' ? roles.keyVaultSecretsOfficer : roles.keyVaultSecretsUser

resource vaultAppAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (keyVaultEnabled) {
  name: guid(resourceGroup().id, vaultName, identity.id, vaultRole)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', vaultRole)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The person running azd stores the PAT (`az keyvault secret set`) or the sign-in
// (`patreport login`).
resource vaultDeployerAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (keyVaultEnabled && !empty(principalId)) {
  name: guid(resourceGroup().id, vaultName, principalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
  }
}

// ---- Flex Consumption plan and the function app --------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

// `custom` 1.0 is the custom-handler runtime on Flex; `node` 22 is the documented fallback
// (the host picks the custom handler from host.json whatever the runtime says).
var runtime = useNodeRuntime ? { name: 'node', version: '22' } : { name: 'custom', version: '1.0' }

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    // Key Vault references (AZURE_DEVOPS_PAT) are resolved with the user-assigned identity.
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: runtime
    }
  }
  dependsOn: [
    // The host needs its storage roles before it first starts.
    hostBlobOwner
    hostQueueContributor
    hostTableContributor
  ]
}

// App Service Authentication in front of the app (PATREPORT_CALLER_AUTH=app-service): Entra ID
// validates browser sessions and bearer tokens for the patreport API app, and the app reads
// the caller from X-MS-CLIENT-PRINCIPAL. No client secret: browsers sign in with the ID-token
// flow (enable ID tokens on the app registration; docs/auth.md). The token store is only on
// for on-behalf-of runs, which need the caller's access token. Always deployed, switched off
// with bearer: a deployment that leaves it out would leave an earlier one in force.
var appServiceAuthOn = callerAuth == 'app-service' && !empty(apiClientId)
var entraProvider = {
  azureActiveDirectory: {
    enabled: true
    registration: {
      clientId: apiClientId
      openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
    }
    validation: {
      allowedAudiences: [
        apiClientId
        'api://${apiClientId}'
      ]
    }
  }
}

resource appServiceAuth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: appServiceAuthOn
    }
    globalValidation: {
      requireAuthentication: appServiceAuthOn
      unauthenticatedClientAction: browserSignIn ? 'RedirectToLoginPage' : 'Return401'
      redirectToProvider: 'azureactivedirectory'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: appServiceAuthOn ? entraProvider : {}
    login: {
      tokenStore: {
        enabled: appServiceAuthOn && httpRuns == 'on-behalf-of'
      }
    }
  }
}

// azd deploys with Entra ID; no FTP or SCM basic-auth publishing credentials.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// ---- App settings ----------------------------------------------------------------------------
// Not on Flex Consumption (rejected or meaningless there): FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENTSHARE, WEBSITE_TIME_ZONE,
// TZ, SCM_DO_BUILD_DURING_DEPLOYMENT. This resource owns the whole set: `azd provision`
// replaces settings changed by hand, so change the parameters instead.

var hostSettings = {
  // Identity-based host storage (blob, queue, table) with the user-assigned identity.
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
}

var appSettings = {
  PATREPORT_ORGS: organizations
  PATREPORT_ADO_URL: adoUrl
  PATREPORT_AUTH: authMode
  PATREPORT_HTTP_RUNS: httpRuns
  PATREPORT_SCHEDULE: schedule
  PATREPORT_CONTAINER: reportsContainerName
  PATREPORT_SAS_MINUTES: string(sasMinutes)
  PATREPORT_EXPIRING_DAYS: string(expiringDays)
  PATREPORT_CONCURRENCY: string(concurrency)
  PATREPORT_TIME_BUDGET: '${timeBudgetMinutes}m'
  PATREPORT_LOG: logFilter
  // Reports through the managed identity (user delegation links), never an account key.
  PATREPORT_STORAGE_ACCOUNT_URL: storage.properties.primaryEndpoints.blob
  PATREPORT_STORAGE_CLIENT_ID: identity.properties.clientId
  // The app's own identity: Azure DevOps in managed-identity mode, Key Vault in refresh-token
  // mode, the federated credential of on-behalf-of.
  AZURE_CLIENT_ID: identity.properties.clientId
  AZURE_TENANT_ID: tenant().tenantId
  // Who may ask for a report over HTTP (docs/auth.md).
  PATREPORT_CALLER_AUTH: callerAuth
}

// Only what is set: an empty value would mean the same as no setting anyway.
var apiClientIdSetting = empty(apiClientId) ? {} : { PATREPORT_API_CLIENT_ID: apiClientId }
var allowedRolesSetting = empty(allowedRoles) ? {} : { PATREPORT_ALLOWED_ROLES: allowedRoles }
var allowedGroupsSetting = empty(allowedGroups) ? {} : { PATREPORT_ALLOWED_GROUPS: allowedGroups }

var vaultUri = 'https://${vaultName}${environment().suffixes.keyvaultDns}/'

var patSetting = {
  AZURE_DEVOPS_PAT: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/${patSecretName}/)'
}

var refreshTokenSettings = {
  PATREPORT_LOGIN_CLIENT_ID: loginClientId
  PATREPORT_KEY_VAULT_URL: vaultUri
  PATREPORT_REFRESH_TOKEN_SECRET: refreshTokenSecretName
  PATREPORT_VAULT_AUTH: 'managed-identity'
}

// Webhook URLs carry their signature: a secret, so a Key Vault reference, never a value.
var notifySetting = empty(notifySecretName) ? {} : {
  PATREPORT_NOTIFY: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/${notifySecretName}/)'
}

var authSettings = authMode == 'pat' ? patSetting : (authMode == 'refresh-token' ? refreshTokenSettings : {})

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(hostSettings, appSettings, apiClientIdSetting, allowedRolesSetting, allowedGroupsSetting, authSettings, notifySetting)
  dependsOn: [
    // Telemetry, reports and Key Vault references work from the first start.
    telemetryPublisher
    reportsBlobContributor
    reportsBlobDelegator
    vaultAppAccess
  ]
}

// ---- Outputs ---------------------------------------------------------------------------------

output functionAppName string = functionApp.name
output functionAppHostName string = functionApp.properties.defaultHostName
output storageAccountName string = storage.name
output storageBlobEndpoint string = storage.properties.primaryEndpoints.blob
output reportsContainerName string = reportsContainerName
output identityName string = identity.name
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output keyVaultName string = keyVaultEnabled ? vaultName : ''
output keyVaultUri string = keyVaultEnabled ? vaultUri : ''

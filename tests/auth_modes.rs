//! Every credential mode end to end: a fake Entra ID (and Key Vault) on loopback issues the
//! tokens, the simulated Azure DevOps organization checks the bearer it receives (signature,
//! audience, expiry), and the scan must be complete. Also the failures, each with its message.
//!
//! Managed identity needs process-wide environment variables and lives in
//! `auth_managed_identity.rs`.

mod auth_support;

use auth_support::*;
use patreport::ado::{AdoClient, AdoCredential, AdoSettings};
use patreport::callers::bearer_token;
use patreport::callers::{CallerPolicy, CallerSettings, CallerSource};
use patreport::credentials::device_code::{DeviceCodeCredential, DeviceCodeLogin};
use patreport::credentials::keyvault::KeyVaultStore;
use patreport::credentials::obo::Refused;
use patreport::credentials::refresh::{RefreshTokenStore, StoredSignIn};
use patreport::credentials::{AuthMode, OnBehalfOf, VaultAuth, resolve_with};
use patreport::engine::{self, NoProgress, ScanError, ScanOptions};
use patreport::functions::reply::ApiReply;
use patreport::inventory::Inventory;
use patreport::secret::Secret;
use patreport::simulator::{AuthConfig, OrgSpec, SimConfig, SimOrg, SimServer};
use serde_json::json;
use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

const ORG: &str = "fabrikam";

/// A simulated organization that accepts exactly the Azure DevOps tokens the fake Entra issues.
async fn sim(cloud: &TestCloud, users: usize, latency: Duration) -> (SimServer, Arc<AdoSeen>) {
    let org = SimOrg::generate(ORG, &OrgSpec::with_users(users), OffsetDateTime::now_utc());
    let (validator, seen) = cloud.entra.ado_validator();
    let mut config = SimConfig::strict();
    config.auth = AuthConfig::accepting(&[], &[]).with_bearer_validator(validator);
    config.faults.latency = latency;
    (SimServer::start(org, config).await.unwrap(), seen)
}

async fn scan(
    server: &SimServer,
    credential: AdoCredential,
    concurrency: usize,
) -> Result<Inventory, ScanError> {
    let mut settings = AdoSettings::new(
        server.base_url().parse().unwrap(),
        patreport::domain::OrgName::parse(ORG).unwrap(),
    );
    settings.request_timeout = Duration::from_secs(10);
    settings.max_retries = 1;
    let client = AdoClient::new(settings, credential).unwrap();
    let options = ScanOptions {
        concurrency,
        ..ScanOptions::default()
    };
    engine::scan(&client, &options, &NoProgress).await
}

fn assert_complete(inventory: &Inventory, server: &SimServer) {
    assert!(inventory.failures.is_empty(), "{:?}", inventory.failures);
    assert!(inventory.stopped_early.is_none());
    assert_eq!(inventory.users.len(), server.org().human_users().count());
    assert_eq!(server.stats().auth_failures, 0);
}

/// An on-behalf-of scan: complete, and the organization saw only the caller, reached through
/// the jwt-bearer (on-behalf-of) grant.
async fn assert_scan_ran_as_the_caller(
    cloud: &TestCloud,
    server: &SimServer,
    seen: &AdoSeen,
    credential: AdoCredential,
) {
    let inventory = scan(server, credential, 8).await.unwrap();
    assert_complete(&inventory, server);
    assert_eq!(seen.oids(), vec!["caller-oid".to_string()]);
    assert!(
        cloud
            .entra
            .grants()
            .contains(&"urn:ietf:params:oauth:grant-type:jwt-bearer".to_string())
    );
}

/// No secret of the test set-up appears in `text`.
fn assert_no_secrets(text: &str, extra: &[&str]) {
    for secret in [SP_SECRET, API_SECRET].iter().chain(extra) {
        assert!(!text.contains(secret), "a secret leaked into: {text}");
    }
    assert!(!text.contains("eyJ"), "a JWT leaked into: {text}");
    assert!(
        !text.contains("fake-refresh-token"),
        "a refresh token leaked into: {text}"
    );
}

// ---------------------------------------------------------------------------------------------
// App identities through azure_identity

#[tokio::test]
async fn client_secret_mode_scans_the_org_as_the_service_principal() {
    let cloud = TestCloud::start().await;
    let (server, seen) = sim(&cloud, 40, Duration::ZERO).await;
    let mut settings = cloud.settings(AuthMode::ClientSecret);
    settings.client_id = Some(SP_APP.into());
    settings.client_secret = Some(Secret::new(SP_SECRET));
    let credential = resolve_with(&settings, &cloud.runtime()).unwrap();
    assert_no_secrets(&format!("{credential:?} {settings:?}"), &[]);

    let inventory = scan(&server, credential, 8).await.unwrap();
    assert_complete(&inventory, &server);
    assert_eq!(seen.oids(), vec![SP_OID.to_string()]);
    assert_eq!(
        cloud.entra.ado_tokens_issued(),
        1,
        "one token, cached for the whole scan"
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_named_without_being_shown() {
    let cloud = TestCloud::start().await;
    let (server, _) = sim(&cloud, 5, Duration::ZERO).await;
    let mut settings = cloud.settings(AuthMode::ClientSecret);
    settings.client_id = Some(SP_APP.into());
    settings.client_secret = Some(Secret::new("wrong-secret-value"));
    let credential = resolve_with(&settings, &cloud.runtime()).unwrap();
    let error = scan(&server, credential, 2).await.unwrap_err().to_string();
    assert!(error.contains("AADSTS7000215"), "{error}");
    assert!(error.contains("AZURE_CLIENT_SECRET"), "{error}");
    assert_no_secrets(&error, &["wrong-secret-value"]);
}

#[tokio::test]
async fn workload_identity_mode_presents_the_federated_token() {
    let cloud = TestCloud::start().await;
    let (server, seen) = sim(&cloud, 20, Duration::ZERO).await;
    // The projected service account token, as the cluster's OIDC issuer signs it.
    let federated = attacker_key().sign(&json!({
        "iss": "https://oidc.fake-cluster.test",
        "sub": WORKLOAD_SUBJECT,
        "aud": "api://AzureADTokenExchange",
        "exp": now() + 3600,
    }));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, &federated).unwrap();
    let mut settings = cloud.settings(AuthMode::WorkloadIdentity);
    settings.client_id = Some(WORKLOAD_APP.into());
    settings.federated_token_file = Some(file);
    let credential = resolve_with(&settings, &cloud.runtime()).unwrap();
    let inventory = scan(&server, credential, 8).await.unwrap();
    assert_complete(&inventory, &server);
    assert_eq!(seen.oids(), vec!["workload-sp-oid".to_string()]);
}

#[tokio::test]
async fn workload_identity_without_a_token_file_names_the_setting() {
    let cloud = TestCloud::start().await;
    let mut settings = cloud.settings(AuthMode::WorkloadIdentity);
    settings.client_id = Some(WORKLOAD_APP.into());
    let error = resolve_with(&settings, &cloud.runtime())
        .unwrap_err()
        .to_string();
    assert!(error.contains("AZURE_FEDERATED_TOKEN_FILE"), "{error}");
}

/// `az account get-access-token`, answered with a token of the fake tenant.
#[derive(Debug)]
struct FakeAz {
    token: String,
    expires_on: u64,
    /// `--tenant` expected on the command line (the CLI mode passes AZURE_TENANT_ID).
    tenant: bool,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl azure_identity::Executor for FakeAz {
    async fn run(
        &self,
        _program: &OsStr,
        args: &[&OsStr],
    ) -> std::io::Result<std::process::Output> {
        use std::os::unix::process::ExitStatusExt;
        self.calls.fetch_add(1, Ordering::SeqCst);
        let command: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        let command = command.join(" ");
        assert!(command.contains("az account get-access-token"), "{command}");
        assert!(
            command.contains("--scope 499b84ac-1321-427f-aa17-267ca6975798/.default"),
            "{command}"
        );
        assert_eq!(
            command.contains(&format!("--tenant {TENANT}")),
            self.tenant,
            "{command}"
        );
        let stdout = json!({
            "accessToken": self.token,
            "expiresOn": "2099-01-01 00:00:00.000000",
            "expires_on": self.expires_on,
            "subscription": "00000000-0000-0000-0000-000000000000",
            "tenant": TENANT,
            "tokenType": "Bearer",
        });
        Ok(std::process::Output {
            status: std::process::ExitStatus::from_raw(0),
            stdout: stdout.to_string().into_bytes(),
            stderr: Vec::new(),
        })
    }
}

#[tokio::test]
async fn azure_cli_and_developer_tools_run_az_once_per_token() {
    let cloud = TestCloud::start().await;
    let (server, seen) = sim(&cloud, 30, Duration::ZERO).await;
    let token = cloud.entra.state.access_token(
        patreport::entra::ADO_RESOURCE,
        &json!({"oid": "developer-oid", "sub": "developer-oid"}),
        3600,
    );
    for (mode, tenant) in [
        (AuthMode::AzureCli, true),
        (AuthMode::DeveloperTools, false),
    ] {
        let az = Arc::new(FakeAz {
            token: token.clone(),
            expires_on: now() + 3600,
            tenant,
            calls: AtomicUsize::new(0),
        });
        let runtime = cloud.runtime().with_cli_executor(az.clone());
        let credential = resolve_with(&cloud.settings(mode), &runtime).unwrap();
        let inventory = scan(&server, credential, 8).await.unwrap();
        assert_complete(&inventory, &server);
        assert_eq!(seen.oids(), vec!["developer-oid".to_string()]);
        // azure_identity's CLI credential has no cache of its own: ours keeps `az` to one run.
        assert_eq!(az.calls.load(Ordering::SeqCst), 1, "{mode:?}");
    }
}

#[tokio::test]
async fn pat_mode_reads_the_pat_file() {
    let cloud = TestCloud::start().await;
    let org = SimOrg::generate(ORG, &OrgSpec::with_users(10), OffsetDateTime::now_utc());
    let mut config = SimConfig::strict();
    config.auth = AuthConfig::accepting(&["pat-from-a-file"], &[]);
    let server = SimServer::start(org, config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pat");
    std::fs::write(&file, "pat-from-a-file\n").unwrap();
    let mut settings = cloud.settings(AuthMode::Pat);
    settings.pat_file = Some(file);
    let credential = resolve_with(&settings, &cloud.runtime()).unwrap();
    assert!(!format!("{credential:?}").contains("pat-from-a-file"));
    let inventory = scan(&server, credential, 4).await.unwrap();
    assert_complete(&inventory, &server);
}

// ---------------------------------------------------------------------------------------------
// Stored delegated sign-in (refresh token in Key Vault) and `patreport login`

const SECRET_NAME: &str = "patreport-refresh-token";

fn refresh_settings(cloud: &TestCloud) -> patreport::credentials::CredentialSettings {
    let mut settings = cloud.settings(AuthMode::RefreshToken);
    settings.login_client_id = Some(LOGIN_APP.into());
    // patreport reaches the vault as the service principal here (managed identity in Azure,
    // tested in auth_managed_identity.rs).
    settings.vault_auth = VaultAuth::ClientSecret;
    settings.client_id = Some(SP_APP.into());
    settings.client_secret = Some(Secret::new(SP_SECRET));
    settings
}

#[tokio::test]
async fn refresh_token_mode_redeems_and_writes_back_the_rotated_token() {
    let cloud = TestCloud::start().await;
    let (server, seen) = sim(&cloud, 30, Duration::ZERO).await;
    let first = cloud.entra.issue_refresh_token(LOGIN_APP);
    cloud.vault.put(SECRET_NAME, &first);

    let credential = resolve_with(&refresh_settings(&cloud), &cloud.runtime()).unwrap();
    let inventory = scan(&server, credential, 8).await.unwrap();
    assert_complete(&inventory, &server);
    assert_eq!(
        seen.oids(),
        vec![ADMIN_OID.to_string()],
        "acts as the admin"
    );
    let rotated = cloud.vault.latest(SECRET_NAME).unwrap();
    assert_ne!(
        rotated.value, first,
        "the rotated refresh token was written back"
    );
    assert_eq!(
        rotated.tags.get("written-by").map(String::as_str),
        Some("patreport")
    );
    assert!(cloud.vault.state.callers.lock().unwrap().contains(SP_OID));

    // The fake retires a redeemed refresh token: the next run works only with the rotated one.
    let credential = resolve_with(&refresh_settings(&cloud), &cloud.runtime()).unwrap();
    let inventory = scan(&server, credential, 8).await.unwrap();
    assert_complete(&inventory, &server);
    assert_eq!(cloud.vault.versions(SECRET_NAME), 3);
}

#[tokio::test]
async fn an_expired_or_revoked_sign_in_says_to_run_login_again() {
    let cloud = TestCloud::start().await;
    let (server, _) = sim(&cloud, 5, Duration::ZERO).await;
    let rt = cloud.entra.issue_refresh_token(LOGIN_APP);
    cloud.vault.put(SECRET_NAME, &rt);
    cloud.entra.revoke_refresh_tokens();

    let credential = resolve_with(&refresh_settings(&cloud), &cloud.runtime()).unwrap();
    let error = scan(&server, credential, 2).await.unwrap_err().to_string();
    assert!(error.contains("patreport login"), "{error}");
    assert!(error.contains("invalid_grant"), "{error}");
    assert!(error.contains("AADSTS700082"), "{error}");
    assert!(
        error.contains(SECRET_NAME),
        "names the Key Vault secret: {error}"
    );
    assert_no_secrets(&error, &[&rt]);
}

#[tokio::test]
async fn no_stored_sign_in_says_to_run_login_first() {
    let cloud = TestCloud::start().await;
    let (server, _) = sim(&cloud, 5, Duration::ZERO).await;
    let credential = resolve_with(&refresh_settings(&cloud), &cloud.runtime()).unwrap();
    let error = scan(&server, credential, 2).await.unwrap_err().to_string();
    assert!(error.contains("run `patreport login` first"), "{error}");
}

#[tokio::test]
async fn login_by_device_code_stores_a_sign_in_the_refresh_token_mode_uses() {
    let cloud = TestCloud::start().await;
    let (server, seen) = sim(&cloud, 20, Duration::ZERO).await;
    cloud.entra.script_device(DeviceScript {
        pending: 2,
        slow_down_at: Some(2),
        outcome: DeviceOutcome::Approve,
    });
    let settings = refresh_settings(&cloud);
    let runtime = cloud.runtime();
    let mut login = DeviceCodeLogin::new(settings.entra(&runtime).unwrap(), LOGIN_APP);
    login.min_interval = Duration::from_millis(10);
    login.slow_down_step = Duration::from_millis(30);
    let prompts = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let shown = prompts.clone();
    let credential = DeviceCodeCredential::new(
        login,
        Arc::new(move |p| {
            shown
                .lock()
                .unwrap()
                .push(p.message.clone().unwrap_or_default())
        }),
    );
    // `patreport login`: get an Azure DevOps token (proves consent), store the sign-in.
    let token = azure_core::credentials::TokenCredential::get_token(
        credential.as_ref(),
        &[patreport::credentials::ADO_SCOPE],
        None,
    )
    .await
    .unwrap();
    assert!(!token.token.secret().is_empty());
    let sign_in = credential.sign_in().await.unwrap();
    assert_eq!(sign_in.user.as_deref(), Some(ADMIN_UPN));
    let store = settings.sign_in_store(&runtime).unwrap();
    store.save(&sign_in).await.unwrap();

    let prompts = prompts.lock().unwrap().clone();
    assert_eq!(prompts.len(), 1);
    assert!(prompts[0].contains("FAKE-CODE"), "{prompts:?}");
    let polls = cloud.entra.state.device_polls.load(Ordering::SeqCst);
    assert_eq!(polls, 4, "two pending, one slow_down, then the token");
    let stored = cloud.vault.latest(SECRET_NAME).unwrap();
    assert_eq!(
        stored.tags.get("signed-in-as").map(String::as_str),
        Some(ADMIN_UPN)
    );
    assert_eq!(
        stored.tags.get("client-id").map(String::as_str),
        Some(LOGIN_APP)
    );

    let credential = resolve_with(&settings, &runtime).unwrap();
    let inventory = scan(&server, credential, 8).await.unwrap();
    assert_complete(&inventory, &server);
    assert_eq!(seen.oids(), vec![ADMIN_OID.to_string()]);
}

#[tokio::test]
async fn a_device_code_that_expires_or_is_declined_is_explained() {
    let cloud = TestCloud::start().await;
    let runtime = cloud.runtime();
    let settings = refresh_settings(&cloud);
    for (outcome, expected) in [
        (DeviceOutcome::Expire, "code expired"),
        (DeviceOutcome::Decline, "declined"),
    ] {
        cloud.entra.script_device(DeviceScript {
            pending: 1,
            slow_down_at: None,
            outcome,
        });
        let mut login = DeviceCodeLogin::new(settings.entra(&runtime).unwrap(), LOGIN_APP);
        login.min_interval = Duration::from_millis(5);
        let started = login.start().await.unwrap();
        let error = login.finish(&started).await.unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        assert!(error.contains("patreport login"), "{error}");
    }
}

#[tokio::test]
async fn a_sign_in_of_another_login_app_is_refused_clearly() {
    let cloud = TestCloud::start().await;
    let runtime = cloud.runtime();
    let settings = refresh_settings(&cloud);
    let store = settings.sign_in_store(&runtime).unwrap();
    store
        .save(&StoredSignIn {
            refresh_token: Secret::new(cloud.entra.issue_refresh_token(LOGIN_APP)),
            client_id: Some("some-other-app".into()),
            tenant_id: Some(TENANT.into()),
            user: None,
        })
        .await
        .unwrap();
    let credential = resolve_with(&settings, &runtime).unwrap();
    let (server, _) = sim(&cloud, 3, Duration::ZERO).await;
    let error = scan(&server, credential, 1).await.unwrap_err().to_string();
    assert!(error.contains("PATREPORT_LOGIN_CLIENT_ID"), "{error}");
    assert!(error.contains("patreport login"), "{error}");
}

#[tokio::test]
async fn key_vault_refusal_names_the_role_needed() {
    let cloud = TestCloud::start().await;
    let runtime = cloud.runtime();
    // A credential whose tokens the vault rejects (wrong audience).
    #[derive(Debug)]
    struct WrongAudience(String);
    #[async_trait::async_trait]
    impl azure_core::credentials::TokenCredential for WrongAudience {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            Ok(azure_core::credentials::AccessToken::new(
                self.0.clone(),
                OffsetDateTime::now_utc() + time::Duration::hours(1),
            ))
        }
    }
    let wrong =
        cloud
            .entra
            .state
            .access_token("https://storage.azure.com", &json!({"oid": "x"}), 3600);
    let store = KeyVaultStore::new(
        &cloud.vault.url.parse().unwrap(),
        SECRET_NAME,
        Arc::new(WrongAudience(wrong.clone())),
        &runtime,
    )
    .unwrap();
    let error = store.load().await.unwrap_err().to_string();
    assert!(error.contains("Key Vault Secrets Officer"), "{error}");
    assert_no_secrets(&error, &[&wrong]);
}

// ---------------------------------------------------------------------------------------------
// On-behalf-of (HTTP path): the caller's own rights

fn caller_policy(cloud: &TestCloud, roles: &[&str], groups: &[&str]) -> CallerPolicy {
    let mut config = CallerSettings::new(CallerSource::Bearer);
    config.allowed_roles = roles.iter().map(|r| r.to_string()).collect();
    config.allowed_groups = groups.iter().map(|g| g.to_string()).collect();
    config.tenant_id = Some(TENANT.into());
    config.audiences = vec![API_APP.into(), format!("api://{API_APP}")];
    config.authority_host =
        patreport::entra::parse_authority_host(&cloud.entra.authority()).unwrap();
    config.leeway = Duration::ZERO;
    config.jwks_refetch_after_unknown = Duration::ZERO;
    let policy = CallerPolicy::new(config, &cloud.runtime());
    assert!(policy.problems().is_empty(), "{:?}", policy.problems());
    policy
}

fn bearer(token: &str) -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    headers
}

/// How the Functions app answers a refused caller or exchange (the one place that renders them).
trait Answer {
    fn reply(&self) -> ApiReply;
    fn status(&self) -> u16 {
        self.reply().status.as_u16()
    }
    fn code(&self) -> String {
        self.reply().body["error"].as_str().unwrap_or("").to_owned()
    }
}

impl Answer for patreport::callers::Denied {
    fn reply(&self) -> ApiReply {
        ApiReply::denied(self)
    }
}

impl Answer for Refused {
    fn reply(&self) -> ApiReply {
        ApiReply::exchange_refused(self)
    }
}

/// A refused exchange's reason, as its answer says it.
trait Reason {
    fn reason(&self) -> String;
}

impl Reason for Refused {
    fn reason(&self) -> String {
        self.to_string()
    }
}

fn obo(cloud: &TestCloud) -> OnBehalfOf {
    let mut settings = cloud.settings(AuthMode::OnBehalfOf);
    settings.api_client_id = Some(API_APP.into());
    settings.api_client_secret = Some(Secret::new(API_SECRET));
    OnBehalfOf::from_settings(&settings, &cloud.runtime()).unwrap()
}

#[tokio::test]
async fn on_behalf_of_runs_the_scan_with_the_callers_identity() {
    let cloud = TestCloud::start().await;
    let (server, seen) = sim(&cloud, 25, Duration::ZERO).await;
    let policy = caller_policy(&cloud, &["PatReport.Read"], &[]);
    let token = cloud
        .entra
        .caller_token(json!({"roles": ["PatReport.Read"]}));
    let caller = policy.authorize(&bearer(&token)).await.unwrap();
    assert_eq!(caller.id, "caller-oid");
    assert!(!format!("{caller:?}").contains(&token));

    let credential = obo(&cloud)
        .credential_for(caller.access_token().cloned())
        .await
        .unwrap();
    assert_scan_ran_as_the_caller(&cloud, &server, &seen, credential).await;
}

#[tokio::test]
async fn on_behalf_of_without_consent_is_refused_with_the_permission_to_grant() {
    let cloud = TestCloud::start().await;
    let mut app = cloud.entra.app(API_APP);
    app.ado_consent = false;
    cloud.entra.set_app(API_APP, app);
    let policy = caller_policy(&cloud, &["PatReport.Read"], &[]);
    let token = cloud
        .entra
        .caller_token(json!({"roles": ["PatReport.Read"]}));
    let caller = policy.authorize(&bearer(&token)).await.unwrap();
    let denied = obo(&cloud)
        .credential_for(caller.access_token().cloned())
        .await
        .unwrap_err();
    assert_eq!(denied.status(), 403);
    let reason = &denied.reason();
    assert!(reason.contains("AADSTS65001"), "{reason}");
    assert!(reason.contains("user_impersonation"), "{reason}");
    assert!(reason.contains("Grant admin consent"), "{reason}");
    assert_no_secrets(reason, &[&token]);
}

#[tokio::test]
async fn on_behalf_of_with_an_expired_caller_token_is_401() {
    let cloud = TestCloud::start().await;
    let token = cloud
        .entra
        .caller_token(json!({"exp": now() - 600, "nbf": now() - 4000}));
    let denied = obo(&cloud)
        .credential_for(bearer_token(&bearer(&token)))
        .await
        .unwrap_err();
    assert_eq!(denied.status(), 401);
    assert!(
        denied.reason().contains("AADSTS500133"),
        "{}",
        denied.reason()
    );
    let denied = obo(&cloud).credential_for(None).await.unwrap_err();
    assert_eq!(denied.status(), 401);
}

#[tokio::test]
async fn on_behalf_of_with_a_wrong_api_secret_is_not_the_callers_fault() {
    let cloud = TestCloud::start().await;
    let mut settings = cloud.settings(AuthMode::OnBehalfOf);
    settings.api_client_id = Some(API_APP.into());
    settings.api_client_secret = Some(Secret::new("not-the-secret"));
    let obo = OnBehalfOf::from_settings(&settings, &cloud.runtime()).unwrap();
    let token = cloud.entra.caller_token(json!({}));
    let denied = obo
        .credential_for(bearer_token(&bearer(&token)))
        .await
        .unwrap_err();
    assert_eq!(denied.status(), 503);
    assert!(
        denied.reason().contains("PATREPORT_API_CLIENT_SECRET"),
        "{}",
        denied.reason()
    );
    assert_no_secrets(&denied.reason(), &["not-the-secret", &token]);
}

/// On-behalf-of with the API app proving itself with `cert` (a PEM file in `dir`).
fn obo_with_certificate(cloud: &TestCloud, dir: &std::path::Path, cert: &ClientCert) -> OnBehalfOf {
    let path = dir.join("api-app.pem");
    std::fs::write(&path, &cert.pem).unwrap();
    let mut settings = cloud.settings(AuthMode::OnBehalfOf);
    settings.api_client_id = Some(API_APP.into());
    settings.api_client_certificate = Some(path);
    let obo = OnBehalfOf::from_settings(&settings, &cloud.runtime()).unwrap();
    assert!(!format!("{obo:?}").contains(&cert.key_body[..40]));
    obo
}

#[tokio::test]
async fn on_behalf_of_with_a_certificate_runs_the_scan_with_the_callers_identity() {
    let cloud = TestCloud::start().await;
    let cert = client_certificate("patreport api app");
    let mut app = cloud.entra.app(API_APP);
    app.secret = None;
    app.federated_subjects.clear();
    app.certificates.push(cert.registration.clone());
    cloud.entra.set_app(API_APP, app);
    let (server, seen) = sim(&cloud, 25, Duration::ZERO).await;
    let policy = caller_policy(&cloud, &["PatReport.Read"], &[]);
    let token = cloud
        .entra
        .caller_token(json!({"roles": ["PatReport.Read"]}));
    let caller = policy.authorize(&bearer(&token)).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let credential = obo_with_certificate(&cloud, dir.path(), &cert)
        .credential_for(caller.access_token().cloned())
        .await
        .unwrap();
    assert_scan_ran_as_the_caller(&cloud, &server, &seen, credential).await;
}

#[tokio::test]
async fn on_behalf_of_with_an_unregistered_certificate_is_a_clear_error() {
    let cloud = TestCloud::start().await;
    let registered = client_certificate("registered");
    let other = client_certificate("not registered");
    let mut app = cloud.entra.app(API_APP);
    app.certificates.push(registered.registration.clone());
    cloud.entra.set_app(API_APP, app);
    let token = cloud.entra.caller_token(json!({}));

    let dir = tempfile::tempdir().unwrap();
    let denied = obo_with_certificate(&cloud, dir.path(), &other)
        .credential_for(bearer_token(&bearer(&token)))
        .await
        .unwrap_err();
    assert_eq!(denied.status(), 503, "the app's fault, not the caller's");
    let reason = &denied.reason();
    assert!(reason.contains("AADSTS700027"), "{reason}");
    assert!(
        reason.contains("PATREPORT_API_CLIENT_CERTIFICATE"),
        "{reason}"
    );
    assert!(reason.contains("Certificates & secrets"), "{reason}");
    assert!(!reason.contains("PRIVATE KEY"), "{reason}");
    for chunk in other.key_body.as_bytes().chunks(32) {
        assert!(
            !reason.contains(std::str::from_utf8(chunk).unwrap()),
            "{reason}"
        );
    }
    assert_no_secrets(reason, &[&token]);
}

// ---------------------------------------------------------------------------------------------
// Who may ask: JWT validation and roles

#[tokio::test]
async fn callers_are_checked_for_signature_audience_expiry_and_role() {
    let cloud = TestCloud::start().await;
    let policy = caller_policy(&cloud, &["PatReport.Read"], &["group-admins"]);
    let entra = &cloud.entra;

    // Allowed by role, by group, with the api:// audience, and as a v1.0 token.
    for token in [
        entra.caller_token(json!({"roles": ["PatReport.Read"]})),
        entra.caller_token(json!({"groups": ["other", "group-admins"]})),
        entra.caller_token(json!({"aud": format!("api://{API_APP}"), "roles": ["PatReport.Read"]})),
        entra.caller_token(json!({"iss": format!("https://sts.windows.net/{TENANT}/"), "roles": ["PatReport.Read"]})),
    ] {
        policy.authorize(&bearer(&token)).await.unwrap();
    }

    let denied = |token: String| {
        let policy = &policy;
        async move {
            let d = policy.authorize(&bearer(&token)).await.unwrap_err();
            assert!(!d.reason().contains(&token), "the token is never echoed");
            assert!(
                !d.reply().body.to_string().contains("eyJ"),
                "no JWT in the body"
            );
            d
        }
    };

    // Missing token: 401.
    let d = policy
        .authorize(&axum::http::HeaderMap::new())
        .await
        .unwrap_err();
    assert_eq!((d.status(), d.code().as_str()), (401, "unauthorized"));
    assert!(
        d.reply()
            .headers
            .iter()
            .any(|(k, _)| k == "WWW-Authenticate")
    );
    assert!(
        d.reason().contains("Authorization: Bearer"),
        "{}",
        d.reason()
    );

    // Wrong audience (a token for Azure DevOps, not for patreport): 401.
    let d =
        denied(entra.caller_token(
            json!({"aud": patreport::entra::ADO_RESOURCE, "roles": ["PatReport.Read"]}),
        ))
        .await;
    assert_eq!(d.status(), 401);
    assert!(d.reason().contains("audience"), "{}", d.reason());

    // Expired: 401.
    let d =
        denied(entra.caller_token(json!({"exp": now() - 120, "roles": ["PatReport.Read"]}))).await;
    assert_eq!(d.status(), 401);
    assert!(d.reason().contains("expired"), "{}", d.reason());

    // Not yet valid: 401.
    let d =
        denied(entra.caller_token(json!({"nbf": now() + 600, "roles": ["PatReport.Read"]}))).await;
    assert!(d.reason().contains("not valid yet"), "{}", d.reason());

    // Bad signature: right kid, wrong key.
    let claims = json!({"aud": API_APP, "iss": entra.issuer(), "tid": TENANT, "oid": "mallory",
        "roles": ["PatReport.Read"], "exp": now() + 600, "nbf": now() - 5});
    let d = denied(attacker_key().sign_as(&entra.active_kid(), &claims)).await;
    assert_eq!(d.status(), 401);
    assert!(d.reason().contains("bad signature"), "{}", d.reason());

    // A key the tenant does not publish.
    let d = denied(attacker_key().sign(&claims)).await;
    assert!(d.reason().contains("does not publish"), "{}", d.reason());

    // Another tenant's issuer.
    let d = denied(entra.caller_token(json!({"iss": "https://login.microsoftonline.com/other-tenant/v2.0", "roles": ["PatReport.Read"]}))).await;
    assert!(
        d.reason().contains("issued by another tenant"),
        "{}",
        d.reason()
    );

    // Not a JWT at all; and HS256 (algorithm confusion).
    let d = denied("not-a-jwt".into()).await;
    assert_eq!(d.status(), 401);
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    let d = denied(hs).await;
    assert!(d.reason().contains("RS256"), "{}", d.reason());

    // Valid token without the role or group: 403, naming what is needed.
    let d =
        denied(entra.caller_token(json!({"roles": ["Something.Else"], "groups": ["g1"]}))).await;
    assert_eq!((d.status(), d.code().as_str()), (403, "forbidden"));
    assert!(d.reason().contains("PatReport.Read"), "{}", d.reason());
    assert!(d.reason().contains("casey@contoso.test"), "{}", d.reason());

    // Group overage: the reason says why groups cannot be checked.
    let d = denied(entra.caller_token(json!({"_claim_names": {"groups": "src1"}}))).await;
    assert!(d.reason().contains("too many groups"), "{}", d.reason());
}

#[tokio::test]
async fn a_rolled_signing_key_is_fetched_on_first_sight() {
    let cloud = TestCloud::start().await;
    let policy = caller_policy(&cloud, &["PatReport.Read"], &[]);
    let first = cloud
        .entra
        .caller_token(json!({"roles": ["PatReport.Read"]}));
    policy.authorize(&bearer(&first)).await.unwrap();
    policy.authorize(&bearer(&first)).await.unwrap();
    assert_eq!(
        cloud.entra.state.jwks_fetches.load(Ordering::SeqCst),
        1,
        "cached"
    );
    cloud.entra.roll_keys();
    let second = cloud
        .entra
        .caller_token(json!({"roles": ["PatReport.Read"]}));
    policy.authorize(&bearer(&second)).await.unwrap();
    assert_eq!(cloud.entra.state.jwks_fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unreachable_signing_keys_are_503_not_401() {
    let cloud = TestCloud::start().await;
    let mut config = CallerSettings::new(CallerSource::Bearer);
    config.allowed_roles = vec!["PatReport.Read".into()];
    config.tenant_id = Some(TENANT.into());
    config.audiences = vec![API_APP.into()];
    // A host nothing listens on (port 1 on loopback).
    config.authority_host = "https://127.0.0.1:1/".parse().unwrap();
    let policy = CallerPolicy::new(config, &cloud.runtime());
    let token = cloud
        .entra
        .caller_token(json!({"roles": ["PatReport.Read"]}));
    let d = policy.authorize(&bearer(&token)).await.unwrap_err();
    assert_eq!(d.status(), 503);
    assert!(d.reason().contains("signing keys"), "{}", d.reason());
}

// ---------------------------------------------------------------------------------------------
// Long runs: tokens renewed before they expire

/// A scan outliving its tokens (2 s tokens, renewed 1 s ahead; 40 ms per request, two at a
/// time): every request must carry a valid token (the simulated org allows a few seconds of
/// clock skew, as real services do, so a busy machine cannot fail it), and tokens are renewed
/// during the run.
async fn long_run(cloud: &TestCloud, credential: AdoCredential) -> Arc<AdoSeen> {
    cloud.entra.set_lifetime(2);
    let (server, seen) = sim(cloud, 140, Duration::from_millis(40)).await;
    let started = std::time::Instant::now();
    let inventory = scan(&server, credential, 2).await.unwrap();
    let elapsed = started.elapsed();
    assert_complete(&inventory, &server);
    assert!(
        elapsed > Duration::from_secs(2),
        "the run must outlive tokens: {elapsed:?}"
    );
    assert_eq!(seen.refused.load(Ordering::SeqCst), 0);
    assert!(
        seen.distinct_tokens() >= 3,
        "tokens were renewed during the run: {}",
        seen.distinct_tokens()
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_tokens_are_renewed_in_the_middle_of_a_long_run() {
    let cloud = TestCloud::start().await;
    let mut settings = cloud.settings(AuthMode::ClientSecret);
    settings.client_id = Some(SP_APP.into());
    settings.client_secret = Some(Secret::new(SP_SECRET));
    let credential = resolve_with(&settings, &cloud.runtime()).unwrap();
    long_run(&cloud, credential).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_sign_ins_are_renewed_and_rotated_during_a_long_run() {
    let cloud = TestCloud::start().await;
    cloud
        .vault
        .put(SECRET_NAME, &cloud.entra.issue_refresh_token(LOGIN_APP));
    let credential = resolve_with(&refresh_settings(&cloud), &cloud.runtime()).unwrap();
    long_run(&cloud, credential).await;
    // Every redemption rotated the refresh token and wrote it back; only the newest is live.
    assert_eq!(
        cloud.vault.versions(SECRET_NAME),
        1 + cloud.entra.ado_tokens_issued()
    );
    assert_eq!(cloud.entra.live_refresh_tokens(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_behalf_of_tokens_are_renewed_with_the_exchange_refresh_token() {
    let cloud = TestCloud::start().await;
    let policy = caller_policy(&cloud, &["PatReport.Read"], &[]);
    let token = cloud
        .entra
        .caller_token(json!({"roles": ["PatReport.Read"]}));
    let caller = policy.authorize(&bearer(&token)).await.unwrap();
    cloud.entra.set_lifetime(2);
    let credential = obo(&cloud)
        .credential_for(caller.access_token().cloned())
        .await
        .unwrap();
    long_run(&cloud, credential).await;
    let grants = cloud.entra.grants();
    assert_eq!(
        grants.iter().filter(|g| g.ends_with("jwt-bearer")).count(),
        1,
        "one exchange, then renewals: {grants:?}"
    );
    assert!(grants.iter().any(|g| g == "refresh_token"));
}

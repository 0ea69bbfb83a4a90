//! Managed identity, as the Azure Functions platform offers it: `IDENTITY_ENDPOINT` (plain http on
//! loopback) and `IDENTITY_HEADER`, api-version 2019-08-01. azure_identity reads both from the
//! process environment only, so this file is its own test binary with a single test that sets
//! them before any other thread starts, then runs every managed identity scenario in turn.

mod auth_support;

use auth_support::*;
use patreport::ado::{AdoClient, AdoCredential, AdoSettings};
use patreport::callers::{CallerPolicy, CallerSettings, CallerSource};
use patreport::credentials::{AuthMode, OnBehalfOf, resolve_with};
use patreport::engine::{self, NoProgress, ScanOptions};
use patreport::inventory::Inventory;
use patreport::simulator::{AuthConfig, OrgSpec, SimConfig, SimOrg, SimServer};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use time::OffsetDateTime;

const ORG: &str = "fabrikam";

async fn sim(cloud: &TestCloud) -> (SimServer, Arc<AdoSeen>) {
    let org = SimOrg::generate(ORG, &OrgSpec::with_users(25), OffsetDateTime::now_utc());
    let (validator, seen) = cloud.entra.ado_validator();
    let mut config = SimConfig::strict();
    config.auth = AuthConfig::accepting(&[], &[]).with_bearer_validator(validator);
    (SimServer::start(org, config).await.unwrap(), seen)
}

async fn scan(server: &SimServer, credential: AdoCredential) -> Result<Inventory, String> {
    let mut settings = AdoSettings::new(
        server.base_url().parse().unwrap(),
        patreport::domain::OrgName::parse(ORG).unwrap(),
    );
    settings.request_timeout = Duration::from_secs(10);
    settings.max_retries = 1;
    let client = AdoClient::new(settings, credential).unwrap();
    let inventory = engine::scan(&client, &ScanOptions::default(), &NoProgress)
        .await
        .map_err(|e| e.to_string())?;
    assert!(inventory.failures.is_empty(), "{:?}", inventory.failures);
    assert_eq!(inventory.users.len(), server.org().human_users().count());
    Ok(inventory)
}

#[test]
fn managed_identity_modes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // SAFETY: the only test of this binary, before its runtime (or any other thread of ours)
    // exists; nothing reads the environment concurrently.
    unsafe {
        std::env::set_var(
            "IDENTITY_ENDPOINT",
            format!("http://127.0.0.1:{port}/msi/token"),
        );
        std::env::set_var("IDENTITY_HEADER", MI_HEADER_SECRET);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let cloud = TestCloud::start().await;
        let mi = FakeManagedIdentity::start_on(listener, &cloud.entra).await;
        system_assigned(&cloud, &mi).await;
        user_assigned(&cloud).await;
        unknown_user_assigned_identity(&cloud).await;
        on_behalf_of_with_the_identity_as_federated_credential(&cloud).await;
        refresh_token_mode_reads_the_vault_as_the_identity(&cloud).await;
    });
}

async fn system_assigned(cloud: &TestCloud, mi: &FakeManagedIdentity) {
    let (server, seen) = sim(cloud).await;
    let before = mi.requests.load(Ordering::SeqCst);
    let credential =
        resolve_with(&cloud.settings(AuthMode::ManagedIdentity), &cloud.runtime()).unwrap();
    scan(&server, credential).await.unwrap();
    assert_eq!(seen.oids(), vec![MI_SYSTEM_OID.to_string()]);
    assert_eq!(
        mi.requests.load(Ordering::SeqCst) - before,
        1,
        "one token for the whole scan"
    );
}

async fn user_assigned(cloud: &TestCloud) {
    let (server, seen) = sim(cloud).await;
    let mut settings = cloud.settings(AuthMode::ManagedIdentity);
    settings.client_id = Some(MI_USER_CLIENT_ID.into());
    let credential = resolve_with(&settings, &cloud.runtime()).unwrap();
    scan(&server, credential).await.unwrap();
    assert_eq!(seen.oids(), vec![MI_USER_OID.to_string()]);
}

async fn unknown_user_assigned_identity(cloud: &TestCloud) {
    let (server, _) = sim(cloud).await;
    let mut settings = cloud.settings(AuthMode::ManagedIdentity);
    settings.client_id = Some("00000000-0000-0000-0000-00000000dead".into());
    let credential = resolve_with(&settings, &cloud.runtime()).unwrap();
    let error = scan(&server, credential).await.unwrap_err();
    assert!(error.contains("managed-identity"), "{error}");
    assert!(error.contains("has not been assigned"), "{error}");
}

async fn on_behalf_of_with_the_identity_as_federated_credential(cloud: &TestCloud) {
    let (server, seen) = sim(cloud).await;
    let mut config = CallerSettings::new(CallerSource::Bearer);
    config.allowed_roles = vec!["PatReport.Read".into()];
    config.tenant_id = Some(TENANT.into());
    config.audiences = vec![API_APP.into()];
    config.authority_host =
        patreport::entra::parse_authority_host(&cloud.entra.authority()).unwrap();
    let policy = CallerPolicy::new(config, &cloud.runtime());
    let token = cloud
        .entra
        .caller_token(json!({"roles": ["PatReport.Read"], "oid": "obo-caller"}));
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let caller = policy.authorize(&headers).await.unwrap();

    // No PATREPORT_API_CLIENT_SECRET: the user-assigned identity proves the API app.
    let mut settings = cloud.settings(AuthMode::OnBehalfOf);
    settings.api_client_id = Some(API_APP.into());
    settings.client_id = Some(MI_USER_CLIENT_ID.into());
    let obo = OnBehalfOf::from_settings(&settings, &cloud.runtime()).unwrap();
    let credential = obo
        .credential_for(caller.access_token().cloned())
        .await
        .unwrap();
    scan(&server, credential).await.unwrap();
    assert_eq!(seen.oids(), vec!["obo-caller".to_string()]);
}

async fn refresh_token_mode_reads_the_vault_as_the_identity(cloud: &TestCloud) {
    let (server, seen) = sim(cloud).await;
    cloud.vault.put(
        patreport::credentials::DEFAULT_REFRESH_TOKEN_SECRET,
        &cloud.entra.issue_refresh_token(LOGIN_APP),
    );
    // The default PATREPORT_VAULT_AUTH: the (system-assigned) managed identity.
    let mut settings = cloud.settings(AuthMode::RefreshToken);
    settings.login_client_id = Some(LOGIN_APP.into());
    let credential = resolve_with(&settings, &cloud.runtime()).unwrap();
    scan(&server, credential).await.unwrap();
    assert_eq!(seen.oids(), vec![ADMIN_OID.to_string()]);
    assert!(
        cloud
            .vault
            .state
            .callers
            .lock()
            .unwrap()
            .contains(MI_SYSTEM_OID)
    );
    assert_eq!(
        cloud
            .vault
            .versions(patreport::credentials::DEFAULT_REFRESH_TOKEN_SECRET),
        2
    );
}

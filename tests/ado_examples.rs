//! Microsoft's verbatim API examples (tests/fixtures/ado, from the published OpenAPI specs)
//! read through the real client over HTTP, value by value.

use axum::Router;
use axum::http::header;
use axum::routing::get;
use patreport::ado::wire::GraphUser;
use patreport::ado::{AdoClient, AdoCredential, AdoSettings};
use patreport::secret::Secret;
use time::macros::datetime;

fn example_body(file: &str) -> String {
    let path = format!("{}/tests/fixtures/ado/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    let doc: serde_json::Value =
        serde_json::from_str(text.trim_start_matches('\u{feff}')).expect("fixture JSON");
    doc["responses"]["200"]["body"].to_string()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn client(base: &str) -> AdoClient {
    let settings = AdoSettings::new(
        base.parse().unwrap(),
        patreport::domain::OrgName::parse("fabrikam").unwrap(),
    );
    AdoClient::new(settings, AdoCredential::Pat(Secret::new("example-pat"))).unwrap()
}

#[tokio::test]
async fn graph_get_all_users_example_is_read_field_by_field() {
    let body = example_body("graph__7.1__Users__GetAllUsers.json");
    let base = serve(Router::new().route(
        "/fabrikam/_apis/graph/users",
        get(move || async move {
            (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body,
            )
        }),
    ))
    .await;
    let page = client(&base).users_page(None).await.unwrap();
    assert_eq!(
        page.continuation, None,
        "no X-MS-ContinuationToken header means last page"
    );
    assert!(page.without_descriptor.is_empty());
    let names: Vec<_> = page.users.iter().map(|u| u.display_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "TeamFoundationService (TEAM FOUNDATION)",
            "Jamal Hartnett",
            "Francis Totten",
            "Justin VSCSI AAD",
            "Project Collection Build Service (Fabrikam)"
        ]
    );
    let francis = &page.users[2];
    assert_eq!(francis.principal_name, "ftotten@vscsi.us");
    assert_eq!(francis.mail_address, "ftotten@vscsi.us");
    assert_eq!(francis.origin, "aad");
    assert_eq!(
        francis.descriptor,
        "aad.NjU5MDNmOTItNTNkYy03MWIzLWJiMGUtZTY5Y2ZhMWNiNzE5"
    );
    assert_eq!(page.users[0].origin, "vsts");
    assert!(page.users[4].descriptor.starts_with("svc."));
}

#[tokio::test]
async fn token_admin_example_is_read_field_by_field() {
    let body = example_body(
        "tokenAdmin__7.1__personalAccessTokens__GetPersonalAccessTokensForAUserInYourOrganization.json",
    );
    let base = serve(Router::new().route(
        "/fabrikam/_apis/tokenadmin/personalaccesstokens/{descriptor}",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
    ))
    .await;
    let page = client(&base)
        .pats_page("msa.MjcwYjYwYzMtZThiMy03MGU1LWFjZDYtYzM5Zjk3ZDZmYTRh", None)
        .await
        .unwrap();
    assert_eq!(
        page.continuation, None,
        "continuationToken null ends the listing"
    );
    let ids: Vec<_> = page
        .pats
        .iter()
        .map(|p| p.authorization_id.as_deref().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "952858d3-7084-4635-964e-3c2a57645185",
            "c2e0abd5-85a8-40b0-a179-88e98538ec7c",
            "e1bd9361-1120-4227-a258-da80545884b9"
        ]
    );
    let first = &page.pats[0];
    assert_eq!(first.display_name, None);
    assert_eq!(first.scope.as_deref(), Some("app_token"));
    assert_eq!(first.target_accounts, None);
    assert_eq!(first.valid_from, Some(datetime!(2018-07-19 0:00 UTC)));
    assert_eq!(first.valid_to, Some(datetime!(2018-07-19 0:00 UTC)));
    assert!(first.is_valid);
    assert_eq!(
        page.pats[1].scope.as_deref(),
        Some("vso.dashboards vso.taskgroups_manage")
    );
}

/// An SSH key entry is the same SessionToken shape as the example's, with `isPublic: true` and
/// the key in `publicData`; `token` is filled here to show it is never kept.
#[tokio::test]
async fn ssh_key_pages_are_asked_with_is_public_and_read_like_pat_pages() {
    use axum::extract::RawQuery;
    use std::sync::{Arc, Mutex};
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = asked.clone();
    let base = serve(Router::new().route(
        "/fabrikam/_apis/tokenadmin/personalaccesstokens/{descriptor}",
        get(move |RawQuery(query): RawQuery| {
            let query = query.unwrap_or_default();
            seen.lock().unwrap().push(query.clone());
            let next = if query.contains("continuationToken=") {
                "null"
            } else {
                "\"5f0b2a1c-0000-4000-8000-000000000001\""
            };
            let body = format!(
                r#"{{"value":[{{"clientId":"00000000-0000-0000-0000-000000000000",
                "accessId":"00000000-0000-0000-0000-000000000000",
                "authorizationId":"4a2b1c3d-0000-4000-8000-00000000000a",
                "hostAuthorizationId":"00000000-0000-0000-0000-000000000000",
                "userId":"bb5bb6c8-ef0a-400f-8987-92b3674d2043",
                "validFrom":"2025-07-19T00:00:00","validTo":"2026-07-19T10:20:30.5233333Z",
                "displayName":"laptop","scope":"app_token","targetAccounts":null,
                "token":"SIMULATED-SECRET-ssh","alternateToken":"SIMULATED-SECRET-ssh",
                "isValid":false,"isPublic":true,
                "publicData":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample laptop","source":null}}],
                "continuationToken":{next}}}"#
            );
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    ))
    .await;
    let client = client(&base);
    let descriptor = "msa.MjcwYjYwYzMtZThiMy03MGU1LWFjZDYtYzM5Zjk3ZDZmYTRh";
    let first = client.ssh_keys_page(descriptor, None).await.unwrap();
    assert_eq!(
        first.continuation.as_deref(),
        Some("5f0b2a1c-0000-4000-8000-000000000001")
    );
    let key = &first.keys[0];
    assert_eq!(
        key.authorization_id.as_deref(),
        Some("4a2b1c3d-0000-4000-8000-00000000000a")
    );
    assert_eq!(key.display_name.as_deref(), Some("laptop"));
    assert_eq!(key.scope.as_deref(), Some("app_token"));
    assert_eq!(key.valid_from, Some(datetime!(2025-07-19 0:00 UTC)));
    assert!(key.valid_to.is_some());
    assert!(!key.is_valid);
    assert!(!format!("{first:?}").contains("SIMULATED-SECRET"));
    let last = client
        .ssh_keys_page(descriptor, first.continuation.as_deref())
        .await
        .unwrap();
    assert_eq!(last.continuation, None);
    // The PAT listing of the same client still says isPublic=false.
    client.pats_page(descriptor, None).await.unwrap();
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3, "{asked:?}");
    for query in &asked[..2] {
        assert!(
            query.contains("isPublic=true") && query.contains("pageSize=20"),
            "{query}"
        );
    }
    assert!(asked[1].contains("continuationToken=5f0b2a1c-0000-4000-8000-000000000001"));
    assert!(asked[2].contains("isPublic=false"), "{}", asked[2]);
}

#[test]
fn graph_get_user_aad_example_parses() {
    let body = example_body("graph__7.1__Users__GetUserAAD.json");
    let user: GraphUser = serde_json::from_str(&body).unwrap();
    assert!(user.descriptor.unwrap().starts_with("aad."));
    assert_eq!(user.origin.as_deref(), Some("aad"));
    assert!(user.display_name.is_some() && user.principal_name.is_some());
}

//! End-to-end tests of the simulated Token Admin revocations over real HTTP: the request as
//! `azure_devops_rust_api` sends it, the checks, the effect on later listings, and the faults.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json as json_value};

use super::tests::{
    ORG, SSH_KEYS, basic, client, get, header, heavy_user, json, list_entries, org, parse,
    pats_path, start,
};
use super::*;

/// The query `azure_devops_rust_api` 0.39 sends.
const RS_VERSION: &str = "api-version=7.1-preview";

fn body_of(ids: &[&str]) -> String {
    let entries: Vec<Value> = ids
        .iter()
        .map(|id| json_value!({ "authorizationId": id }))
        .collect();
    Value::Array(entries).to_string()
}

/// `n` distinct GUIDs that belong to no token of any generated org.
fn unknown_ids(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{i:08x}-0000-4000-8000-00000000abcd"))
        .collect()
}

/// POSTs `body` to `{base}/{path}` with the demo PAT and the headers official clients send;
/// `headers` replace those of the same name.
async fn post_to(
    server: &SimServer,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let pat = basic(DEMO_PAT);
    let defaults = [
        ("authorization", pat.as_str()),
        ("content-type", "application/json"),
        ("x-tfs-fedauthredirect", "Suppress"),
    ];
    let mut request = client().post(format!("{}/{path}", server.base_url()));
    for (name, value) in defaults
        .iter()
        .filter(|(name, _)| !headers.iter().any(|(n, _)| n == name))
        .chain(headers)
    {
        request = request.header(*name, *value);
    }
    request.body(body.to_string()).send().await.expect("post")
}

/// A revocation as the client sends it; `extra` is more query (`&isPublic=true`).
async fn revoke(server: &SimServer, ids: &[&str], extra: &str) -> reqwest::Response {
    let path = format!("{ORG}/_apis/tokenadmin/revocations?{RS_VERSION}{extra}");
    post_to(server, &path, &body_of(ids), &[]).await
}

/// Authorization id → `isValid` as one user's listing (PATs, or `SSH_KEYS`) shows them now.
async fn validity(server: &SimServer, descriptor: &str, listing: &str) -> BTreeMap<String, bool> {
    let (_, bodies) = list_entries(server, descriptor, Some(100), listing).await;
    let mut seen = BTreeMap::new();
    for body in bodies {
        let page = parse(body.as_bytes()).expect("page");
        for entry in page["value"].as_array().expect("value") {
            let id = entry["authorizationId"].as_str().expect("id").to_string();
            seen.insert(id, entry["isValid"].as_bool().expect("isValid"));
        }
    }
    seen
}

fn expect_204(response: &reqwest::Response) {
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(header(response, "content-type").is_none());
}

async fn expect_argument_400(response: reqwest::Response, fragment: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json(response).await;
    assert_eq!(body["$id"], "1");
    assert_eq!(body["typeKey"], "ArgumentException");
    assert_eq!(body["eventId"], 3000);
    let message = body["message"].as_str().expect("message");
    assert!(message.contains(fragment), "{message}");
}

#[tokio::test]
async fn revoked_pats_show_invalid_in_later_listings_and_nothing_else_changes() {
    let mut config = SimConfig::strict();
    // A BOM must not turn up in a 204.
    config.faults.bom = true;
    let server = start(60, config).await;
    let heavy = heavy_user(&server);
    let before = validity(&server, &heavy.descriptor, "").await;
    let chosen: Vec<&str> = heavy
        .pats
        .iter()
        .filter(|p| p.is_valid)
        .step_by(7)
        .map(|p| p.authorization_id.as_str())
        .collect();
    assert!(chosen.len() >= 3, "{chosen:?}");
    let response = revoke(&server, &chosen, "").await;
    expect_204(&response);
    assert!(response.bytes().await.expect("body").is_empty());

    let after = validity(&server, &heavy.descriptor, "").await;
    assert_eq!(after.len(), before.len());
    for (id, valid) in &after {
        let revoked = chosen.contains(&id.as_str());
        assert_eq!(*valid, before[id] && !revoked, "{id}");
    }
    // The user's SSH keys are untouched.
    let keys = validity(&server, &heavy.descriptor, SSH_KEYS).await;
    for key in &heavy.ssh_keys {
        assert_eq!(keys[&key.authorization_id], key.is_valid);
    }
    let stats = server.stats();
    assert_eq!(stats.revocation_requests, 1);
    assert_eq!(stats.tokens_revoked, chosen.len() as u64);

    // Again, with an upper-case id: harmless, nothing newly revoked.
    let upper = chosen[0].to_ascii_uppercase();
    expect_204(&revoke(&server, &[upper.as_str()], "").await);
    assert_eq!(
        validity(&server, &heavy.descriptor, "").await,
        after,
        "a second revocation changes nothing"
    );
    assert_eq!(server.stats().tokens_revoked, chosen.len() as u64);
    let sent: Vec<String> = chosen.iter().map(|s| s.to_string()).collect();
    assert_eq!(server.revocations(), [sent, vec![upper]]);
    // The org stays as generated, for comparisons.
    assert_eq!(heavy_user(&server).pats[0].is_valid, heavy.pats[0].is_valid);
    assert!(
        heavy_user(&server)
            .pats
            .iter()
            .any(|p| p.authorization_id == chosen[0] && p.is_valid)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn is_public_true_revokes_ssh_keys_and_only_them() {
    let server = start(40, SimConfig::strict()).await;
    let heavy = heavy_user(&server);
    let key = heavy
        .ssh_keys
        .iter()
        .find(|k| k.is_valid)
        .expect("a valid key");
    let pat = heavy.pats.iter().find(|p| p.is_valid).expect("a valid PAT");
    // Each kind of id sent to the other kind's revocation is unknown there: no effect.
    expect_204(&revoke(&server, &[&key.authorization_id], "&isPublic=false").await);
    expect_204(&revoke(&server, &[&pat.authorization_id], "&isPublic=TRUE").await);
    assert!(validity(&server, &heavy.descriptor, SSH_KEYS).await[&key.authorization_id]);
    assert!(validity(&server, &heavy.descriptor, "").await[&pat.authorization_id]);
    assert_eq!(server.stats().tokens_revoked, 0);

    expect_204(&revoke(&server, &[&key.authorization_id], SSH_KEYS).await);
    let keys = validity(&server, &heavy.descriptor, SSH_KEYS).await;
    assert!(!keys[&key.authorization_id]);
    assert_eq!(keys.values().filter(|v| !**v).count(), {
        let generated = heavy.ssh_keys.iter().filter(|k| !k.is_valid).count();
        generated + 1
    });
    assert_eq!(server.stats().tokens_revoked, 1);
    expect_argument_400(
        revoke(&server, &[&key.authorization_id], "&isPublic=yes").await,
        "isPublic",
    )
    .await;
    assert_eq!(server.revocations().len(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_batch_of_990_is_accepted_and_991_is_refused() {
    let server = start(5, SimConfig::strict()).await;
    let ids = unknown_ids(991);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    expect_argument_400(revoke(&server, &ids, "").await, "Too many revocations").await;
    assert!(server.revocations().is_empty());
    expect_204(&revoke(&server, &ids[..990], "").await);
    assert_eq!(server.revocations()[0].len(), 990);

    let mut config = SimConfig::strict();
    config.revocation_batch_limit = 2;
    let small = start(5, config).await;
    expect_argument_400(revoke(&small, &ids[..3], "").await, "at most 2").await;
    expect_204(&revoke(&small, &ids[..2], "").await);
    server.shutdown().await;
    small.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_are_refused_without_effect() {
    let server = start(20, SimConfig::strict()).await;
    let path = format!("{ORG}/_apis/tokenadmin/revocations?{RS_VERSION}");
    let cases = [
        ("", "JSON array"),
        ("not json", "JSON array"),
        (
            r#"{"authorizationId":"532c7fe6-74f8-408b-8051-4abb73dca491"}"#,
            "JSON array",
        ),
        ("[]", "empty"),
        ("[null]", "JSON array"),
        ("[{}]", "authorizationId"),
        (r#"[{"authorizationId":""}]"#, "authorizationId"),
        (r#"[{"authorizationId":"pat-1"}]"#, "authorizationId"),
        (r#"[{"authorizationId":42}]"#, "authorizationId"),
        (
            r#"[{"authorizationId":"00000000-0000-0000-0000-000000000000"}]"#,
            "authorizationId",
        ),
    ];
    for (body, fragment) in cases {
        let response = post_to(&server, &path, body, &[]).await;
        expect_argument_400(response, fragment).await;
    }
    // One bad entry spoils the batch: the good one is not applied either.
    let pat = heavy_user(&server).pats[0].authorization_id.clone();
    let mixed = format!(r#"[{{"authorizationId":"{pat}"}},{{"authorizationId":"x"}}]"#);
    expect_argument_400(post_to(&server, &path, &mixed, &[]).await, "Revocation 1").await;
    // A body not declared JSON is not read at all.
    let response = post_to(
        &server,
        &path,
        &body_of(&[&pat]),
        &[("content-type", "text/plain")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        json(response).await["typeKey"],
        "UnsupportedMediaTypeException"
    );
    assert!(server.revocations().is_empty());
    let stats = server.stats();
    assert_eq!((stats.tokens_revoked, stats.bad_requests), (0, 12));
    server.shutdown().await;
}

#[tokio::test]
async fn api_version_rules_are_the_listings_and_other_methods_get_405() {
    let server = start(5, SimConfig::strict()).await;
    let id = unknown_ids(1);
    let body = body_of(&[&id[0]]);
    let path = |query: &str| format!("{ORG}/_apis/tokenadmin/revocations{query}");
    for version in [
        "7.1",
        "7.1-preview",
        "7.1-preview.1",
        "7.0",
        "5.0-preview.1",
    ] {
        let response = post_to(
            &server,
            &path(&format!("?api-version={version}")),
            &body,
            &[],
        )
        .await;
        expect_204(&response);
    }
    let response = post_to(
        &server,
        &path(""),
        &body,
        &[("accept", "application/json;api-version=7.1")],
    )
    .await;
    expect_204(&response);
    for (query, type_key) in [
        ("", "VssVersionNotSpecifiedException"),
        ("?api-version=7.2", "VssInvalidPreviewVersionException"),
        (
            "?api-version=7.1-preview.2",
            "VssVersionOutOfRangeException",
        ),
        ("?api-version=9.0", "VssVersionOutOfRangeException"),
    ] {
        let response = post_to(&server, &path(query), &body, &[]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let error = json(response).await;
        assert_eq!(error["typeKey"], type_key, "{query}");
        if query.is_empty() {
            assert!(
                error["message"]
                    .as_str()
                    .expect("message")
                    .contains("\"POST\"")
            );
        }
    }
    let response = get(&server, &path("?api-version=7.1")).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&response, "allow"), Some("POST"));
    let listing = pats_path(&first_user(&server), "");
    let response = post_to(&server, &listing, &body, &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&response, "allow"), Some("GET"));
    assert_eq!(server.revocations().len(), 6);
    server.shutdown().await;
}

fn first_user(server: &SimServer) -> String {
    server
        .org()
        .human_users()
        .next()
        .expect("a user")
        .descriptor
        .clone()
}

#[tokio::test]
async fn a_failing_ordinal_gets_500_without_effect_and_the_retry_works() {
    let mut config = SimConfig::strict();
    config.faults.failing_revocation_requests = [1].into();
    let server = start(40, config).await;
    let heavy = heavy_user(&server);
    let pat = heavy.pats.iter().find(|p| p.is_valid).expect("a valid PAT");
    let ids = [pat.authorization_id.as_str()];

    // Refused credentials are not counted as ordinals.
    let path = format!("{ORG}/_apis/tokenadmin/revocations?{RS_VERSION}");
    let response = post_to(
        &server,
        &path,
        &body_of(&ids),
        &[("authorization", "Basic eDp5")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(response).await["typeKey"],
        "UnauthorizedRequestException"
    );

    let response = revoke(&server, &ids, "").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = json(response).await;
    assert_eq!(body["typeKey"], "TeamFoundationServiceException");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("TF400898")
    );
    assert!(validity(&server, &heavy.descriptor, "").await[&pat.authorization_id]);
    assert!(server.revocations().is_empty());

    expect_204(&revoke(&server, &ids, "").await);
    assert!(!validity(&server, &heavy.descriptor, "").await[&pat.authorization_id]);
    assert_eq!(server.revocations(), [vec![pat.authorization_id.clone()]]);
    let stats = server.stats();
    assert_eq!(stats.revocation_requests, 3);
    assert_eq!(stats.auth_failures, 1);
    assert_eq!(stats.server_errors_500, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_throttled_ordinal_gets_429_with_retry_after_and_no_effect() {
    let mut config = SimConfig::strict();
    config.faults.throttled_revocation_requests = [2].into();
    let server = start(40, config).await;
    let heavy = heavy_user(&server);
    let valid: Vec<&str> = heavy
        .pats
        .iter()
        .filter(|p| p.is_valid)
        .map(|p| p.authorization_id.as_str())
        .take(2)
        .collect();
    expect_204(&revoke(&server, &valid[..1], "").await);
    let response = revoke(&server, &valid[1..], "").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "retry-after"), Some("1"));
    let body = json(response).await;
    assert_eq!(body["typeKey"], "RequestBlockedException");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("TF400733")
    );
    assert!(validity(&server, &heavy.descriptor, "").await[valid[1]]);
    expect_204(&revoke(&server, &valid[1..], "").await);
    assert!(!validity(&server, &heavy.descriptor, "").await[valid[1]]);
    assert_eq!(server.revocations().len(), 2);
    assert_eq!(server.stats().throttled_429, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_org_and_non_admin_callers_are_refused_as_for_the_listing() {
    let mut config = SimConfig::strict();
    config.auth.token_admin = false;
    let server = start(5, config).await;
    let id = unknown_ids(1);
    let body = body_of(&[&id[0]]);
    let listing = get(
        &server,
        "Contoso/_apis/tokenadmin/personalaccesstokens/aad.x?api-version=7.1",
    )
    .await;
    let path = format!("Contoso/_apis/tokenadmin/revocations?{RS_VERSION}");
    let revocation = post_to(&server, &path, &body, &[]).await;
    assert_eq!(listing.status(), StatusCode::NOT_FOUND);
    assert_eq!(revocation.status(), listing.status());
    assert_eq!(json(revocation).await, json(listing).await);

    let path = format!("{ORG}/_apis/tokenadmin/revocations?{RS_VERSION}");
    let response = post_to(&server, &path, &body, &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        json(response).await["message"]
            .as_str()
            .expect("message")
            .contains("token administration")
    );
    assert!(server.revocations().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn the_spec_example_request_is_accepted() {
    let path = format!(
        "{}/tests/fixtures/ado/tokenAdmin__7.1__revocations__RevokeAuthorizations.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("example");
    let example: Value =
        serde_json::from_str(text.trim_start_matches('\u{feff}')).expect("example JSON");
    let sent = &example["parameters"]["body"];
    let ids: Vec<String> = sent
        .as_array()
        .expect("body array")
        .iter()
        .map(|e| e["authorizationId"].as_str().expect("id").to_string())
        .collect();
    // Two of the example's ids belong to a PAT of the served org.
    let mut generated = org(40);
    let owner = generated
        .users
        .iter_mut()
        .find(|u| u.pats.iter().filter(|p| p.is_valid).count() >= 2)
        .expect("a user with two valid PATs");
    let descriptor = owner.descriptor.clone();
    let mut planted = Vec::new();
    for (pat, id) in owner.pats.iter_mut().filter(|p| p.is_valid).zip(&ids[3..5]) {
        pat.authorization_id = id.clone();
        planted.push(id.clone());
    }
    let server = SimServer::start(generated, SimConfig::strict())
        .await
        .expect("server starts");
    // The example's URL (path case included) and api-version.
    let url = example["x-ms-vss-request-url"].as_str().expect("url");
    let resource = url
        .strip_prefix("https://vssps.dev.azure.com/")
        .expect("vssps url");
    let version = example["parameters"]["api-version"]
        .as_str()
        .expect("version");
    let response = post_to(
        &server,
        &format!("{resource}?api-version={version}"),
        &sent.to_string(),
        &[],
    )
    .await;
    let expected = example["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .next()
        .expect("one response")
        .parse::<u16>()
        .expect("status");
    assert_eq!(response.status().as_u16(), expected);
    let listed = validity(&server, &descriptor, "").await;
    for id in &planted {
        assert!(!listed[id], "{id}");
    }
    assert_eq!(server.revocations(), [ids]);
    assert_eq!(server.stats().tokens_revoked, 2);
    server.shutdown().await;
}

//! End-to-end tests of the simulator over real HTTP on a loopback port.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);
pub(super) const ORG: &str = "Fabrikam";
const GRAPH: &str = "_apis/graph/users?api-version=7.1-preview.1";

pub(super) fn org(users: usize) -> SimOrg {
    SimOrg::generate(ORG, &OrgSpec::with_users(users), NOW)
}

pub(super) async fn start(users: usize, config: SimConfig) -> SimServer {
    SimServer::start(org(users), config)
        .await
        .expect("server starts")
}

thread_local! {
    // One client per test (each test runs on its own thread with its own runtime). Never
    // follow redirects: a 302 to the sign-in page is the answer under test.
    static CLIENT: reqwest::Client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
}

pub(super) fn client() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

pub(super) fn basic(pat: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!(":{pat}")))
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// GET `{base}/{path}` with the demo PAT and the headers official clients send.
pub(super) async fn get(server: &SimServer, path: &str) -> reqwest::Response {
    get_with(server, path, &[("authorization", &basic(DEMO_PAT))]).await
}

async fn get_with(server: &SimServer, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().get(format!("{}/{path}", server.base_url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

pub(super) fn pats_path(descriptor: &str, extra: &str) -> String {
    format!("{ORG}/_apis/tokenadmin/personalaccesstokens/{descriptor}?api-version=7.1{extra}")
}

/// Parses a JSON body the way a lenient client must: without a leading BOM.
pub(super) fn parse(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).ok()
}

pub(super) async fn json(response: reqwest::Response) -> Value {
    parse(&response.bytes().await.expect("body")).expect("JSON body")
}

pub(super) fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Lists every Graph user page; returns descriptors per page and whether each page had a token.
async fn graph_pages(server: &SimServer, filter: &str) -> Vec<(Vec<String>, bool)> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("{ORG}/{GRAPH}{filter}");
        if let Some(t) = &token {
            path.push_str(&format!("&continuationToken={}", encode(t)));
        }
        let response = get(server, &path).await;
        assert_eq!(response.status(), StatusCode::OK);
        token = header(&response, "x-ms-continuationtoken").map(str::to_string);
        let body = json(response).await;
        let value = body["value"].as_array().expect("value");
        assert_eq!(body["count"].as_u64(), Some(value.len() as u64));
        let descriptors = value
            .iter()
            .map(|u| u["descriptor"].as_str().expect("descriptor").to_string())
            .collect();
        pages.push((descriptors, token.is_some()));
        if token.is_none() {
            return pages;
        }
        assert!(pages.len() < 1000, "paging does not end");
    }
}

/// Lists all PATs of one user with retries on 429/5xx/malformed bodies, as a sound client
/// would. Returns authorization ids and the raw bodies.
async fn list_pats(
    server: &SimServer,
    descriptor: &str,
    page_size: Option<u32>,
) -> (Vec<String>, Vec<String>) {
    list_entries(server, descriptor, page_size, "").await
}

/// The query part that asks the Token Admin listing for SSH keys.
pub(super) const SSH_KEYS: &str = "&isPublic=true";

/// One Token Admin listing, as [`list_pats`]; `listing` is the query's `isPublic` part, if any.
pub(super) async fn list_entries(
    server: &SimServer,
    descriptor: &str,
    page_size: Option<u32>,
    listing: &str,
) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    let mut token: Option<String> = None;
    let size = page_size
        .map(|s| format!("&pageSize={s}"))
        .unwrap_or_default();
    loop {
        let continuation = token
            .as_deref()
            .map(|t| format!("&continuationToken={}", encode(t)))
            .unwrap_or_default();
        let path = pats_path(descriptor, &format!("{size}{listing}{continuation}"));
        let mut attempts = 0;
        let body = loop {
            attempts += 1;
            assert!(attempts <= 10, "no success after 10 attempts for {path}");
            let response = get(server, &path).await;
            let status = response.status();
            let bytes = response.bytes().await.expect("body");
            if status == StatusCode::OK
                && let Some(v) = parse(&bytes)
            {
                bodies.push(String::from_utf8_lossy(&bytes).into_owned());
                break v;
            }
            assert!(
                status == StatusCode::OK
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error(),
                "unexpected {status}"
            );
        };
        for pat in body["value"].as_array().expect("value") {
            ids.push(pat["authorizationId"].as_str().expect("id").to_string());
        }
        token = match body.get("continuationToken") {
            Some(Value::String(t))
                if !t.is_empty() && t != "00000000-0000-0000-0000-000000000000" =>
            {
                Some(t.clone())
            }
            _ => None,
        };
        if token.is_none() {
            return (ids, bodies);
        }
    }
}

/// The generated user with 45 PATs: more than two pages at the default page size of 20.
pub(super) fn heavy_user(server: &SimServer) -> SimUser {
    server
        .org()
        .human_users()
        .find(|u| u.pats.len() == 45)
        .expect("the generated heavy user")
        .clone()
}

#[tokio::test]
async fn graph_users_pages_cover_every_user_exactly_once() {
    let server = start(1_250, SimConfig::strict()).await;
    let pages = graph_pages(&server, "").await;
    let sizes: Vec<usize> = pages.iter().map(|(p, _)| p.len()).collect();
    let total = server.org().users.len();
    assert_eq!(sizes, [500, 495, 33, 0, total - 1028]);
    // The empty page still carries a token; only the last page has none.
    let tokens: Vec<bool> = pages.iter().map(|(_, t)| *t).collect();
    assert_eq!(tokens, [true, true, true, true, false]);
    let listed: Vec<&String> = pages.iter().flat_map(|(p, _)| p).collect();
    let unique: HashSet<&String> = listed.iter().copied().collect();
    assert_eq!(listed.len(), total);
    assert_eq!(unique.len(), total);
    for user in &server.org().users {
        assert!(unique.contains(&user.descriptor));
    }
    assert_eq!(server.stats().user_pages, 5);
    server.shutdown().await;
}

#[tokio::test]
async fn subject_types_filter_excludes_service_identities() {
    let server = start(300, SimConfig::strict()).await;
    let pages = graph_pages(&server, "&subjectTypes=aad,msa").await;
    let listed: Vec<&String> = pages.iter().flat_map(|(p, _)| p).collect();
    assert_eq!(listed.len(), server.org().human_users().count());
    assert!(
        listed
            .iter()
            .all(|d| d.starts_with("aad.") || d.starts_with("msa."))
    );
    let all = graph_pages(&server, "").await;
    let services = all
        .iter()
        .flat_map(|(p, _)| p)
        .filter(|d| d.starts_with("svc.") || d.starts_with("acs."))
        .count();
    assert_eq!(services, 8);
    server.shutdown().await;
}

#[tokio::test]
async fn graph_user_json_has_the_example_shape() {
    let server = start(20, SimConfig::strict()).await;
    // Path case as in the spec example.
    let body = json(
        get(
            &server,
            "fabrikam/_apis/Graph/Users?api-version=7.1-preview",
        )
        .await,
    )
    .await;
    let users = body["value"].as_array().expect("value");
    let human = users
        .iter()
        .find(|u| u["origin"] == "aad")
        .expect("an aad user");
    let keys: Vec<&str> = human
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "subjectKind",
        "metaType",
        "domain",
        "principalName",
        "mailAddress",
        "origin",
        "originId",
        "displayName",
        "_links",
        "url",
        "descriptor",
    ];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(human["subjectKind"], "user");
    let links: Vec<&str> = human["_links"]
        .as_object()
        .expect("links")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(links.len(), 5);
    let service = users
        .iter()
        .find(|u| u["domain"] == "Build")
        .expect("build service");
    assert_eq!(service["origin"], "vsts");
    assert!(service.get("metaType").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn missing_api_version_is_400() {
    let server = start(10, SimConfig::strict()).await;
    let response = get(&server, &format!("{ORG}/_apis/graph/users")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json(response).await;
    assert_eq!(body["typeKey"], "VssVersionNotSpecifiedException");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("api-version")
    );

    let descriptor = server
        .org()
        .human_users()
        .next()
        .expect("user")
        .descriptor
        .clone();
    let path = format!("{ORG}/_apis/tokenadmin/personalaccesstokens/{descriptor}");
    let response = get(&server, &path).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The Accept header is an accepted place for it.
    let accept = "application/json;api-version=7.1";
    let response = get_with(
        &server,
        &path,
        &[("authorization", &basic(DEMO_PAT)), ("accept", accept)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        Some("application/json; charset=utf-8; api-version=7.1")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn released_version_of_preview_graph_api_is_400() {
    let server = start(10, SimConfig::strict()).await;
    let response = get(&server, &format!("{ORG}/_apis/graph/users?api-version=7.1")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json(response).await["typeKey"],
        "VssInvalidPreviewVersionException"
    );
    let response = get(
        &server,
        &format!("{ORG}/_apis/graph/users?api-version=99.0-preview.1"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    server.shutdown().await;
}

#[tokio::test]
async fn garbled_or_unencoded_graph_token_is_400() {
    let server = start(600, SimConfig::strict()).await;
    let first = get(&server, &format!("{ORG}/{GRAPH}")).await;
    let token = header(&first, "x-ms-continuationtoken")
        .expect("token")
        .to_string();
    // Pasted raw, `+` arrives as a space.
    let raw = get(&server, &format!("{ORG}/{GRAPH}&continuationToken={token}")).await;
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let garbled = get(
        &server,
        &format!("{ORG}/{GRAPH}&continuationToken=bm90LWEtdG9rZW4"),
    )
    .await;
    assert_eq!(garbled.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(garbled).await["typeKey"], "ArgumentException");
    // A token is only good for the filter it was issued with.
    let other = format!(
        "{ORG}/{GRAPH}&subjectTypes=aad&continuationToken={}",
        encode(&token)
    );
    assert_eq!(get(&server, &other).await.status(), StatusCode::BAD_REQUEST);
    let good = get(
        &server,
        &format!("{ORG}/{GRAPH}&continuationToken={}", encode(&token)),
    )
    .await;
    assert_eq!(good.status(), StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn heavy_user_pats_span_three_pages_with_body_tokens() {
    let server = start(40, SimConfig::strict()).await;
    let heavy = heavy_user(&server);
    let (ids, bodies) = list_pats(&server, &heavy.descriptor, None).await;
    assert_eq!(bodies.len(), 3, "20 + 20 + 5");
    let expected: Vec<&String> = heavy.pats.iter().map(|p| &p.authorization_id).collect();
    assert_eq!(ids.iter().collect::<Vec<_>>(), expected);
    let first = parse(bodies[0].as_bytes()).expect("json");
    let token = first["continuationToken"].as_str().expect("token");
    assert_eq!(token.len(), 36, "a GUID: {token}");
    // Case-insensitive path as in the spec example, and the page size honoured.
    let path = format!(
        "{ORG}/_apis/TokenAdmin/PersonalAccessTokens/{}?pageSize=45&api-version=5.0-preview.1",
        heavy.descriptor
    );
    let body = json(get(&server, &path).await).await;
    assert_eq!(body["value"].as_array().map(Vec::len), Some(45));
    server.shutdown().await;
}

#[tokio::test]
async fn last_pages_rotate_all_four_end_markers() {
    let server = start(12, SimConfig::strict()).await;
    let descriptors: Vec<String> = server
        .org()
        .users
        .iter()
        .map(|u| u.descriptor.clone())
        .collect();
    let mut endings = HashSet::new();
    for descriptor in &descriptors {
        let (_, bodies) = list_pats(&server, descriptor, Some(100)).await;
        let last = bodies.last().expect("a page");
        let ending = match parse(last.as_bytes())
            .expect("json")
            .get("continuationToken")
        {
            None => "missing".to_string(),
            Some(Value::Null) => "null".to_string(),
            Some(Value::String(s)) => format!("string:{s}"),
            Some(other) => panic!("unexpected {other}"),
        };
        endings.insert(ending);
    }
    let expected: HashSet<String> = [
        "missing",
        "null",
        "string:",
        "string:00000000-0000-0000-0000-000000000000",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(endings, expected);
    server.shutdown().await;
}

#[tokio::test]
async fn session_token_json_matches_the_example_and_the_service_datetime_forms() {
    let server = start(40, SimConfig::strict()).await;
    let heavy = heavy_user(&server);
    let raw = get(&server, &pats_path(&heavy.descriptor, "&pageSize=45"))
        .await
        .text()
        .await
        .expect("text");
    let body = parse(raw.as_bytes()).expect("json");
    let first = &body["value"][0];
    let keys: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "clientId",
        "accessId",
        "authorizationId",
        "hostAuthorizationId",
        "userId",
        "validFrom",
        "validTo",
        "displayName",
        "scope",
        "targetAccounts",
        "token",
        "alternateToken",
        "isValid",
        "isPublic",
        "publicData",
        "source",
    ];
    expected.sort_unstable();
    let mut sorted = keys;
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    assert!(
        first["displayName"].is_null(),
        "first PAT of the heavy user has no name"
    );
    assert_eq!(body["value"][1]["validFrom"], "0001-01-01T00:00:00");
    assert!(raw.contains(SECRET_MARKER), "a fake secret is sent");
    let dates: Vec<&str> = body["value"]
        .as_array()
        .expect("value")
        .iter()
        .flat_map(|p| [p["validFrom"].as_str(), p["validTo"].as_str()])
        .flatten()
        .collect();
    let seven_digits = |d: &&str| {
        d.split_once('.')
            .is_some_and(|(_, f)| f.trim_end_matches('Z').len() == 7)
    };
    assert!(
        dates.iter().any(|d| d.len() == 19),
        "whole seconds, no offset"
    );
    assert!(dates.iter().any(|d| seven_digits(d) && d.ends_with('Z')));
    assert!(dates.iter().any(|d| seven_digits(d) && !d.ends_with('Z')));
    server.shutdown().await;
}

#[tokio::test]
async fn pat_page_size_above_cap_is_400() {
    let server = start(5, SimConfig::strict()).await;
    let d = server
        .org()
        .human_users()
        .next()
        .expect("user")
        .descriptor
        .clone();
    for bad in ["101", "0", "-1", "twenty"] {
        let response = get(&server, &pats_path(&d, &format!("&pageSize={bad}"))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "pageSize={bad}");
        assert!(
            json(response).await["message"]
                .as_str()
                .expect("message")
                .contains("pageSize")
        );
    }
    assert_eq!(
        get(&server, &pats_path(&d, "&pageSize=100")).await.status(),
        StatusCode::OK
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pat_listing_refuses_bad_descriptors_and_tokens() {
    let server = start(40, SimConfig::strict()).await;
    let unknown = format!(
        "aad.{}",
        STANDARD
            .encode("11111111-2222-3333-4444-555555555555")
            .trim_end_matches('=')
    );
    let response = get(&server, &pats_path(&unknown, "")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json(response).await["typeKey"],
        "GraphSubjectNotFoundException"
    );
    assert_eq!(
        get(&server, &pats_path("not-a-descriptor", ""))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );

    let heavy = heavy_user(&server);
    let other = server
        .org()
        .human_users()
        .find(|u| u.descriptor != heavy.descriptor)
        .expect("other")
        .clone();
    let body = json(get(&server, &pats_path(&heavy.descriptor, "")).await).await;
    let token = body["continuationToken"]
        .as_str()
        .expect("token")
        .to_string();
    let foreign = get(
        &server,
        &pats_path(&other.descriptor, &format!("&continuationToken={token}")),
    )
    .await;
    assert_eq!(
        foreign.status(),
        StatusCode::BAD_REQUEST,
        "token of another user"
    );
    for bad in [
        "00000000-0000-0000-0000-000000000000",
        "garbage",
        "11111111-2222-4333-8444-555555555555",
    ] {
        let response = get(
            &server,
            &pats_path(&heavy.descriptor, &format!("&continuationToken={bad}")),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn ssh_keys_are_listed_with_is_public_under_the_same_paging_rules() {
    let server = start(40, SimConfig::strict()).await;
    let heavy = heavy_user(&server);
    assert_eq!(heavy.ssh_keys.len(), 25);
    let (ids, bodies) = list_entries(&server, &heavy.descriptor, None, SSH_KEYS).await;
    assert_eq!(bodies.len(), 2, "20 + 5");
    let expected: Vec<&String> = heavy.ssh_keys.iter().map(|k| &k.authorization_id).collect();
    assert_eq!(ids.iter().collect::<Vec<_>>(), expected);
    let first = parse(bodies[0].as_bytes()).expect("json");
    let entry = &first["value"][0];
    assert_eq!(entry["isPublic"], true);
    assert!(entry["displayName"].is_null(), "the first key has no name");
    assert!(
        entry["publicData"]
            .as_str()
            .is_some_and(|d| d.starts_with("ssh-ed25519 "))
    );
    assert!(entry["targetAccounts"].is_null());
    // The PATs of the same user are untouched by the other listing.
    let (pat_ids, _) = list_pats(&server, &heavy.descriptor, None).await;
    assert_eq!(pat_ids.len(), heavy.pats.len());
    let stats = server.stats();
    assert_eq!((stats.ssh_key_requests, stats.ssh_key_pages), (2, 2));
    assert_eq!(stats.ssh_keys_served, 25);
    assert_eq!((stats.pat_requests, stats.pats_served), (3, 45));
    // A user without keys gets an empty page that ends the listing.
    let keyless = server
        .org()
        .human_users()
        .find(|u| u.ssh_keys.is_empty())
        .cloned()
        .expect("a user without SSH keys");
    let (none, bodies) = list_entries(&server, &keyless.descriptor, None, SSH_KEYS).await;
    assert!(none.is_empty() && bodies.len() == 1);
    server.shutdown().await;
}

#[tokio::test]
async fn continuation_tokens_cannot_cross_between_pats_and_ssh_keys() {
    let server = start(40, SimConfig::strict()).await;
    let heavy = heavy_user(&server);
    let token = |extra: &'static str| {
        let path = pats_path(&heavy.descriptor, extra);
        let server = &server;
        async move {
            json(get(server, &path).await).await["continuationToken"]
                .as_str()
                .expect("a next page")
                .to_string()
        }
    };
    let pat_token = token("").await;
    let ssh_token = token("&isPublic=true").await;
    let crossed = [
        (
            format!("&isPublic=true&continuationToken={pat_token}"),
            "PAT token on SSH keys",
        ),
        (
            format!("&continuationToken={ssh_token}"),
            "SSH token on PATs",
        ),
        (
            format!("&isPublic=false&continuationToken={ssh_token}"),
            "SSH token on isPublic=false",
        ),
    ];
    for (query, what) in crossed {
        let response = get(&server, &pats_path(&heavy.descriptor, &query)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        let body = json(response).await;
        assert_eq!(body["typeKey"], "ArgumentException", "{what}");
        assert_eq!(
            body["message"],
            "The continuation token is not valid for this subject descriptor.\r\n\
             Parameter name: continuationToken",
            "{what}: the text of any other refused token"
        );
    }
    // Each token still works on its own listing.
    for query in [
        format!("&isPublic=true&continuationToken={ssh_token}"),
        format!("&continuationToken={pat_token}"),
    ] {
        let response = get(&server, &pats_path(&heavy.descriptor, &query)).await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn ssh_key_listings_meet_the_faults_and_a_failing_one_fails_alone() {
    let users = org(40);
    let heavy = users
        .human_users()
        .find(|u| u.ssh_keys.len() == 25)
        .expect("heavy")
        .descriptor
        .clone();
    let mut config = SimConfig::strict();
    config.faults.failing_ssh_descriptors.insert(heavy.clone());
    config.faults.malformed_json = BTreeMap::from([(heavy.clone(), Persistence::Always)]);
    let server = SimServer::start(users, config).await.expect("server");
    let ssh = get(&server, &pats_path(&heavy, "&isPublic=true")).await;
    assert_eq!(ssh.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let pats = get(&server, &pats_path(&heavy, "")).await;
    assert_eq!(pats.status(), StatusCode::OK, "only the SSH listing fails");
    assert!(
        parse(&pats.bytes().await.expect("body")).is_none(),
        "but the PAT page meets the descriptor's other faults"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_org_route_and_method_get_json_errors() {
    let server = start(5, SimConfig::strict()).await;
    let response = get(&server, &format!("Contoso/{GRAPH}")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = json(response).await;
    assert_eq!(body["$id"], "1");
    assert_eq!(body["eventId"], 3000);
    assert_eq!(body["typeKey"], "HostDoesNotExistException");

    let response = get(
        &server,
        &format!("{ORG}/_apis/graph/groups?api-version=7.1-preview.1"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(json(response).await["message"].is_string());

    let response = client()
        .post(format!("{}/{ORG}/{GRAPH}", server.base_url()))
        .header("authorization", basic(DEMO_PAT))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&response, "allow"), Some("GET"));
    let stats = server.stats();
    assert_eq!((stats.not_found, stats.method_not_allowed), (2, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_basic_password_without_suppress_header_redirects_to_signin() {
    let server = start(5, SimConfig::strict()).await;
    let path = format!("{ORG}/{GRAPH}");
    let response = get_with(&server, &path, &[("authorization", &basic("wrong"))]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(
        header(&response, "location")
            .expect("location")
            .starts_with("/_signin?realm=")
    );
    assert!(
        header(&response, "content-type")
            .expect("type")
            .starts_with("text/html")
    );
    // Following the redirect lands on an HTML page with 200: still not JSON.
    let sign_in = get_with(&server, "_signin?realm=x", &[]).await;
    assert_eq!(sign_in.status(), StatusCode::OK);
    assert!(
        header(&sign_in, "content-type")
            .expect("type")
            .starts_with("text/html")
    );
    // No credentials at all: the same.
    assert_eq!(
        get_with(&server, &path, &[]).await.status(),
        StatusCode::FOUND
    );
    assert_eq!(server.stats().auth_failures, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_with_suppress_header_get_401_json() {
    let server = start(5, SimConfig::strict()).await;
    let path = format!("{ORG}/{GRAPH}");
    for auth in [basic("wrong"), "Bearer not-accepted".to_string()] {
        let response = get_with(
            &server,
            &path,
            &[
                ("authorization", &auth),
                ("x-tfs-fedauthredirect", "Suppress"),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<&str> = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert!(
            challenges
                .iter()
                .any(|c| c.starts_with("Basic realm=\"https://")),
            "{challenges:?}"
        );
        let body = json(response).await;
        assert_eq!(body["typeKey"], "UnauthorizedRequestException");
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .starts_with("TF400813")
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn any_basic_user_part_and_accepted_bearer_tokens_work() {
    let mut config = SimConfig::strict();
    config.auth =
        AuthConfig::accepting(&["pat-one"], &[]).with_bearer_validator(|t| t.starts_with("eyJ"));
    let server = start(5, config).await;
    let path = format!("{ORG}/{GRAPH}");
    let pat_user = format!("Basic {}", STANDARD.encode("PAT:pat-one"));
    for auth in [basic("pat-one"), pat_user, "Bearer eyJhbGciOi".to_string()] {
        let response = get_with(&server, &path, &[("authorization", &auth)]).await;
        assert_eq!(response.status(), StatusCode::OK, "{auth}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn forced_auth_failure_modes_refuse_even_good_credentials() {
    let cases = [
        (
            AuthFailureMode::SignInPage203,
            StatusCode::NON_AUTHORITATIVE_INFORMATION,
            "text/html",
        ),
        (
            AuthFailureMode::Unauthorized401,
            StatusCode::UNAUTHORIZED,
            "application/json",
        ),
        (AuthFailureMode::Redirect302, StatusCode::FOUND, "text/html"),
    ];
    for (mode, status, content_type) in cases {
        let mut config = SimConfig::strict();
        config.auth = AuthConfig::always_refuse(mode);
        let server = start(5, config).await;
        let response = get_with(
            &server,
            &format!("{ORG}/{GRAPH}"),
            &[
                ("authorization", &basic(DEMO_PAT)),
                ("x-tfs-fedauthredirect", "Suppress"),
            ],
        )
        .await;
        assert_eq!(response.status(), status, "{mode:?}");
        assert!(
            header(&response, "content-type")
                .expect("type")
                .starts_with(content_type)
        );
        server.shutdown().await;
    }
}

#[tokio::test]
async fn caller_who_is_not_token_admin_can_list_users_but_not_pats() {
    let mut config = SimConfig::strict();
    config.auth.token_admin = false;
    let server = start(5, config).await;
    assert_eq!(
        get(&server, &format!("{ORG}/{GRAPH}")).await.status(),
        StatusCode::OK
    );
    let d = server
        .org()
        .human_users()
        .next()
        .expect("user")
        .descriptor
        .clone();
    let response = get(&server, &pats_path(&d, "")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json(response).await;
    assert_eq!(body["typeKey"], "UnauthorizedRequestException");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("token administration")
    );
    assert_eq!(server.stats().not_token_admin, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn storm_sends_consecutive_429s_with_retry_after() {
    let mut config = SimConfig::strict();
    config.faults.storm = Some(Storm {
        start_at: 1,
        count: 3,
    });
    config.faults.retry_after_secs = 0;
    let server = start(5, config).await;
    let path = format!("{ORG}/{GRAPH}");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = get(&server, &path).await;
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(header(&response, "retry-after"), Some("0"));
            assert!(header(&response, "x-ratelimit-reset").is_some());
            let body = json(response).await;
            assert_eq!(body["typeKey"], "RequestBlockedException");
            assert!(
                body["message"]
                    .as_str()
                    .expect("message")
                    .starts_with("TF400733")
            );
        }
    }
    assert_eq!(statuses, [200, 429, 429, 429, 200]);
    assert_eq!(server.stats().throttled_429, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn delayed_200_carries_retry_after_and_rate_limit_headers() {
    let mut config = SimConfig::strict();
    config.faults.delayed_200_probability = 1.0;
    config.faults.delayed_200_delay = Duration::from_millis(20);
    config.faults.rate_limit_headers = true;
    let server = start(5, config).await;
    let response = get(&server, &format!("{ORG}/{GRAPH}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "retry-after"), Some("1"));
    assert_eq!(header(&response, "x-ratelimit-delay"), Some("0.020"));
    assert_eq!(header(&response, "x-ratelimit-remaining"), Some("0"));
    for name in [
        "x-ratelimit-resource",
        "x-ratelimit-limit",
        "x-ratelimit-reset",
    ] {
        assert!(header(&response, name).is_some(), "{name}");
    }
    assert_eq!(server.stats().delayed_200, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn bom_prefixes_every_json_body_when_enabled() {
    let mut config = SimConfig::strict();
    config.faults.bom = true;
    let server = start(5, config).await;
    for path in [format!("{ORG}/{GRAPH}"), format!("{ORG}/_apis/graph/users")] {
        let bytes = get(&server, &path).await.bytes().await.expect("body");
        assert!(bytes.starts_with(b"\xEF\xBB\xBF{"), "{path}");
        assert!(
            serde_json::from_slice::<Value>(&bytes).is_err(),
            "a strict parser trips on it"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_failing_descriptors_behave_as_configured() {
    let users = org(30);
    let humans: Vec<String> = users
        .human_users()
        .take(3)
        .map(|u| u.descriptor.clone())
        .collect();
    let [once, always, failing] = <[String; 3]>::try_from(humans).expect("three users");
    let mut config = SimConfig::strict();
    config.faults.malformed_json = BTreeMap::from([
        (once.clone(), Persistence::FirstTimeOnly),
        (always.clone(), Persistence::Always),
    ]);
    config.faults.failing_descriptors.insert(failing.clone());
    let server = SimServer::start(users, config).await.expect("server");
    let body = |d: &str| {
        let path = pats_path(d, "");
        let server = &server;
        async move {
            let response = get(server, &path).await;
            (
                response.status(),
                parse(&response.bytes().await.expect("body")),
            )
        }
    };
    let (status, first) = body(&once).await;
    assert_eq!(
        (status, first.is_none()),
        (StatusCode::OK, true),
        "truncated the first time"
    );
    assert!(body(&once).await.1.is_some(), "fine the second time");
    for _ in 0..3 {
        assert!(body(&always).await.1.is_none());
        assert_eq!(body(&failing).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(server.stats().malformed_bodies, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn window_model_delays_then_blocks_over_budget() {
    let mut config = SimConfig::strict();
    config.faults.window = Some(WindowLimit {
        window: Duration::from_secs(60),
        budget: 3,
        soft_threshold: 2,
        delay: Duration::from_millis(5),
    });
    let server = start(5, config).await;
    let path = format!("{ORG}/{GRAPH}");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = get(&server, &path).await;
        seen.push((
            response.status().as_u16(),
            header(&response, "retry-after").map(str::to_string),
            header(&response, "x-ratelimit-remaining").map(str::to_string),
        ));
    }
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        seen,
        [
            (200, None, s("1")),
            (200, None, s("0")),
            (200, s("60"), s("0")),
            (429, s("60"), s("0")),
        ]
    );
    server.shutdown().await;
}

/// A whole scan through the demo configuration's faults: every PAT of every human user is
/// recovered by a client that retries, so the faults are transient.
#[tokio::test]
async fn demo_config_scan_recovers_every_pat_with_retries() {
    let mut config = SimConfig::demo();
    config.faults.retry_after_secs = 0;
    config.faults.latency = Duration::ZERO;
    config.faults.slow_delay = Duration::from_millis(1);
    config.faults.delayed_200_delay = Duration::from_millis(1);
    config.faults.throttle_probability = 0.1;
    config.faults.transient_500_probability = 0.1;
    let server = start(150, config).await;
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    let mut found_keys: HashMap<String, Vec<String>> = HashMap::new();
    let humans: Vec<(String, Vec<String>)> = server
        .org()
        .human_users()
        .map(|u| {
            (
                u.descriptor.clone(),
                u.pats.iter().map(|p| p.authorization_id.clone()).collect(),
            )
        })
        .collect();
    let listings =
        futures::future::join_all(humans.iter().map(|(d, _)| list_pats(&server, d, Some(7)))).await;
    for ((d, _), (ids, _)) in humans.iter().zip(listings) {
        found.insert(d.clone(), ids);
    }
    for (d, expected) in &humans {
        assert_eq!(&found[d], expected, "{d}");
    }
    // SSH keys come through the same faults.
    let keys = futures::future::join_all(
        humans
            .iter()
            .map(|(d, _)| list_entries(&server, d, Some(2), SSH_KEYS)),
    )
    .await;
    for ((d, _), (ids, _)) in humans.iter().zip(keys) {
        found_keys.insert(d.clone(), ids);
    }
    for user in server.org().human_users() {
        let expected: Vec<&String> = user.ssh_keys.iter().map(|k| &k.authorization_id).collect();
        assert_eq!(
            found_keys[&user.descriptor].iter().collect::<Vec<_>>(),
            expected
        );
    }
    let stats = server.stats();
    assert!(
        stats.throttled_429 > 0 && stats.server_errors_500 > 0,
        "{stats:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn uneven_pat_pages_still_list_every_pat_once() {
    let mut config = SimConfig::strict();
    config.paging.pat_uneven_pages = true;
    let server = start(60, config).await;
    let heavy = heavy_user(&server);
    let (ids, bodies) = list_pats(&server, &heavy.descriptor, Some(10)).await;
    let expected: Vec<String> = heavy
        .pats
        .iter()
        .map(|p| p.authorization_id.clone())
        .collect();
    assert_eq!(ids, expected);
    assert!(
        bodies.len() > 5,
        "pages are short sometimes: {}",
        bodies.len()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn router_serves_in_process_too() {
    let app = router(std::sync::Arc::new(org(3)), SimConfig::strict());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    let response = client()
        .get(format!("http://{addr}/{ORG}/{GRAPH}"))
        .header("authorization", basic(DEMO_PAT))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "activityid").is_some());
    task.abort();
}

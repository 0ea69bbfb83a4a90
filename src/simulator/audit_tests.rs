//! End-to-end tests of the simulated Audit Log over real HTTP: paging, the time window,
//! retention, the 403 modes, parameter and version checks, and the events each mutation
//! (and each Token Admin revocation) writes.
//!
//! Events are stamped relative to the wall clock (the retention counts back from the
//! request's time) but far from every boundary, so nothing depends on how fast a test runs.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::tests::{ORG, basic, client, get, json, list_entries, org, pats_path, start};
use super::*;

const AUDIT: &str = "_apis/audit/auditlog?api-version=7.1-preview.1";

fn now() -> OffsetDateTime {
    // Whole seconds, so times written into queries are exact.
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

fn rfc3339(at: OffsetDateTime) -> String {
    let text = at.format(&Rfc3339).expect("format");
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Every page of one query (`extra` is more query text), newest first, retrying 429/5xx.
async fn audit_pages(server: &SimServer, extra: &str) -> Vec<Value> {
    audit_pages_after(server, extra, None).await
}

/// As [`audit_pages`], starting after the continuation token `token`.
async fn audit_pages_after(server: &SimServer, extra: &str, token: Option<String>) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut token = token;
    loop {
        let continuation = token
            .as_deref()
            .map(|t| format!("&continuationToken={}", encode(t)))
            .unwrap_or_default();
        let path = format!("{ORG}/{AUDIT}{extra}{continuation}");
        let mut attempts = 0;
        let body = loop {
            attempts += 1;
            assert!(attempts <= 10, "no success after 10 attempts for {path}");
            let response = get(server, &path).await;
            let status = response.status();
            if status == StatusCode::OK {
                break json(response).await;
            }
            assert!(
                status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
                "unexpected {status}"
            );
        };
        let more = body["hasMore"].as_bool().expect("hasMore");
        token = body["continuationToken"].as_str().map(str::to_string);
        pages.push(body);
        if !more {
            return pages;
        }
        assert!(token.is_some(), "hasMore without a token");
        assert!(pages.len() < 10_000, "paging does not end");
    }
}

fn entries(pages: &[Value]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|p| {
            p["decoratedAuditLogEntries"]
                .as_array()
                .expect("entries")
                .clone()
        })
        .collect()
}

fn timestamp(entry: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(entry["timestamp"].as_str().expect("timestamp"), &Rfc3339)
        .expect("RFC 3339 timestamp")
}

/// The entries of one action.
fn of_action<'a>(all: &'a [Value], action: &str) -> Vec<&'a Value> {
    all.iter().filter(|e| e["actionId"] == action).collect()
}

async fn started(config: SimConfig) -> SimServer {
    start(30, config).await
}

/// Noise events at `now - minutes` for each of `minutes`.
fn noise_at(server: &SimServer, at: &[OffsetDateTime]) {
    server.mutate(|m| {
        for t in at {
            m.noise(*t);
        }
    });
}

#[tokio::test]
async fn pages_are_newest_first_uneven_and_chained_by_the_last_id() {
    let server = started(SimConfig::strict()).await;
    let base = now() - Duration::days(2);
    let times: Vec<OffsetDateTime> = (0..200).map(|i| base - Duration::minutes(i)).collect();
    noise_at(&server, &times);
    let pages = audit_pages(&server, "&batchSize=7").await;
    let all = entries(&pages);
    assert_eq!(all.len(), 200);
    let ids: HashSet<&str> = all.iter().map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), 200, "no entry twice");
    let areas: HashSet<&str> = all.iter().filter_map(|e| e["area"].as_str()).collect();
    assert!(areas.len() >= 4, "noise from several areas: {areas:?}");
    assert!(
        all.windows(2).all(|w| timestamp(&w[0]) >= timestamp(&w[1])),
        "newest first"
    );
    for page in &pages {
        let list = page["decoratedAuditLogEntries"]
            .as_array()
            .expect("entries");
        assert!(!list.is_empty() && list.len() <= 7);
        // The token is the id of the page's last (oldest) entry, on the last page too.
        assert_eq!(page["continuationToken"], list[list.len() - 1]["id"]);
    }
    let short_mid = pages[..pages.len() - 1]
        .iter()
        .filter(|p| p["decoratedAuditLogEntries"].as_array().map(Vec::len) < Some(7))
        .count();
    assert!(short_mid > 0, "some pages before the last are short");
    assert_eq!(pages.last().expect("pages")["hasMore"], false);
    // Even pages when asked for.
    let even = SimConfig {
        audit: AuditConfig {
            uneven_pages: false,
            ..AuditConfig::default()
        },
        ..SimConfig::strict()
    };
    let server = started(even).await;
    noise_at(&server, &times);
    let pages = audit_pages(&server, "&batchSize=50").await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["decoratedAuditLogEntries"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [50, 50, 50, 50]);
}

#[tokio::test]
async fn ids_count_down_from_the_maximum_ticks_and_entries_have_every_field() {
    let server = started(SimConfig::strict()).await;
    let at = now() - Duration::hours(3);
    noise_at(&server, &[at]);
    let all = entries(&audit_pages(&server, "").await);
    let entry = &all[0];
    let id = entry["id"].as_str().expect("id");
    let parts: Vec<&str> = id.split(';').collect();
    assert_eq!(parts.len(), 3);
    let key: u64 = parts[0].parse().expect("number");
    assert_eq!(key, 3_155_378_975_999_999_999 - ticks(at));
    for field in [
        "id",
        "correlationId",
        "activityId",
        "actorCUID",
        "actorUserId",
        "actorClientId",
        "actorUPN",
        "actorDisplayName",
        "actorImageUrl",
        "authenticationMechanism",
        "timestamp",
        "scopeType",
        "scopeDisplayName",
        "scopeId",
        "ipAddress",
        "userAgent",
        "actionId",
        "data",
        "details",
        "area",
        "category",
        "categoryDisplayName",
    ] {
        assert!(entry.get(field).is_some(), "{field} missing");
    }
    assert_eq!(entry["scopeType"], "organization");
    assert_eq!(entry["scopeDisplayName"], format!("{ORG} (Organization)"));
}

#[tokio::test]
async fn the_window_is_start_inclusive_and_end_exclusive() {
    let server = started(SimConfig::strict()).await;
    let t = now() - Duration::days(10);
    let times = [
        t,
        t + Duration::days(1),
        t + Duration::days(2),
        t + Duration::days(3),
    ];
    noise_at(&server, &times);
    let window = format!(
        "&startTime={}&endTime={}",
        rfc3339(times[1]),
        rfc3339(times[3])
    );
    let got: Vec<OffsetDateTime> = entries(&audit_pages(&server, &window).await)
        .iter()
        .map(timestamp)
        .collect();
    assert_eq!(got, [times[2], times[1]]);
    // The same window paged one entry at a time.
    let got = entries(&audit_pages(&server, &format!("{window}&batchSize=1")).await);
    assert_eq!(got.len(), 2);
    // An empty window: no entries, no more, no token to name.
    let empty = format!(
        "&startTime={}&endTime={}",
        rfc3339(times[1]),
        rfc3339(times[1])
    );
    let pages = audit_pages(&server, &empty).await;
    assert_eq!(entries(&pages).len(), 0);
    assert_eq!(pages[0]["continuationToken"], Value::Null);
}

#[tokio::test]
async fn events_older_than_the_retention_are_not_returned() {
    let server = started(SimConfig::strict()).await;
    let n = now();
    noise_at(&server, &[n - Duration::days(91), n - Duration::days(89)]);
    for query in [
        String::new(),
        format!("&startTime={}", rfc3339(n - Duration::days(200))),
    ] {
        let got = entries(&audit_pages(&server, &query).await);
        assert_eq!(got.len(), 1, "{query}");
        assert_eq!(timestamp(&got[0]), n - Duration::days(89));
    }
    let short = SimConfig {
        audit: AuditConfig {
            retention: Duration::days(30),
            ..AuditConfig::default()
        },
        ..SimConfig::strict()
    };
    let server = started(short).await;
    noise_at(&server, &[n - Duration::days(31), n - Duration::days(29)]);
    assert_eq!(entries(&audit_pages(&server, "").await).len(), 1);
}

#[tokio::test]
async fn auditing_off_or_without_permission_is_a_403_with_a_json_error() {
    for mode in [AuditMode::Off, AuditMode::NoPermission] {
        let config = SimConfig {
            audit: AuditConfig {
                mode,
                ..AuditConfig::default()
            },
            ..SimConfig::strict()
        };
        let server = started(config).await;
        let response = get(&server, &format!("{ORG}/{AUDIT}")).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{mode:?}");
        let body = json(response).await;
        assert_eq!(body["typeKey"], "AccessCheckException");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(server.stats().audit_forbidden, 1);
        // The other APIs still answer.
        let users = format!("{ORG}/_apis/graph/users?api-version=7.1-preview.1");
        assert_eq!(get(&server, &users).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn bad_parameters_and_versions_are_400s() {
    let server = started(SimConfig::strict()).await;
    for extra in [
        "&startTime=yesterday",
        "&endTime=2026-13-01T00:00:00Z",
        "&startTime=2026-03-01",
        "&batchSize=many",
        "&batchSize=0",
        "&batchSize=-5",
        "&continuationToken=not-a-token",
        "&skipAggregation=maybe",
        "&startTime=2026-03-02T00:00:00Z&endTime=2026-03-01T00:00:00Z",
    ] {
        let response = get(&server, &format!("{ORG}/{AUDIT}{extra}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{extra}");
        let body = json(response).await;
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("Parameter name")),
            "{extra}"
        );
    }
    for ok in ["&skipAggregation=true", "&batchSize=100000"] {
        let response = get(&server, &format!("{ORG}/{AUDIT}{ok}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{ok}");
    }
    let path = |version: &str| format!("{ORG}/_apis/audit/auditlog{version}");
    for refused in ["", "?api-version=7.1", "?api-version=7.1-preview.2"] {
        let response = get(&server, &path(refused)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused}");
    }
    // Path case does not matter, as elsewhere; other methods get 405.
    let response = get(
        &server,
        &format!(
            "{}/_APIS/Audit/AuditLog?api-version=7.1-preview.1",
            ORG.to_lowercase()
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let posted = client()
        .post(format!("{}/{ORG}/{AUDIT}", server.base_url()))
        .header("authorization", basic(DEMO_PAT))
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Same authentication as the other routes.
    let anonymous = client()
        .get(format!("{}/{ORG}/{AUDIT}", server.base_url()))
        .header("x-tfs-fedauthredirect", "Suppress")
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn random_faults_reach_the_audit_log_too() {
    let config = SimConfig {
        faults: FaultConfig {
            throttle_probability: 0.5,
            transient_500_probability: 0.2,
            max_transient_attempts: 2,
            ..FaultConfig::none()
        },
        ..SimConfig::strict()
    };
    let server = started(config).await;
    let base = now() - Duration::days(1);
    let times: Vec<OffsetDateTime> = (0..60).map(|i| base - Duration::minutes(i)).collect();
    noise_at(&server, &times);
    let all = entries(&audit_pages(&server, "&batchSize=5").await);
    assert_eq!(all.len(), 60);
    let stats = server.stats();
    assert!(stats.throttled_429 + stats.server_errors_500 > 0);
    assert!(stats.audit_requests > stats.audit_pages);
}

/// PATs of `descriptor` as the Token Admin listing shows them: id → SessionToken.
async fn listed(server: &SimServer, descriptor: &str) -> Vec<Value> {
    let response = get(server, &pats_path(descriptor, "&pageSize=100")).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await["value"]
        .as_array()
        .expect("value")
        .clone()
}

fn find<'a>(tokens: &'a [Value], id: &str) -> Option<&'a Value> {
    tokens.iter().find(|t| t["authorizationId"] == id)
}

/// A person of the org with no PATs, and one holding a valid one: (descriptor, pat id).
fn people(server: &SimServer) -> (SimUser, SimUser) {
    let org = server.org();
    let empty = org
        .human_users()
        .find(|u| u.pats.is_empty())
        .cloned()
        .expect("a person without PATs");
    let holder = org
        .human_users()
        .find(|u| {
            u.pats
                .iter()
                .any(|p| p.is_valid && p.display_name.is_some())
        })
        .cloned()
        .expect("a person with a valid PAT");
    (empty, holder)
}

#[tokio::test]
async fn pat_lifecycle_mutations_write_their_events_and_change_the_listing() {
    let server = started(SimConfig::strict()).await;
    let (owner, _) = people(&server);
    let t = now() - Duration::hours(10);
    let valid_to = t + Duration::days(30);
    let id = server
        .mutate(|m| {
            m.create_pat(
                &owner.descriptor,
                NewPat {
                    scope: "vso.code vso.build".into(),
                    ..NewPat::named("release bot", valid_to)
                },
                t,
            )
        })
        .expect("created");
    let tokens = listed(&server, &owner.descriptor).await;
    let pat = find(&tokens, &id).expect("listed");
    assert_eq!(pat["displayName"], "release bot");
    assert_eq!(pat["isValid"], true);
    let all = entries(&audit_pages(&server, "").await);
    let created = of_action(&all, "Token.PatCreateEvent");
    assert_eq!(created.len(), 1);
    let e = created[0];
    assert_eq!(e["area"], "Token");
    assert_eq!(e["category"], "create");
    assert_eq!(
        e["details"],
        "Personal Access Token \"release bot\" was created."
    );
    assert_eq!(e["actorUPN"], owner.principal_name.as_str());
    assert_eq!(e["actorDisplayName"], owner.display_name.as_str());
    // The actor's id is the id Token Admin shows as the PAT's userId.
    assert_eq!(e["actorUserId"], pat["userId"]);
    let mechanism = e["authenticationMechanism"].as_str().expect("mechanism");
    assert!(
        mechanism == "AAD" || mechanism == "AAD_Cookie",
        "{mechanism}"
    );
    let data = e["data"].as_object().expect("data");
    let keys: HashSet<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from([
            "DisplayName",
            "Scopes",
            "ValidFrom",
            "ValidTo",
            "OperationType",
            "TokenType"
        ])
    );
    assert_eq!(data["Scopes"], serde_json::json!(["vso.code", "vso.build"]));
    let text = e.to_string();
    assert!(!text.contains(&id), "no authorization id in the event");

    // Rename, rescope, extend.
    let later = valid_to + Duration::days(60);
    server
        .mutate(|m| {
            m.update_pat(
                &id,
                PatChange {
                    display_name: Some("release bot v2".into()),
                    scope: Some("vso.code_write".into()),
                    valid_to: Some(later),
                },
                t + Duration::hours(1),
            )
        })
        .expect("updated");
    let tokens = listed(&server, &owner.descriptor).await;
    let pat = find(&tokens, &id).expect("listed");
    assert_eq!(pat["displayName"], "release bot v2");
    assert_eq!(pat["scope"], "vso.code_write");
    let all = entries(&audit_pages(&server, "").await);
    let updated = of_action(&all, "Token.PatUpdateEvent");
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["category"], "modify");
    assert_eq!(updated[0]["data"]["DisplayName"], "release bot v2");

    // Used with git, then from a browser: events of other areas carrying the PAT's id.
    server
        .mutate(|m| {
            m.pat_use(
                &id,
                PatUse::GitRepositoryCreated,
                GIT_USER_AGENT,
                t + Duration::hours(2),
            )?;
            m.pat_use(
                &id,
                PatUse::SecurityPermissionChanged,
                BROWSER_USER_AGENT,
                t + Duration::hours(3),
            )
        })
        .expect("used");
    let all = entries(&audit_pages(&server, "").await);
    let used: Vec<&Value> = all
        .iter()
        .filter(|e| e["authenticationMechanism"] == pat_mechanism(&id))
        .collect();
    assert_eq!(used.len(), 2);
    assert_eq!(used[0]["area"], "Security");
    assert_eq!(used[0]["userAgent"], BROWSER_USER_AGENT);
    assert_eq!(used[1]["area"], "Git");
    assert_eq!(used[1]["userAgent"], GIT_USER_AGENT);
    assert!(
        used.iter()
            .all(|e| e["actorUPN"] == owner.principal_name.as_str())
    );

    // Revoked by its owner: still listed, no longer valid.
    server
        .mutate(|m| m.revoke_by_owner(&id, t + Duration::hours(4)))
        .expect("revoked");
    let tokens = listed(&server, &owner.descriptor).await;
    assert_eq!(find(&tokens, &id).expect("listed")["isValid"], false);
    let all = entries(&audit_pages(&server, "").await);
    let revoked = of_action(&all, "Token.PatRevokeEvent");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["actorUPN"], owner.principal_name.as_str());
    assert_eq!(revoked[0]["category"], "remove");
    // A revoked PAT cannot change any more.
    let again = server.mutate(|m| m.revoke_by_owner(&id, t + Duration::hours(5)));
    assert_eq!(again, Err(MutationError::NotValid(id.clone())));
}

#[tokio::test]
async fn admin_revocation_expiry_and_leaks_are_recorded_with_their_actors() {
    let server = started(SimConfig::strict()).await;
    let (owner, _) = people(&server);
    let t = now() - Duration::days(3);
    let ids: Vec<String> = server.mutate(|m| {
        (0..4)
            .map(|i| {
                m.create_pat(
                    &owner.descriptor,
                    NewPat::named(&format!("pat {i}"), t + Duration::days(30)),
                    t,
                )
                .expect("created")
            })
            .collect()
    });
    let at = t + Duration::days(1);
    server
        .mutate(|m| {
            m.revoke_by_admin(&ids[0], at)?;
            m.expire(&ids[1], at)?;
            m.system_revoke(&ids[2], at)?;
            m.public_discovery(&ids[3], at)
        })
        .expect("applied");
    let tokens = listed(&server, &owner.descriptor).await;
    let shown = |i: usize| find(&tokens, &ids[i]).expect("listed").clone();
    assert_eq!(shown(0)["isValid"], false);
    assert_eq!(
        shown(1)["isValid"],
        true,
        "an expired PAT stays listed as it was"
    );
    let expired_to = OffsetDateTime::parse(
        &format!(
            "{}Z",
            shown(1)["validTo"]
                .as_str()
                .expect("validTo")
                .trim_end_matches('Z')
        ),
        &Rfc3339,
    )
    .expect("date");
    assert!(expired_to <= at);
    assert_eq!(shown(2)["isValid"], false);
    assert_eq!(shown(3)["isValid"], true, "discovery alone does not revoke");

    let all = entries(&audit_pages(&server, "").await);
    let revoked = of_action(&all, "Token.PatRevokeEvent");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["actorUserId"], TOKEN_ADMIN_USER_ID);
    assert_eq!(revoked[0]["actorDisplayName"], TOKEN_ADMIN_DISPLAY_NAME);
    assert_eq!(revoked[0]["data"]["DisplayName"], "pat 0");

    let system = |e: &Value| {
        e["actorUserId"] == SYSTEM_ACTOR_ID
            && e["actorDisplayName"] == "Azure DevOps Service"
            && e["authenticationMechanism"] == ""
            && e["ipAddress"].is_null()
    };
    let expired = of_action(&all, "Token.PatExpiredEvent");
    assert_eq!(expired.len(), 1);
    assert!(system(expired[0]));
    assert_eq!(
        expired[0]["details"],
        "Personal Access Token \"pat 1\" expired."
    );

    let found = of_action(&all, "Token.PatPublicDiscoveryEvent");
    assert_eq!(found.len(), 2);
    let sys_revoked = of_action(&all, "Token.PatSystemRevokeEvent");
    assert_eq!(sys_revoked.len(), 1);
    let e = sys_revoked[0];
    assert!(system(e));
    assert_eq!(
        e["details"],
        format!(
            "Personal Access Token \"pat 2\" associated with user \"{}\" was revoked by the system.",
            owner.display_name
        )
    );
    let keys: HashSet<&str> = e["data"]
        .as_object()
        .expect("data")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["DisplayName", "OwnerName"]));
    // The leak's discovery comes just before its revocation, in the same correlation.
    let discovery = found
        .iter()
        .find(|d| d["data"]["DisplayName"] == "pat 2")
        .expect("discovery of pat 2");
    assert_eq!(discovery["correlationId"], e["correlationId"]);
    assert!(timestamp(discovery) < timestamp(e));
    assert!(found.iter().all(|d| system(d) && d["category"] == "access"));
}

#[tokio::test]
async fn users_joining_and_leaving_change_graph_and_token_admin() {
    let server = started(SimConfig::strict()).await;
    let (_, holder) = people(&server);
    let t = now() - Duration::hours(1);
    let joined = server.mutate(|m| m.add_user(&holder.display_name, t));
    let org = server.org();
    assert_eq!(
        org.users
            .iter()
            .filter(|u| u.display_name == holder.display_name)
            .count(),
        2
    );
    let graph = json(
        get(
            &server,
            &format!("{ORG}/_apis/graph/users?api-version=7.1-preview.1"),
        )
        .await,
    )
    .await;
    let listed_users: Vec<&str> = graph["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|u| u["descriptor"].as_str())
        .collect();
    assert!(listed_users.contains(&joined.as_str()));
    assert!(listed(&server, &joined).await.is_empty());

    server
        .mutate(|m| m.remove_user(&holder.descriptor, t))
        .expect("removed");
    let graph = json(
        get(
            &server,
            &format!("{ORG}/_apis/graph/users?api-version=7.1-preview.1"),
        )
        .await,
    )
    .await;
    assert!(
        !graph["value"]
            .as_array()
            .expect("value")
            .iter()
            .any(|u| u["descriptor"] == holder.descriptor.as_str())
    );
    let gone = get(&server, &pats_path(&holder.descriptor, "")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let missing = server.mutate(|m| m.remove_user(&holder.descriptor, t));
    assert!(matches!(missing, Err(MutationError::UnknownUser(_))));
}

#[tokio::test]
async fn token_admin_revocations_write_revoke_events_by_the_admin() {
    let server = started(SimConfig::strict()).await;
    let (_, holder) = people(&server);
    let pat = holder
        .pats
        .iter()
        .find(|p| p.is_valid)
        .expect("a valid PAT")
        .clone();
    let body = format!(r#"[{{"authorizationId":"{}"}}]"#, pat.authorization_id);
    let send = || {
        client()
            .post(format!(
                "{}/{ORG}/_apis/tokenadmin/revocations?api-version=7.1",
                server.base_url()
            ))
            .header("authorization", basic(DEMO_PAT))
            .header("content-type", "application/json")
            .header("user-agent", "patreport-test")
            .body(body.clone())
            .send()
    };
    assert_eq!(send().await.expect("post").status(), StatusCode::NO_CONTENT);
    // A second revocation of the same PAT changes nothing and records nothing.
    assert_eq!(send().await.expect("post").status(), StatusCode::NO_CONTENT);
    let all = entries(&audit_pages(&server, "").await);
    let revoked = of_action(&all, "Token.PatRevokeEvent");
    assert_eq!(revoked.len(), 1);
    let e = revoked[0];
    assert_eq!(e["actorUserId"], TOKEN_ADMIN_USER_ID);
    assert_eq!(e["actorUPN"], TOKEN_ADMIN_UPN);
    assert_eq!(
        e["authenticationMechanism"],
        pat_mechanism(DEMO_PAT_AUTHORIZATION_ID)
    );
    assert_eq!(e["userAgent"], "patreport-test");
    assert_eq!(
        e["data"]["DisplayName"],
        pat.display_name.as_deref().unwrap_or_default()
    );
    // A PAT created while the server runs can be revoked through the route too.
    let t = now() - Duration::hours(1);
    let fresh = server
        .mutate(|m| {
            m.create_pat(
                &holder.descriptor,
                NewPat::named("fresh", t + Duration::days(5)),
                t,
            )
        })
        .expect("created");
    let body = format!(r#"[{{"authorizationId":"{fresh}"}}]"#);
    let response = client()
        .post(format!(
            "{}/{ORG}/_apis/tokenadmin/revocations?api-version=7.1",
            server.base_url()
        ))
        .header("authorization", basic(DEMO_PAT))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (ids, bodies) = list_entries(&server, &holder.descriptor, Some(100), "").await;
    assert!(ids.contains(&fresh));
    assert!(
        bodies
            .concat()
            .contains(&format!(r#""authorizationId":"{fresh}""#))
    );
    let tokens = listed(&server, &holder.descriptor).await;
    assert_eq!(find(&tokens, &fresh).expect("listed")["isValid"], false);
    let all = entries(&audit_pages(&server, "").await);
    assert_eq!(of_action(&all, "Token.PatRevokeEvent").len(), 2);
    assert_eq!(server.stats().tokens_revoked, 2);
}

#[test]
fn the_random_driver_mixes_everything_and_includes_the_ambiguous_cases() {
    let mut generated = org(200);
    let before = generated.clone();
    let at = now();
    let changes = generated.mutate(|m| m.random(42, 300, at));
    assert_eq!(changes.len(), 300);
    // Two people with one display name, each holding a PAT of the same name.
    let Change::UserAdded { descriptor: twin } = &changes[0] else {
        panic!("first change {:?}", changes[0]);
    };
    let twin_user = generated.user(twin).expect("twin");
    let namesakes: Vec<&SimUser> = generated
        .users
        .iter()
        .filter(|u| u.display_name == twin_user.display_name)
        .collect();
    assert!(namesakes.len() >= 2);
    let Change::PatCreated {
        authorization_id, ..
    } = &changes[1]
    else {
        panic!("second change {:?}", changes[1]);
    };
    let shared = twin_user
        .pats
        .iter()
        .find(|p| &p.authorization_id == authorization_id)
        .and_then(|p| p.display_name.clone())
        .expect("named PAT");
    let holders: HashSet<&str> = generated
        .users
        .iter()
        .filter(|u| {
            u.pats
                .iter()
                .any(|p| p.display_name.as_deref() == Some(shared.as_str()))
        })
        .map(|u| u.descriptor.as_str())
        .collect();
    // The twin, the original, and the owner of the PAT renamed to that name.
    assert!(holders.len() >= 3, "{holders:?}");
    let Change::PatUpdated {
        authorization_id: renamed,
    } = &changes[2]
    else {
        panic!("third change {:?}", changes[2]);
    };
    let was = before
        .users
        .iter()
        .flat_map(|u| &u.pats)
        .find(|p| &p.authorization_id == renamed)
        .expect("existed before");
    assert_ne!(was.display_name.as_deref(), Some(shared.as_str()));

    let kinds: HashSet<std::mem::Discriminant<Change>> =
        changes.iter().map(std::mem::discriminant).collect();
    assert!(kinds.len() >= 9, "{} kinds of change", kinds.len());
    for (change, expected) in [
        (
            Change::PatRevoked {
                authorization_id: String::new(),
                by_admin: true,
            },
            "admin revocation",
        ),
        (
            Change::PatSystemRevoked {
                authorization_id: String::new(),
            },
            "system revocation",
        ),
        (
            Change::PatUsed {
                authorization_id: String::new(),
                user_agent: String::new(),
            },
            "PAT use",
        ),
        (
            Change::UserRemoved {
                descriptor: String::new(),
            },
            "user removed",
        ),
    ] {
        assert!(
            kinds.contains(&std::mem::discriminant(&change)),
            "no {expected}"
        );
    }
    let log = &generated.audit;
    assert!(log.len() >= 300);
    assert!(log.newest_first().all(|e| e.timestamp <= at));
    let areas: HashSet<&str> = log.newest_first().map(|e| e.area.as_str()).collect();
    for area in ["Token", "Git", "Licensing"] {
        assert!(areas.contains(area), "{area}");
    }
    let agents: HashSet<&str> = log
        .newest_first()
        .filter(|e| e.actor.authentication_mechanism.starts_with("PAT_Unscoped"))
        .map(|e| e.actor.user_agent.as_str())
        .collect();
    assert!(agents.contains(GIT_USER_AGENT) && agents.contains(BROWSER_USER_AGENT));
    // The same seed makes the same history.
    let mut again = before.clone();
    again.mutate(|m| m.random(42, 300, at));
    assert_eq!(again, generated);
}

#[tokio::test]
async fn a_server_serves_the_log_of_the_org_it_was_given() {
    let mut generated = org(50);
    let at = now() - Duration::days(1);
    generated.evolve(3, 0..5, at);
    let events = generated.audit.len();
    assert_eq!(events, 15, "revoke, rename and create per step");
    let server = SimServer::start(generated, SimConfig::strict())
        .await
        .expect("starts");
    assert!(server.org().audit.is_empty(), "the server keeps the log");
    assert_eq!(server.audit_log().len(), events);
    let all = entries(&audit_pages(&server, "").await);
    assert_eq!(all.len(), events);
    assert!(all.iter().all(|e| e["area"] == "Token"));
}

#[tokio::test]
async fn a_generated_orgs_history_can_be_written_to_its_log() {
    let n = now();
    let mut generated = SimOrg::generate(ORG, &OrgSpec::with_users(120), n);
    let written = generated.record_history(n, Duration::days(90));
    assert!(written > 20, "{written} events");
    let log = &generated.audit;
    assert_eq!(log.len(), written);
    let actions: HashSet<&str> = log.newest_first().map(|e| e.action_id.as_str()).collect();
    for action in [
        "Token.PatCreateEvent",
        "Token.PatRevokeEvent",
        "Token.PatExpiredEvent",
    ] {
        assert!(actions.contains(action), "{action}");
    }
    assert!(
        log.newest_first()
            .all(|e| e.timestamp <= n && e.timestamp >= n - Duration::days(90))
    );
    // Every created PAT is one the listing shows, named as the event names it.
    let names: HashSet<Option<&str>> = generated
        .users
        .iter()
        .flat_map(|u| &u.pats)
        .map(|p| p.display_name.as_deref())
        .collect();
    for e in log
        .newest_first()
        .filter(|e| e.action_id == "Token.PatCreateEvent")
    {
        let name = e.data["DisplayName"].as_str().filter(|n| !n.is_empty());
        assert!(names.contains(&name), "{name:?}");
    }
    let server = SimServer::start(generated, SimConfig::strict())
        .await
        .expect("starts");
    let served = entries(&audit_pages(&server, "&batchSize=1000").await);
    assert_eq!(served.len(), written);
}

#[tokio::test]
async fn events_written_while_a_window_is_paged_do_not_disturb_it() {
    let server = started(SimConfig::strict()).await;
    let base = now() - Duration::days(1);
    let times: Vec<OffsetDateTime> = (0..30).map(|i| base - Duration::minutes(i)).collect();
    noise_at(&server, &times);
    let first = json(get(&server, &format!("{ORG}/{AUDIT}&batchSize=10")).await).await;
    let token = first["continuationToken"]
        .as_str()
        .expect("token")
        .to_string();
    let seen = first["decoratedAuditLogEntries"]
        .as_array()
        .map_or(0, Vec::len);
    // Newer events arrive between pages: the rest of the listing goes on after the token.
    noise_at(
        &server,
        &[base + Duration::minutes(5), base + Duration::minutes(6)],
    );
    let rest = audit_pages_after(&server, "&batchSize=10", Some(token)).await;
    assert_eq!(seen + entries(&rest).len(), 30);
    assert_eq!(entries(&audit_pages(&server, "").await).len(), 32);
}

#[tokio::test]
async fn ssh_key_revocations_write_ssh_revoke_events() {
    let server = started(SimConfig::strict()).await;
    let org = server.org();
    let key = org
        .human_users()
        .flat_map(|u| &u.ssh_keys)
        .find(|k| k.is_valid)
        .cloned()
        .expect("a valid SSH key");
    let response = client()
        .post(format!(
            "{}/{ORG}/_apis/tokenadmin/revocations?api-version=7.1&isPublic=true",
            server.base_url()
        ))
        .header("authorization", format!("Bearer {DEMO_BEARER}"))
        .header("content-type", "application/json")
        .body(format!(
            r#"[{{"authorizationId":"{}"}}]"#,
            key.authorization_id
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let all = entries(&audit_pages(&server, "").await);
    let revoked = of_action(&all, "Token.SshRevokeEvent");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["authenticationMechanism"], "AAD");
    assert_eq!(revoked[0]["actorUserId"], TOKEN_ADMIN_USER_ID);
    assert!(of_action(&all, "Token.PatRevokeEvent").is_empty());
}

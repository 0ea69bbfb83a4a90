//! A fake Microsoft Entra ID, a fake managed identity endpoint and a fake Key Vault, served on
//! loopback for the authentication tests.
//!
//! Entra and Key Vault are served over TLS with a test CA made here (rcgen), under their
//! real-looking names (`login.fake-entra.test`, `patreport-test.vault.azure.net`) that the test
//! HTTP client resolves to 127.0.0.1: azure_identity insists on an https authority and the Key
//! Vault client on an https vault, so production code runs unchanged. The managed identity
//! endpoint is plain http on loopback, as the Functions platform serves it.
//!
//! A separate process (the `patreport serve` the Functions tests start) cannot use those
//! names: it reaches the fake Entra as `https://127.0.0.1:<port>` ([`FakeEntra::loopback_authority`],
//! also in the certificate) and trusts the CA through `PATREPORT_EXTRA_CA_FILE` ([`ca_pem`]).
//!
//! Tokens are RS256 JWTs signed with RSA keys generated in the test (aws-lc-rs); the JWKS
//! endpoint publishes the public halves. Nothing here is a real secret.

// Each test binary uses part of the fakes; handlers return a ready HTTP answer as their error.
#![allow(dead_code, clippy::result_large_err)]

use aws_lc_rs::encoding::AsDer;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use patreport::entra::ADO_RESOURCE;
use patreport::entra::AuthRuntime;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

pub const ENTRA_HOST: &str = "login.fake-entra.test";
pub const VAULT_HOST: &str = "patreport-test.vault.azure.net";
pub const TENANT: &str = "72f988bf-0000-4000-8000-00000000ten7";
/// The patreport API app registration (confidential client, audience of callers' tokens).
pub const API_APP: &str = "a0a0a0a0-1111-4222-8333-api000000app";
pub const API_SECRET: &str = "api-app-test-secret-value";
/// A service principal for client-secret mode.
pub const SP_APP: &str = "b0b0b0b0-1111-4222-8333-sp0000000app";
pub const SP_SECRET: &str = "sp-test-secret-value";
pub const SP_OID: &str = "sp-object-id";
/// A workload identity app (federated credential for the Kubernetes service account).
pub const WORKLOAD_APP: &str = "c0c0c0c0-1111-4222-8333-wl000000app0";
pub const WORKLOAD_SUBJECT: &str = "system:serviceaccount:patreport:patreport";
/// The public client app of `patreport login`.
pub const LOGIN_APP: &str = "d0d0d0d0-1111-4222-8333-login00000app";
/// The admin who signs in.
pub const ADMIN_OID: &str = "admin-object-id";
pub const ADMIN_UPN: &str = "admin@contoso.test";
/// The managed identities of the fake Functions app.
pub const MI_SYSTEM_OID: &str = "mi-system-object-id";
pub const MI_USER_CLIENT_ID: &str = "e0e0e0e0-1111-4222-8333-uami00000000";
pub const MI_USER_OID: &str = "mi-user-object-id";
pub const MI_HEADER_SECRET: &str = "fake-identity-header-value";
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `exp` for a token valid `lifetime` seconds: rounded up, so a client that computes expiry as
/// "now + expires_in" never believes a token lives longer than its `exp`.
fn exp_in(lifetime: u64) -> u64 {
    now() + 1 + lifetime
}

// ---------------------------------------------------------------------------------------------
// Keys

/// An RSA signing key with its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub jwk: Value,
}

impl SigningKey {
    fn generate(kid: &str) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .expect("RSA key generation");
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
        let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key");
        let jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("jwk");
        let mut jwk = serde_json::to_value(&jwk).expect("jwk json");
        let n = jwk["n"].as_str().expect("n").to_owned();
        let e = jwk["e"].as_str().expect("e").to_owned();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        // What Entra's JWKS also carries; the client must ignore it.
        jwk["issuer"] = json!(format!("https://{ENTRA_HOST}/{TENANT}/v2.0"));
        let decoding = DecodingKey::from_rsa_components(&n, &e).expect("decoding key");
        Self {
            kid: kid.to_owned(),
            encoding,
            decoding,
            jwk,
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }

    /// Sign with this key but claim another key id (a forged token).
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

/// Three keys per test binary: generating RSA keys in a debug build takes a moment.
fn key_pool() -> &'static [SigningKey; 3] {
    static POOL: OnceLock<[SigningKey; 3]> = OnceLock::new();
    POOL.get_or_init(|| {
        [
            SigningKey::generate("test-key-1"),
            SigningKey::generate("test-key-2"),
            SigningKey::generate("attacker-key"),
        ]
    })
}

/// A key Entra does not publish (for forged tokens).
pub fn attacker_key() -> SigningKey {
    key_pool()[2].clone()
}

// ---------------------------------------------------------------------------------------------
// TLS

struct Pki {
    ca_der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "patreport test CA (not a real CA)",
        );
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA cert");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf_params = rcgen::CertificateParams::new(vec![
            ENTRA_HOST.to_owned(),
            VAULT_HOST.to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("leaf");
        let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf cert");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("server config");
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Pki {
            ca_der: ca.der().to_vec(),
            server: Arc::new(server),
        }
    })
}

/// The test CA as PEM, for a process that must trust the fakes.
pub fn ca_pem() -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(&pki().ca_der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

async fn serve_tls(router: Router) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(pki().server.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    addr
}

async fn serve_http(router: Router) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// Entra

/// An app registration of the fake tenant.
#[derive(Clone, Default)]
pub struct AppReg {
    pub secret: Option<String>,
    /// `sub` values of federated tokens (issuer checked loosely) the app trusts.
    pub federated_subjects: Vec<String>,
    pub public_client: bool,
    /// The app's service principal object id (for app-only tokens).
    pub oid: String,
    /// Admin consent to Azure DevOps user_impersonation (delegated flows).
    pub ado_consent: bool,
    /// Certificates uploaded to the app registration (their public part).
    pub certificates: Vec<RegisteredCertificate>,
}

/// The public part of a certificate as Entra keeps it: thumbprint and public key.
#[derive(Clone)]
pub struct RegisteredCertificate {
    pub x5t_s256: String,
    pub public_key: DecodingKey,
}

/// A self-signed client certificate with its RSA key, as a PEM file holds them.
pub struct ClientCert {
    /// Certificate, then private key (PKCS#8).
    pub pem: String,
    /// The base64 body of the private key, to check it never leaks.
    pub key_body: String,
    pub registration: RegisteredCertificate,
}

/// A new RSA key and a self-signed certificate for it (rcgen).
pub fn client_certificate(common_name: &str) -> ClientCert {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("RSA key generation");
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
    let key_body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut key_pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in key_body.as_bytes().chunks(64) {
        key_pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        key_pem.push('\n');
    }
    key_pem.push_str("-----END PRIVATE KEY-----\n");
    let key_pair = rcgen::KeyPair::from_pem(&key_pem).expect("rcgen key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let cert = params
        .self_signed(&key_pair)
        .expect("self-signed certificate");
    let x5t_s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(cert.der()));
    let encoding = EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("encoding key");
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("jwk");
    let jwk = serde_json::to_value(&jwk).expect("jwk json");
    let public_key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("decoding key");
    ClientCert {
        pem: format!("{}{key_pem}", cert.pem()),
        key_body,
        registration: RegisteredCertificate {
            x5t_s256,
            public_key,
        },
    }
}

/// Entra's check of a certificate client assertion.
fn verify_certificate_assertion(
    state: &EntraState,
    app: &AppReg,
    client_id: &str,
    assertion: &str,
    thumbprint: &str,
) -> Result<(), Response> {
    let invalid = |why: &str| {
        entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            &format!("Client assertion failed signature validation. {why}"),
        )
    };
    let Some(cert) = app.certificates.iter().find(|c| c.x5t_s256 == thumbprint) else {
        return Err(invalid(&format!(
            "The key was not found. Thumbprint of key used by client: '{thumbprint}'. \
             Please verify the certificate is registered on the application '{client_id}'."
        )));
    };
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[format!("{}/{TENANT}/oauth2/v2.0/token", state.authority)]);
    v.set_issuer(&[client_id]);
    v.sub = Some(client_id.to_owned());
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub", "nbf"]);
    v.validate_nbf = true;
    v.leeway = 0;
    let claims = jsonwebtoken::decode::<Value>(assertion, &cert.public_key, &v)
        .map_err(|e| invalid(&format!("{:?}", e.kind())))?
        .claims;
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err(invalid("The assertion has no jti."));
    }
    Ok(())
}

struct IssuedRefresh {
    client_id: String,
    user_oid: String,
    upn: String,
}

/// How the next device-code sign-in goes.
#[derive(Clone, Debug)]
pub enum DeviceOutcome {
    Approve,
    Decline,
    Expire,
}

#[derive(Clone, Debug)]
pub struct DeviceScript {
    /// `authorization_pending` answers before the outcome.
    pub pending: usize,
    /// One `slow_down` after this many polls.
    pub slow_down_at: Option<usize>,
    pub outcome: DeviceOutcome,
}

struct DeviceState {
    client_id: String,
    scope: String,
    polls: usize,
}

pub struct EntraState {
    authority: String,
    keys: Mutex<Vec<SigningKey>>,
    /// Index in `keys` of the key that signs.
    active: AtomicUsize,
    apps: Mutex<HashMap<String, AppReg>>,
    refresh_tokens: Mutex<HashMap<String, IssuedRefresh>>,
    devices: Mutex<HashMap<String, DeviceState>>,
    pub device_script: Mutex<DeviceScript>,
    /// Lifetime of issued access tokens, seconds.
    pub lifetime: AtomicU64,
    /// Grant types in the order received.
    pub grants: Mutex<Vec<String>>,
    pub ado_tokens_issued: AtomicUsize,
    pub device_polls: AtomicUsize,
    pub jwks_fetches: AtomicUsize,
    /// Users (`oid`) who have not consented to the API app acting for them.
    unconsented: Mutex<HashSet<String>>,
    counter: AtomicUsize,
}

impl EntraState {
    fn issuer(&self) -> String {
        format!("{}/{TENANT}/v2.0", self.authority)
    }

    fn signer(&self) -> SigningKey {
        let keys = self.keys.lock().expect("keys");
        keys[self.active.load(Ordering::SeqCst).min(keys.len() - 1)].clone()
    }

    fn next_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}-{}-{:016x}",
            self.counter.fetch_add(1, Ordering::SeqCst),
            fastrand::u64(..)
        )
    }

    /// Verify a token this tenant (or its managed identity endpoint) issued.
    fn verify(&self, token: &str, audiences: &[&str]) -> Result<Value, String> {
        self.verify_with_leeway(token, audiences, 0)
    }

    fn verify_with_leeway(
        &self,
        token: &str,
        audiences: &[&str],
        leeway: u64,
    ) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.unwrap_or_default();
        let key = self
            .keys
            .lock()
            .expect("keys")
            .iter()
            .find(|k| k.kid == kid)
            .map(|k| k.decoding.clone())
            .ok_or("unknown kid")?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(audiences);
        v.leeway = leeway;
        jsonwebtoken::decode::<Value>(token, &key, &v)
            .map(|d| d.claims)
            .map_err(|e| format!("{:?}", e.kind()))
    }

    /// An access token for `resource`.
    pub fn access_token(&self, resource: &str, subject: &Value, lifetime: u64) -> String {
        let mut claims = json!({
            "aud": resource,
            "iss": self.issuer(),
            "tid": TENANT,
            "iat": now(),
            "nbf": now() - 5,
            "exp": exp_in(lifetime),
            "ver": "2.0",
            // Entra's unique token id: two tokens issued in the same second still differ.
            "uti": self.next_id("uti"),
        });
        if let (Some(c), Some(s)) = (claims.as_object_mut(), subject.as_object()) {
            for (k, v) in s {
                c.insert(k.clone(), v.clone());
            }
        }
        self.signer().sign(&claims)
    }

    fn token_answer(
        &self,
        resource: &str,
        subject: &Value,
        refresh_for: Option<(&str, &str, &str)>,
    ) -> Response {
        let lifetime = self.lifetime.load(Ordering::SeqCst);
        let token = self.access_token(resource, subject, lifetime);
        if resource == ADO_RESOURCE {
            self.ado_tokens_issued.fetch_add(1, Ordering::SeqCst);
        }
        let mut body = json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        });
        if let Some((client_id, oid, upn)) = refresh_for {
            let rt = self.next_id("fake-refresh-token");
            self.refresh_tokens.lock().expect("rts").insert(
                rt.clone(),
                IssuedRefresh {
                    client_id: client_id.to_owned(),
                    user_oid: oid.to_owned(),
                    upn: upn.to_owned(),
                },
            );
            body["refresh_token"] = json!(rt);
            body["scope"] = json!(format!("{ADO_RESOURCE}/user_impersonation"));
            body["id_token"] = json!(self.signer().sign(&json!({
                "aud": client_id, "iss": self.issuer(), "tid": TENANT, "oid": oid,
                "preferred_username": upn, "name": "Test Admin",
                "iat": now(), "nbf": now() - 5, "exp": exp_in(3600),
            })));
        }
        (StatusCode::OK, Json(body)).into_response()
    }
}

/// Entra's error answer.
pub fn entra_error(status: StatusCode, error: &str, code: u64, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description}\r\nTrace ID: 0000-trace\r\nCorrelation ID: 0000-correlation\r\nTimestamp: 2025-01-01 00:00:00Z"
        ),
        "error_codes": [code],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": "0000-trace",
        "correlation_id": "0000-correlation",
        "error_uri": format!("https://{ENTRA_HOST}/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

fn device_error(error: &str, code: u64, description: &str) -> Response {
    entra_error(StatusCode::BAD_REQUEST, error, code, description)
}

/// `499b…/.default offline_access` → `499b…`
fn resource_of(scope: &str) -> Option<String> {
    scope
        .split_whitespace()
        .find(|s| !["offline_access", "openid", "profile", "email"].contains(s))
        .map(|s| s.strip_suffix("/.default").unwrap_or(s).to_owned())
}

/// The clock skew the simulated organization allows on the tokens it receives (real services
/// allow minutes). Without it, a token renewed one second ahead of expiry (the 2-second tokens
/// of the long-run tests) could expire in flight whenever the machine is busy.
const ADO_CLOCK_SKEW: u64 = 5;

pub struct FakeEntra {
    pub state: Arc<EntraState>,
    pub addr: SocketAddr,
}

impl FakeEntra {
    async fn start() -> Self {
        let pool = key_pool();
        let mut apps = HashMap::new();
        apps.insert(
            API_APP.to_owned(),
            AppReg {
                secret: Some(API_SECRET.into()),
                federated_subjects: vec![MI_SYSTEM_OID.into(), MI_USER_OID.into()],
                oid: "api-app-sp-oid".into(),
                ado_consent: true,
                ..Default::default()
            },
        );
        apps.insert(
            SP_APP.to_owned(),
            AppReg {
                secret: Some(SP_SECRET.into()),
                oid: SP_OID.into(),
                ..Default::default()
            },
        );
        apps.insert(
            WORKLOAD_APP.to_owned(),
            AppReg {
                federated_subjects: vec![WORKLOAD_SUBJECT.into()],
                oid: "workload-sp-oid".into(),
                ..Default::default()
            },
        );
        apps.insert(
            LOGIN_APP.to_owned(),
            AppReg {
                public_client: true,
                oid: "login-app-sp-oid".into(),
                ado_consent: true,
                ..Default::default()
            },
        );
        // The authority contains the port, known only once the server listens: the router
        // reads the state from a cell filled right after.
        let cell: EntraCell = Arc::new(OnceLock::new());
        let addr = serve_tls(entra_router(cell.clone())).await;
        let state = Arc::new(EntraState {
            authority: format!("https://{ENTRA_HOST}:{}", addr.port()),
            keys: Mutex::new(vec![pool[0].clone()]),
            active: AtomicUsize::new(0),
            apps: Mutex::new(apps),
            refresh_tokens: Mutex::new(HashMap::new()),
            devices: Mutex::new(HashMap::new()),
            device_script: Mutex::new(DeviceScript {
                pending: 1,
                slow_down_at: None,
                outcome: DeviceOutcome::Approve,
            }),
            lifetime: AtomicU64::new(3600),
            grants: Mutex::new(Vec::new()),
            ado_tokens_issued: AtomicUsize::new(0),
            device_polls: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
            unconsented: Mutex::new(HashSet::new()),
            counter: AtomicUsize::new(0),
        });
        let _ = cell.set(state.clone());
        Self { state, addr }
    }

    pub fn authority(&self) -> String {
        self.state.authority.clone()
    }

    /// The same server as `https://127.0.0.1:<port>`, for another process (see the module docs).
    /// Tokens still name [`Self::issuer`].
    pub fn loopback_authority(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// The user `oid` has not consented (and no admin consented for them): on-behalf-of
    /// exchanges of their tokens are refused with AADSTS65001.
    pub fn withhold_consent(&self, oid: &str) {
        self.state
            .unconsented
            .lock()
            .expect("consents")
            .insert(oid.to_owned());
    }

    pub fn issuer(&self) -> String {
        self.state.issuer()
    }

    pub fn set_lifetime(&self, seconds: u64) {
        self.state.lifetime.store(seconds, Ordering::SeqCst);
    }

    pub fn app(&self, client_id: &str) -> AppReg {
        self.state.apps.lock().expect("apps")[client_id].clone()
    }

    pub fn set_app(&self, client_id: &str, reg: AppReg) {
        self.state
            .apps
            .lock()
            .expect("apps")
            .insert(client_id.to_owned(), reg);
    }

    /// A refresh token as `patreport login` would have stored it.
    pub fn issue_refresh_token(&self, client_id: &str) -> String {
        let rt = self.state.next_id("fake-refresh-token");
        self.state.refresh_tokens.lock().expect("rts").insert(
            rt.clone(),
            IssuedRefresh {
                client_id: client_id.into(),
                user_oid: ADMIN_OID.into(),
                upn: ADMIN_UPN.into(),
            },
        );
        rt
    }

    /// Every refresh token stops working (password reset, admin revocation).
    pub fn revoke_refresh_tokens(&self) {
        self.state.refresh_tokens.lock().expect("rts").clear();
    }

    pub fn live_refresh_tokens(&self) -> usize {
        self.state.refresh_tokens.lock().expect("rts").len()
    }

    pub fn script_device(&self, script: DeviceScript) {
        *self.state.device_script.lock().expect("script") = script;
    }

    pub fn grants(&self) -> Vec<String> {
        self.state.grants.lock().expect("grants").clone()
    }

    pub fn ado_tokens_issued(&self) -> usize {
        self.state.ado_tokens_issued.load(Ordering::SeqCst)
    }

    /// Publish a second key and sign with it from now on (Entra's key rollover).
    pub fn roll_keys(&self) {
        let mut keys = self.state.keys.lock().expect("keys");
        if keys.len() == 1 {
            keys.push(key_pool()[1].clone());
        }
        self.state.active.store(1, Ordering::SeqCst);
    }

    /// A caller's access token for the patreport API.
    pub fn caller_token(&self, extra: Value) -> String {
        let mut claims = json!({
            "aud": API_APP,
            "iss": self.issuer(),
            "tid": TENANT,
            "oid": "caller-oid",
            "sub": "caller-sub",
            "name": "Casey Caller",
            "preferred_username": "casey@contoso.test",
            "scp": "access_as_user",
            "iat": now(),
            "nbf": now() - 5,
            "exp": exp_in(3600),
            "ver": "2.0",
        });
        if let (Some(c), Some(s)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in s {
                c.insert(k.clone(), v.clone());
            }
        }
        self.state.signer().sign(&claims)
    }

    /// Sign arbitrary claims with the active key.
    pub fn sign(&self, claims: &Value) -> String {
        self.state.signer().sign(claims)
    }

    /// The kid Entra currently signs with.
    pub fn active_kid(&self) -> String {
        self.state.signer().kid
    }

    /// What the simulated Azure DevOps checks: an Entra token for Azure DevOps, correctly
    /// signed, not expired (no leeway). Records the `oid` of every accepted token.
    pub fn ado_validator(&self) -> (impl Fn(&str) -> bool + Send + Sync + 'static, Arc<AdoSeen>) {
        let state = self.state.clone();
        let seen = Arc::new(AdoSeen::default());
        let record = seen.clone();
        let validator = move |token: &str| match state.verify_with_leeway(
            token,
            &[ADO_RESOURCE],
            ADO_CLOCK_SKEW,
        ) {
            Ok(claims) => {
                if let Some(oid) = claims["oid"].as_str() {
                    record.oids.lock().expect("oids").insert(oid.to_owned());
                }
                record
                    .tokens
                    .lock()
                    .expect("tokens")
                    .insert(token.to_owned());
                true
            }
            Err(_) => {
                record.refused.fetch_add(1, Ordering::SeqCst);
                false
            }
        };
        (validator, seen)
    }
}

/// What the simulated Azure DevOps saw.
#[derive(Default)]
pub struct AdoSeen {
    pub oids: Mutex<HashSet<String>>,
    pub tokens: Mutex<HashSet<String>>,
    pub refused: AtomicUsize,
}

impl AdoSeen {
    pub fn oids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.oids.lock().expect("oids").iter().cloned().collect();
        v.sort();
        v
    }
    pub fn distinct_tokens(&self) -> usize {
        self.tokens.lock().expect("tokens").len()
    }
}

type EntraCell = Arc<OnceLock<Arc<EntraState>>>;

fn entra_router(cell: EntraCell) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(device_code_endpoint),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks_endpoint))
        .with_state(cell)
}

async fn jwks_endpoint(State(cell): State<EntraCell>, Path(tenant): Path<String>) -> Response {
    let Some(state) = cell.get() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    if tenant != TENANT {
        return StatusCode::NOT_FOUND.into_response();
    }
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = state
        .keys
        .lock()
        .expect("keys")
        .iter()
        .map(|k| k.jwk.clone())
        .collect();
    Json(json!({ "keys": keys })).into_response()
}

async fn device_code_endpoint(
    State(cell): State<EntraCell>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(state) = cell.get() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    if tenant != TENANT {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            "Tenant not found.",
        );
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let public = state
        .apps
        .lock()
        .expect("apps")
        .get(&client_id)
        .is_some_and(|a| a.public_client);
    if !public {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let device_code = state.next_id("fake-device-code");
    state.devices.lock().expect("devices").insert(
        device_code.clone(),
        DeviceState {
            client_id,
            scope: form.get("scope").cloned().unwrap_or_default(),
            polls: 0,
        },
    );
    Json(json!({
        "device_code": device_code,
        "user_code": "FAKE-CODE",
        "verification_uri": "https://microsoft.com/devicelogin",
        "expires_in": 900,
        // Zero lets the client's minimum interval decide (tests set it to milliseconds).
        "interval": 0,
        "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code FAKE-CODE to authenticate.",
    }))
    .into_response()
}

/// The confidential client's proof: a secret, or a federated assertion we issued.
fn client_authenticated(
    state: &EntraState,
    client_id: &str,
    form: &HashMap<String, String>,
) -> Result<AppReg, Response> {
    let Some(app) = state.apps.lock().expect("apps").get(client_id).cloned() else {
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    };
    if let Some(secret) = form.get("client_secret") {
        return if app.secret.as_deref() == Some(secret.as_str()) {
            Ok(app)
        } else {
            Err(entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            ))
        };
    }
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err(entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "Invalid client_assertion_type.",
            ));
        }
        // A certificate assertion names the certificate by its thumbprint.
        if let Some(thumbprint) = jsonwebtoken::decode_header(assertion)
            .ok()
            .and_then(|h| h.x5t_s256)
        {
            verify_certificate_assertion(state, &app, client_id, assertion, &thumbprint)?;
            return Ok(app);
        }
        // Workload identity tokens come from the cluster's issuer; ours are unsigned-for-Entra
        // JWTs whose `sub` is checked. Managed identity tokens are Entra tokens we verify.
        let subject = match state.verify(assertion, &[EXCHANGE_AUDIENCE]) {
            Ok(claims) => claims["sub"].as_str().unwrap_or_default().to_owned(),
            Err(_) => jsonwebtoken::dangerous::insecure_decode::<Value>(assertion)
                .ok()
                .filter(|d| d.claims["iss"] == "https://oidc.fake-cluster.test")
                .and_then(|d| d.claims["sub"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        return if app.federated_subjects.contains(&subject) {
            Ok(app)
        } else {
            Err(entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                70021,
                "No matching federated identity record found for presented assertion.",
            ))
        };
    }
    if app.public_client {
        return Ok(app);
    }
    Err(entra_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ))
}

async fn token_endpoint(
    State(cell): State<EntraCell>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(state) = cell.get() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    if tenant != TENANT {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    state.grants.lock().expect("grants").push(grant.clone());
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    // The device-code grant names no scope: it was given when the code was issued.
    let scope = match form.get("device_code") {
        Some(code) => state
            .devices
            .lock()
            .expect("devices")
            .get(code)
            .map(|d| d.scope.clone())
            .unwrap_or_default(),
        None => form.get("scope").cloned().unwrap_or_default(),
    };
    let Some(resource) = resource_of(&scope) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    };
    match grant.as_str() {
        "client_credentials" => {
            let app = match client_authenticated(state, &client_id, &form) {
                Ok(app) => app,
                Err(r) => return r,
            };
            state.token_answer(
                &resource,
                &json!({"oid": app.oid, "sub": app.oid, "appid": client_id, "idtyp": "app"}),
                None,
            )
        }
        "refresh_token" => {
            let app = match client_authenticated(state, &client_id, &form) {
                Ok(app) => app,
                Err(r) => return r,
            };
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            // Strict rotation: a redeemed refresh token is gone (real Entra keeps the old one
            // valid; being stricter proves the rotated one is used and written back).
            let Some(issued) = state.refresh_tokens.lock().expect("rts").remove(&rt) else {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity. The token was issued on 2024-01-01 and was inactive for 90.00:00:00.",
                );
            };
            if issued.client_id != client_id {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    70000,
                    "Provided grant is invalid or malformed.",
                );
            }
            if !app.ado_consent && resource == ADO_RESOURCE {
                return consent_required(&client_id);
            }
            state.token_answer(
                &resource,
                &json!({"oid": issued.user_oid, "sub": issued.user_oid, "upn": issued.upn, "scp": "user_impersonation", "appid": client_id}),
                Some((&client_id, &issued.user_oid, &issued.upn)),
            )
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            let app = match client_authenticated(state, &client_id, &form) {
                Ok(app) => app,
                Err(r) => return r,
            };
            if form.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'requested_token_use'.",
                );
            }
            let assertion = form.get("assertion").cloned().unwrap_or_default();
            let api_uri = format!("api://{client_id}");
            let claims = match state.verify(&assertion, &[client_id.as_str(), api_uri.as_str()]) {
                Ok(c) => c,
                Err(kind) if kind.contains("ExpiredSignature") => {
                    return entra_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        500133,
                        "Assertion is not within its valid time range.",
                    );
                }
                Err(_) => {
                    return entra_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        50013,
                        "Assertion failed signature validation or its audience is not this application.",
                    );
                }
            };
            let oid = claims["oid"].as_str().unwrap_or("unknown").to_owned();
            if !app.ado_consent || state.unconsented.lock().expect("consents").contains(&oid) {
                return consent_required(&client_id);
            }
            let upn = claims["preferred_username"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            state.token_answer(
                &resource,
                &json!({"oid": oid, "sub": oid, "upn": upn, "scp": "user_impersonation", "appid": client_id}),
                scope.contains("offline_access").then_some((client_id.as_str(), oid.as_str(), upn.as_str())),
            )
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            state.device_polls.fetch_add(1, Ordering::SeqCst);
            let code = form.get("device_code").cloned().unwrap_or_default();
            let script = state.device_script.lock().expect("script").clone();
            let polls = {
                let mut devices = state.devices.lock().expect("devices");
                let Some(device) = devices.get_mut(&code) else {
                    return device_error(
                        "bad_verification_code",
                        70019,
                        "Verification code is not recognized.",
                    );
                };
                if device.client_id != client_id {
                    return device_error("invalid_grant", 70000, "Provided grant is invalid.");
                }
                device.polls += 1;
                device.polls
            };
            if script.slow_down_at == Some(polls) {
                return device_error("slow_down", 70023, "Slow down.");
            }
            let extra = usize::from(script.slow_down_at.is_some_and(|s| s <= script.pending));
            if polls <= script.pending + extra {
                return device_error(
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                );
            }
            state.devices.lock().expect("devices").remove(&code);
            match script.outcome {
                DeviceOutcome::Decline => device_error("authorization_declined", 70017, "The user declined the sign-in."),
                DeviceOutcome::Expire => device_error("expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. The code has expired."),
                DeviceOutcome::Approve => state.token_answer(
                    &resource,
                    &json!({"oid": ADMIN_OID, "sub": ADMIN_OID, "upn": ADMIN_UPN, "scp": "user_impersonation", "appid": client_id}),
                    Some((&client_id, ADMIN_OID, ADMIN_UPN)),
                ),
            }
        }
        other => entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
    }
}

fn consent_required(client_id: &str) -> Response {
    let body = json!({
        "error": "invalid_grant",
        "error_description": format!("AADSTS65001: The user or administrator has not consented to use the application with ID '{client_id}' named 'patreport'. Send an interactive authorization request for this user and resource.\r\nTrace ID: t\r\nCorrelation ID: c"),
        "error_codes": [65001],
        "suberror": "consent_required",
        "trace_id": "t",
        "correlation_id": "c",
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

// ---------------------------------------------------------------------------------------------
// Managed identity (App Service / Functions protocol, api-version 2019-08-01)

pub struct FakeManagedIdentity {
    pub endpoint: String,
    pub requests: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct MiState {
    entra: Arc<EntraState>,
    requests: Arc<AtomicUsize>,
}

impl FakeManagedIdentity {
    pub async fn start_on(listener: std::net::TcpListener, entra: &FakeEntra) -> Self {
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = TcpListener::from_std(listener).expect("listener");
        let requests = Arc::new(AtomicUsize::new(0));
        let router = Router::new()
            .route("/msi/token", get(mi_endpoint))
            .with_state(MiState {
                entra: entra.state.clone(),
                requests: requests.clone(),
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            endpoint: format!("http://{addr}/msi/token"),
            requests,
        }
    }
}

async fn mi_endpoint(
    State(state): State<MiState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(MI_HEADER_SECRET)
    {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-IDENTITY-HEADER",
        )
            .into_response();
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return (StatusCode::BAD_REQUEST, "unsupported api-version").into_response();
    }
    let Some(resource) = query.get("resource").cloned() else {
        return (StatusCode::BAD_REQUEST, "resource is required").into_response();
    };
    let (oid, client_id) = match query.get("client_id").map(String::as_str) {
        None => (MI_SYSTEM_OID, "mi-system-client-id"),
        Some(MI_USER_CLIENT_ID) => (MI_USER_OID, MI_USER_CLIENT_ID),
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"statusCode": 400, "message": "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."})),
            )
                .into_response();
        }
    };
    let lifetime = state.entra.lifetime.load(Ordering::SeqCst);
    let token = state.entra.access_token(
        &resource,
        &json!({"oid": oid, "sub": oid, "appid": client_id, "idtyp": "app"}),
        lifetime,
    );
    if resource == ADO_RESOURCE {
        state.entra.ado_tokens_issued.fetch_add(1, Ordering::SeqCst);
    }
    Json(json!({
        "access_token": token,
        "expires_on": (now() + lifetime).to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": client_id,
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Key Vault secrets

#[derive(Clone, Debug)]
pub struct VaultVersion {
    pub value: String,
    pub tags: HashMap<String, String>,
    pub content_type: Option<String>,
}

pub struct VaultState {
    entra: Arc<EntraState>,
    challenge: String,
    pub secrets: Mutex<HashMap<String, Vec<VaultVersion>>>,
    pub writes: AtomicUsize,
    pub reads: AtomicUsize,
    /// `oid`s of callers that read or wrote.
    pub callers: Mutex<HashSet<String>>,
}

pub struct FakeVault {
    pub url: String,
    pub state: Arc<VaultState>,
    pub addr: SocketAddr,
}

impl FakeVault {
    async fn start(entra: &FakeEntra) -> Self {
        let state = Arc::new(VaultState {
            entra: entra.state.clone(),
            challenge: format!(
                "Bearer authorization=\"{}/{TENANT}\", resource=\"{VAULT_RESOURCE}\"",
                entra.authority()
            ),
            secrets: Mutex::new(HashMap::new()),
            writes: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
            callers: Mutex::new(HashSet::new()),
        });
        let router = Router::new()
            .route("/secrets/{name}", get(vault_get).put(vault_put))
            .route("/secrets/{name}/", get(vault_get))
            .with_state(state.clone());
        let addr = serve_tls(router).await;
        Self {
            url: format!("https://{VAULT_HOST}:{}", addr.port()),
            state,
            addr,
        }
    }

    pub fn put(&self, name: &str, value: &str) {
        self.state
            .secrets
            .lock()
            .expect("secrets")
            .entry(name.to_owned())
            .or_default()
            .push(VaultVersion {
                value: value.to_owned(),
                tags: HashMap::new(),
                content_type: None,
            });
    }

    pub fn latest(&self, name: &str) -> Option<VaultVersion> {
        self.state
            .secrets
            .lock()
            .expect("secrets")
            .get(name)
            .and_then(|v| v.last().cloned())
    }

    pub fn versions(&self, name: &str) -> usize {
        self.state
            .secrets
            .lock()
            .expect("secrets")
            .get(name)
            .map_or(0, Vec::len)
    }
}

fn vault_auth(state: &VaultState, headers: &HeaderMap) -> Result<(), Response> {
    let challenge = || {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})),
        )
            .into_response();
        if let Ok(v) = state.challenge.parse() {
            r.headers_mut().insert("www-authenticate", v);
        }
        r
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(challenge)?;
    let claims = state
        .entra
        .verify(token, &[VAULT_RESOURCE])
        .map_err(|_| challenge())?;
    if let Some(oid) = claims["oid"].as_str() {
        state
            .callers
            .lock()
            .expect("callers")
            .insert(oid.to_owned());
    }
    Ok(())
}

fn secret_body(host: &str, name: &str, version: usize, v: &VaultVersion) -> Value {
    json!({
        "value": v.value,
        "id": format!("https://{host}/secrets/{name}/{version:032x}"),
        "contentType": v.content_type,
        "tags": v.tags,
        "attributes": {"enabled": true, "created": now(), "updated": now(), "recoveryLevel": "Recoverable+Purgeable"},
    })
}

async fn vault_get(
    State(state): State<Arc<VaultState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = vault_auth(&state, &headers) {
        return r;
    }
    state.reads.fetch_add(1, Ordering::SeqCst);
    let secrets = state.secrets.lock().expect("secrets");
    match secrets.get(&name).and_then(|v| v.last().map(|l| (v.len(), l))) {
        Some((n, latest)) => Json(secret_body(VAULT_HOST, &name, n, latest)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "SecretNotFound", "message": format!("A secret with (name/id) {name} was not found in this key vault.")}})),
        )
            .into_response(),
    }
}

async fn vault_put(
    State(state): State<Arc<VaultState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = vault_auth(&state, &headers) {
        return r;
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let Some(value) = parsed["value"].as_str() else {
        return (StatusCode::BAD_REQUEST, "no value").into_response();
    };
    let tags: HashMap<String, String> = parsed["tags"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let version = VaultVersion {
        value: value.to_owned(),
        tags,
        content_type: parsed["contentType"].as_str().map(str::to_owned),
    };
    state.writes.fetch_add(1, Ordering::SeqCst);
    let mut secrets = state.secrets.lock().expect("secrets");
    let versions = secrets.entry(name.clone()).or_default();
    versions.push(version.clone());
    Json(secret_body(VAULT_HOST, &name, versions.len(), &version)).into_response()
}

// ---------------------------------------------------------------------------------------------
// Everything together

/// Fake Entra + fake Key Vault (+ optionally the managed identity endpoint), and the runtime
/// that reaches them.
pub struct TestCloud {
    pub entra: FakeEntra,
    pub vault: FakeVault,
    pub http: reqwest::Client,
}

impl TestCloud {
    pub async fn start() -> Self {
        let entra = FakeEntra::start().await;
        let vault = FakeVault::start(&entra).await;
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_der(&pki().ca_der).expect("CA")])
            .resolve(ENTRA_HOST, entra.addr)
            .resolve(VAULT_HOST, vault.addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("client");
        Self { entra, vault, http }
    }

    pub fn runtime(&self) -> AuthRuntime {
        AuthRuntime::with_http_client(self.http.clone())
    }

    /// Settings for `mode` pointing at this cloud.
    pub fn settings(
        &self,
        mode: patreport::credentials::AuthMode,
    ) -> patreport::credentials::CredentialSettings {
        let mut s = patreport::credentials::CredentialSettings::new(mode);
        s.authority_host =
            patreport::entra::parse_authority_host(&self.entra.authority()).expect("host");
        s.tenant_id = Some(TENANT.into());
        s.key_vault_url = Some(self.vault.url.parse().expect("vault url"));
        s
    }
}

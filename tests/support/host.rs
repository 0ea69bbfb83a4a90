//! A stand-in for the Azure Functions host (Core Tools cannot be installed here), playing its
//! part of the custom-handler contract (docs/contracts.md, "Azure Functions custom handler")
//! from the real `host.json` and `*/function.json` files:
//!
//! * starts the built binary with the `arguments` of host.json, `FUNCTIONS_CUSTOMHANDLER_PORT`
//!   and the app settings, and pings `GET /` every 25 ms (30 s limit) until it answers;
//! * routes `/api/...` requests by each HTTP function's `route` and `methods`; forwards the
//!   raw request to functions with exactly one `httpTrigger` in and one `http` out
//!   (`IsHttpInAndOutFunction`, with `enableForwardingHttpRequest`), and sends every other
//!   function the JSON invocation payload, shaped as `GetRequestAsJObject` does (`Query` as a
//!   JSON string, `Headers` as arrays, `Body` as text);
//! * checks every JSON invocation's answer: 2xx, `Content-Type: application/json`, an object
//!   with `Outputs`, `Logs` and `ReturnValue`; an `http` output must carry `StatusCode`,
//!   `Status`, `Body` and `Headers` (newer hosts reject it otherwise);
//! * writes queue outputs to the Azurite queue as the host does (a string that is valid
//!   base64 becomes bytes; stored base64-encoded, `messageEncoding: base64`);
//! * runs queue triggers: gets a message, sends `Data.<name>` as the host's
//!   `JsonConvert.SerializeObject(text)` (the message text quoted once more) with `Metadata`
//!   (`DequeueCount` as a string, quoted `Id` and `PopReceipt`, times, `sys`); deletes it on
//!   2xx; otherwise leaves it to reappear and, once `DequeueCount` reaches `maxDequeueCount`,
//!   moves it to `<queue>-poison`. The visibility timeout is 1 s here instead of host.json's
//!   minute, to keep tests short.
//!
//! Callers: [`FunctionHost::http`] sends the bearer token set with
//! [`FunctionHost::set_bearer`] (the app authorizes every HTTP request);
//! [`FunctionHost::http_as`] sends another one, or none.

use super::queue::{QueueClient, QueueMessage, decode_base64_text};
use super::{repo_root, scratch_dir};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const HOST_VERSION: &str = "4.1037.0.0";
/// Where the simulated host pretends to be reachable (`func start`'s default).
pub const PUBLIC_BASE: &str = "http://localhost:7071";

#[derive(Debug, Clone)]
pub struct Binding {
    pub kind: String,
    pub direction: String,
    pub name: String,
    pub raw: Value,
}

impl Binding {
    fn str(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub name: String,
    pub bindings: Vec<Binding>,
}

impl FunctionDef {
    pub fn inputs(&self) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(|b| b.direction.eq_ignore_ascii_case("in"))
    }
    pub fn outputs(&self) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(|b| b.direction.eq_ignore_ascii_case("out"))
    }
    pub fn trigger(&self) -> Option<&Binding> {
        self.inputs()
            .find(|b| b.kind.to_ascii_lowercase().ends_with("trigger"))
    }
    /// `FunctionMetadataExtensions.IsHttpInAndOutFunction`.
    pub fn is_http_in_and_out(&self) -> bool {
        let inputs: Vec<_> = self.inputs().collect();
        let outputs: Vec<_> = self.outputs().collect();
        inputs.len() == 1
            && outputs.len() == 1
            && inputs[0].kind.eq_ignore_ascii_case("httpTrigger")
            && outputs[0].kind.eq_ignore_ascii_case("http")
    }
}

/// Every `<dir>/function.json` under the app root.
pub fn load_functions(root: &Path) -> Vec<FunctionDef> {
    let mut functions = Vec::new();
    for entry in std::fs::read_dir(root)
        .expect("read the app root")
        .flatten()
    {
        let file = entry.path().join("function.json");
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read function.json");
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        let bindings = value["bindings"]
            .as_array()
            .unwrap_or_else(|| panic!("{} has no bindings", file.display()))
            .iter()
            .map(|b| Binding {
                kind: b["type"].as_str().expect("binding type").to_owned(),
                direction: b["direction"]
                    .as_str()
                    .expect("binding direction")
                    .to_owned(),
                name: b["name"].as_str().expect("binding name").to_owned(),
                raw: b.clone(),
            })
            .collect();
        functions.push(FunctionDef {
            name: entry.file_name().to_string_lossy().into_owned(),
            bindings,
        });
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    functions
}

/// What the (simulated) host answered an HTTP caller.
#[derive(Debug, Clone)]
pub struct HostResponse {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl HostResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One JSON invocation, as the host saw it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    pub status: u16,
    pub logs: Vec<String>,
    pub outputs: Map<String, Value>,
}

/// What a queue run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueRun {
    pub delivered: usize,
    pub completed: usize,
    pub failed: usize,
    pub poisoned: usize,
}

pub struct FunctionHost {
    pub port: u16,
    pub functions: Vec<FunctionDef>,
    pub queues: QueueClient,
    pub invocations: Arc<Mutex<Vec<Invocation>>>,
    host_json: Value,
    http: reqwest::Client,
    /// `Authorization: Bearer` of [`Self::http`].
    bearer: Option<String>,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The port in the handler's "listening on 127.0.0.1 port=N" log line.
fn listening_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("listening on 127.0.0.1"))?;
    let at = line.find("port=")? + "port=".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|p| *p > 0)
}

/// The `Values` of local.settings.sample.json.
pub fn sample_settings() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo_root().join("local.settings.sample.json"))
        .expect("read local.settings.sample.json");
    let value: Value = serde_json::from_str(&text).expect("local.settings.sample.json is JSON");
    value["Values"]
        .as_object()
        .expect("Values")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().expect("settings are strings").to_owned(),
            )
        })
        .collect()
}

impl FunctionHost {
    /// Start the handler with these app settings and wait until it answers `GET /`.
    pub async fn start(settings: &BTreeMap<String, String>, queue_endpoint: &str) -> FunctionHost {
        let root = repo_root();
        let host_json: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("host.json")).expect("read host.json"),
        )
        .expect("host.json is JSON");
        let description = &host_json["customHandler"]["description"];
        let arguments: Vec<String> = description["arguments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // Port 0: the handler takes a free port and logs it (`port=N`), which
        // `wait_until_ready` reads; no other process can race for it.
        let port = 0;
        let dir = scratch_dir("patreport-host-");
        let log = dir.path().join("handler.log");
        let log_file = std::fs::File::create(&log).expect("handler log");
        // As `AzureFunctionsJobHost__customHandler__description__defaultExecutablePath` does
        // for `func start`: the debug binary instead of the deployed one.
        let mut command = Command::new(env!("CARGO_BIN_EXE_patreport"));
        command
            .args(&arguments)
            .current_dir(&root)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(settings)
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env(
                "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
                "00000000-0000-0000-0000-000000000001",
            )
            .env("FUNCTIONS_HTTPWORKER_PORT", port.to_string())
            .env("FUNCTIONS_APP_ROOT_PATH", &root)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        let child = command.spawn().expect("start patreport serve");
        let mut host = FunctionHost {
            port,
            functions: load_functions(&root),
            queues: QueueClient::new(queue_endpoint),
            invocations: Arc::new(Mutex::new(Vec::new())),
            host_json,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(300))
                .build()
                .expect("HTTP client"),
            bearer: None,
            child,
            log,
            _dir: dir,
        };
        host.wait_until_ready().await;
        host
    }

    /// `IsWorkerReady`: any HTTP answer to `GET /`, polled every 25 ms for 30 s (once the
    /// handler has logged the port it took).
    async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        while self.port == 0 && started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the handler exited ({status}) before it was ready; its log:\n{}",
                    self.log_text()
                );
            }
            self.port = listening_port(&self.log_text()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let url = format!("http://127.0.0.1:{}/", self.port);
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the handler exited ({status}) before it was ready; its log:\n{}",
                    self.log_text()
                );
            }
            if self
                .http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the handler did not answer GET / within 30 s; its log:\n{}",
            self.log_text()
        );
    }

    /// Stop the handler as the platform does (SIGTERM) and wait for it to exit: its exit status,
    /// or `None` if it is still running after `timeout` (it is killed then).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        None
    }

    /// The handler's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn handler_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn forwarding_enabled(&self) -> bool {
        self.host_json["customHandler"]["enableForwardingHttpRequest"]
            .as_bool()
            .unwrap_or(false)
    }

    fn route_prefix(&self) -> String {
        self.host_json["extensions"]["http"]["routePrefix"]
            .as_str()
            .unwrap_or("api")
            .to_owned()
    }

    fn max_dequeue_count(&self) -> u32 {
        self.host_json["extensions"]["queues"]["maxDequeueCount"]
            .as_u64()
            .unwrap_or(5) as u32
    }

    fn function(&self, name: &str) -> &FunctionDef {
        self.functions
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no function folder {name}"))
    }

    fn invocation_headers(&self) -> Vec<(String, String)> {
        vec![
            ("X-Azure-Functions-InvocationId".into(), new_guid()),
            ("X-Azure-Functions-HostVersion".into(), HOST_VERSION.into()),
            (
                "User-Agent".into(),
                format!("Azure-Functions-Host/{HOST_VERSION}"),
            ),
        ]
    }

    /// The caller's access token [`Self::http`] sends from now on.
    pub fn set_bearer(&mut self, token: impl Into<String>) {
        self.bearer = Some(token.into());
    }

    /// An HTTP request from the caller (with its bearer token, unless `headers` has an
    /// `Authorization`), e.g. `("POST", "/api/PatReport?org=x")`.
    pub async fn http(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HostResponse {
        self.http_as(
            self.bearer.as_deref(),
            method,
            path_and_query,
            headers,
            body,
        )
        .await
    }

    /// An HTTP request with `bearer` as the caller's token, or without any token.
    pub async fn http_as(
        &self,
        bearer: Option<&str>,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HostResponse {
        let authorization = bearer.map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(value) = &authorization
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            all.push(("Authorization", value));
        }
        let headers = all.as_slice();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let Some((function, params)) = self.route(method, path) else {
            // The host's own answer: no function has this route (or not for this method).
            return HostResponse {
                status: 404,
                headers: BTreeMap::new(),
                body: Vec::new(),
            };
        };
        if function.is_http_in_and_out() && self.forwarding_enabled() {
            return self.forward(method, path_and_query, headers, body).await;
        }
        self.invoke_http(function, method, path, query, &params, headers, body)
            .await
    }

    fn route(&self, method: &str, path: &str) -> Option<(FunctionDef, BTreeMap<String, String>)> {
        let prefix = self.route_prefix();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (first, rest) = segments.split_first()?;
        if !first.eq_ignore_ascii_case(&prefix) {
            return None;
        }
        for function in &self.functions {
            let Some(trigger) = function
                .trigger()
                .filter(|t| t.kind.eq_ignore_ascii_case("httpTrigger"))
            else {
                continue;
            };
            let template = trigger.str("route").unwrap_or(&function.name);
            let methods: Option<Vec<String>> = trigger.raw["methods"].as_array().map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect()
            });
            if methods
                .as_ref()
                .is_some_and(|m| !m.contains(&method.to_ascii_lowercase()))
            {
                continue;
            }
            let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
            if parts.len() != rest.len() {
                continue;
            }
            let mut params = BTreeMap::new();
            let matched = parts.iter().zip(rest).all(|(part, seg)| {
                if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    params.insert(name.to_owned(), (*seg).to_owned());
                    true
                } else {
                    part.eq_ignore_ascii_case(seg)
                }
            });
            if matched {
                return Some((function.clone(), params));
            }
        }
        None
    }

    /// `ProcessHttpInAndOutInvocationRequest`: the caller's request as it is, plus the
    /// invocation headers; the handler's answer goes back unchanged.
    async fn forward(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HostResponse {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, self.handler_url(path_and_query));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        for (k, v) in self.invocation_headers() {
            request = request.header(k, v);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.expect("forward to the handler");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        HostResponse {
            status,
            headers,
            body: response.bytes().await.expect("handler body").to_vec(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn invoke_http(
        &self,
        function: FunctionDef,
        method: &str,
        path: &str,
        query: &str,
        params: &BTreeMap<String, String>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HostResponse {
        let trigger = function.trigger().expect("http trigger").name.clone();
        let query_map: Map<String, Value> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        let mut header_map = Map::new();
        header_map.insert("Host".into(), json!(["localhost:7071"]));
        for (k, v) in headers {
            header_map.insert((*k).to_owned(), json!([v]));
        }
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            header_map.insert("Content-Length".into(), json!([body.len().to_string()]));
        }
        let url = if query.is_empty() {
            format!("{PUBLIC_BASE}{path}")
        } else {
            format!("{PUBLIC_BASE}{path}?{query}")
        };
        let mut req = Map::new();
        req.insert("Url".into(), json!(url));
        req.insert("Method".into(), json!(method.to_ascii_uppercase()));
        req.insert(
            "Query".into(),
            Value::String(Value::Object(query_map.clone()).to_string()),
        );
        req.insert("Headers".into(), Value::Object(header_map.clone()));
        req.insert(
            "Params".into(),
            serde_json::to_value(params).expect("params"),
        );
        req.insert("Identities".into(), json!("[]"));
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            req.insert("Body".into(), json!(body));
        }
        let mut metadata = Map::new();
        metadata.insert("Query".into(), Value::Object(query_map));
        metadata.insert("Headers".into(), Value::Object(header_map));
        for (k, v) in params {
            metadata.insert(k.clone(), json!(v));
        }
        metadata.insert("sys".into(), sys(&function.name));
        let payload =
            json!({ "Data": { trigger: Value::Object(req) }, "Metadata": Value::Object(metadata) });

        let Some(outputs) = self.invoke(&function.name, &payload).await else {
            return HostResponse {
                status: 500,
                headers: BTreeMap::new(),
                body: Vec::new(),
            };
        };
        self.write_queue_outputs(&function, &outputs).await;
        let res = function
            .outputs()
            .find(|b| b.kind.eq_ignore_ascii_case("http"))
            .expect("http output")
            .name
            .clone();
        http_response_from_output(&function.name, outputs.get(&res))
    }

    /// POST a JSON invocation to `/{function}` and check the answer against the contract.
    /// `None` when the handler answered non-2xx (the invocation failed, as the host sees it).
    pub async fn invoke(&self, function: &str, payload: &Value) -> Option<Map<String, Value>> {
        let mut request = self
            .http
            .post(self.handler_url(&format!("/{function}")))
            .json(payload);
        for (k, v) in self.invocation_headers() {
            request = request.header(k, v);
        }
        let response = request.send().await.expect("invoke the handler");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.bytes().await.expect("invocation body");
        if !(200..300).contains(&status) {
            self.invocations.lock().unwrap().push(Invocation {
                function: function.into(),
                status,
                logs: vec![],
                outputs: Map::new(),
            });
            return None;
        }
        assert!(
            content_type.starts_with("application/json"),
            "{function}: the answer must be application/json, was '{content_type}'"
        );
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{function}: the answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        let object = body
            .as_object()
            .unwrap_or_else(|| panic!("{function}: the answer must be a JSON object, was {body}"));
        for key in ["Outputs", "Logs", "ReturnValue"] {
            assert!(
                object.contains_key(key),
                "{function}: the answer has no {key}: {body}"
            );
        }
        let outputs = object["Outputs"]
            .as_object()
            .unwrap_or_else(|| panic!("{function}: Outputs must be an object: {body}"))
            .clone();
        let logs: Vec<String> = object["Logs"]
            .as_array()
            .unwrap_or_else(|| panic!("{function}: Logs must be an array: {body}"))
            .iter()
            .map(|l| {
                l.as_str()
                    .unwrap_or_else(|| panic!("{function}: log entries must be strings: {body}"))
                    .to_owned()
            })
            .collect();
        self.invocations.lock().unwrap().push(Invocation {
            function: function.into(),
            status,
            logs,
            outputs: outputs.clone(),
        });
        Some(outputs)
    }

    /// `GetBindingValue` + the queue output binding: every message to its queue.
    async fn write_queue_outputs(&self, function: &FunctionDef, outputs: &Map<String, Value>) {
        for binding in function
            .outputs()
            .filter(|b| b.kind.eq_ignore_ascii_case("queue"))
        {
            let queue = binding.str("queueName").expect("queueName");
            let messages = match outputs.get(&binding.name) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items.clone(),
                Some(other) => vec![other.clone()],
            };
            for message in messages {
                let bytes = match message {
                    // A string that happens to be base64 is taken as bytes, as the host does.
                    Value::String(s) => base64::engine::general_purpose::STANDARD
                        .decode(&s)
                        .unwrap_or_else(|_| s.into_bytes()),
                    other => other.to_string().into_bytes(),
                };
                self.queues
                    .put(
                        queue,
                        &base64::engine::general_purpose::STANDARD.encode(bytes),
                    )
                    .await;
            }
        }
    }

    /// The timer fires: `Data.<timer>` is `timer_info` (a `TimerInfo` as JSON).
    pub async fn fire_timer(&self, function: &str, timer_info: Value) -> Map<String, Value> {
        let def = self.function(function).clone();
        let trigger = def.trigger().expect("timer trigger").name.clone();
        let payload =
            json!({ "Data": { trigger: timer_info }, "Metadata": { "sys": sys(function) } });
        let outputs = self
            .invoke(function, &payload)
            .await
            .unwrap_or_else(|| panic!("{function} failed"));
        self.write_queue_outputs(&def, &outputs).await;
        outputs
    }

    /// Run the queue triggers until their queues are empty (or `timeout` passes).
    pub async fn run_queues(&self, timeout: Duration) -> QueueRun {
        let deadline = Instant::now() + timeout;
        let mut run = QueueRun::default();
        let triggers: Vec<(FunctionDef, String, String)> = self
            .functions
            .iter()
            .filter_map(|f| {
                let t = f.trigger()?;
                t.kind.eq_ignore_ascii_case("queueTrigger").then(|| {
                    (
                        f.clone(),
                        t.name.clone(),
                        t.str("queueName").unwrap_or("").to_owned(),
                    )
                })
            })
            .collect();
        loop {
            let mut worked = false;
            for (function, binding, queue) in &triggers {
                if let Some(message) = self.queues.get(queue, 1).await {
                    worked = true;
                    run.delivered += 1;
                    self.deliver(function, binding, queue, message, &mut run)
                        .await;
                }
            }
            if worked {
                continue;
            }
            let mut pending = 0;
            for (_, _, queue) in &triggers {
                pending += self.queues.count(queue).await;
            }
            if pending == 0 {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "queues not drained in {timeout:?}; handler log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn deliver(
        &self,
        function: &FunctionDef,
        binding: &str,
        queue: &str,
        message: QueueMessage,
        run: &mut QueueRun,
    ) {
        let text = decode_base64_text(&message.text);
        let quoted = |s: &str| Value::String(serde_json::to_string(s).expect("quote"));
        let payload = json!({
            "Data": { binding: serde_json::to_string(&text).expect("quote") },
            "Metadata": {
                "DequeueCount": message.dequeue_count.to_string(),
                "ExpirationTime": message.expiration_time,
                "Id": quoted(&message.id),
                "InsertionTime": message.insertion_time,
                "NextVisibleTime": message.next_visible,
                "PopReceipt": quoted(&message.pop_receipt),
                "sys": sys(&function.name),
            }
        });
        match self.invoke(&function.name, &payload).await {
            Some(outputs) => {
                self.write_queue_outputs(function, &outputs).await;
                self.queues.delete(queue, &message).await;
                run.completed += 1;
            }
            None if message.dequeue_count >= self.max_dequeue_count() => {
                self.queues
                    .put(&format!("{queue}-poison"), &message.text)
                    .await;
                self.queues.delete(queue, &message).await;
                run.failed += 1;
                run.poisoned += 1;
            }
            None => run.failed += 1,
        }
    }

    /// The Logs of every invocation of `function` so far.
    pub fn logs_of(&self, function: &str) -> Vec<String> {
        self.invocations
            .lock()
            .unwrap()
            .iter()
            .filter(|i| i.function == function)
            .flat_map(|i| i.logs.clone())
            .collect()
    }
}

impl Drop for FunctionHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Outputs.<res>` → the caller's response, as `HttpOutputBindingResponse` +
/// `HttpBinding.ParseResponseObject` + `ScriptObjectResult` make it.
fn http_response_from_output(function: &str, output: Option<&Value>) -> HostResponse {
    let output = output.unwrap_or_else(|| panic!("{function}: no http output in Outputs"));
    let object = output
        .as_object()
        .unwrap_or_else(|| panic!("{function}: the http output must be an object: {output}"));
    let get = |key: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    };
    for key in ["StatusCode", "Status", "Body", "Headers"] {
        assert!(
            get(key).is_some_and(|v| !v.is_null()),
            "{function}: Output body should have 'StatusCode', 'Status', 'Body', and 'Headers' (missing {key}): {output}"
        );
    }
    let status = [get("statusCode"), get("status")]
        .into_iter()
        .flatten()
        .find_map(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(200) as u16;
    let headers: BTreeMap<String, String> = get("Headers")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{function}: Headers must be an object: {output}"))
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    let json_type = headers
        .get("content-type")
        .is_some_and(|t| t.contains("json"));
    let body = match get("Body") {
        None | Some(Value::Null) => Vec::new(),
        // The JSON formatter quotes a string once more when the content type is JSON.
        Some(Value::String(s)) if json_type => serde_json::to_vec(s).expect("quote"),
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(other) => serde_json::to_vec(other).expect("body"),
    };
    HostResponse {
        status,
        headers,
        body,
    }
}

fn sys(method: &str) -> Value {
    json!({
        "MethodName": method,
        "UtcNow": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "RandGuid": new_guid(),
    })
}

fn new_guid() -> String {
    patreport::domain::guid(fastrand::u128(..))
}

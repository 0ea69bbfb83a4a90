//! The Azure Functions custom handler (`patreport serve`).
//!
//! # Functions
//!
//! | function | trigger | how the host calls us |
//! |---|---|---|
//! | `PatReport` | HTTP `POST /api/PatReport` | JSON invocation (`Data.req` → `Outputs.res` + `Outputs.job`) |
//! | `PatReportStatus` | HTTP `GET /api/PatReport/runs/{id}` | forwarded raw |
//! | `PatReportLatest` | HTTP `GET /api/PatReport/latest` | forwarded raw |
//! | `PatReportTimer` | timer `%PATREPORT_SCHEDULE%` | JSON invocation (`Outputs.jobs`) |
//! | `PatReportWorker` | queue `patreport-jobs` | JSON invocation |
//! | `PatReportPoison` | queue `patreport-jobs-poison` | JSON invocation |
//!
//! # Why `PatReport` is not forwarded
//!
//! The host forwards the raw HTTP request only to a function with exactly one `httpTrigger`
//! input and one `http` output (`IsHttpInAndOutFunction`; docs/contracts.md, "Forwarded HTTP
//! requests"). `PatReport` also has a **queue output binding**, so the host sends it the JSON
//! invocation payload instead and
//! writes the job message to the queue itself. We chose this over forwarding plus our own
//! queue client because:
//! * the timer enqueues through the very same kind of binding, so there is one way jobs reach
//!   the queue, with the host's encoding (base64) and its connection (`AzureWebJobsStorage`,
//!   identity-based in Azure) — no queue client, no queue SAS, no extra role to grant;
//! * the message is written only when the invocation succeeds, after the run was recorded,
//!   so a run cannot be queued without a status document.
//!
//! (A GA `azure_storage_queue` 1.1.0 crate does exist; it would have worked too, at the cost
//! of a second path to the queue.) The read-only endpoints have no extra binding and stay
//! forwarded, which keeps their answers plain HTTP. The host simulator in
//! `tests/support/host.rs` reads the real `function.json` files and applies the same rule.
//!
//! # Who may ask, and with whose rights
//!
//! Every HTTP function first authorizes the caller (`auth::CallerPolicy`, built once at
//! start-up). `PATREPORT_HTTP_RUNS` decides how an authorized request is run: `queue` (the
//! default) queues a job that the worker runs with the app's credential (`PATREPORT_AUTH`);
//! `on-behalf-of` exchanges the caller's token while answering, then scans in this process
//! ([`in_process`]) with the caller's own rights, because the caller's token must not travel
//! through a queue or a blob. Scheduled runs always use `PATREPORT_AUTH`.

pub mod endpoints;
pub mod in_process;
pub mod job;
pub mod poison;
pub mod protocol;
pub mod reply;
pub mod revoke;
pub mod router;
pub mod server;
pub mod state;
pub mod timer;
pub mod ui;
pub mod worker;

pub use router::router;
pub use server::serve;
pub use state::AppState;

//! The simulator's configuration: authentication, faults, paging, the revocation batch
//! limit and the audit log.

use super::audit::AuditConfig;
use super::auth::AuthConfig;
use super::faults::FaultConfig;
use super::paging::PagingConfig;

/// The batch size of Microsoft's revocation sample, the largest known to work.
const DEFAULT_REVOCATION_BATCH_LIMIT: usize = 990;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub auth: AuthConfig,
    pub faults: FaultConfig,
    pub paging: PagingConfig,
    /// Most authorization ids one revocation request may carry; more is a 400. The real limit
    /// is not published; Microsoft's sample sends batches of 990 (docs/contracts.md,
    /// "Revocations").
    pub revocation_batch_limit: usize,
    /// When set, every Token Admin request (listings and revocations) waits for a permit of this gate: a test lets the
    /// scan go exactly as far as it wants to observe it there, whatever the machine's speed.
    pub gate: Option<Gate>,
    /// The Audit Log route: on or answering 403, retention, batch sizes.
    pub audit: AuditConfig,
}

/// A latch the test holds: Token Admin requests pass one permit each.
#[derive(Debug, Clone)]
pub struct Gate(std::sync::Arc<tokio::sync::Semaphore>);

impl Gate {
    /// A gate that lets nothing through yet.
    pub fn closed() -> Self {
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(0)))
    }

    /// Let `n` more requests through.
    pub fn let_through(&self, n: usize) {
        self.0.add_permits(n);
    }

    /// Let everything through from now on.
    pub fn open(&self) {
        self.0.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    pub(super) async fn pass(&self) {
        if let Ok(permit) = self.0.acquire().await {
            permit.forget();
        }
    }
}

impl SimConfig {
    /// Faithful and strict, with no random faults: what most tests use. Accepts
    /// [`DEMO_PAT`](super::DEMO_PAT) and [`DEMO_BEARER`](super::DEMO_BEARER); Graph pages
    /// are uneven (500, 495, 33, an empty one, 500 ...); Token Admin pages hold exactly
    /// `pageSize` (default 20, at most 100).
    pub fn strict() -> Self {
        SimConfig {
            auth: AuthConfig::default(),
            faults: FaultConfig::none(),
            paging: PagingConfig::default(),
            revocation_batch_limit: DEFAULT_REVOCATION_BATCH_LIMIT,
            gate: None,
            audit: AuditConfig::default(),
        }
    }

    /// `patreport report --demo`: as [`strict`](Self::strict), plus occasional 429s and
    /// transient 500s, delayed 200s, rate-limit headers, BOMs and uneven Token Admin pages.
    pub fn demo() -> Self {
        SimConfig {
            faults: FaultConfig::demo(),
            paging: PagingConfig {
                pat_uneven_pages: true,
                ..PagingConfig::default()
            },
            ..Self::strict()
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::strict()
    }
}

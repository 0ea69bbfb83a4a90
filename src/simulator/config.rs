//! The simulator's configuration: authentication, faults and paging.

use super::auth::AuthConfig;
use super::faults::FaultConfig;
use super::paging::PagingConfig;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub auth: AuthConfig,
    pub faults: FaultConfig,
    pub paging: PagingConfig,
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

//! `[status_lists]` settings: who may fetch lists, how long verifiers may cache them, and how
//! many indices a list holds.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;

/// 2^20 indices: 256 KiB of 2-bit values, a few hundred bytes compressed while most agree.
pub const DEFAULT_LIST_SIZE: u32 = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
pub struct StatusListSettings {
    /// Serve lists without an API key (otherwise role `meeting`, or admin).
    #[serde(default)]
    pub public: bool,
    /// The `ttl` claim: how long a verifier may cache a list, in seconds.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// Indices in each new list; a list that is full is followed by a new one. Lists already
    /// created keep their size.
    #[serde(default = "default_list_size")]
    pub list_size: u32,
}

fn default_ttl() -> u64 {
    60
}

fn default_list_size() -> u32 {
    DEFAULT_LIST_SIZE
}

impl Default for StatusListSettings {
    fn default() -> Self {
        StatusListSettings {
            public: false,
            ttl_seconds: default_ttl(),
            list_size: default_list_size(),
        }
    }
}

/// The size new lists get, for `services::status_lists::allocate` (whose callers pass no
/// settings); set at start-up by [`StatusListSettings::install`].
static LIST_SIZE: AtomicU32 = AtomicU32::new(DEFAULT_LIST_SIZE);

impl StatusListSettings {
    /// Check the values an operator may set.
    pub fn validate(&self) -> Result<(), String> {
        if self.ttl_seconds == 0 || self.ttl_seconds > 86_400 {
            return Err("ttl_seconds must be between 1 and 86400".into());
        }
        if !(8..=(1 << 24)).contains(&self.list_size) {
            return Err("list_size must be between 8 and 16777216".into());
        }
        Ok(())
    }

    /// Make `list_size` the size of lists this process creates.
    pub fn install(&self) {
        LIST_SIZE.store(self.list_size, Ordering::Relaxed);
    }

    /// How long a signed list stays valid (`exp` − `iat`): at least four `ttl`s and five
    /// minutes, so a verifier that caches it for `ttl` never holds an expired list.
    pub fn lifetime_seconds(&self) -> i64 {
        (self.ttl_seconds.saturating_mul(4)).max(300) as i64
    }
}

/// The size of lists created from now on in this process.
pub fn new_list_size() -> u32 {
    LIST_SIZE.load(Ordering::Relaxed)
}

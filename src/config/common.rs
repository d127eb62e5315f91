//! What every destination's section has beside its platform's own settings (`Common`): its
//! limits, consent, identity wait, mode and sample.

use serde::{Deserialize, Serialize};

use super::rollout::Mode;
use crate::core::plan::{ConsentPurpose, OnPersonalDataDenied};

mod defaults {
    pub fn concurrency() -> usize {
        8
    }
    pub fn timeout_ms() -> u64 {
        10_000
    }
    pub fn identity_wait_secs() -> u64 {
        900
    }
}

/// Settings every destination has.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Most requests in flight to this destination at once.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// Per-request timeout.
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    /// Most requests per minute to this destination (none: no limit beyond `concurrency`).
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    #[serde(default)]
    pub consent: ConsentConfig,
    /// How long a delivery whose event lacks the identity this destination needs waits for an
    /// identity capture of its subject (from the event's receipt), pending `awaiting_identity`,
    /// before it ends `skipped:no_identity`. 0: skipped at once.
    #[serde(default = "defaults::identity_wait_secs")]
    pub identity_wait_secs: u64,
    /// `live` sends; `validate` checks each payload against the platform and counts nothing.
    #[serde(default)]
    pub mode: Mode,
    /// `[destinations.sample]`: only these kinds and/or this share of subjects are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<crate::core::plan::Sample>,
}

impl Default for Common {
    fn default() -> Self {
        Self {
            concurrency: defaults::concurrency(),
            timeout_ms: defaults::timeout_ms(),
            requests_per_minute: None,
            consent: ConsentConfig::default(),
            identity_wait_secs: defaults::identity_wait_secs(),
            mode: Mode::Live,
            sample: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentConfig {
    /// The consent without which nothing is sent: `analytics` or `ad_user_data`.
    pub purpose: ConsentPurpose,
    /// When `ad_user_data` is denied: `strip` the personal fields and send, or `skip`.
    pub on_personal_data_denied: OnPersonalDataDenied,
    /// Treat consent an event does not state as granted.
    pub assume_granted: bool,
}

impl ConsentConfig {
    /// The policy planning applies.
    pub fn policy(&self) -> crate::core::plan::ConsentPolicy {
        crate::core::plan::ConsentPolicy {
            purpose: self.purpose,
            on_personal_data_denied: self.on_personal_data_denied,
            assume_granted: self.assume_granted,
        }
    }
}

impl Default for ConsentConfig {
    fn default() -> Self {
        Self {
            purpose: ConsentPurpose::Analytics,
            on_personal_data_denied: OnPersonalDataDenied::Strip,
            assume_granted: false,
        }
    }
}

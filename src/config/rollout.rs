//! A destination's roll-out settings, shared by every platform: `mode = "live" | "validate"` and
//! `[destinations.sample]` (README "Roll out on a small scope").

use serde::{Deserialize, Serialize};

use crate::core::plan::Sample;
use crate::core::Kind;

/// What a destination does with what is due to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Send for real.
    #[default]
    Live,
    /// Build every payload and check it against the platform's validation route, count nothing,
    /// and end the delivery `skipped:validate_only` with the platform's verdict.
    Validate,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Validate => "validate",
        }
    }
}

/// Every problem of one destination's `sample`, as `destinations.NAME.sample.KEY: why`;
/// `routed` lists the kinds the catalog routes to the destination.
pub fn sample_problems(name: &str, sample: &Sample, routed: &[&str], p: &mut Vec<String>) {
    if let Some(kinds) = &sample.kinds {
        if kinds.is_empty() {
            p.push(format!(
                "destinations.{name}.sample.kinds: lists no kind, so nothing would be sent; list at least one, or \
                 leave kinds out"
            ));
        }
        for kind in kinds {
            if let Err(e) = Kind::parse(kind) {
                p.push(format!("destinations.{name}.sample.kinds: the kind {e}"));
            } else if !routed.contains(&kind.as_str()) {
                p.push(format!(
                    "destinations.{name}.sample.kinds: the catalog routes no '{kind}' to this destination \
                     (routed: {})",
                    if routed.is_empty() { "none".to_owned() } else { routed.join(", ") }
                ));
            }
        }
    }
    if let Some(share) = sample.share {
        if !(0.0..=1.0).contains(&share) {
            p.push(format!("destinations.{name}.sample.share: {share} is not a share between 0 and 1 (0.1 = 10%)"));
        }
    }
}

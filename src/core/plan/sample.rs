//! A destination's `sample`: which deliveries a roll-out lets through (only some kinds, and/or a
//! share of subjects). Pure: the same event is sampled the same way on every host and every run,
//! so each event of one subject (its order, refund and chargeback) goes the same way.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::Event;

/// `[destinations.sample]`: what a destination's roll-out admits. Every limit set must admit an
/// event; no limit set admits everything.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Only these kinds (`order_paid`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// This share of subjects, 0 to 1, chosen by a stable hash of the subject's type and id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

impl Sample {
    /// Whether this sample lets `event` through.
    pub fn admits(&self, event: &Event) -> bool {
        let kind_ok = self.kinds.as_ref().is_none_or(|kinds| kinds.iter().any(|k| k == event.kind.as_str()));
        let share_ok = self.share.is_none_or(|share| subject_in_share(&event.subject.kind, &event.subject.id, share));
        kind_ok && share_ok
    }

    /// Why `event` is held back, for the delivery's messages (`None`: it is admitted).
    pub fn refusal(&self, event: &Event) -> Option<String> {
        if self.admits(event) {
            return None;
        }
        let mut limits = Vec::new();
        if let Some(kinds) = &self.kinds {
            limits.push(format!("kinds = [{}]", kinds.join(", ")));
        }
        if let Some(share) = self.share {
            limits.push(format!("share = {share}"));
        }
        Some(format!(
            "held back by the destination's sample ({}): subject {}:{}, kind {}",
            limits.join(", "),
            event.subject.kind,
            event.subject.id,
            event.kind.as_str()
        ))
    }

    /// One line for the console and the CLI: `kinds order_paid; share 10%`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(kinds) = &self.kinds {
            parts.push(format!("kinds {}", kinds.join(", ")));
        }
        if let Some(share) = self.share {
            // Rounded to a millionth of a share: 0.07 reads 7%, not 7.000000000000001%.
            parts.push(format!("share {}%", (share * 1e6).round() / 1e4));
        }
        if parts.is_empty() {
            "no limit".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// Where a subject falls in [0, 1): the first 8 bytes of SHA-256 over `type:id`, as a fraction
/// (unambiguous: a subject type may not contain ':', `core::event::Subject::parse`). SHA-256
/// rather than a std hasher: its value is fixed for good, across versions and hosts.
pub fn subject_position(subject_type: &str, subject_id: &str) -> f64 {
    let digest = Sha256::new().chain_update(subject_type).chain_update(":").chain_update(subject_id).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits of the hash, so the fraction is exact and below 1.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a subject is in a `share` (0 to 1) of all subjects. Growing the share only adds
/// subjects: one admitted at 0.1 is admitted at 0.5.
pub fn subject_in_share(subject_type: &str, subject_id: &str, share: f64) -> bool {
    subject_position(subject_type, subject_id) < share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_always_falls_in_the_same_place() {
        let a = subject_position("order", "1042");
        assert_eq!(a, subject_position("order", "1042"));
        assert!((0.0..1.0).contains(&a));
        assert_ne!(a, subject_position("order", "1043"));
        // The type is part of the subject: a customer 1042 is another subject.
        assert_ne!(a, subject_position("customer", "1042"));
    }

    #[test]
    fn a_sample_reads_as_a_person_writes_it() {
        let s = Sample { kinds: Some(vec!["order_paid".into(), "lead_qualified".into()]), share: Some(0.07) };
        assert_eq!(s.describe(), "kinds order_paid, lead_qualified; share 7%");
        assert_eq!(Sample::default().describe(), "no limit");
    }

    #[test]
    fn a_share_admits_about_that_share_and_only_grows() {
        let ids: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let count = |share: f64| ids.iter().filter(|id| subject_in_share("order", id, share)).count();
        let tenth = count(0.1);
        assert!((800..1200).contains(&tenth), "{tenth} of 10000 at 10%");
        assert_eq!(count(0.0), 0);
        assert_eq!(count(1.0), 10_000);
        for id in &ids {
            if subject_in_share("order", id, 0.1) {
                assert!(subject_in_share("order", id, 0.5), "{id} left the sample when it grew");
            }
        }
    }
}

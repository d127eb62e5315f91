//! Decisions both stores make the same way, kept apart from their SQL: whether a delivery may be
//! replayed, and how a platform's follow-up answer settles a request's deliveries.

use crate::core::delivery::reason;
use crate::core::{Consent, DeliveryState, Identity};
use crate::delivery::FollowUp;
use crate::store::{IdentityCapture, StoreError};

/// Why a delivery in `state` may not be replayed (with or without `force`), if it may not.
pub(crate) fn replay_refusal(state: DeliveryState, force: bool) -> Option<&'static str> {
    match state {
        DeliveryState::Pending | DeliveryState::Claimed | DeliveryState::Sending => {
            Some("not ended: it is already queued or in flight")
        }
        DeliveryState::Delivered if !force => Some("already delivered: replay with force to send it again"),
        DeliveryState::Skipped if !force => {
            Some("skipped by the plan: replay with force to send it anyway (the time window still applies)")
        }
        _ => None,
    }
}

/// How a final answer settles the request's deliveries: state, reason, messages.
pub(crate) type Settlement = Option<(DeliveryState, &'static str, Vec<String>)>;

/// The request's new follow-up summary, and how its deliveries settle (none: ask again).
pub(crate) fn follow_up_settlement(answer: &FollowUp) -> (String, Settlement) {
    match answer {
        FollowUp::NotYet => ("processing".into(), None),
        FollowUp::Error(e) => (format!("could not ask: {e}"), None),
        FollowUp::Accepted => ("accepted".into(), Some((DeliveryState::Delivered, "accepted", vec![]))),
        FollowUp::Partial { messages } => (
            format!("partially accepted: {}", messages.join("; ")),
            Some((DeliveryState::Delivered, "partially_accepted", messages.clone())),
        ),
        FollowUp::Failed { messages } => (
            format!("processing failed: {}", messages.join("; ")),
            Some((DeliveryState::Rejected, "processing_failed", messages.clone())),
        ),
        // Still delivered (the platform took it), but what it kept will never be known.
        FollowUp::Unconfirmed(why) => {
            (format!("gave up: {why}"), Some((DeliveryState::Delivered, reason::PROCESSING_UNKNOWN, vec![why.clone()])))
        }
    }
}

/// The bridge entry after a capture: every identity field and consent purpose the capture states
/// replaces the older one; what it does not state stays.
pub(crate) fn merge_capture(
    (identity, mut consent): (Identity, Consent),
    capture: &IdentityCapture,
) -> Result<(Identity, Consent), StoreError> {
    let mut merged = serde_json::to_value(&identity)?;
    if let (Some(m), serde_json::Value::Object(n)) = (merged.as_object_mut(), serde_json::to_value(&capture.identity)?)
    {
        m.extend(n);
    }
    for (target, source) in [
        (&mut consent.analytics, capture.consent.analytics),
        (&mut consent.ad_user_data, capture.consent.ad_user_data),
        (&mut consent.ad_personalization, capture.consent.ad_personalization),
    ] {
        if source.is_some() {
            *target = source;
        }
    }
    Ok((serde_json::from_value(merged)?, consent))
}

/// A delivery found `sending` after a crash: sent again where the platform dedupes on our id
/// (`resend`), else left `in_doubt` for a person (SPEC G4). State, attempt outcome, detail.
pub(crate) fn after_crash(resend: bool) -> (DeliveryState, &'static str, &'static str) {
    if resend {
        (
            DeliveryState::Pending,
            "in_doubt_resend",
            "crashed while sending; the platform dedupes on our id, so it is sent again",
        )
    } else {
        (
            DeliveryState::InDoubt,
            "in_doubt",
            "crashed while sending; the platform does not dedupe, so it is left for a person to settle",
        )
    }
}

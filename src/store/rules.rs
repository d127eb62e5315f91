//! Decisions both stores make the same way, kept apart from their SQL: whether a delivery may be
//! replayed, and how a platform's follow-up answer settles a request's deliveries.

use crate::core::delivery::reason;
use crate::core::FollowUp;
use crate::core::{Consent, DeliveryState, Identity};
use crate::store::{IdentityCapture, SettledAs, StoreError};

/// Why a delivery in `state` (ended with `reason`) may not be replayed (with or without
/// `force`), if it may not. A person's settlement stands unless a replay is forced.
pub(crate) fn replay_refusal(state: DeliveryState, reason: Option<&str>, force: bool) -> Option<&'static str> {
    match state {
        DeliveryState::Pending | DeliveryState::Claimed | DeliveryState::Sending => {
            Some("not ended: it is already queued or in flight")
        }
        _ if !force && reason == Some(reason::SETTLED_BY_PERSON) => {
            Some("settled by a person: replay with force to send it anyway")
        }
        DeliveryState::Delivered if !force => Some("already delivered: replay with force to send it again"),
        // Held back by a roll-out setting (validate mode, a sample), not by anything about the
        // event: released by a plain replay, and re-planned under the configuration of the time.
        DeliveryState::Skipped if reason.is_some_and(|r| reason::RELEASABLE.contains(&r)) => None,
        DeliveryState::Skipped if !force => {
            Some("skipped by the plan: replay with force to send it anyway (the time window still applies)")
        }
        _ => None,
    }
}

/// The states a person settles: those that wait for one (`surety dlq list`).
pub(crate) const NEEDS_PERSON: [DeliveryState; 3] =
    [DeliveryState::Dead, DeliveryState::Rejected, DeliveryState::InDoubt];

/// The state a delivery now in `state` ends in when a person settles it `as`, or why it may not
/// be settled: only what needs a person is (not what was delivered, skipped or is still live).
pub(crate) fn settled_state(state: DeliveryState, settled_as: SettledAs) -> Result<DeliveryState, &'static str> {
    if !NEEDS_PERSON.contains(&state) {
        return Err(if state.is_ended() {
            "only a dead, rejected or in_doubt delivery can be settled"
        } else {
            "still queued or in flight: only a dead, rejected or in_doubt delivery can be settled"
        });
    }
    Ok(match settled_as {
        SettledAs::Delivered => DeliveryState::Delivered,
        // Ended without being sent, and counted so: planned = delivered + rejected + skipped +
        // dead + in_doubt + pending still holds, and it no longer waits for a person.
        SettledAs::NotDelivered => DeliveryState::Skipped,
    })
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
/// replaces the older one; what it does not state stays. A capture from the browser
/// (`from_browser`) only fills what the entry lacks: the page is untrusted, so it never
/// overwrites what a server-side source or an earlier capture stated.
pub(crate) fn merge_capture(
    (identity, mut consent): (Identity, Consent),
    capture: &IdentityCapture,
) -> Result<(Identity, Consent), StoreError> {
    let mut merged = serde_json::to_value(&identity)?;
    if let (Some(m), serde_json::Value::Object(n)) = (merged.as_object_mut(), serde_json::to_value(&capture.identity)?)
    {
        for (field, value) in n {
            if capture.from_browser {
                m.entry(field).or_insert(value);
            } else {
                m.insert(field, value);
            }
        }
    }
    for (target, source) in [
        (&mut consent.analytics, capture.consent.analytics),
        (&mut consent.ad_user_data, capture.consent.ad_user_data),
        (&mut consent.ad_personalization, capture.consent.ad_personalization),
    ] {
        if source.is_some() && !(capture.from_browser && target.is_some()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ConsentState, Subject};

    #[test]
    fn only_what_needs_a_person_is_settled_and_the_sql_list_agrees() {
        for state in DeliveryState::ALL {
            let needs = NEEDS_PERSON.contains(&state);
            assert_eq!(settled_state(state, SettledAs::Delivered).is_ok(), needs, "{state}");
            assert_eq!(crate::store::views::NEEDS_PERSON_SQL.contains(&format!("'{state}'")), needs, "{state}");
        }
        for state in NEEDS_PERSON {
            assert_eq!(settled_state(state, SettledAs::Delivered), Ok(DeliveryState::Delivered));
            assert_eq!(settled_state(state, SettledAs::NotDelivered), Ok(DeliveryState::Skipped));
        }
    }

    #[test]
    fn a_settled_delivery_is_replayed_only_when_forced() {
        for state in [DeliveryState::Delivered, DeliveryState::Skipped] {
            let refusal = replay_refusal(state, Some(reason::SETTLED_BY_PERSON), false);
            assert!(refusal.is_some_and(|r| r.contains("settled by a person")), "{state}: {refusal:?}");
            assert_eq!(replay_refusal(state, Some(reason::SETTLED_BY_PERSON), true), None);
        }
        assert_eq!(replay_refusal(DeliveryState::Dead, Some("attempts_exhausted"), false), None);
    }

    #[test]
    fn what_a_roll_out_held_back_is_released_without_force_and_no_other_skip_is() {
        for why in [reason::VALIDATE_ONLY, reason::NOT_SAMPLED] {
            assert_eq!(replay_refusal(DeliveryState::Skipped, Some(why), false), None, "{why}");
        }
        for why in [reason::CONSENT_DENIED, reason::OUTSIDE_WINDOW, reason::NO_IDENTITY, reason::BROWSER_TRACKED] {
            let refusal = replay_refusal(DeliveryState::Skipped, Some(why), false);
            assert!(refusal.is_some_and(|r| r.contains("skipped by the plan")), "{why}: {refusal:?}");
        }
        // Live ones stay refused whatever their reason.
        assert!(replay_refusal(DeliveryState::Pending, Some(reason::NOT_SAMPLED), false).is_some());
    }

    fn capture(
        client_id: &str,
        session_id: Option<&str>,
        analytics: ConsentState,
        from_browser: bool,
    ) -> IdentityCapture {
        IdentityCapture {
            subject: Subject { kind: "order".into(), id: "1042".into() },
            captured_at: chrono::Utc::now(),
            identity: Identity {
                client_id: Some(client_id.into()),
                session_id: session_id.map(Into::into),
                ..Identity::default()
            },
            consent: Consent { analytics: Some(analytics), ..Consent::default() },
            from_browser,
        }
    }

    #[test]
    fn a_browser_capture_adds_but_never_overwrites() {
        let server = capture("111.222", None, ConsentState::Denied, false);
        let entry = merge_capture(Default::default(), &server).unwrap();
        let forged = capture("666.666", Some("1700000000"), ConsentState::Granted, true);
        let (identity, consent) = merge_capture(entry.clone(), &forged).unwrap();
        assert_eq!(identity.client_id.as_deref(), Some("111.222"), "the server's client id stands");
        assert_eq!(consent.analytics, Some(ConsentState::Denied), "the server's consent stands");
        assert_eq!(identity.session_id.as_deref(), Some("1700000000"), "what was missing is added");

        // An earlier browser capture stands too; a server-side source still overwrites.
        let (identity, _) =
            merge_capture((identity, consent), &capture("777.777", None, ConsentState::Granted, true)).unwrap();
        assert_eq!(identity.session_id.as_deref(), Some("1700000000"));
        assert_eq!(identity.client_id.as_deref(), Some("111.222"));
        let (identity, consent) =
            merge_capture((identity, Consent::default()), &capture("333.444", None, ConsentState::Granted, false))
                .unwrap();
        assert_eq!(identity.client_id.as_deref(), Some("333.444"));
        assert_eq!(consent.analytics, Some(ConsentState::Granted));
    }
}

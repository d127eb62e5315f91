//! Stripe webhooks: `Stripe-Signature` verified on the raw body, then the event object mapped to
//! a canonical event. Event time is the Stripe event's `created` (when the state changed), never
//! the time the webhook arrived.

#![warn(clippy::arithmetic_side_effects)] // money and counts: overflow is refused, never wrapped

use chrono::DateTime;
use serde_json::{json, Map, Value};

use super::{capture_for, hmac_sha256, keyed_identity, put, same, text, MapError, Mapped, SignatureError};
use crate::config::sources::StripeSource;
use crate::config::SecretValue;
use crate::core::Subject;

/// Verifies `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` as Stripe's own libraries do (the
/// committed vectors were produced and checked by the official `stripe` package): any `v1`
/// matching any secret passes (secret rotation), compared in constant time; then the timestamp
/// may be at most `tolerance` seconds old. A future timestamp is accepted, as Stripe's libraries
/// accept it: it is signed, so only Stripe (with a skewed clock) can have made it, and replays
/// are old by nature.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretValue],
    now: i64,
    tolerance: u64,
) -> Result<(), SignatureError> {
    let header = header.filter(|h| !h.is_empty()).ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    // Items are split exactly as Stripe splits them: no trimming, items without '=' skipped.
    for (key, value) in header.split(',').filter_map(|item| item.split_once('=')) {
        match key {
            "t" => timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => candidates.push(value),
            _ => {} // v0 (legacy test mode) and future schemes are not trusted.
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::NoV1);
    }
    let matched = secrets.iter().any(|secret| {
        let expected = v1(secret.expose(), t, body);
        // `|` not `||`: every candidate is compared, whatever matched first.
        candidates.iter().fold(false, |found, c| found | same(expected.as_bytes(), c.as_bytes()))
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if now.saturating_sub(t) > tolerance as i64 {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// The `v1` signature Stripe computes: hex HMAC-SHA256 of `"<t>.<body>"`.
fn v1(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]))
}

/// A `Stripe-Signature` header as Stripe sends it (for the demo and for clients that relay).
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", v1(secret, t, body))
}

/// Currencies Stripe counts in whole units, and those with three decimals; all others have two.
const ZERO_DECIMAL: [&str; 16] =
    ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"];
const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

/// A Stripe amount (integer, smallest currency unit) in the currency's major unit.
pub fn major_units(amount: i64, currency: &str) -> f64 {
    let c = currency.to_ascii_uppercase();
    let divisor = if ZERO_DECIMAL.contains(&c.as_str()) {
        1.0
    } else if THREE_DECIMAL.contains(&c.as_str()) {
        1000.0
    } else {
        100.0
    };
    amount as f64 / divisor
}

/// The alias names under which an earlier event may have recorded this event's subject: its
/// payment intent and charge (`stripe:pi_…`, `stripe:ch_…`), most specific first.
pub fn alias_candidates(event: &Value) -> Vec<String> {
    let Some(object) = event.pointer("/data/object") else { return vec![] };
    let own = match object.get("object").and_then(Value::as_str) {
        Some("payment_intent" | "charge") => text(object.get("id")),
        _ => None,
    };
    [text(object.get("payment_intent")), text(object.get("charge")), text(object.get("latest_charge")), own]
        .into_iter()
        .flatten()
        .map(|id| format!("stripe:{id}"))
        .collect()
}

/// Maps a verified Stripe event (the whole JSON body) to canonical events. `known` is the subject
/// an alias of this event resolved to (see [`alias_candidates`]); the event's own
/// `metadata.order_id` still wins.
pub fn map(event: &Value, config: &StripeSource, known: Option<&Subject>) -> Result<Mapped, MapError> {
    let kind_of = event.get("type").and_then(Value::as_str).ok_or_else(|| MapError::new("type", "is missing"))?;
    let Some(kind) = config.events.get(kind_of) else {
        return Ok(Mapped::Ignored(format!("no kind is configured for Stripe event type {kind_of}")));
    };
    let created = event.get("created").and_then(Value::as_i64).ok_or_else(|| MapError::new("created", "is missing"))?;
    let occurred_at = DateTime::from_timestamp(created, 0)
        .ok_or_else(|| MapError::new("created", "is not a valid time"))?
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let obj = event.pointer("/data/object").unwrap_or(&Value::Null);
    let object = obj.as_object().ok_or_else(|| MapError::new("data.object", "is missing"))?;
    let object_type = object.get("object").and_then(Value::as_str).unwrap_or_default();
    let empty = Map::new();
    let metadata = object.get("metadata").and_then(Value::as_object).unwrap_or(&empty);
    let (mut identity, consent) = keyed_identity(&[metadata], &config.keys);
    let order_id = config.keys.order_id.iter().find_map(|k| text(metadata.get(k)));

    let currency = text(object.get("currency")).map(|c| c.to_ascii_uppercase());
    let amount = |field: &str| -> Option<f64> {
        let minor = object.get(field).and_then(Value::as_i64)?;
        Some(major_units(minor, currency.as_deref()?))
    };
    let payment_intent = text(object.get("payment_intent"));
    let mut attributes = Map::new();
    let mut subject: Option<(&str, String)> =
        order_id.clone().map(|id| ("order", id)).or_else(|| known.map(|s| (s.kind.as_str(), s.id.clone())));
    let value;
    let mut event_id = None;

    match (kind_of, object_type) {
        ("checkout.session.completed" | "checkout.session.async_payment_succeeded", _) => {
            if kind_of == "checkout.session.completed"
                && object.get("payment_status").and_then(Value::as_str) == Some("unpaid")
            {
                return Ok(Mapped::Ignored(
                    "the checkout session awaits payment (async_payment_succeeded follows)".into(),
                ));
            }
            value = amount("amount_total");
            subject = subject
                .or_else(|| text(object.get("client_reference_id")).map(|id| ("order", id)))
                .or_else(|| payment_intent.clone().map(|id| ("payment_intent", id)))
                .or_else(|| text(object.get("id")).map(|id| ("checkout_session", id)));
            if let Some(d) = object.get("customer_details").and_then(Value::as_object) {
                put(&mut identity, "email", text(d.get("email")));
                put(&mut identity, "phone", text(d.get("phone")));
                address(&mut identity, d.get("address"));
            }
            put(&mut identity, "email", text(object.get("customer_email")));
        }
        (_, "payment_intent") => {
            value = amount("amount_received").or_else(|| amount("amount"));
            subject = subject.or_else(|| text(object.get("id")).map(|id| ("payment_intent", id)));
            put(&mut identity, "email", text(object.get("receipt_email")));
            if let Some(s) = object.get("shipping").and_then(Value::as_object) {
                put(&mut identity, "phone", text(s.get("phone")));
                address(&mut identity, s.get("address"));
            }
        }
        (_, "charge") => {
            // The amount of this refund: the cumulative refunded amount minus what it was before.
            let total = object.get("amount_refunded").and_then(Value::as_i64).unwrap_or(0);
            let before = event.pointer("/data/previous_attributes/amount_refunded").and_then(Value::as_i64);
            let latest = obj.pointer("/refunds/data/0").and_then(Value::as_object);
            // Checked: a signed but absurd body (i64::MAX against a negative "before") must be
            // refused, not wrapped into a small plausible refund.
            let this = match (before, latest) {
                (Some(b), _) => total.checked_sub(b),
                (None, Some(r)) => Some(r.get("amount").and_then(Value::as_i64).unwrap_or(total)),
                (None, None) => Some(total),
            }
            .filter(|&this| this >= 0 && total >= 0)
            .ok_or_else(|| {
                MapError::new("data.object.amount_refunded", "must be a non-negative amount that only grows")
            })?;
            value = currency.as_deref().map(|c| major_units(this, c));
            subject = subject
                .or_else(|| payment_intent.clone().map(|id| ("payment_intent", id)))
                .or_else(|| text(object.get("id")).map(|id| ("charge", id)));
            // One event per refund: Stripe's refund id when the charge lists it, otherwise the
            // charge and its cumulative refunded amount (unique per refund, stable across
            // redeliveries).
            let refund = latest
                .and_then(|r| text(r.get("id")))
                .unwrap_or_else(|| format!("{}@{total}", text(object.get("id")).unwrap_or_default()));
            if let Some((t, id)) = &subject {
                event_id = Some(format!("{t}:{id}:{kind}:{refund}"));
            }
            attributes.insert("refunded_total".into(), json!(currency.as_deref().map(|c| major_units(total, c))));
            put(&mut identity, "email", text(object.get("receipt_email")));
            if let Some(b) = object.get("billing_details").and_then(Value::as_object) {
                put(&mut identity, "email", text(b.get("email")));
                put(&mut identity, "phone", text(b.get("phone")));
                address(&mut identity, b.get("address"));
            }
        }
        (_, "dispute") => {
            value = amount("amount");
            subject = subject.or_else(|| payment_intent.clone().map(|id| ("payment_intent", id)));
            if let Some((t, id)) = &subject {
                let dispute = text(object.get("id")).unwrap_or_default();
                event_id = Some(format!("{t}:{id}:{kind}:{dispute}"));
            }
            if let Some(reason) = text(object.get("reason")) {
                attributes.insert("dispute_reason".into(), Value::String(reason));
            }
        }
        (_, "invoice") => {
            let reason = object.get("billing_reason").and_then(Value::as_str).unwrap_or_default();
            if kind_of == "invoice.paid" && reason != "subscription_create" {
                return Ok(Mapped::Ignored(format!(
                    "invoice.paid with billing_reason {reason}: only the first invoice of a subscription starts it"
                )));
            }
            value = amount("amount_paid");
            let subscription = text(object.get("subscription"))
                .or_else(|| text(obj.pointer("/parent/subscription_details/subscription")));
            subject = subject.or_else(|| subscription.map(|id| ("subscription", id)));
            put(&mut identity, "email", text(object.get("customer_email")));
            put(&mut identity, "phone", text(object.get("customer_phone")));
        }
        (_, "subscription") => {
            let items = obj.pointer("/items/data").and_then(Value::as_array).cloned().unwrap_or_default();
            let lines: Option<Vec<(i64, i64)>> = items
                .iter()
                .map(|i| {
                    let unit = i.pointer("/price/unit_amount").and_then(Value::as_i64)?;
                    Some((unit, i.get("quantity").and_then(Value::as_i64).unwrap_or(1)))
                })
                .collect();
            let total = match lines {
                Some(lines) => Some(
                    lines
                        .into_iter()
                        .try_fold(0i64, |sum, (unit, q)| unit.checked_mul(q).and_then(|line| sum.checked_add(line)))
                        .ok_or_else(|| MapError::new("data.object.items", "the subscription's total overflows"))?,
                ),
                None => None,
            };
            value = total.zip(currency.as_deref()).map(|(t, c)| major_units(t, c));
            subject = subject.or_else(|| text(object.get("id")).map(|id| ("subscription", id)));
        }
        _ => {
            return Err(MapError::new(
                "data.object.object",
                format!("a {kind_of} event carrying a {object_type} cannot be mapped"),
            ))
        }
    }
    if let Some(pi) = payment_intent {
        attributes.insert("stripe_payment_intent".into(), Value::String(pi));
    }
    if let Some(customer) = text(object.get("customer")) {
        attributes.insert("stripe_customer".into(), Value::String(customer));
    }
    let (subject_type, subject_id) =
        subject.ok_or_else(|| MapError::new("data.object", "names no order, payment intent or subscription"))?;
    let mut canonical = json!({
        "kind": kind,
        "occurred_at": occurred_at,
        "subject": {"type": subject_type, "id": subject_id},
        "identity": identity,
        "consent": consent,
        "attributes": attributes,
    });
    if let Some(id) = event_id {
        canonical["event_id"] = Value::String(id);
    }
    if let Some(v) = value {
        canonical["value"] = json!(v);
        canonical["currency"] = json!(currency);
    }
    let capture = capture_for(&canonical);
    // Remember the order under the payment's other names, for the dispute that knows only those.
    let aliases = if subject_type == "order" { alias_candidates(event) } else { vec![] };
    Ok(Mapped::Events { events: vec![canonical], capture, aliases })
}

/// Stripe's address object (`line1`, `city`, `state`, `postal_code`, `country`).
fn address(identity: &mut Map<String, Value>, a: Option<&Value>) {
    let Some(a) = a.and_then(Value::as_object) else { return };
    put(identity, "street", text(a.get("line1")));
    put(identity, "city", text(a.get("city")));
    put(identity, "region", text(a.get("state")));
    put(identity, "postal_code", text(a.get("postal_code")));
    put(identity, "country", text(a.get("country")));
}

#[cfg(test)]
mod tests;

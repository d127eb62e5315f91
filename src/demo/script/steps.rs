//! The building blocks of the tour's steps: a step's heading, an `order_paid` event and a Stripe
//! payment as the tour posts them, posting with what each destination is expected to make of it,
//! and a free range of order numbers for this run.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{say, Expected, Tour};
use crate::demo::api::{event_id, planned, Api};

pub(in crate::demo) fn step(text: &str) {
    say(&format!("\n{text}"));
}

/// A canonical `order_paid` event; identity and consent only if given (else joined from the bridge).
pub(in crate::demo) fn order_paid(
    order: &str,
    occurred_at: &str,
    value: f64,
    method: &str,
    who: Option<(Value, Value)>,
) -> Value {
    let mut e = json!({
        "kind": "order_paid",
        "occurred_at": occurred_at,
        "subject": {"type": "order", "id": order},
        "value": value, "currency": "EUR",
        "items": [{"id": "SKU-LIN-01", "name": "Linen shirt", "price": value, "quantity": 1}],
        "attributes": {"payment_method": method},
    });
    if let Some((identity, consent)) = who {
        e["identity"] = identity;
        e["consent"] = consent;
    }
    e
}

/// A Stripe `payment_intent.succeeded` event for `order`, as Stripe sends it (amount in cents).
pub(in crate::demo) fn stripe_payment(order: &str, at: DateTime<Utc>, cents: i64) -> String {
    json!({
        "id": format!("evt_demo_{order}"), "object": "event", "type": "payment_intent.succeeded",
        "created": at.timestamp(), "livemode": false, "pending_webhooks": 1,
        "data": {"object": {
            "id": format!("pi_demo_{order}"), "object": "payment_intent", "status": "succeeded",
            "amount": cents, "amount_received": cents, "currency": "eur",
            "latest_charge": format!("ch_demo_{order}"), "metadata": {"order_id": order},
        }},
    })
    .to_string()
}

/// POSTs a signed Stripe webhook, prints the answer, tracks its event. Returns the event id.
pub(in crate::demo) async fn post_stripe(
    api: &Api,
    tour: &mut Tour,
    body: &str,
    story: &'static str,
    expect: Expected,
    expected_status: &str,
) -> anyhow::Result<String> {
    let a = api.stripe_webhook(body, crate::demo::setup::STRIPE_SECRET).await?;
    let first = a.body.pointer("/events/0").cloned().unwrap_or(Value::Null);
    let id = first.get("event_id").and_then(Value::as_str).unwrap_or("?").to_owned();
    let word = a.word();
    say(&format!(
        "    POST /v1/webhooks/stripe (payment_intent.succeeded, Stripe-Signature verified) → {} {word} · {id}{}",
        a.status.as_u16(),
        if word == "accepted" { format!(" · {}", planned(&first)) } else { String::new() }
    ));
    if a.status != 200 || word != expected_status {
        tour.surprises.push(format!("{id}: expected 200 {expected_status}, got {} {}", a.status.as_u16(), a.body));
    }
    tour.track(&id, story, expect, format!("{} {word}", a.status.as_u16()));
    Ok(id)
}

/// POSTs one event, prints the answer, tracks it. Returns the event id.
pub(in crate::demo) async fn post(
    api: &Api,
    tour: &mut Tour,
    event: &Value,
    story: &'static str,
    expect: Expected,
    expected_status: u16,
) -> anyhow::Result<String> {
    let a = api.ingest("/v1/events", event).await?;
    let id = event_id(event, &a);
    let word = a.word();
    say(&format!(
        "    POST /v1/events {id}  → {} {word}{}",
        a.status.as_u16(),
        match a.status.as_u16() {
            202 => format!(" · {}", planned(&a.body)),
            _ => String::new(),
        }
    ));
    if a.status != expected_status {
        tour.surprises.push(format!("{id}: expected HTTP {expected_status}, got {} {}", a.status.as_u16(), a.body));
    }
    tour.track(&id, story, expect, format!("{} {word}", a.status.as_u16()));
    Ok(id)
}

/// 0, or a multiple of 1000 so that `--db` pointing at an earlier tour's ledger gets fresh ids.
pub(super) async fn free_shift(api: &Api) -> anyhow::Result<u32> {
    for k in 0..100 {
        let id = format!("order:{}:order_paid", 1042 + k * 1000);
        if !api.exists(&id).await? {
            if k > 0 {
                say(&format!(
                    "(this ledger holds an earlier tour: order and lead numbers below are shifted by {})",
                    k * 1000
                ));
            }
            return Ok(k * 1000);
        }
    }
    anyhow::bail!("the ledger already holds 100 demo tours; use a fresh --db")
}

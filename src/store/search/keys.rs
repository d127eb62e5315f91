//! The search keys a message files its subjects under at intake: personal fields as their stored
//! hashes, click ids, user ids, the ids a source gave, and the receipt id.

use serde_json::Value;

use crate::core::{Event, Identity, IdentityCapture, Subject};
use crate::store::Receipt;

/// The search keys a message files under its subjects: each event's personal fields (hashed),
/// click ids, user id and the ids its source gave (refund, dispute, payment intent), each
/// capture's, and the message's own receipt id under its events' subjects.
pub fn intake_keys<'a>(
    captures: &[IdentityCapture],
    events: impl Iterator<Item = &'a Event>,
    mapped: Option<&Receipt>,
) -> Vec<(String, Subject)> {
    let mut out: Vec<(String, Subject)> = Vec::new();
    let mut add = |key: String, subject: &Subject| {
        if !out.iter().any(|(k, s)| *k == key && s == subject) {
            out.push((key, subject.clone()));
        }
    };
    for c in captures {
        for key in identity_keys(&c.identity) {
            add(key, &c.subject);
        }
    }
    for e in events {
        for key in identity_keys(&e.identity) {
            add(key, &e.subject);
        }
        for key in source_ids(e) {
            add(format!("id:{key}"), &e.subject);
        }
        if let Some(r) = mapped {
            add(format!("id:{}", r.receipt_id), &e.subject);
        }
    }
    out
}

fn identity_keys(id: &Identity) -> Vec<String> {
    let mut keys = Vec::new();
    for (prefix, field) in [("email", &id.email), ("phone", &id.phone)] {
        if let Some(h) = field {
            keys.push(format!("{prefix}:{}", h.google.as_str()));
            if h.meta != h.google {
                keys.push(format!("{prefix}:{}", h.meta.as_str()));
            }
        }
    }
    for click in [&id.gclid, &id.gbraid, &id.wbraid, &id.li_fat_id, &id.fbc].into_iter().flatten() {
        keys.push(format!("click:{click}"));
    }
    if let Some(fbclid) = id.fbc.as_deref().and_then(fbclid) {
        keys.push(format!("click:{fbclid}"));
    }
    if let Some(u) = &id.user_id {
        keys.push(format!("user_id:{u}"));
    }
    keys
}

/// The fbclid inside Meta's `_fbc` value `fb.{subdomain index}.{creation time}.{fbclid}`.
pub(super) fn fbclid(fbc: &str) -> Option<&str> {
    let mut parts = fbc.splitn(4, '.');
    (parts.next() == Some("fb")).then_some(())?;
    parts.next()?;
    parts.next()?;
    parts.next().filter(|s| !s.is_empty())
}

/// The ids a source gave parts of the event: what follows `{type}:{id}:{kind}:` in a derived id
/// (Stripe refund `re_…` and dispute `dp_…`, Shopify refund id), and the Stripe payment intent
/// and customer it named.
fn source_ids(e: &Event) -> Vec<String> {
    let mut ids = Vec::new();
    let prefix = format!("{}:{}:{}:", e.subject.kind, e.subject.id, e.kind.as_str());
    if let Some(rest) = e.event_id.as_str().strip_prefix(&prefix).filter(|r| !r.is_empty()) {
        ids.push(rest.to_owned());
    }
    for attr in ["stripe_payment_intent", "stripe_customer"] {
        if let Some(Value::String(v)) = e.attributes.get(attr) {
            ids.push(v.clone());
        }
    }
    ids
}

/// The event ids a `mapped` receipt's detail names (`evt_1 accepted, evt_2 duplicate`).
pub fn receipt_event_ids(detail: &str) -> Vec<String> {
    detail
        .split(", ")
        .filter_map(|part| part.rsplit_once(' ').map(|(id, _)| id.to_owned()))
        .filter(|id| !id.is_empty())
        .collect()
}

//! Shopify webhooks: `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw body) verified
//! before parsing, then the order or refund mapped to a canonical event. Shopify's ids exceed
//! 2^53; they are read as exact integers and kept as decimal strings.

#![warn(clippy::arithmetic_side_effects)] // money and counts: overflow is refused, never wrapped

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::{capture_for, decimal, hmac_sha256, keyed_identity, put, same, text, MapError, Mapped, SignatureError};
use crate::config::sources::ShopifySource;
use crate::config::SecretValue;

/// Verifies the base64 HMAC header against every configured secret, in constant time.
pub fn verify(header: Option<&str>, body: &[u8], secrets: &[SecretValue]) -> Result<(), SignatureError> {
    let header = header.filter(|h| !h.trim().is_empty()).ok_or(SignatureError::Missing)?.trim();
    let given = STANDARD.decode(header).map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let matched = secrets
        .iter()
        .fold(false, |found, secret| found | same(&hmac_sha256(secret.expose().as_bytes(), &[body]), &given));
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Maps a verified webhook of `topic` (the `X-Shopify-Topic` header).
pub fn map(topic: &str, body: &Value, config: &ShopifySource) -> Result<Mapped, MapError> {
    // Every Shopify webhook body is an object, whatever its topic: anything else is not Shopify's.
    let object = body.as_object().ok_or_else(|| MapError::new("", "must be a JSON object"))?;
    let Some(kind) = config.topics.get(topic) else {
        return Ok(Mapped::Ignored(format!("no kind is configured for Shopify topic {topic}")));
    };
    let event = if topic.starts_with("refunds/") { refund(object, kind)? } else { order(topic, object, kind, config)? };
    let capture = capture_for(&event);
    Ok(Mapped::Events { events: vec![event], capture, aliases: vec![] })
}

fn order(topic: &str, o: &Map<String, Value>, kind: &str, config: &ShopifySource) -> Result<Value, MapError> {
    let id = text(o.get("id")).ok_or_else(|| MapError::new("id", "is missing"))?;
    // When the order reached this state: payment is the order's last update at `orders/paid`
    // (a bank transfer is paid days after the order was placed); cancellation has its own time.
    let time_field = match topic {
        "orders/cancelled" => "cancelled_at",
        "orders/create" => "created_at",
        _ => "updated_at",
    };
    let occurred_at = text(o.get(time_field))
        .or_else(|| text(o.get("processed_at")))
        .ok_or_else(|| MapError::new(time_field, "is missing"))?;
    let currency = text(o.get("currency"));
    let value = decimal(o.get("current_total_price")).or_else(|| decimal(o.get("total_price")));

    let attributes: Map<String, Value> = o
        .get("note_attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| Some((text(a.get("name"))?, Value::String(text(a.get("value"))?))))
        .collect();
    let (mut identity, consent) = keyed_identity(&[&attributes], &config.keys);
    let customer = o.get("customer").and_then(Value::as_object);
    put(&mut identity, "email", text(o.get("email")).or_else(|| customer.and_then(|c| text(c.get("email")))));
    put(&mut identity, "phone", text(o.get("phone")).or_else(|| customer.and_then(|c| text(c.get("phone")))));
    put(&mut identity, "user_id", customer.and_then(|c| text(c.get("id"))));
    let billing = o.get("billing_address").and_then(Value::as_object);
    let names = billing.or(customer);
    put(&mut identity, "first_name", names.and_then(|n| text(n.get("first_name"))));
    put(&mut identity, "last_name", names.and_then(|n| text(n.get("last_name"))));
    if let Some(b) = billing {
        put(&mut identity, "street", text(b.get("address1")));
        put(&mut identity, "city", text(b.get("city")));
        put(&mut identity, "region", text(b.get("province_code")));
        put(&mut identity, "postal_code", text(b.get("zip")));
        put(&mut identity, "country", text(b.get("country_code")));
    }
    let client = o.get("client_details").and_then(Value::as_object);
    put(&mut identity, "ip", text(o.get("browser_ip")).or_else(|| client.and_then(|c| text(c.get("browser_ip")))));
    put(&mut identity, "user_agent", client.and_then(|c| text(c.get("user_agent"))));
    // Click ids the landing page carried (`/?gclid=…`), unless the cart attributes named them.
    if let Some(landing) = text(o.get("landing_site")) {
        if let Ok(url) = url::Url::parse("https://shop.invalid").and_then(|base| base.join(&landing)) {
            for (k, v) in url.query_pairs() {
                if ["gclid", "gbraid", "wbraid", "li_fat_id"].contains(&k.as_ref()) {
                    put(&mut identity, &k, Some(v.into_owned()));
                }
            }
        }
    }

    let items: Vec<Value> =
        o.get("line_items").and_then(Value::as_array).into_iter().flatten().map(line_item).collect();
    let mut attrs = Map::new();
    if let Some(name) = text(o.get("name")) {
        attrs.insert("shopify_order_name".into(), Value::String(name));
    }
    if topic == "orders/cancelled" {
        if let Some(reason) = text(o.get("cancel_reason")) {
            attrs.insert("cancel_reason".into(), Value::String(reason));
        }
    }
    let mut event = json!({
        "kind": kind,
        "occurred_at": occurred_at,
        "subject": {"type": "order", "id": id},
        "items": items,
        "identity": identity,
        "consent": consent,
        "attributes": attrs,
    });
    if let (Some(v), Some(c)) = (value, currency) {
        event["value"] = json!(v);
        event["currency"] = json!(c);
    }
    Ok(event)
}

fn line_item(li: &Value) -> Value {
    let mut item = Map::new();
    if let Some(id) = text(li.get("sku")).or_else(|| text(li.get("product_id"))).or_else(|| text(li.get("id"))) {
        item.insert("id".into(), Value::String(id));
    }
    if let Some(name) = text(li.get("title")).or_else(|| text(li.get("name"))) {
        item.insert("name".into(), Value::String(name));
    }
    if let Some(price) = decimal(li.get("price")) {
        item.insert("price".into(), json!(price));
    }
    if let Some(q) = li.get("quantity").and_then(Value::as_i64) {
        item.insert("quantity".into(), json!(q));
    }
    Value::Object(item)
}

fn refund(r: &Map<String, Value>, kind: &str) -> Result<Value, MapError> {
    let id = text(r.get("id")).ok_or_else(|| MapError::new("id", "is missing"))?;
    let order = text(r.get("order_id")).ok_or_else(|| MapError::new("order_id", "is missing"))?;
    let occurred_at = text(r.get("processed_at"))
        .or_else(|| text(r.get("created_at")))
        .ok_or_else(|| MapError::new("created_at", "is missing"))?;
    // The money that went back: the successful refund transactions; failing those, the
    // refunded line items' subtotals.
    let transactions: Vec<&Value> = r
        .get("transactions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            t.get("kind").and_then(Value::as_str) == Some("refund")
                && t.get("status").and_then(Value::as_str) == Some("success")
        })
        .collect();
    let lines: Vec<&Value> = r.get("refund_line_items").and_then(Value::as_array).into_iter().flatten().collect();
    let (value, currency) = if transactions.is_empty() {
        let value = lines.iter().filter_map(|l| decimal(l.get("subtotal"))).sum::<f64>();
        let currency = lines.iter().find_map(|l| text(l.pointer("/subtotal_set/shop_money/currency_code")));
        (Some(value).filter(|_| !lines.is_empty()), currency)
    } else {
        let value = transactions.iter().filter_map(|t| decimal(t.get("amount"))).sum::<f64>();
        (Some(value), transactions.iter().find_map(|t| text(t.get("currency"))))
    };
    let items: Vec<Value> = lines
        .iter()
        .map(|l| {
            let mut item = line_item(l.get("line_item").unwrap_or(&Value::Null));
            if let (Value::Object(m), Some(q)) = (&mut item, l.get("quantity").and_then(Value::as_i64)) {
                m.insert("quantity".into(), json!(q));
            }
            item
        })
        .filter(|i| i.as_object().is_some_and(|m| m.contains_key("id") || m.contains_key("name")))
        .collect();
    let mut event = json!({
        "event_id": format!("order:{order}:{kind}:{id}"),
        "kind": kind,
        "occurred_at": occurred_at,
        "subject": {"type": "order", "id": order},
        "items": items,
        "attributes": {"shopify_refund_id": id},
    });
    if let (Some(v), Some(c)) = (value, currency) {
        event["value"] = json!((v * 100.0).round() / 100.0);
        event["currency"] = json!(c);
    }
    Ok(event)
}

#[cfg(test)]
mod tests;

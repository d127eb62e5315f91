//! JSON from untrusted bytes, refusing an object that names a key twice. serde_json keeps the
//! last of duplicate keys, so `{"kind":"order_paid","kind":"refund_completed"}` would be stored
//! as a refund while a reviewer (or another parser in front of Surety) reads a payment. This is
//! the one JSON entry point of every input: canonical events and batches, identity captures,
//! Segment, Stripe and Shopify bodies. It builds the `Value` in the same single pass serde_json
//! does, with one map lookup per key more.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What is wrong with a body that is not acceptable JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// An object names `key` twice. The key is the client's own text, shortened.
    #[error("the key \"{key}\" appears twice in one object")]
    DuplicateKey { key: String },
    #[error("the body is not JSON: {0}")]
    Syntax(serde_json::Error),
}

/// The marker that carries a duplicate key out through serde's string-only custom errors.
const DUPLICATE: &str = "\u{0}duplicate key\u{0}";
/// Longest key quoted back in an error.
const MAX_KEY_CHARS: usize = 64;

/// Parses `bytes` as JSON, refusing duplicate keys at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = UniqueValue.deserialize(&mut de).and_then(|v| de.end().map(|()| v)).map_err(|e| {
        let text = e.to_string();
        match text.strip_prefix(DUPLICATE) {
            Some(rest) => {
                let key = rest.rsplit_once(" at line ").map_or(rest, |(k, _)| k);
                JsonError::DuplicateKey { key: key.chars().take(MAX_KEY_CHARS).collect() }
            }
            None => JsonError::Syntax(e),
        }
    })?;
    Ok(value)
}

/// Deserializes a `serde_json::Value` exactly as serde_json does, but fails on a repeated key.
struct UniqueValue;

impl<'de> DeserializeSeed<'de> for UniqueValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON text cannot spell a non-finite number, so this is never Null in practice.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(UniqueValue)? {
            list.push(v);
        }
        Ok(Value::Array(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE}{key}")));
            }
            let value = access.next_value_seed(UniqueValue)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn duplicate(body: &str) -> String {
        match parse(body.as_bytes()) {
            Err(JsonError::DuplicateKey { key }) => key,
            other => panic!("expected a duplicate key in {body}, got {other:?}"),
        }
    }

    #[test]
    fn a_repeated_key_is_refused_and_named_at_any_depth() {
        assert_eq!(duplicate(r#"{"kind":"order_paid","kind":"refund_completed"}"#), "kind");
        assert_eq!(duplicate(r#"{"events":[{"a":1},{"identity":{"email":"x","email":"y"}}]}"#), "email");
        assert_eq!(duplicate(r#"{"a":{"b":[{"c":1,"c":1}]}}"#), "c");
    }

    #[test]
    fn a_key_that_looks_like_the_error_tail_is_still_named_whole() {
        assert_eq!(duplicate(r#"{"x at line 1":1,"x at line 1":2}"#), "x at line 1");
        assert_eq!(duplicate(&format!(r#"{{"{0}":1,"{0}":2}}"#, "k".repeat(500))).len(), MAX_KEY_CHARS);
    }

    #[test]
    fn anything_else_parses_exactly_as_serde_json_parses_it() {
        let body = r#"{"id": 5630812345678901234, "neg": -9223372036854775808, "f": 59.9, "e": 1e18,
                       "s": "a\u200bb", "n": null, "t": true, "l": [1, [2, {"k": {}}]], "same": {"k": 1}, "other": {"k": 2}}"#;
        let ours = parse(body.as_bytes()).unwrap();
        let theirs: Value = serde_json::from_str(body).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(ours["id"].as_u64(), Some(5_630_812_345_678_901_234));
        assert_eq!(parse(b"[1,2]").unwrap(), json!([1, 2]));
    }

    #[test]
    fn syntax_errors_and_trailing_bytes_stay_syntax_errors() {
        assert!(matches!(parse(b"{\"a\":"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b"{} x"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b""), Err(JsonError::Syntax(_))));
    }
}

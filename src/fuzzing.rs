//! Entry points for the fuzz targets in `fuzz/` (and the seed-corpus replay test): each takes
//! the bytes an outsider controls and drives one parser exactly as the server or the importer
//! does, from raw bytes to canonical events. Nothing is stored or sent. A panic here is a bug:
//! outside bytes must end in a value or an error, never a crash. Not part of the API.

use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use serde_json::Value;

use crate::config::sources::SourcesConfig;
use crate::config::Config;
use crate::core::Subject;
use crate::ingest::canonical::{parse_capture, parse_event};
use crate::sources::segment::{self, Message};
use crate::sources::{shopify, stripe, Mapped, SourceSecrets};

/// The secret every fuzzed signature is checked against (a fuzzer can find a valid one only by
/// breaking HMAC-SHA256; the mapping below runs whatever the verdict, as if it had passed).
pub const SECRET: &str = "fuzz-secret";

const SOURCES: &str = r#"
[sources.stripe]
signing_secret = "env:SURETY_FUZZ_SECRET"
[sources.shopify]
signing_secret = "env:SURETY_FUZZ_SECRET"
[sources.segment]
write_keys = ["env:SURETY_FUZZ_SECRET"]
"#;

struct Fixture {
    sources: SourcesConfig,
    secrets: SourceSecrets,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        std::env::set_var("SURETY_FUZZ_SECRET", SECRET);
        let config = Config::from_toml(SOURCES).expect("the fuzz sources configuration is valid");
        let secrets = SourceSecrets::resolve(&config.sources).expect("the fuzz secret resolves");
        Fixture { sources: config.sources, secrets }
    })
}

/// A fixed clock: the same input always takes the same path.
fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap_or_default()
}

/// Splits off the first line (a header value the target also controls).
fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Canonical events and captures a source produced, parsed as the server parses them.
fn parse_mapped(mapped: Mapped, source: &str) {
    if let Mapped::Events { events, capture, .. } = mapped {
        for (i, e) in events.into_iter().enumerate() {
            let _ = parse_event(e, source, now(), &format!("events[{i}]"));
        }
        if let Some(c) = capture {
            let _ = parse_capture(c, now());
        }
    }
}

/// `POST /v1/events`: one event, or `{"events": [...]}`.
pub fn canonical_event(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    match value {
        Value::Object(mut map) if map.contains_key("events") => {
            if let Some(Value::Array(items)) = map.remove("events") {
                for (i, item) in items.into_iter().enumerate() {
                    let _ = parse_event(item, "api", now(), &format!("events[{i}]"));
                }
            }
        }
        value => {
            let _ = parse_event(value, "api", now(), "");
        }
    }
}

/// `POST /v1/identity`.
pub fn identity_capture(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let _ = parse_capture(value, now());
    }
}

/// `POST /v1/webhooks/stripe`: first line the `Stripe-Signature` header, the rest the body.
pub fn stripe_webhook(data: &[u8]) {
    let f = fixture();
    let (header, body) = first_line(data);
    let header = std::str::from_utf8(header).ok();
    let _ = stripe::verify(header, body, &f.secrets.stripe, now().timestamp(), 300);
    let Ok(event) = serde_json::from_slice::<Value>(body) else { return };
    let _ = stripe::alias_candidates(&event);
    let Some(config) = &f.sources.stripe else { return };
    let known = Subject { kind: "order".into(), id: "fuzz".into() };
    for k in [None, Some(&known)] {
        if let Ok(mapped) = stripe::map(&event, config, k) {
            parse_mapped(mapped, "stripe");
        }
    }
}

/// `POST /v1/webhooks/shopify`: first line the `X-Shopify-Topic` header, second the
/// `X-Shopify-Hmac-Sha256` header, the rest the body.
pub fn shopify_webhook(data: &[u8]) {
    let f = fixture();
    let (topic, rest) = first_line(data);
    let (header, body) = first_line(rest);
    let _ = shopify::verify(std::str::from_utf8(header).ok(), body, &f.secrets.shopify);
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return };
    let Some(config) = &f.sources.shopify else { return };
    if let Ok(mapped) = shopify::map(&String::from_utf8_lossy(topic), &value, config) {
        parse_mapped(mapped, "shopify");
    }
}

/// `POST /v1/batch`, `/v1/track`, `/v1/identify`: the first byte picks the endpoint and whether
/// a gzip header was sent, the first line after it is the `Authorization` header, the rest the
/// raw body (gzip or not).
pub fn segment_request(data: &[u8]) {
    let Some((&selector, data)) = data.split_first() else { return };
    let f = fixture();
    let endpoint = match selector % 4 {
        0 => None,
        1 => Some("track"),
        2 => Some("identify"),
        _ => Some("page"),
    };
    let (authorization, raw) = first_line(data);
    let _ = segment::basic_user(std::str::from_utf8(authorization).ok());
    let Ok(decoded) = segment::decode(selector & 4 != 0, raw) else { return };
    let Ok(request) = segment::messages(&decoded, endpoint) else { return };
    let Some(config) = &f.sources.segment else { return };
    for (i, message) in request.messages.iter().enumerate() {
        match segment::map(message, config, now()) {
            Ok(Message::Event(e)) => {
                let _ = parse_event(e, "segment", now(), &format!("batch[{i}]"));
            }
            Ok(Message::Capture(c)) => {
                let _ = parse_capture(c, now());
            }
            _ => {}
        }
    }
}

/// A Segment body that arrives gzipped: the bytes are the compressed stream itself.
pub fn segment_gzip(data: &[u8]) {
    let Ok(decoded) = segment::decode(true, data) else { return };
    if let Ok(request) = segment::messages(&decoded, None) {
        let _ = request.messages.len();
    }
}

/// `surety import FILE.csv`: the first byte picks the delimiter, the rest is the file.
pub fn import_csv(data: &[u8]) {
    let Some((&selector, file)) = data.split_first() else { return };
    let delimiter = [b',', b';', b'\t', b'|'][usize::from(selector % 4)];
    let map = if selector & 4 != 0 { vec![("mail".to_owned(), "identity.email".to_owned())] } else { vec![] };
    crate::import::fuzz_rows::read_all(file, Some(delimiter), &map);
}

/// `surety import FILE.ndjson`.
pub fn import_ndjson(data: &[u8]) {
    crate::import::fuzz_rows::read_all(data, None, &[("mail".to_owned(), "identity.email".to_owned())]);
}

/// `surety.toml`: the configuration file, parsed and validated over the defaults.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = Config::from_toml(text) {
        let _ = config.routes();
        let _ = config.problems();
    }
}

/// One fuzz target: outside bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target by the name of its folder under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("canonical_event", canonical_event),
    ("identity_capture", identity_capture),
    ("stripe_webhook", stripe_webhook),
    ("shopify_webhook", shopify_webhook),
    ("segment_request", segment_request),
    ("segment_gzip", segment_gzip),
    ("import_csv", import_csv),
    ("import_ndjson", import_ndjson),
    ("config", config),
];

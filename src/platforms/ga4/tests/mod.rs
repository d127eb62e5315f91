//! Tests of the GA4 adapter: payload shape, rules, batching, and answers (against the simulator).

mod batch;
mod payload;
mod send;
mod validate;

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::config::Ga4Config;
use crate::config::{Common, ConsentConfig, Secret};
use crate::core::pii::{hash_email, hash_name, hash_phone, hash_street};
use crate::core::{Claimed, Consent, ConsentState, Currency, Event, EventId, Identity, Item, Kind, Route, Subject};

pub(super) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(super) fn route(event: &str) -> Route {
    Route { event: event.into(), browser_tracked: false, ..Route::default() }
}

/// A minimal event for `subject_type:id`, happening an hour ago, with a client id.
pub(super) fn event(kind: &str, subject_type: &str, id: &str) -> Event {
    let subject = Subject { kind: subject_type.into(), id: id.into() };
    let kind = Kind::parse(kind).unwrap();
    let now = Utc::now();
    Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: now - Duration::hours(1),
        received_at: now,
        subject,
        value: None,
        currency: None,
        items: Vec::new(),
        identity: Identity { client_id: Some("1234567890.1700000000".into()), ..Identity::default() },
        consent: Consent::default(),
        attributes: BTreeMap::new(),
        joined: Vec::new(),
    }
}

/// A valid paid order with a value, items, a browser session and personal data.
pub(super) fn purchase(order: &str) -> Event {
    let mut e = event("order_paid", "order", order);
    e.value = Some(59.9);
    e.currency = Some(Currency::parse("EUR").unwrap());
    e.items =
        vec![Item { id: Some("SKU-1".into()), name: Some("Linen shirt".into()), price: Some(59.9), quantity: Some(1) }];
    e.identity.session_id = Some("1700000000".into());
    e.identity.user_id = Some("u-77".into());
    e.identity.email = Some(hash_email("Jane.Doe@gmail.com").unwrap());
    e.identity.phone = Some(hash_phone("+49 151 2345678").unwrap());
    e.identity.first_name = Some(hash_name("Jane").unwrap());
    e.identity.last_name = Some(hash_name("Doe").unwrap());
    e.identity.street = Some(hash_street("1 Main St.").unwrap());
    e.identity.city = Some("berlin".into());
    e.identity.country = Some("DE".into());
    e.consent = Consent {
        analytics: Some(ConsentState::Granted),
        ad_user_data: Some(ConsentState::Granted),
        ad_personalization: Some(ConsentState::Denied),
    };
    e
}

pub(super) fn claimed(delivery_id: i64, event: Event, route_event: &str) -> Claimed {
    Claimed {
        delivery_id,
        event,
        route: route(route_event),
        attempts: 0,
        strip_personal: false,
        created_at: Utc::now(),
        forced: false,
    }
}

/// A GA4 configuration whose secret lives in a temporary file (no process-wide env changes).
pub(super) struct TestConfig {
    pub config: Ga4Config,
    _secret_file: tempfile::NamedTempFile,
}

pub(super) const SECRET: &str = "s3cr3t-ApiSecret-value";

pub(super) fn config(base_url: &str) -> TestConfig {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{SECRET}").unwrap();
    let reference = format!("file:{}", file.path().display());
    let config = Ga4Config {
        data_api: None,
        name: "ga4-web".into(),
        measurement_id: "G-TEST123".into(),
        api_secret: Secret::try_from(reference).unwrap(),
        base_url: base_url.into(),
        batch_size: 25,
        window_hours: 72,
        validate_with_debug_endpoint: false,
        common: Common {
            concurrency: 4,
            timeout_ms: 2_000,
            requests_per_minute: None,
            consent: ConsentConfig::default(),
            ..Common::default()
        },
    };
    TestConfig { config, _secret_file: file }
}

/// The JSON of a request body built for the given parts.
pub(super) fn body_json(parts: &[&super::Ga4Event]) -> Value {
    serde_json::from_slice(&super::payload::request_body(parts, false)).unwrap()
}

pub(super) fn single(event: &Event, route_event: &str, strip: bool) -> Value {
    let p = super::Ga4Event::new(event, &route(route_event), strip);
    body_json(&[&p])
}

#[test]
fn fixtures_are_sane() {
    let body = single(&purchase("1042"), "purchase", false);
    assert_eq!(body["events"][0]["name"], json!("purchase"));
}

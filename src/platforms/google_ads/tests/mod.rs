//! Tests of the Google Ads adapter: payload shape, rules, batching, OAuth, answers (against the
//! simulator) and the processing-status check.

mod auth;
mod batch;
mod check;
mod payload;
mod restate;
mod rules;
mod send;
mod status;

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::{IngestEvent, Shape};
use crate::config::{Common, Secret};
use crate::core::pii::{hash_email, hash_name, hash_phone};
use crate::core::{Claimed, Consent, ConsentState, Currency, Event, EventId, Identity, Kind, Route, Subject};
use crate::platforms::google_ads::config::{AdjustmentConfig, EventSource, GoogleAdsConfig};
use crate::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON;

/// The conversion action most tests route to.
pub(super) const ACTION: &str = "987654321";

pub(super) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(super) fn route(action: &str) -> Route {
    Route { event: action.into(), ..Route::default() }
}

/// A minimal event for `subject_type:id`, an hour ago, identified by a gclid only.
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
        identity: Identity { gclid: Some(format!("Cj0KCQ-gclid-{id}")), ..Identity::default() },
        consent: Consent::default(),
        attributes: BTreeMap::new(),
        joined: Vec::new(),
    }
}

/// A paid order with a value, a gclid, personal data for every identifier and consent.
pub(super) fn purchase(order: &str) -> Event {
    let mut e = event("order_paid", "order", order);
    e.value = Some(59.9);
    e.currency = Some(Currency::parse("EUR").unwrap());
    e.identity.email = Some(hash_email("Jane.Doe@gmail.com").unwrap());
    e.identity.phone = Some(hash_phone("+49 151 2345678").unwrap());
    e.identity.first_name = Some(hash_name("Jane").unwrap());
    e.identity.last_name = Some(hash_name("Doe").unwrap());
    e.identity.country = Some("DE".into());
    e.identity.postal_code = Some("10115".into());
    e.consent = Consent {
        analytics: Some(ConsentState::Granted),
        ad_user_data: Some(ConsentState::Granted),
        ad_personalization: Some(ConsentState::Denied),
    };
    e
}

/// A refund of `order`, restating its value to `restated` (or a full refund if `None`).
pub(super) fn refund(order: &str, restated: Option<f64>) -> Event {
    let mut e = purchase(order);
    e.kind = Kind::parse("refund_completed").unwrap();
    e.event_id = EventId::derive(&e.subject, &e.kind);
    e.value = Some(10.0);
    if let Some(v) = restated {
        e.attributes.insert("restated_value".into(), v.into());
    }
    e
}

pub(super) fn claimed(delivery_id: i64, event: Event, action: &str) -> Claimed {
    Claimed {
        delivery_id,
        event,
        route: route(action),
        attempts: 0,
        strip_personal: false,
        created_at: Utc::now(),
        forced: false,
    }
}

/// A configuration whose key file lives in a temporary file (no process-wide env changes).
pub(super) struct TestConfig {
    pub config: GoogleAdsConfig,
    _key_file: tempfile::NamedTempFile,
}

pub(super) fn config(base_url: &str, token_url: &str) -> TestConfig {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(TEST_SERVICE_ACCOUNT_JSON.as_bytes()).unwrap();
    let reference = format!("file:{}", file.path().display());
    let config = GoogleAdsConfig {
        name: "gads".into(),
        customer_id: "123-456-7890".into(),
        login_customer_id: Some("111-222-3333".into()),
        service_account_key: Secret::try_from(reference).unwrap(),
        base_url: base_url.into(),
        token_url: token_url.into(),
        batch_size: 2000,
        window_days: 90,
        event_source: EventSource::Other,
        event_sources: BTreeMap::new(),
        adjustments: AdjustmentConfig::default(),
        status_poll_delay_secs: 1800,
        common: Common { concurrency: 4, timeout_ms: 2_000, ..Common::default() },
    };
    TestConfig { config, _key_file: file }
}

/// The payload settings of the default configuration.
pub(super) fn shape() -> Shape {
    Shape::new(&config("http://127.0.0.1:9", "http://127.0.0.1:9/token").config)
}

/// The event object an event would be sent as.
pub(super) fn object(event: &Event, action: &str, strip: bool, shape: &Shape) -> Value {
    let p = IngestEvent::new(event, &route(action), strip, shape);
    serde_json::from_str(&p.event_json).unwrap()
}

#[test]
fn fixtures_are_sane() {
    let o = object(&purchase("1042"), ACTION, false, &shape());
    assert_eq!(o["transactionId"], "1042");
}

/// A simulator and an adapter pointed at it.
pub(super) async fn setup() -> (crate::platforms::google_ads::sim::GoogleAdsSim, super::GoogleAds, TestConfig) {
    let sim = crate::platforms::google_ads::sim::start().await.unwrap();
    let mut t = config(&sim.base_url, &sim.token_url);
    t.config.common.timeout_ms = 1_000;
    let gads = super::GoogleAds::new(&t.config).unwrap();
    (sim, gads, t)
}

/// The outcomes of a report, by delivery id.
pub(super) fn outcomes(report: &crate::delivery::SendReport) -> Vec<(i64, crate::core::Outcome)> {
    report.outcomes.iter().map(|r| (r.delivery_id, r.outcome.clone())).collect()
}

/// Neither the key, nor an assertion, nor a token appears anywhere in `text`.
#[track_caller]
pub(super) fn assert_no_secret(text: &str, sim: &crate::platforms::google_ads::sim::GoogleAdsSim) {
    let key: Value = serde_json::from_str(TEST_SERVICE_ACCOUNT_JSON).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let body_line = pem.lines().nth(1).unwrap();
    assert!(!text.contains(body_line), "the private key leaked: {text}");
    assert!(!text.contains("PRIVATE KEY"), "the private key leaked: {text}");
    assert!(!text.contains("eyJ"), "a JWT leaked: {text}");
    for token in sim.issued_tokens() {
        assert!(!text.contains(&token), "an access token leaked: {text}");
    }
    assert!(!text.contains("ya29."), "an access token leaked: {text}");
}

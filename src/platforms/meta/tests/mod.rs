//! Tests of the Meta adapter: payload shape, hashing against the official SDK's vectors, rules,
//! batching, and answers (against the simulator).

mod answer;
mod check;
mod payload;
mod send;
mod validate;
mod vectors;

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::{event_object, Settings};
use crate::config::{Common, Secret};
use crate::core::pii::{hash_date_of_birth, hash_email, hash_gender, hash_name, hash_phone, hash_street};
use crate::core::{Claimed, Consent, ConsentState, Currency, Event, EventId, Identity, Item, Kind, Route, Subject};
use crate::platforms::meta::config::MetaConfig;

pub(super) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(super) fn route(event: &str) -> Route {
    Route { event: event.into(), browser_tracked: false, action_source: None }
}

/// A minimal event for `subject_type:id`, an hour ago, identified by a browser id (`fbp`).
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
        identity: Identity { fbp: Some("fb.1.1700000000000.1234567890".into()), ..Identity::default() },
        consent: Consent::default(),
        attributes: BTreeMap::new(),
        joined: Vec::new(),
    }
}

/// A valid paid order with value, items, personal data (gender and date of birth too), address,
/// browser ids and connection data.
pub(super) fn purchase(order: &str) -> Event {
    let mut e = event("order_paid", "order", order);
    e.value = Some(59.9);
    e.currency = Some(Currency::parse("EUR").unwrap());
    e.items = vec![
        Item { id: Some("SKU-1".into()), name: Some("Linen shirt".into()), price: Some(39.9), quantity: Some(1) },
        Item { id: Some("SKU-2".into()), name: None, price: Some(10.0), quantity: Some(2) },
    ];
    let id = &mut e.identity;
    id.user_id = Some("u-77".into());
    id.email = Some(hash_email("Jane.Doe@gmail.com").unwrap());
    id.phone = Some(hash_phone("+49 151 2345678").unwrap());
    id.first_name = Some(hash_name("Jane").unwrap());
    id.last_name = Some(hash_name("Doe").unwrap());
    id.street = Some(hash_street("1 Main St.").unwrap());
    id.gender = Some(hash_gender("Female").unwrap());
    id.date_of_birth = Some(hash_date_of_birth("1990-01-31", Utc::now().date_naive()).unwrap());
    id.city = Some("Berlin".into());
    id.region = Some("BE".into());
    id.postal_code = Some("10115".into());
    id.country = Some("DE".into());
    id.fbc = Some("fb.1.1700000000000.AbCdEf".into());
    id.ip = Some("203.0.113.7".into());
    id.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".into());
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

/// A Meta configuration whose token lives in a temporary file (no process-wide env changes).
pub(super) struct TestConfig {
    pub config: MetaConfig,
    _token_file: tempfile::NamedTempFile,
}

pub(super) const TOKEN: &str = "EAAB-s3cr3t-AccessToken-value";

pub(super) fn config(base_url: &str) -> TestConfig {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{TOKEN}").unwrap();
    let reference = format!("file:{}", file.path().display());
    let config = MetaConfig {
        name: "meta".into(),
        pixel_id: "1234567890".into(),
        access_token: Secret::try_from(reference).unwrap(),
        base_url: base_url.into(),
        api_version: "v24.0".into(),
        batch_size: 1000,
        window_days: 7,
        test_event_code: None,
        action_source: "system_generated".into(),
        data_processing_options: Vec::new(),
        data_processing_options_country: None,
        data_processing_options_state: None,
        dedupe_window_secs: crate::platforms::meta::config::DEFAULT_DEDUPE_WINDOW_SECS,
        common: Common { concurrency: 4, timeout_ms: 2_000, ..Common::default() },
    };
    TestConfig { config, _token_file: file }
}

/// The event object built with the default settings.
pub(super) fn object(event: &Event, route: &Route, strip: bool) -> Value {
    event_object(event, route, strip, &Settings::default())
}

#[test]
fn fixtures_are_sane() {
    let o = object(&purchase("1042"), &route("Purchase"), false);
    assert_eq!(o["event_name"], json!("Purchase"));
    assert!(super::check_event(&o).is_empty(), "{:?}", super::check_event(&o));
    assert!(config("http://127.0.0.1:1").config.problems_list().is_empty());
}

impl MetaConfig {
    fn problems_list(&self) -> Vec<String> {
        let mut p = Vec::new();
        crate::config::problems_of(self, crate::config::Secrets::Read, &mut p);
        p
    }
}

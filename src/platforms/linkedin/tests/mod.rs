//! Tests of the LinkedIn adapter: element shape, rules, and answers (against the simulator).

mod answer;
mod check;
mod payload;
mod rules;
mod send;

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::config::{Common, ConsentConfig, Secret};
use crate::core::pii::{hash_email, hash_name};
use crate::core::{Claimed, Consent, ConsentState, Currency, Event, EventId, Identity, Kind, Route, Subject};
use crate::platforms::linkedin::config::LinkedinConfig;

pub(super) const RULE: &str = "104012";
pub(super) const URN: &str = "urn:lla:llaPartnerConversion:104012";
pub(super) const TOKEN: &str = "AQX-s3cr3t-linkedin-token";
pub(super) const LI_FAT_ID: &str = "df5gf5-gh6t7-ph4j7h-fgf6n1";

pub(super) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(super) fn route(event: &str) -> Route {
    Route { event: event.into(), browser_tracked: false, ..Route::default() }
}

/// A qualified lead, a day ago, with a hashed email, a click cookie and consent.
pub(super) fn lead(id: &str) -> Event {
    let subject = Subject { kind: "lead".into(), id: id.into() };
    let kind = Kind::parse("lead_qualified").unwrap();
    let now = Utc::now();
    Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: now - Duration::days(1),
        received_at: now,
        subject,
        value: Some(59.9),
        currency: Some(Currency::parse("EUR").unwrap()),
        items: Vec::new(),
        identity: Identity {
            email: Some(hash_email(" Jane.Doe@Example.com ").unwrap()),
            first_name: Some(hash_name("Jane").unwrap()),
            last_name: Some(hash_name("Doe").unwrap()),
            country: Some("DE".into()),
            li_fat_id: Some(LI_FAT_ID.into()),
            ip: Some("203.0.113.7".into()),
            ..Identity::default()
        },
        consent: Consent {
            analytics: Some(ConsentState::Granted),
            ad_user_data: Some(ConsentState::Granted),
            ad_personalization: Some(ConsentState::Granted),
        },
        attributes: BTreeMap::new(),
        joined: Vec::new(),
    }
}

pub(super) fn claimed(delivery_id: i64, event: Event) -> Claimed {
    Claimed {
        delivery_id,
        event,
        route: route(RULE),
        attempts: 0,
        strip_personal: false,
        created_at: Utc::now(),
        forced: false,
    }
}

/// A LinkedIn configuration whose token lives in a temporary file (no process-wide env changes).
pub(super) struct TestConfig {
    pub config: LinkedinConfig,
    _token_file: tempfile::NamedTempFile,
}

pub(super) fn config(base_url: &str) -> TestConfig {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{TOKEN}").unwrap();
    let reference = format!("file:{}", file.path().display());
    let config = LinkedinConfig {
        name: "linkedin".into(),
        access_token: Secret::try_from(reference).unwrap(),
        base_url: base_url.into(),
        linkedin_version: "202603".into(),
        batch_size: 500,
        window_days: 90,
        dedupe_window_secs: crate::platforms::linkedin::config::DEFAULT_DEDUPE_WINDOW_SECS,
        common: Common { concurrency: 4, timeout_ms: 2_000, ..Common::default() },
    };
    TestConfig { config, _token_file: file }
}

/// The element built for an event, as JSON.
pub(super) fn element_of(event: &Event, route: &Route, strip: bool) -> Value {
    serde_json::from_str(&super::ConversionElement::new(event, route, strip).element_json).unwrap()
}

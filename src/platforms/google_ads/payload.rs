//! Data Manager `events:ingest` bodies, built only from the stored event and its route, so every
//! resend carries the same event object (G2) and the business time (G5).
//!
//! Shape: developers.google.com/data-manager/api/reference/rest/v1/events/ingest and the protos
//! `google/ads/datamanager/v1/{ingestion_service,event,user_data,consent,destination}.proto`;
//! hashing: …/data-manager/api/devguides/concepts/formatting. docs/platforms.md §Google Ads.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};

use crate::core::pii::sha256_hex;
use crate::core::{ConsentState, Currency, Event, Identity, Route};
use crate::platforms::google_ads::config::{AdjustmentConfig, EventSource, GoogleAdsConfig, Retraction};

/// The attribute holding the value a conversion has after a refund or chargeback.
pub const RESTATED_VALUE: &str = "restated_value";
/// The attribute holding when the restated conversion happened (RFC 3339).
pub const CONVERSION_OCCURRED_AT: &str = "conversion_occurred_at";

/// What shapes an event's payload besides the event itself: from the destination's config.
#[derive(Clone, Debug)]
pub struct Shape {
    pub event_source: EventSource,
    pub event_sources: BTreeMap<String, EventSource>,
    pub adjustments: AdjustmentConfig,
}

impl Shape {
    pub fn new(config: &GoogleAdsConfig) -> Self {
        Self {
            event_source: config.event_source,
            event_sources: config.event_sources.clone(),
            adjustments: config.adjustments.clone(),
        }
    }

    pub fn is_adjustment(&self, event: &Event) -> bool {
        self.adjustments.kinds.iter().any(|k| k == event.kind.as_str())
    }

    fn event_source(&self, event: &Event) -> EventSource {
        self.event_sources.get(event.kind.as_str()).copied().unwrap_or(self.event_source)
    }
}

/// The accounts every request names (`operatingAccount`, `loginAccount`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accounts {
    /// Ten digits, no dashes.
    pub customer_id: String,
    pub login_customer_id: Option<String>,
}

/// What the ledger says an adjustment restates (computed by `restate`; defined here, where it is
/// used, so `payload` does not depend on `restate`).
#[derive(Clone, Debug, PartialEq)]
pub struct Restatement {
    /// The conversion's value after this adjustment (major units).
    pub value: f64,
    /// The value before it: equal to `value` when this adjustment changes nothing.
    pub previous: f64,
    /// The original conversion's currency.
    pub currency: Option<Currency>,
    /// When the original conversion happened (its `eventTimestamp`).
    pub conversion_at: DateTime<Utc>,
    /// How the value was reached, for the delivery's timeline: `34.60 − 9.90 − 9.90 = 14.80 EUR`.
    pub arithmetic: String,
}

impl Restatement {
    /// The conversion is fully retracted.
    pub fn is_retraction(&self) -> bool {
        self.value == 0.0
    }
}

/// One event's part of a request, ready to batch and send.
#[derive(Clone, Debug)]
pub struct IngestEvent {
    /// The conversion action (`productDestinationId`), which is also the destination reference.
    pub action: String,
    /// The event object, serialised once: these bytes go into every body the event is part of,
    /// and their hash is the delivery's payload hash.
    pub event_json: String,
    pub event_sha256: String,
    /// What the timeline should know about the value sent (an adjustment's restatement).
    pub note: Option<String>,
}

impl IngestEvent {
    pub fn new(event: &Event, route: &Route, strip_personal: bool, shape: &Shape) -> Self {
        Self::restated(event, route, strip_personal, shape, None)
    }

    /// As [`IngestEvent::new`], an adjustment carrying the value the ledger restates.
    pub fn restated(
        event: &Event,
        route: &Route,
        strip_personal: bool,
        shape: &Shape,
        restated: Option<&Restatement>,
    ) -> Self {
        let event_json = Value::Object(event_object(event, route, strip_personal, shape, restated)).to_string();
        let event_sha256 = sha256_hex(event_json.as_bytes());
        let note = restated
            .filter(|_| shape.is_adjustment(event) && restated_value(event).is_none())
            .map(|r| format!("restated value {} (original minus refunds and chargebacks: {})", r.value, r.arithmetic));
        Self { action: route.event.clone(), event_json, event_sha256, note }
    }
}

/// RFC 3339 in UTC with `Z`, sub-seconds only when there are any.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The id Google dedupes on within a conversion action: the `transaction_id` attribute (a
/// non-empty string, or a number as its decimal text), else the subject id of an `order` or a
/// `lead` (so a refund restates its order's conversion), else the event id, which is stable
/// across resends (G2) — so a conversion always has one.
pub fn transaction_id(event: &Event) -> String {
    match event.attributes.get("transaction_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => return s.trim().to_owned(),
        Some(Value::Number(n)) => return n.to_string(),
        _ => {}
    }
    let subject = &event.subject;
    if matches!(subject.kind.as_str(), "order" | "lead") && !subject.id.trim().is_empty() {
        return subject.id.trim().to_owned();
    }
    event.event_id.as_str().to_owned()
}

/// The restated value of an adjustment, if the event states one.
pub fn restated_value(event: &Event) -> Option<f64> {
    event.attributes.get(RESTATED_VALUE).and_then(Value::as_f64)
}

/// When the conversion an adjustment restates happened: `Ok(None)` if the event does not say.
pub fn conversion_occurred_at(event: &Event) -> Result<Option<DateTime<Utc>>, String> {
    match event.attributes.get(CONVERSION_OCCURRED_AT) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| format!("attributes.{CONVERSION_OCCURRED_AT}: '{s}' is not an RFC 3339 time")),
        Some(_) => Err(format!("attributes.{CONVERSION_OCCURRED_AT}: must be an RFC 3339 time")),
    }
}

/// The event object of the request, camelCase as in the REST reference. An adjustment carries,
/// in this order of precedence: the source's `attributes.restated_value`, the value the ledger
/// restates (`restated`), or — neither known — the configured retraction.
pub fn event_object(
    event: &Event,
    route: &Route,
    strip_personal: bool,
    shape: &Shape,
    restated: Option<&Restatement>,
) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("destinationReferences".into(), Value::Array(vec![route.event.as_str().into()]));
    o.insert("transactionId".into(), transaction_id(event).into());
    o.insert("eventSource".into(), shape.event_source(event).as_str().into());

    let adjustment = shape.is_adjustment(event);
    // An adjustment keeps the conversion's own time (the event says what it was, or the ledger
    // holds the original); the adjustment's time is then the conversion's last update. Both
    // are business times.
    let conversion_time = if adjustment {
        conversion_occurred_at(event).ok().flatten().or(restated.map(|r| r.conversion_at))
    } else {
        None
    };
    o.insert("eventTimestamp".into(), rfc3339(conversion_time.unwrap_or(event.occurred_at)).into());
    if adjustment {
        o.insert("lastUpdatedTimestamp".into(), rfc3339(event.occurred_at).into());
    }

    let value = if adjustment {
        match (restated_value(event), restated, shape.adjustments.retraction) {
            (Some(v), _, _) => Some(v),
            (None, Some(r), _) => Some(r.value),
            (None, None, Retraction::ZeroValue) => Some(0.0),
            // Nothing to send: sending refuses a retraction with a message.
            (None, None, Retraction::Skip) => None,
        }
    } else {
        event.value
    };
    if let Some(v) = value {
        // A non-finite value has no JSON form; leaving it out lets validation name it.
        if let Some(n) = Number::from_f64(v) {
            o.insert("conversionValue".into(), Value::Number(n));
        }
    }
    let currency = match restated {
        Some(r) if adjustment => r.currency.as_ref().or(event.currency.as_ref()),
        _ => event.currency.as_ref(),
    };
    if let Some(currency) = currency {
        o.insert("currency".into(), currency.as_str().into());
    }

    let ids = ad_identifiers(&event.identity);
    if !ids.is_empty() {
        o.insert("adIdentifiers".into(), Value::Object(ids));
    }
    if !strip_personal {
        let identifiers = user_identifiers(&event.identity);
        if !identifiers.is_empty() {
            o.insert("userData".into(), serde_json::json!({ "userIdentifiers": identifiers }));
        }
    }
    let mut consent = Map::new();
    for (key, state) in
        [("adUserData", event.consent.ad_user_data), ("adPersonalization", event.consent.ad_personalization)]
    {
        if let Some(state) = state {
            let text = match state {
                ConsentState::Granted => "CONSENT_GRANTED",
                ConsentState::Denied => "CONSENT_DENIED",
            };
            consent.insert(key.into(), text.into());
        }
    }
    if !consent.is_empty() {
        o.insert("consent".into(), Value::Object(consent));
    }
    o
}

/// The click id: a gclid alone when there is one (it names the click fully; the braids exist
/// for iOS clicks without one), else the braid(s) — both only to let validation refuse them.
fn ad_identifiers(identity: &Identity) -> Map<String, Value> {
    let present = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let mut ids = Map::new();
    if let Some(gclid) = present(&identity.gclid) {
        ids.insert("gclid".into(), gclid.into());
        return ids;
    }
    if let Some(gbraid) = present(&identity.gbraid) {
        ids.insert("gbraid".into(), gbraid.into());
    }
    if let Some(wbraid) = present(&identity.wbraid) {
        ids.insert("wbraid".into(), wbraid.into());
    }
    ids
}

/// Email, phone and address, hashed under Google's rules at ingest (`Hashed::google`) and
/// written as hex. An address needs all four parts Google requires, else it is left out.
fn user_identifiers(identity: &Identity) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(email) = &identity.email {
        out.push(serde_json::json!({ "emailAddress": email.google.as_str() }));
    }
    if let Some(phone) = &identity.phone {
        out.push(serde_json::json!({ "phoneNumber": phone.google.as_str() }));
    }
    let plain = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    if let (Some(given), Some(family), Some(region), Some(postal)) =
        (&identity.first_name, &identity.last_name, plain(&identity.country), plain(&identity.postal_code))
    {
        out.push(serde_json::json!({ "address": {
            "givenName": given.google.as_str(),
            "familyName": family.google.as_str(),
            "regionCode": region.to_ascii_uppercase(),
            "postalCode": postal,
        }}));
    }
    out
}

/// The conversion actions of `parts`, in order of first appearance.
pub fn actions<'a>(parts: &[&'a IngestEvent]) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for p in parts {
        if !seen.contains(&p.action.as_str()) {
            seen.push(&p.action);
        }
    }
    seen
}

/// The `destinations[]` of a request: one per conversion action, referenced by its own id.
pub fn destinations(actions: &[&str], accounts: &Accounts) -> Value {
    let list = actions
        .iter()
        .map(|action| {
            let mut d = Map::new();
            d.insert("reference".into(), (*action).into());
            d.insert(
                "operatingAccount".into(),
                serde_json::json!({"accountType": "GOOGLE_ADS", "accountId": accounts.customer_id}),
            );
            if let Some(login) = &accounts.login_customer_id {
                d.insert("loginAccount".into(), serde_json::json!({"accountType": "GOOGLE_ADS", "accountId": login}));
            }
            d.insert("productDestinationId".into(), (*action).into());
            Value::Object(d)
        })
        .collect();
    Value::Array(list)
}

/// The body of one request: its destinations, `encoding` (required with `userData`; hashes
/// are hex), and the events in order; with `validate_only`, `validateOnly: true`: Google checks
/// the request (fast-fail errors included) and ingests nothing (docs/platforms.md §Google Ads).
pub fn request_body(parts: &[&IngestEvent], accounts: &Accounts, validate_only: bool) -> Vec<u8> {
    let destinations = destinations(&actions(parts), accounts).to_string();
    let events_len: usize = parts.iter().map(|p| p.event_json.len() + 1).sum();
    let mut body = String::with_capacity(destinations.len() + events_len + 64);
    body.push_str("{\"destinations\":");
    body.push_str(&destinations);
    body.push_str(",\"encoding\":\"HEX\",\"events\":[");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&p.event_json);
    }
    body.push(']');
    if validate_only {
        body.push_str(",\"validateOnly\":true");
    }
    body.push('}');
    body.into_bytes()
}

//! `type = "google_ads"`: Google Ads conversions through the Data Manager API (docs/platforms.md
//! §Google Ads; developers.google.com/data-manager/api).
//!
//! The conversion action of each catalog entry is its route's `event` (the Data Manager
//! `productDestinationId`): one destination serves every conversion action of one account.
//!
//! ```toml
//! [[destinations]]
//! name = "gads"
//! type = "google_ads"
//! customer_id = "123-456-7890"                  # operatingAccount
//! login_customer_id = "111-222-3333"            # optional manager account (loginAccount)
//! service_account_key = "file:/etc/surety/gads-service-account.json"
//! # base_url = "https://datamanager.googleapis.com"
//! # token_url = "https://oauth2.googleapis.com/token"
//! # batch_size = 2000
//! # window_days = 90
//! # event_source = "OTHER"                      # WEB | APP | IN_STORE | PHONE | OTHER
//! # event_sources = { offline_sale = "IN_STORE" }
//! # status_poll_delay_secs = 1800
//! # requests_per_minute = 300                   # unset: Google's per-project quota, 300
//! [destinations.adjustments]
//! kinds = ["refund_completed", "chargeback_opened"]
//! retraction = "zero_value"                     # or "skip"
//! window_days = 54
//!
//! [catalog.order_paid]
//! gads = { event = "987654321" }                # the conversion action id
//! [catalog.refund_completed]
//! gads = { event = "987654321" }                # the same action: an adjustment
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Common, Secret, Section};
use crate::core::Route;

/// The only OAuth scope the Data Manager API takes.
pub const SCOPE: &str = "https://www.googleapis.com/auth/datamanager";
pub const DEFAULT_BASE_URL: &str = "https://datamanager.googleapis.com";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Events per `events:ingest` request (the proto says 2,000; one page says 10,000: 2,000 is safe).
pub const MAX_BATCH: usize = 2000;
/// The project quota of the Data Manager API, used when `requests_per_minute` is not set.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 300;

/// Google Ads through the Data Manager API (docs/platforms.md §Google Ads).
///
/// `Debug` shows only the secret's reference (`Secret` never prints a value).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleAdsConfig {
    pub name: String,
    /// The Google Ads account the conversions belong to (`operatingAccount.accountId`): ten
    /// digits, dashes allowed (`123-456-7890`).
    pub customer_id: String,
    /// The manager account the service account reaches `customer_id` through
    /// (`loginAccount.accountId`), if any.
    #[serde(default)]
    pub login_customer_id: Option<String>,
    /// The service account's JSON key file content (`env:NAME` or `file:PATH`).
    pub service_account_key: Secret,
    /// `https://datamanager.googleapis.com`, a proxy or a simulator.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Where the JWT bearer grant is exchanged for an access token; also the assertion's `aud`.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Events per request, at most 2,000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How old an event may be, in days. Google states no number (it answers `EVENT_TOO_OLD`);
    /// 90 matches the longest click-through conversion window of Google Ads.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// `eventSource` of every event: `WEB`, `APP`, `IN_STORE`, `PHONE`, `OTHER`. Required for
    /// offline conversions; a backend state is `OTHER` unless said otherwise.
    #[serde(default)]
    pub event_source: EventSource,
    /// `eventSource` per kind, overriding `event_source` (`{ offline_sale = "IN_STORE" }`).
    #[serde(default)]
    pub event_sources: BTreeMap<String, EventSource>,
    /// How refunds and chargebacks are sent.
    #[serde(default)]
    pub adjustments: AdjustmentConfig,
    /// How long after a send to ask `requestStatus:retrieve` what Google kept (Google: about 30 min).
    #[serde(default = "default_status_poll_delay_secs")]
    pub status_poll_delay_secs: u64,
    #[serde(flatten)]
    pub common: Common,
}

/// Where a conversion happened (`eventSource`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventSource {
    Web,
    App,
    InStore,
    Phone,
    #[default]
    Other,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "WEB",
            Self::App => "APP",
            Self::InStore => "IN_STORE",
            Self::Phone => "PHONE",
            Self::Other => "OTHER",
        }
    }
}

/// Adjustments: a kind listed here is sent as the same `transactionId` again, to the same
/// conversion action, with the restated value (Google overwrites `conversionValue` and `currency`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdjustmentConfig {
    /// The kinds that restate an earlier conversion.
    pub kinds: Vec<String>,
    /// How a full retraction is sent: an adjustment whose restated value (from
    /// `attributes.restated_value`, else computed from the ledger: the original's value minus
    /// everything refunded so far) reaches 0, or one with no original conversion in the ledger.
    /// Google does not document how (docs/platforms.md §Google Ads: unconfirmed), so:
    /// `zero_value` sends value 0, `skip` sends nothing (the delivery is rejected with a message).
    pub retraction: Retraction,
    /// Most days between the conversion (`attributes.conversion_occurred_at`, when the event
    /// carries it) and its adjustment. The older Google Ads API allowed 54; unconfirmed here.
    pub window_days: u32,
}

impl Default for AdjustmentConfig {
    fn default() -> Self {
        Self {
            kinds: vec!["refund_completed".into(), "chargeback_opened".into()],
            retraction: Retraction::ZeroValue,
            window_days: 54,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retraction {
    #[default]
    ZeroValue,
    Skip,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}

fn default_token_url() -> String {
    DEFAULT_TOKEN_URL.into()
}

fn default_batch_size() -> usize {
    MAX_BATCH
}

fn default_window_days() -> u32 {
    90
}

fn default_status_poll_delay_secs() -> u64 {
    1800
}

/// A Google Ads customer id without its dashes, if it is one (ten digits).
pub fn customer_id(raw: &str) -> Option<String> {
    let digits: String = raw.trim().chars().filter(|&c| c != '-').collect();
    (digits.len() == 10 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// What is wrong with a route's `event` as a conversion action id, if anything.
pub fn conversion_action_problem(event: &str) -> Option<String> {
    let ok = !event.is_empty() && event.len() <= 20 && event.chars().all(|c| c.is_ascii_digit());
    (!ok).then(|| format!("'{event}' is not a Google Ads conversion action id (digits only)"))
}

impl GoogleAdsConfig {
    /// The request rate this destination keeps to: `requests_per_minute`, else Google's quota.
    pub fn requests_per_minute(&self) -> u32 {
        self.common.requests_per_minute.filter(|&n| n > 0).unwrap_or(DEFAULT_REQUESTS_PER_MINUTE)
    }
}

impl Section for GoogleAdsConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }

    fn window_days(&self) -> u64 {
        u64::from(self.window_days)
    }

    fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        vec![("service_account_key", &self.service_account_key)]
    }

    /// A catalog entry routing to this destination must name a conversion action id.
    fn route_problems(&self, _kind: &str, route: &Route, at: &str, p: &mut Vec<String>) {
        if let Some(problem) = conversion_action_problem(&route.event) {
            p.push(format!("{at}.event: {problem}"));
        }
    }

    fn problems(&self, p: &mut Vec<String>) {
        let n = &self.name;
        if customer_id(&self.customer_id).is_none() {
            p.push(format!(
                "destinations.{n}.customer_id: '{}' is not a ten-digit Google Ads customer id",
                self.customer_id
            ));
        }
        if let Some(login) = &self.login_customer_id {
            if customer_id(login).is_none() {
                p.push(format!(
                    "destinations.{n}.login_customer_id: '{login}' is not a ten-digit Google Ads customer id"
                ));
            }
        }
        // A key that cannot be read is reported with the other secrets (`Section::secrets`).
        if let Ok(key) = self.service_account_key.resolve() {
            if let Err(e) = check_key_file(key.expose()) {
                p.push(format!("destinations.{n}.service_account_key ({}): {e}", self.service_account_key.reference()));
            }
        }
        for (key, value) in [("base_url", &self.base_url), ("token_url", &self.token_url)] {
            if url::Url::parse(value).map(|u| !["http", "https"].contains(&u.scheme())).unwrap_or(true) {
                p.push(format!("destinations.{n}.{key}: '{value}' is not an http(s) URL"));
            }
        }
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            p.push(format!(
                "destinations.{n}.batch_size: the Data Manager API takes 1 to {MAX_BATCH} events per request"
            ));
        }
        if !(1..=365).contains(&self.window_days) {
            p.push(format!("destinations.{n}.window_days: must be between 1 and 365"));
        }
        if !(1..=365).contains(&self.adjustments.window_days) {
            p.push(format!("destinations.{n}.adjustments.window_days: must be between 1 and 365"));
        }
        for kind in self.adjustments.kinds.iter().chain(self.event_sources.keys()) {
            if crate::core::Kind::parse(kind).is_err() {
                p.push(format!("destinations.{n}: '{kind}' is not a kind name"));
            }
        }
    }
}

/// Checks the shape of a service-account key file without printing any of it.
fn check_key_file(text: &str) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Shape {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        client_email: String,
        #[serde(default)]
        private_key: String,
    }
    let shape: Shape = serde_json::from_str(text).map_err(|_| "is not a service-account JSON key file".to_owned())?;
    if shape.kind.as_deref().is_some_and(|k| k != "service_account") {
        return Err("is a JSON key file, but not of a service account".into());
    }
    if shape.client_email.trim().is_empty() {
        return Err("has no client_email".into());
    }
    if !shape.private_key.contains("-----BEGIN PRIVATE KEY-----") {
        return Err("has no PEM private_key".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{problems_of, Secrets};

    #[test]
    fn customer_ids_are_ten_digits_dashes_allowed() {
        assert_eq!(customer_id("123-456-7890").as_deref(), Some("1234567890"));
        assert_eq!(customer_id("1234567890").as_deref(), Some("1234567890"));
        assert_eq!(customer_id("123456789"), None);
        assert_eq!(customer_id("12345678a0"), None);
    }

    #[test]
    fn conversion_actions_are_digits() {
        assert_eq!(conversion_action_problem("987654321"), None);
        assert!(conversion_action_problem("purchase").is_some());
        assert!(conversion_action_problem("").is_some());
    }

    #[test]
    fn key_file_shape() {
        assert!(check_key_file("nope").is_err());
        assert!(check_key_file(r#"{"type":"authorized_user","client_email":"a","private_key":"x"}"#).is_err());
        assert!(check_key_file(r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----"}"#).is_err());
        let ok = r#"{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\n"}"#;
        assert_eq!(check_key_file(ok), Ok(()));
    }

    #[test]
    fn defaults_and_keys() {
        let toml = r#"
            name = "gads"
            customer_id = "123-456-7890"
            service_account_key = "env:GADS_KEY"
            [adjustments]
            retraction = "skip"
        "#;
        let c: GoogleAdsConfig = toml::from_str(toml).unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.token_url, DEFAULT_TOKEN_URL);
        assert_eq!((c.batch_size, c.window_days, c.status_poll_delay_secs), (2000, 90, 1800));
        assert_eq!(c.event_source, EventSource::Other);
        assert_eq!(c.adjustments.retraction, Retraction::Skip);
        assert_eq!(c.adjustments.window_days, 54);
        assert_eq!(c.adjustments.kinds, vec!["refund_completed", "chargeback_opened"]);
        assert_eq!(c.requests_per_minute(), 300);
        let bad = toml.replace("[adjustments]", "surprise = 1\n[adjustments]");
        assert!(toml::from_str::<GoogleAdsConfig>(&bad).is_err(), "unknown keys are refused");
    }

    #[test]
    fn problems_name_every_bad_key() {
        use std::io::Write;
        let mut key = tempfile::NamedTempFile::new().unwrap();
        key.write_all(crate::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON.as_bytes()).unwrap();
        let toml = format!(
            "name = \"gads\"\ncustomer_id = \"1234567890\"\nservice_account_key = \"file:{}\"\n",
            key.path().display()
        );
        let good: GoogleAdsConfig = toml::from_str(&toml).unwrap();
        let mut p = Vec::new();
        problems_of(&good, Secrets::Read, &mut p);
        assert_eq!(p, Vec::<String>::new());
        let route_problem = |event: &str| {
            let route = Route { event: event.into(), ..Route::default() };
            let mut p = Vec::new();
            good.route_problems("order_paid", &route, "catalog.order_paid.gads", &mut p);
            p.pop()
        };
        assert_eq!(route_problem("987654321"), None);
        assert_eq!(
            route_problem("purchase").unwrap(),
            "catalog.order_paid.gads.event: 'purchase' is not a Google Ads conversion action id (digits only)"
        );

        let mut bad = good.clone();
        bad.customer_id = "12".into();
        bad.login_customer_id = Some("x".into());
        bad.token_url = "ftp://x".into();
        bad.batch_size = 3000;
        bad.window_days = 0;
        bad.adjustments.kinds = vec!["Bad-Kind".into()];
        bad.service_account_key = Secret::try_from("env:SURETY_TEST_GADS_UNSET_KEY".to_owned()).unwrap();
        let mut p = Vec::new();
        problems_of(&bad, Secrets::Read, &mut p);
        let keys = [
            "customer_id",
            "login_customer_id",
            "token_url",
            "batch_size",
            "window_days",
            "Bad-Kind",
            "service_account_key",
        ];
        for k in keys {
            assert!(p.iter().any(|m| m.contains(k)), "no problem names {k}: {p:#?}");
        }
        assert_eq!(p.len(), keys.len(), "{p:#?}");
    }
}

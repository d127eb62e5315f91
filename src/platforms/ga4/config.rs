//! `type = "ga4"`: GA4 Measurement Protocol settings (docs/platforms.md §GA4).

use serde::{Deserialize, Serialize};

use crate::config::{Common, Secret, Section};
use crate::core::plan::ConsentPurpose;

/// GA4 Measurement Protocol (docs/platforms.md §GA4).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ga4Config {
    pub name: String,
    /// Web stream id `G-…`.
    pub measurement_id: String,
    pub api_secret: Secret,
    /// `https://www.google-analytics.com`, `https://region1.google-analytics.com` (EU), a proxy or a simulator.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Events per request, at most 25.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How old an event may be, at most 72 hours.
    #[serde(default = "default_window_hours")]
    pub window_hours: u32,
    /// Validate every batch against `/debug/mp/collect` before sending it.
    #[serde(default)]
    pub validate_with_debug_endpoint: bool,
    /// Where `surety reconcile --platform DEST=api` reads GA4's own count (the Data API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_api: Option<DataApiConfig>,
    #[serde(flatten)]
    pub common: Common,
}

/// The GA4 Data API, read by reconcile (docs/platforms.md §Reading the platforms' side back).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataApiConfig {
    /// The GA4 property's numeric id (Admin › Property details), not the `G-…` stream id.
    pub property_id: String,
    /// A service account's JSON key file content (`env:NAME` or `file:PATH`); the account needs
    /// Viewer on the property. Its tokens ask for [`DATA_API_SCOPE`] only.
    pub service_account_key: Secret,
    /// `https://analyticsdata.googleapis.com`, a proxy or a simulator.
    #[serde(default = "default_data_api_url")]
    pub base_url: String,
    /// Where the JWT bearer grant is exchanged for an access token; also the assertion's `aud`.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Rows per `runReport` page (`limit`), at most 250,000.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

/// The read-only Analytics scope `runReport` accepts.
pub const DATA_API_SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";
/// The most rows one `runReport` page returns.
pub const MAX_PAGE_SIZE: u32 = 250_000;

fn default_data_api_url() -> String {
    "https://analyticsdata.googleapis.com".into()
}

fn default_token_url() -> String {
    "https://oauth2.googleapis.com/token".into()
}

fn default_page_size() -> u32 {
    100_000
}

fn default_base_url() -> String {
    "https://www.google-analytics.com".into()
}

fn default_batch_size() -> usize {
    25
}

fn default_window_hours() -> u32 {
    72
}

impl Section for Ga4Config {
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
        u64::from(self.window_hours).div_ceil(24)
    }

    /// GA4 is analytics: it needs `analytics` consent.
    fn default_purpose(&self) -> ConsentPurpose {
        ConsentPurpose::Analytics
    }

    fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        let mut secrets = vec![("api_secret", &self.api_secret)];
        if let Some(d) = &self.data_api {
            secrets.push(("data_api.service_account_key", &d.service_account_key));
        }
        secrets
    }

    fn problems(&self, p: &mut Vec<String>) {
        let n = &self.name;
        let id_ok = self.measurement_id.starts_with("G-")
            && self.measurement_id.len() > 2
            && self.measurement_id[2..].chars().all(|c| c.is_ascii_alphanumeric());
        if !id_ok {
            p.push(format!(
                "destinations.{n}.measurement_id: '{}' is not a web stream id such as G-ABC123",
                self.measurement_id
            ));
        }
        if url::Url::parse(&self.base_url).map(|u| !["http", "https"].contains(&u.scheme())).unwrap_or(true) {
            p.push(format!("destinations.{n}.base_url: '{}' is not an http(s) URL", self.base_url));
        }
        if !(1..=25).contains(&self.batch_size) {
            p.push(format!("destinations.{n}.batch_size: GA4 takes 1 to 25 events per request"));
        }
        if !(1..=72).contains(&self.window_hours) {
            p.push(format!("destinations.{n}.window_hours: GA4 accepts events up to 72 hours old"));
        }
        if let Some(d) = &self.data_api {
            if d.property_id.is_empty() || !d.property_id.bytes().all(|b| b.is_ascii_digit()) {
                p.push(format!(
                    "destinations.{n}.data_api.property_id: '{}' is not a numeric GA4 property id",
                    d.property_id
                ));
            }
            for (key, value) in [("base_url", &d.base_url), ("token_url", &d.token_url)] {
                if url::Url::parse(value).map(|u| !["http", "https"].contains(&u.scheme())).unwrap_or(true) {
                    p.push(format!("destinations.{n}.data_api.{key}: '{value}' is not an http(s) URL"));
                }
            }
            if !(1..=MAX_PAGE_SIZE).contains(&d.page_size) {
                p.push(format!("destinations.{n}.data_api.page_size: runReport returns 1 to 250000 rows a page"));
            }
        }
    }
}

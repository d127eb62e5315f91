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
    #[serde(flatten)]
    pub common: Common,
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
        vec![("api_secret", &self.api_secret)]
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
    }
}

//! `type = "meta"`: Meta Conversions API settings (docs/platforms.md §Meta).
//!
//! Official pages: developers.facebook.com/docs/marketing-api/conversions-api — using-the-api
//! (endpoint, batch limit, `test_event_code`), parameters/server-event (`action_source`,
//! `data_processing_options`), and …/data-processing-options (Limited Data Use).

use serde::{Deserialize, Serialize};

use crate::config::{Common, Secret, Section};
use crate::core::plan::ConsentPurpose;
use crate::core::Route;

/// The `action_source` values Meta documents (parameters/server-event).
pub const ACTION_SOURCES: [&str; 9] = [
    "website",
    "app",
    "email",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];

/// Most events Meta takes in one request.
pub const MAX_BATCH_SIZE: usize = 1000;

/// How old an event Meta takes, in days.
pub const MAX_WINDOW_DAYS: u32 = 7;

/// The consent purpose a Meta destination should default to: a Conversions API event is ad
/// user data as a whole (IP, user agent, browser ids, hashed contact data), so without
/// `ad_user_data` there is nothing Meta may receive. (`Config` applies it to a Meta destination
/// whose `consent.purpose` is not written.)
pub const DEFAULT_CONSENT_PURPOSE: ConsentPurpose = ConsentPurpose::AdUserData;

/// Meta Conversions API, one pixel (dataset).
///
/// The access token is only ever resolved in `delivery::meta::Meta::new`; it travels in the
/// query string (`access_token=…`) and appears in no record, error or log.
///
/// `timeout_ms` (from [`Common`]) keeps the common default on purpose: Meta's suggested ~1.5 s
/// is for a single event sent inline from a web request, while Surety sends up to 1,000 events
/// per request from a background worker, and a timeout only costs a resend that Meta dedupes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    pub name: String,
    /// The pixel (dataset) id: digits.
    pub pixel_id: String,
    /// A system-user access token with permission on the pixel: `env:NAME` or `file:PATH`.
    pub access_token: Secret,
    /// `https://graph.facebook.com`, a proxy or a simulator.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Graph API version in the path, `vNN.N`. Versions expire about two years after release.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Events per request, at most 1000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How old an event may be, at most 7 days (Meta refuses the whole request otherwise).
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// Sends every request with this `test_event_code`: events show in Events Manager's Test
    /// Events tab. For set-up only; remove it in production. `mode = "validate"` and `surety
    /// destinations test` send test events with it (with a made-up code when it is absent).
    #[serde(default)]
    pub test_event_code: Option<String>,
    /// `action_source` for catalog entries that do not name one.
    #[serde(default = "default_action_source")]
    pub action_source: String,
    /// Limited Data Use: `[]` (or absent) = off, `["LDU"]` = on.
    #[serde(default)]
    pub data_processing_options: Vec<String>,
    /// With LDU: `0` lets Meta geolocate, `1` = United States.
    #[serde(default)]
    pub data_processing_options_country: Option<i64>,
    /// With LDU: `0` lets Meta geolocate, `1000` = California.
    #[serde(default)]
    pub data_processing_options_state: Option<i64>,
    /// How long after the event Meta still keeps one of the pixel's copy and ours (same
    /// `event_id` + `event_name`): 48 hours, at most (docs/platforms.md §Meta).
    /// A browser-tracked kind whose server copy would leave later is `skipped:browser_tracked`
    /// instead of counted twice.
    #[serde(default = "default_dedupe_window_secs")]
    pub dedupe_window_secs: u64,
    #[serde(flatten)]
    pub common: Common,
}

fn default_base_url() -> String {
    "https://graph.facebook.com".into()
}

fn default_api_version() -> String {
    "v24.0".into()
}

fn default_batch_size() -> usize {
    MAX_BATCH_SIZE
}

fn default_window_days() -> u32 {
    MAX_WINDOW_DAYS
}

/// Meta's dedupe window for a pixel event and its server copy: 48 hours.
pub const DEFAULT_DEDUPE_WINDOW_SECS: u64 = 48 * 3600;

fn default_dedupe_window_secs() -> u64 {
    DEFAULT_DEDUPE_WINDOW_SECS
}

fn default_action_source() -> String {
    "system_generated".into()
}

/// What is wrong with an `action_source` value, if anything (also for catalog routes).
pub fn action_source_problem(value: &str) -> Option<String> {
    (!ACTION_SOURCES.contains(&value))
        .then(|| format!("'{value}' is not one of Meta's action sources: {}", ACTION_SOURCES.join(", ")))
}

impl Section for MetaConfig {
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
        vec![("access_token", &self.access_token)]
    }

    fn route_problems(&self, _kind: &str, route: &Route, at: &str, p: &mut Vec<String>) {
        if let Some(problem) = route.action_source.as_deref().and_then(action_source_problem) {
            p.push(format!("{at}.action_source: {problem}"));
        }
    }

    /// Every problem of this destination's settings, each prefixed with its key.
    fn problems(&self, p: &mut Vec<String>) {
        let n = &self.name;
        if self.pixel_id.is_empty() || !self.pixel_id.bytes().all(|b| b.is_ascii_digit()) {
            p.push(format!("destinations.{n}.pixel_id: '{}' is not a pixel id (digits only)", self.pixel_id));
        }
        if url::Url::parse(&self.base_url).map(|u| !["http", "https"].contains(&u.scheme())).unwrap_or(true) {
            p.push(format!("destinations.{n}.base_url: '{}' is not an http(s) URL", self.base_url));
        }
        if !is_api_version(&self.api_version) {
            p.push(format!(
                "destinations.{n}.api_version: '{}' is not a Graph API version such as v24.0",
                self.api_version
            ));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            p.push(format!("destinations.{n}.batch_size: Meta takes 1 to {MAX_BATCH_SIZE} events per request"));
        }
        if !(1..=MAX_WINDOW_DAYS).contains(&self.window_days) {
            p.push(format!("destinations.{n}.window_days: Meta accepts events up to {MAX_WINDOW_DAYS} days old"));
        }
        if !(1..=DEFAULT_DEDUPE_WINDOW_SECS).contains(&self.dedupe_window_secs) {
            p.push(format!(
                "destinations.{n}.dedupe_window_secs: Meta dedupes the browser's copy and ours for at most 48 hours \
                 ({DEFAULT_DEDUPE_WINDOW_SECS} s)"
            ));
        }
        if self.test_event_code.as_deref().is_some_and(|c| c.trim().is_empty()) {
            p.push(format!("destinations.{n}.test_event_code: must not be empty (leave it out instead)"));
        }
        if let Some(problem) = action_source_problem(&self.action_source) {
            p.push(format!("destinations.{n}.action_source: {problem}"));
        }
        let ldu = match self.data_processing_options.as_slice() {
            [] => false,
            [one] if one == "LDU" => true,
            _ => {
                p.push(format!("destinations.{n}.data_processing_options: must be [] or [\"LDU\"]"));
                true
            }
        };
        let geo = [
            ("data_processing_options_country", self.data_processing_options_country),
            ("data_processing_options_state", self.data_processing_options_state),
        ];
        for (key, value) in geo {
            match value {
                Some(_) if !ldu => {
                    p.push(format!("destinations.{n}.{key}: only meaningful with data_processing_options = [\"LDU\"]"))
                }
                Some(v) if v < 0 => p.push(format!("destinations.{n}.{key}: must not be negative")),
                _ => {}
            }
        }
        if self.data_processing_options_country.is_some() != self.data_processing_options_state.is_some() {
            p.push(format!(
                "destinations.{n}.data_processing_options_country and _state: give both (0 and 0 lets Meta \
                 geolocate) or neither"
            ));
        }
    }
}

/// `vMAJOR.MINOR`, digits only.
fn is_api_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.split_once('.').is_some_and(|(major, minor)| digits(major) && digits(minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> MetaConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn problems(c: &MetaConfig) -> Vec<String> {
        let mut p = Vec::new();
        crate::config::problems_of(c, crate::config::Secrets::Read, &mut p);
        p
    }

    // Any readable file of eight characters or more stands in for the token.
    const MINIMAL: &str = concat!(
        "name = \"meta\"\npixel_id = \"1234567890\"\naccess_token = \"file:",
        env!("CARGO_MANIFEST_DIR"),
        "/Cargo.toml\"\n"
    );

    #[test]
    fn defaults() {
        let c = config(MINIMAL);
        assert_eq!(c.base_url, "https://graph.facebook.com");
        assert_eq!(c.api_version, "v24.0");
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.window_days, 7);
        assert_eq!(c.test_event_code, None);
        assert_eq!(c.action_source, "system_generated");
        assert!(c.data_processing_options.is_empty());
        assert_eq!(c.dedupe_window_secs, 48 * 3600, "Meta's documented dedupe window");
        assert_eq!(problems(&c), Vec::<String>::new());
    }

    #[test]
    fn the_dedupe_window_is_at_most_metas_48_hours() {
        for (secs, ok) in [(3600, true), (172_800, true), (172_801, false), (0, false)] {
            let c = config(&format!("{MINIMAL}\ndedupe_window_secs = {secs}\n"));
            let p = problems(&c);
            assert_eq!(p.is_empty(), ok, "{secs}: {p:?}");
            if !ok {
                assert!(p[0].starts_with("destinations.meta.dedupe_window_secs:"), "{p:?}");
            }
        }
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let c = config(
            r#"
            name = "m"
            pixel_id = "12ab"
            access_token = "env:SURETY_TEST_META_TOKEN_THAT_IS_NOT_SET"
            base_url = "ftp://x"
            api_version = "24.0"
            batch_size = 1001
            window_days = 8
            test_event_code = " "
            action_source = "web"
            data_processing_options = ["LDU", "X"]
            data_processing_options_country = -1
            "#,
        );
        let p = problems(&c);
        for expected in [
            "destinations.m.pixel_id:",
            "destinations.m.access_token (env:SURETY_TEST_META_TOKEN_THAT_IS_NOT_SET):",
            "destinations.m.base_url:",
            "destinations.m.api_version:",
            "destinations.m.batch_size:",
            "destinations.m.window_days:",
            "destinations.m.test_event_code:",
            "destinations.m.action_source:",
            "destinations.m.data_processing_options:",
            "destinations.m.data_processing_options_country: must not be negative",
            "destinations.m.data_processing_options_country and _state: give both",
        ] {
            assert!(p.iter().any(|m| m.starts_with(expected)), "{expected} missing from {p:#?}");
        }
        assert_eq!(p.len(), 11, "{p:#?}");
    }

    #[test]
    fn limited_data_use() {
        let on = config(&format!(
            "{MINIMAL}\ndata_processing_options = [\"LDU\"]\ndata_processing_options_country = 1\n\
             data_processing_options_state = 1000"
        ));
        assert_eq!(problems(&on), Vec::<String>::new());
        let geo_without_ldu =
            config(&format!("{MINIMAL}\ndata_processing_options_country = 0\ndata_processing_options_state = 0"));
        assert_eq!(problems(&geo_without_ldu).len(), 2, "{:?}", problems(&geo_without_ldu));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<MetaConfig>(&format!("{MINIMAL}\npixel = \"1\"")).is_err());
    }

    #[test]
    fn api_versions() {
        assert!(is_api_version("v24.0"));
        assert!(is_api_version("v9.10"));
        for bad in ["24.0", "v24", "v24.", "v.0", "vx.0", "V24.0", ""] {
            assert!(!is_api_version(bad), "{bad}");
        }
    }

    #[test]
    fn action_sources() {
        assert_eq!(action_source_problem("system_generated"), None);
        assert!(action_source_problem("Website").is_some());
    }
}

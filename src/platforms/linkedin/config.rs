//! `type = "linkedin"`: LinkedIn Conversions API settings, and the catalog rule for routes to it
//! (docs/platforms.md §LinkedIn; learn.microsoft.com/linkedin/marketing/integrations/ads-reporting/conversions-api).

use serde::{Deserialize, Serialize};

use crate::config::{Common, Secret, Section};
use crate::core::Route;

/// LinkedIn keeps conversions up to 90 days old.
pub const MAX_WINDOW_DAYS: u32 = 90;

/// The batch size limit is not published; 5,000 is what third-party integrations use.
pub const MAX_BATCH_SIZE: usize = 5_000;

/// The prefix of a conversion rule URN; the rule id (digits) follows it.
pub const CONVERSION_URN_PREFIX: &str = "urn:lla:llaPartnerConversion:";

/// LinkedIn Conversions API (docs/platforms.md §LinkedIn).
///
/// The conversion rule is not set here but per catalog entry: a route's `event` is the rule id
/// (`"104012"`) or its URN (`"urn:lla:llaPartnerConversion:104012"`), so one destination can
/// feed several rules of the same ad account.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkedinConfig {
    pub name: String,
    /// OAuth 2.0 access token with the `rw_conversions` scope, sent as `Authorization: Bearer`.
    pub access_token: Secret,
    /// `https://api.linkedin.com`, a proxy or a simulator; requests go to `{base_url}/rest/conversionEvents`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The `LinkedIn-Version: YYYYMM` header. LinkedIn keeps a version for about a year; after
    /// that it answers 426 and the destination halts until this is raised.
    #[serde(default = "default_linkedin_version")]
    pub linkedin_version: String,
    /// Conversions per `BATCH_CREATE` request, 1 to 5,000 (LinkedIn publishes no limit).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How old an event may be, at most 90 days.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// How long after the event LinkedIn is assumed to still dedupe the Insight Tag's copy and
    /// ours on `eventId`. LinkedIn publishes no window (docs/platforms.md §LinkedIn Conversions
    /// API), so the default is a conservative 24 hours: a browser-tracked kind whose server copy
    /// would leave later is `skipped:browser_tracked` rather than risk a double count.
    #[serde(default = "default_dedupe_window_secs")]
    pub dedupe_window_secs: u64,
    #[serde(flatten)]
    pub common: Common,
}

fn default_base_url() -> String {
    "https://api.linkedin.com".into()
}

/// A version LinkedIn's documentation lists (li-lms-2026-03), active until about March 2027;
/// raise it about once a year.
pub fn default_linkedin_version() -> String {
    "202603".into()
}

fn default_batch_size() -> usize {
    500
}

/// The assumed `eventId` dedupe window (unpublished; see `dedupe_window_secs`): 24 hours.
pub const DEFAULT_DEDUPE_WINDOW_SECS: u64 = 24 * 3600;

fn default_dedupe_window_secs() -> u64 {
    DEFAULT_DEDUPE_WINDOW_SECS
}

fn default_window_days() -> u32 {
    MAX_WINDOW_DAYS
}

impl Section for LinkedinConfig {
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
        for problem in route_problems(route) {
            p.push(format!("{at}: {problem}"));
        }
    }

    /// Every problem of this destination's settings, as `destinations.NAME.KEY: why`.
    fn problems(&self, p: &mut Vec<String>) {
        let n = &self.name;
        if url::Url::parse(&self.base_url).map(|u| !["http", "https"].contains(&u.scheme())).unwrap_or(true) {
            p.push(format!("destinations.{n}.base_url: '{}' is not an http(s) URL", self.base_url));
        }
        if let Err(e) = parse_version(&self.linkedin_version) {
            p.push(format!("destinations.{n}.linkedin_version: {e}"));
        }
        if self.dedupe_window_secs == 0 {
            p.push(format!("destinations.{n}.dedupe_window_secs: must be at least 1 second"));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            p.push(format!(
                "destinations.{n}.batch_size: LinkedIn takes 1 to {MAX_BATCH_SIZE} conversions per request"
            ));
        }
        if !(1..=MAX_WINDOW_DAYS).contains(&self.window_days) {
            p.push(format!(
                "destinations.{n}.window_days: LinkedIn accepts conversions up to {MAX_WINDOW_DAYS} days old"
            ));
        }
    }
}

/// `(year, month)` of a `LinkedIn-Version` value, which must be written `YYYYMM`.
pub fn parse_version(version: &str) -> Result<(u32, u32), String> {
    let bad = || format!("'{version}' is not a version written YYYYMM, such as 202603");
    if version.len() != 6 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year: u32 = version[..4].parse().map_err(|_| bad())?;
    let month: u32 = version[4..].parse().map_err(|_| bad())?;
    if !(2020..=2100).contains(&year) || !(1..=12).contains(&month) {
        return Err(bad());
    }
    Ok((year, month))
}

/// The conversion rule URN a route names: `event` is the rule id (digits) or the full URN.
pub fn conversion_urn(event: &str) -> Result<String, String> {
    let id = event.strip_prefix(CONVERSION_URN_PREFIX).unwrap_or(event);
    if !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(format!("{CONVERSION_URN_PREFIX}{id}"))
    } else {
        Err(format!(
            "'{event}' is not a LinkedIn conversion rule: write its id (digits, such as \"104012\") or its URN \
             (\"{CONVERSION_URN_PREFIX}104012\")"
        ))
    }
}

/// Every problem of a catalog route to a LinkedIn destination, each starting with the route key
/// at fault (`event: …`), to be prefixed with `catalog.KIND.DESTINATION.`.
pub fn route_problems(route: &Route) -> Vec<String> {
    let mut p = Vec::new();
    if let Err(e) = conversion_urn(&route.event) {
        p.push(format!("event: {e}"));
    }
    if route.action_source.is_some() {
        p.push("action_source: a Meta setting; LinkedIn has no action source".to_owned());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LinkedinConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = parse("name = \"li\"\naccess_token = \"env:LI_TOKEN\"").unwrap();
        assert_eq!(c.base_url, "https://api.linkedin.com");
        assert_eq!(c.linkedin_version, "202603");
        assert_eq!(c.batch_size, 500);
        assert_eq!(c.window_days, 90);
        assert!(parse("name = \"li\"\naccess_token = \"inline-token\"").is_err(), "secrets are never inline");
    }

    #[test]
    fn problems_are_listed() {
        let mut c = parse("name = \"li\"\naccess_token = \"env:SURETY_TEST_UNSET_LINKEDIN_TOKEN\"").unwrap();
        c.base_url = "ftp://x".into();
        c.linkedin_version = "2025-11".into();
        c.batch_size = 5_001;
        c.window_days = 91;
        let mut p = Vec::new();
        crate::config::problems_of(&c, crate::config::Secrets::Read, &mut p);
        let keys: Vec<&str> = p.iter().map(|m| m.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "destinations.li.access_token (env",
                "destinations.li.base_url",
                "destinations.li.linkedin_version",
                "destinations.li.batch_size",
                "destinations.li.window_days"
            ]
        );
        assert!(p[0].contains("SURETY_TEST_UNSET_LINKEDIN_TOKEN is not set"), "{p:?}");
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("202511"), Ok((2025, 11)));
        for bad in ["20251", "2025111", "202513", "202500", "abcdef", "", "199901"] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conversion_rules() {
        assert_eq!(conversion_urn("104012").unwrap(), "urn:lla:llaPartnerConversion:104012");
        assert_eq!(
            conversion_urn("urn:lla:llaPartnerConversion:104012").unwrap(),
            "urn:lla:llaPartnerConversion:104012"
        );
        for bad in ["", "Purchase", "urn:lla:llaPartnerConversion:", "urn:li:sponsoredAccount:1", " 1", "1.5", "-1"] {
            assert!(conversion_urn(bad).is_err(), "{bad}");
        }
        let route = |event: &str, action_source: Option<&str>| Route {
            event: event.into(),
            browser_tracked: false,
            action_source: action_source.map(str::to_owned),
        };
        assert!(route_problems(&route("104012", None)).is_empty());
        let p = route_problems(&route("Purchase", Some("website")));
        assert_eq!(p.len(), 2);
        assert!(p[0].starts_with("event: 'Purchase' is not a LinkedIn conversion rule"), "{p:?}");
        assert!(p[1].starts_with("action_source: "), "{p:?}");
    }
}

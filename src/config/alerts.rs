//! `[alerting]` and `[[alerts]]`: the rules `serve` evaluates (`crate::alerts`) and where their
//! messages go.

use serde::{Deserialize, Serialize};

/// What a rule measures, per destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Age in seconds of the oldest delivery pending or in flight.
    OldestPendingSecs,
    /// Deliveries pending or in flight.
    QueueDepth,
    /// Deliveries ended `dead` (waiting for a replay or a settlement).
    Dead,
    /// Deliveries `in_doubt`.
    InDoubt,
    /// Dead, in doubt and rejected together: what `surety dlq list` shows.
    NeedsPerson,
    /// Of the deliveries that ended within `window_secs`, the share the platform rejected (0–1).
    RejectionShare,
    /// How long, in seconds, the destination's circuit has been open (in this process).
    CircuitOpenSecs,
    /// Of the events within `window_secs` routed to the destination, the share carrying `field`
    /// (an identifier of `surety coverage`, `joined`, or `consent.PURPOSE`); fires `below` a share.
    Coverage,
    /// Unexplained mismatches for the destination in the last reconcile report this process
    /// answered (`POST /v1/reconcile`).
    ReconcileUnexplained,
}

impl Condition {
    pub fn describe(self) -> &'static str {
        match self {
            Self::OldestPendingSecs => "oldest pending delivery (seconds)",
            Self::QueueDepth => "deliveries pending or in flight",
            Self::Dead => "dead deliveries",
            Self::InDoubt => "in_doubt deliveries",
            Self::NeedsPerson => "deliveries that need a person (dead, in_doubt, rejected)",
            Self::RejectionShare => "share of ended deliveries rejected",
            Self::CircuitOpenSecs => "circuit open (seconds)",
            Self::Coverage => "share of events carrying the field",
            Self::ReconcileUnexplained => "unexplained mismatches in the last reconcile",
        }
    }
}

/// One `[[alerts]]` rule.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique; names the alert in messages and `GET /v1/alerts`.
    pub name: String,
    pub when: Condition,
    /// Fires when the value is above this (for `rejection_share`, a share between 0 and 1).
    /// Not for `coverage`, which fires `below`.
    #[serde(default)]
    pub above: f64,
    /// `coverage`: fires when the share is below this (between 0 and 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// `coverage`: what is counted (`email`, `any_click_id`, `joined`, `consent.ad_user_data`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Only this destination; every configured destination when left out.
    #[serde(default)]
    pub destination: Option<String>,
    /// Fires only once the condition has held this long (0: at the first evaluation).
    #[serde(default)]
    pub for_secs: u64,
    /// `rejection_share` and `coverage`: the window the share is taken over (by event time for
    /// `coverage`).
    #[serde(default = "default_window")]
    pub window_secs: u64,
}

fn default_window() -> u64 {
    3600
}

impl AlertRule {
    /// Whether a reading breaks the rule: below `below` for `coverage`, above `above` otherwise.
    pub fn breached(&self, value: f64) -> bool {
        match self.below {
            Some(below) => value < below,
            None => value > self.above,
        }
    }
}

/// What a `coverage` rule may count besides the identifiers of `core::event::COVERAGE_FIELDS`.
pub const COVERAGE_EXTRA: [&str; 4] =
    ["joined", "consent.analytics", "consent.ad_user_data", "consent.ad_personalization"];

fn coverage_field_known(field: &str) -> bool {
    crate::core::event::COVERAGE_FIELDS.contains(&field) || COVERAGE_EXTRA.contains(&field)
}

/// How a message is posted to the webhook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertFormat {
    /// The message as JSON (`status`, `rule`, `when`, `destination`, `value`, `above`, `since`, `at`, `summary`).
    #[default]
    Json,
    /// `{"text": "…"}`: Slack's incoming webhooks and compatible receivers.
    Slack,
}

/// `[alerting]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Whether this process may evaluate the rules. With several processes on one PostgreSQL
    /// ledger, the one that leads (an advisory lock) evaluates; `false` keeps a process out.
    pub evaluate: bool,
    /// How often the rules are evaluated.
    pub interval_secs: u64,
    /// Where messages are posted; none: listed in `GET /v1/alerts` only.
    #[serde(default)]
    pub webhook_url: Option<String>,
    pub format: AlertFormat,
    /// Attempts per message, the first included.
    pub max_attempts: u32,
    /// The first wait between attempts; it doubles up to 60 s.
    pub retry_base_ms: u64,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            evaluate: true,
            interval_secs: 30,
            webhook_url: None,
            format: AlertFormat::Json,
            max_attempts: 8,
            retry_base_ms: 1000,
        }
    }
}

/// Problems of the alerting configuration, each naming its key.
pub fn problems(alerting: &AlertingConfig, rules: &[AlertRule], destinations: &[&str]) -> Vec<String> {
    let mut p = Vec::new();
    if alerting.interval_secs == 0 {
        p.push("alerting.interval_secs: must be at least 1".into());
    }
    if alerting.max_attempts == 0 {
        p.push("alerting.max_attempts: must be at least 1".into());
    }
    if let Some(url) = alerting.webhook_url.as_deref().filter(|u| !u.is_empty()) {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => p.push("alerting.webhook_url: must be an http:// or https:// URL".into()),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in rules.iter().enumerate() {
        let at = format!("alerts[{i}]");
        if r.name.trim().is_empty() {
            p.push(format!("{at}.name: must not be empty"));
        } else if !seen.insert(r.name.as_str()) {
            p.push(format!("{at}.name: '{}' is used by another rule", r.name));
        }
        if !(r.above.is_finite() && r.above >= 0.0) {
            p.push(format!("{at}.above: must be a number of at least 0"));
        }
        if r.when == Condition::RejectionShare && r.above >= 1.0 {
            p.push(format!("{at}.above: a rejection_share is between 0 and 1 (0.05 = 5%)"));
        }
        if matches!(r.when, Condition::RejectionShare | Condition::Coverage) && r.window_secs == 0 {
            p.push(format!("{at}.window_secs: must be at least 1"));
        }
        if r.when == Condition::Coverage {
            match r.below {
                Some(b) if b.is_finite() && (0.0..=1.0).contains(&b) => {}
                Some(_) => p.push(format!("{at}.below: a coverage share is between 0 and 1 (0.6 = 60%)")),
                None => p.push(format!("{at}.below: a coverage rule fires below a share: set below = 0.6 (60%)")),
            }
            if r.above != 0.0 {
                p.push(format!("{at}.above: a coverage rule fires below a share: use below, not above"));
            }
            match r.field.as_deref() {
                Some(f) if coverage_field_known(f) => {}
                Some(f) => p.push(format!(
                    "{at}.field: '{f}' is not counted by coverage (one of {}, {})",
                    crate::core::event::COVERAGE_FIELDS.join(", "),
                    COVERAGE_EXTRA.join(", ")
                )),
                None => {
                    p.push(format!("{at}.field: a coverage rule names the field it counts (e.g. field = \"email\")"))
                }
            }
        } else {
            if r.below.is_some() {
                p.push(format!("{at}.below: only a coverage rule fires below a value; use above"));
            }
            if r.field.is_some() {
                p.push(format!("{at}.field: only a coverage rule counts a field"));
            }
        }
        if let Some(d) = &r.destination {
            if !destinations.contains(&d.as_str()) {
                p.push(format!("{at}.destination: no destination named '{d}'"));
            }
        }
    }
    p
}

//! `[sources.*]`: the webhooks and the Segment-compatible API. A source without its section is
//! switched off (its endpoint answers 404 `source_not_configured`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Secret;
use crate::core::Kind;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    pub stripe: Option<StripeSource>,
    pub shopify: Option<ShopifySource>,
    pub segment: Option<SegmentSource>,
}

/// `POST /v1/webhooks/stripe`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSource {
    /// The endpoint's signing secret (`whsec_…`).
    pub signing_secret: Secret,
    /// Older secrets still accepted while a rolled secret expires.
    #[serde(default)]
    pub previous_signing_secrets: Vec<Secret>,
    /// Largest age (either way) of the signature's timestamp, in seconds.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// Stripe event type → kind. Types not listed are acknowledged and recorded as ignored.
    #[serde(default = "default_stripe_events")]
    pub events: BTreeMap<String, String>,
    /// Which `metadata` keys carry the shop's order id and the identity captured at checkout.
    #[serde(default)]
    pub keys: IdentityKeys,
}

/// `POST /v1/webhooks/shopify`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifySource {
    /// The app's client secret (or the shop's webhook signing key).
    pub signing_secret: Secret,
    #[serde(default)]
    pub previous_signing_secrets: Vec<Secret>,
    /// `X-Shopify-Topic` → kind. Topics not listed are acknowledged and recorded as ignored.
    #[serde(default = "default_shopify_topics")]
    pub topics: BTreeMap<String, String>,
    /// Which `note_attributes` (cart attributes) carry the identity captured at checkout.
    #[serde(default)]
    pub keys: IdentityKeys,
}

/// `POST /v1/batch`, `/v1/track`, `/v1/identify`: the Segment HTTP tracking API.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSource {
    /// Accepted write keys (Basic auth user name, or `writeKey` in the body).
    pub write_keys: Vec<Secret>,
    /// Track event name → kind; names not listed are acknowledged and recorded as ignored.
    #[serde(default = "default_segment_events")]
    pub events: BTreeMap<String, String>,
    /// Which `properties` / `context.traits` keys carry identity beyond Segment's own fields.
    #[serde(default)]
    pub keys: IdentityKeys,
}

/// Names under which a source's free-form attributes (Stripe `metadata`, Shopify
/// `note_attributes`, Segment `properties` and traits) carry identity; the first name present
/// wins. An empty list switches a field off. GA's own cookies work as they are: a `_ga` value
/// (`GA1.1.<client id>`) gives the client id, and a `_ga_<stream>` value gives the session id.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityKeys {
    pub order_id: Vec<String>,
    pub client_id: Vec<String>,
    pub session_id: Vec<String>,
    pub user_id: Vec<String>,
    pub gclid: Vec<String>,
    pub gbraid: Vec<String>,
    pub wbraid: Vec<String>,
    pub fbp: Vec<String>,
    pub fbc: Vec<String>,
    pub li_fat_id: Vec<String>,
    pub browser_event_id: Vec<String>,
    /// Consent as `granted` / `denied` (or true / false).
    pub consent_analytics: Vec<String>,
    pub consent_ad_user_data: Vec<String>,
    pub consent_ad_personalization: Vec<String>,
}

impl Default for IdentityKeys {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        Self {
            order_id: s(&["order_id"]),
            client_id: s(&["ga_client_id", "client_id", "_ga"]),
            session_id: s(&["ga_session_id", "session_id"]),
            user_id: s(&["user_id"]),
            gclid: s(&["gclid"]),
            gbraid: s(&["gbraid"]),
            wbraid: s(&["wbraid"]),
            fbp: s(&["fbp", "_fbp"]),
            fbc: s(&["fbc", "_fbc"]),
            li_fat_id: s(&["li_fat_id"]),
            browser_event_id: s(&["browser_event_id", "event_id"]),
            consent_analytics: s(&["consent_analytics"]),
            consent_ad_user_data: s(&["consent_ad_user_data"]),
            consent_ad_personalization: s(&["consent_ad_personalization"]),
        }
    }
}

impl IdentityKeys {
    /// (canonical identity field, attribute names) for the plain identifiers.
    pub fn identity_fields(&self) -> [(&'static str, &[String]); 10] {
        [
            ("client_id", &self.client_id),
            ("session_id", &self.session_id),
            ("user_id", &self.user_id),
            ("gclid", &self.gclid),
            ("gbraid", &self.gbraid),
            ("wbraid", &self.wbraid),
            ("fbp", &self.fbp),
            ("fbc", &self.fbc),
            ("li_fat_id", &self.li_fat_id),
            ("browser_event_id", &self.browser_event_id),
        ]
    }

    /// (canonical consent purpose, attribute names).
    pub fn consent_fields(&self) -> [(&'static str, &[String]); 3] {
        [
            ("analytics", &self.consent_analytics),
            ("ad_user_data", &self.consent_ad_user_data),
            ("ad_personalization", &self.consent_ad_personalization),
        ]
    }
}

fn default_tolerance() -> u64 {
    300
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

pub fn default_stripe_events() -> BTreeMap<String, String> {
    map(&[
        ("payment_intent.succeeded", "order_paid"),
        ("checkout.session.completed", "order_paid"),
        ("checkout.session.async_payment_succeeded", "order_paid"),
        ("charge.refunded", "refund_completed"),
        ("charge.dispute.created", "chargeback_opened"),
        ("invoice.paid", "subscription_started"),
        ("customer.subscription.created", "subscription_started"),
    ])
}

pub fn default_shopify_topics() -> BTreeMap<String, String> {
    map(&[
        ("orders/paid", "order_paid"),
        ("refunds/create", "refund_completed"),
        ("orders/cancelled", "order_cancelled"),
    ])
}

/// Segment's e-commerce spec names, mapped to the catalog's kinds.
pub fn default_segment_events() -> BTreeMap<String, String> {
    map(&[
        ("Order Completed", "order_paid"),
        ("Order Refunded", "refund_completed"),
        ("Order Cancelled", "order_cancelled"),
        ("Subscription Started", "subscription_started"),
        ("Lead Qualified", "lead_qualified"),
    ])
}

impl SourcesConfig {
    pub fn problems(&self, p: &mut Vec<String>) {
        let mut secrets = |section: &str, list: Vec<&Secret>| {
            for s in list {
                if let Err(e) = s.resolve() {
                    p.push(format!("sources.{section} ({}): {e}", s.reference()));
                }
            }
        };
        if let Some(s) = &self.stripe {
            secrets("stripe", std::iter::once(&s.signing_secret).chain(&s.previous_signing_secrets).collect());
        }
        if let Some(s) = &self.shopify {
            secrets("shopify", std::iter::once(&s.signing_secret).chain(&s.previous_signing_secrets).collect());
        }
        if let Some(s) = &self.segment {
            secrets("segment", s.write_keys.iter().collect());
        }
        if self.segment.as_ref().is_some_and(|s| s.write_keys.is_empty()) {
            p.push("sources.segment.write_keys: name at least one write key".into());
        }
        let kinds = [
            ("stripe.events", self.stripe.as_ref().map(|s| &s.events)),
            ("shopify.topics", self.shopify.as_ref().map(|s| &s.topics)),
            ("segment.events", self.segment.as_ref().map(|s| &s.events)),
        ];
        for (section, events) in kinds {
            for (name, kind) in events.into_iter().flatten() {
                if let Err(e) = Kind::parse(kind) {
                    p.push(format!("sources.{section}.\"{name}\": the kind '{kind}' {e}"));
                }
            }
        }
        if self.stripe.as_ref().is_some_and(|s| s.tolerance_secs == 0) {
            p.push("sources.stripe.tolerance_secs: must be at least 1".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_commented_sources_of_the_default_file_parse_when_uncommented() {
        let start = crate::config::DEFAULT_TOML.find("# [sources.stripe]").unwrap();
        let end = crate::config::DEFAULT_TOML.find("# Destinations:").unwrap();
        let uncommented: String = crate::config::DEFAULT_TOML[start..end]
            .lines()
            .map(|l| l.strip_prefix("# ").or_else(|| l.strip_prefix('#')).unwrap_or(l))
            .map(|l| l.split("  #").next().unwrap_or_default().to_owned() + "\n")
            .collect();
        // Any readable file stands in for the secrets.
        let readable = format!("file:{}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        let uncommented = ["env:STRIPE_WEBHOOK_SECRET", "env:SHOPIFY_WEBHOOK_SECRET", "env:SEGMENT_WRITE_KEY"]
            .iter()
            .fold(uncommented, |text, secret| text.replace(secret, &readable));
        let config = Config::from_toml(&uncommented).expect("the documented sources parse");
        let stripe = config.sources.stripe.unwrap();
        assert_eq!(stripe.events, super::default_stripe_events());
        assert_eq!(stripe.keys, super::IdentityKeys::default());
        assert_eq!(config.sources.segment.unwrap().events, super::default_segment_events());
    }

    #[test]
    fn problems_name_bad_kinds_and_unresolvable_secrets() {
        let problems = Config::from_toml(
            r#"
[sources.stripe]
signing_secret = "env:SURETY_TEST_SURELY_UNSET_SECRET"
[sources.stripe.events]
"charge.refunded" = "Refund!"
[sources.segment]
write_keys = []
"#,
        )
        .unwrap_err()
        .problems
        .join("\n");
        assert!(problems.contains("sources.stripe (env:SURETY_TEST_SURELY_UNSET_SECRET)"), "{problems}");
        assert!(problems.contains("sources.stripe.events.\"charge.refunded\""), "{problems}");
        assert!(problems.contains("sources.segment.write_keys"), "{problems}");
        assert!(
            Config::from_toml("[sources.stripe]\nsigning_secret = \"whsec_inline\"").is_err(),
            "inline secrets refused"
        );
    }
}

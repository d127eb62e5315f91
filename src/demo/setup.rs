//! What the tour runs against: the four platform simulators, the secrets (files in the temp
//! folder), and the configuration that points four destinations and a small shop's catalog at them.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{GA4, GOOGLE_ADS, LINKEDIN, META};
use crate::platforms::ga4::sim::Ga4Sim;
use crate::platforms::google_ads::sim::GoogleAdsSim;
use crate::platforms::linkedin::sim::LinkedinSim;
use crate::platforms::meta::sim::MetaSim;

/// The bearer token the LinkedIn simulator takes (and the destination sends).
const LINKEDIN_TOKEN: &str = "demo-linkedin-token";
/// Google Ads conversion actions (the Data Manager API's `productDestinationId`).
pub const PURCHASE_ACTION: &str = "555000111";
pub const LEAD_ACTION: &str = "555000222";

/// The four simulators, one per destination.
pub struct Sims {
    pub ga4: Ga4Sim,
    pub meta: MetaSim,
    pub google: GoogleAdsSim,
    pub linkedin: LinkedinSim,
}

impl Sims {
    pub async fn start() -> anyhow::Result<Self> {
        let ga4 = crate::platforms::ga4::sim::start().await.context("cannot start the GA4 simulator")?;
        let meta = crate::platforms::meta::sim::start().await.context("cannot start the Meta simulator")?;
        let google =
            crate::platforms::google_ads::sim::start().await.context("cannot start the Google Ads simulator")?;
        let linkedin = crate::platforms::linkedin::sim::start().await.context("cannot start the LinkedIn simulator")?;
        linkedin.state().set_access_token(Some(LINKEDIN_TOKEN));
        Ok(Self { ga4, meta, google, linkedin })
    }

    pub async fn shutdown(&self) {
        self.ga4.shutdown().await;
        self.meta.shutdown().await;
        self.google.shutdown().await;
        self.linkedin.shutdown().await;
    }

    /// Events the destination's simulator took — one per delivered delivery, if nothing was lost
    /// or sent twice.
    pub fn received(&self, destination: &str) -> Option<u64> {
        match destination {
            GA4 => Some(self.ga4.event_count()),
            META => Some(self.meta.event_count()),
            GOOGLE_ADS => Some(self.google.event_count()),
            LINKEDIN => Some(self.linkedin.conversion_count()),
            _ => None,
        }
    }

    /// What each simulator says it took, in its platform's words.
    pub fn describe(&self) -> Vec<String> {
        let g = &self.google;
        let retracted = g.conversions().iter().filter(|c| c.value == Some(0.0)).count();
        vec![
            format!(
                "GA4 sim        {} events in {} requests (+ {} validations at /debug/mp/collect); {} requests \
                 answered with the injected 503",
                self.ga4.event_count(),
                self.ga4.request_count(),
                self.ga4.debug_request_count(),
                self.ga4.fault_count()
            ),
            format!(
                "Meta sim       {} events in {} requests (events_received); {} dropped as duplicates",
                self.meta.event_count(),
                self.meta.request_count(),
                self.meta.deduplicated_count()
            ),
            format!(
                "Google Ads sim {} events in {} accepted requests, {} status checks; it holds {} conversions \
                 ({} restated by an adjustment, {} retracted to value 0), {} access token(s) issued",
                g.event_count(),
                g.accepted_requests(),
                g.requests_to(crate::platforms::google_ads::sim::Endpoint::Status).len(),
                g.conversions().len(),
                g.conversions().iter().filter(|c| c.adjustments > 0).count(),
                retracted,
                g.token_grants()
            ),
            format!(
                "LinkedIn sim   {} conversions in {} requests (each element answered 201)",
                self.linkedin.conversion_count(),
                self.linkedin.request_count()
            ),
        ]
    }
}

/// Secrets live in files of the temp folder: never inline in the configuration, and no
/// process-wide environment variable to set.
pub struct Secrets {
    ingest: PathBuf,
    admin: PathBuf,
    ga4: PathBuf,
    meta: PathBuf,
    google: PathBuf,
    linkedin: PathBuf,
    stripe: PathBuf,
}

/// The demo's Stripe endpoint secret: the tour signs its payment webhooks with it, as Stripe would.
pub const STRIPE_SECRET: &str = "whsec_surety_demo";

impl Secrets {
    pub fn write(dir: &Path, ingest_token: &str, admin_token: &str) -> anyhow::Result<Self> {
        let s = Self {
            ingest: dir.join("ingest_token"),
            admin: dir.join("admin_token"),
            ga4: dir.join("ga4_api_secret"),
            meta: dir.join("meta_access_token"),
            google: dir.join("google_service_account.json"),
            linkedin: dir.join("linkedin_access_token"),
            stripe: dir.join("stripe_webhook_secret"),
        };
        // The Google key is the simulator's public test key, built into the binary: it grants
        // nothing anywhere but at the simulator.
        let google_key = crate::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON;
        for (path, value) in [
            (&s.ingest, ingest_token),
            (&s.admin, admin_token),
            (&s.ga4, "demo-ga4-secret"),
            (&s.meta, "demo-meta-token"),
            (&s.google, google_key),
            (&s.linkedin, LINKEDIN_TOKEN),
            (&s.stripe, STRIPE_SECRET),
        ] {
            std::fs::write(path, value).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(s)
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn file_secret(p: &Path) -> String {
    quote(&format!("file:{}", p.display()))
}

/// The demo's configuration: fast retries so the outage plays out in seconds, four destinations
/// pointed at the simulators, and a small shop's catalog.
pub fn config_toml(db: &Path, addr: std::net::SocketAddr, secrets: &Secrets, sims: &Sims) -> String {
    format!(
        r#"[storage]
url = {db}

[server]
listen = "{addr}"

[auth]
ingest_tokens = [{ingest}]
admin_tokens = [{admin}]

[retry]
max_attempts = 10
base_delay_ms = 400
max_delay_ms = 2000

[worker]
poll_interval_ms = 100
breaker_threshold = 3
breaker_cooldown_ms = 1000
breaker_max_cooldown_ms = 4000

[log]
level = "error"

# The payment provider: Stripe's webhooks, signed with the endpoint's secret.
[sources.stripe]
signing_secret = {stripe}

[[destinations]]
name = "{GA4}"
type = "ga4"
measurement_id = "G-DEMO2024"
api_secret = {ga4}
base_url = {ga4_url}
validate_with_debug_endpoint = true
timeout_ms = 2000
identity_wait_secs = 0 # the demo shows skipped:no_identity at once, not after a wait

[[destinations]]
name = "{META}"
type = "meta"
pixel_id = "1234567890"
access_token = {meta}
base_url = {meta_url}
timeout_ms = 2000
identity_wait_secs = 0 # the demo shows skipped:no_identity at once, not after a wait

[[destinations]]
name = "{GOOGLE_ADS}"
type = "google_ads"
customer_id = "123-456-7890"
service_account_key = {google}
base_url = {google_url}
token_url = {google_token_url}
# Google answers requestStatus:retrieve about 30 minutes after a send; the simulator at once.
status_poll_delay_secs = 0
timeout_ms = 2000
identity_wait_secs = 0 # the demo shows skipped:no_identity at once, not after a wait

[[destinations]]
name = "{LINKEDIN}"
type = "linkedin"
access_token = {linkedin}
base_url = {linkedin_url}
timeout_ms = 2000
identity_wait_secs = 0 # the demo shows skipped:no_identity at once, not after a wait

# The shop's browser tags send no purchase: bank transfers are confirmed days after checkout, so
# the payment provider's confirmation is the one source of purchases, for every platform.
[catalog.order_paid]
{GA4} = {{ event = "purchase", browser_tracked = false }}
{META} = {{ event = "Purchase" }}
{GOOGLE_ADS} = {{ event = "{PURCHASE_ACTION}" }}
{LINKEDIN} = {{ event = "104012" }}

# Google Ads: the same conversion action again is an adjustment of the purchase.
[catalog.refund_completed]
{GA4} = {{ event = "refund" }}
{GOOGLE_ADS} = {{ event = "{PURCHASE_ACTION}" }}

# Revenue at risk: a custom GA4 event next to purchases; Google Ads retracts the conversion.
[catalog.chargeback_opened]
{GA4} = {{ event = "chargeback" }}
{GOOGLE_ADS} = {{ event = "{PURCHASE_ACTION}" }}

[catalog.lead_qualified]
{GA4} = {{ event = "qualify_lead" }}
{META} = {{ event = "Lead" }}
{GOOGLE_ADS} = {{ event = "{LEAD_ACTION}" }}
{LINKEDIN} = {{ event = "104013" }}

# fulfillment_failed is deliberately absent: an operational state, kept in the ledger only.
"#,
        db = quote(&format!("sqlite://{}", db.display())),
        ingest = file_secret(&secrets.ingest),
        admin = file_secret(&secrets.admin),
        ga4 = file_secret(&secrets.ga4),
        ga4_url = quote(&sims.ga4.base_url),
        meta = file_secret(&secrets.meta),
        meta_url = quote(&sims.meta.base_url),
        google = file_secret(&secrets.google),
        google_url = quote(&sims.google.base_url),
        google_token_url = quote(&sims.google.token_url),
        linkedin = file_secret(&secrets.linkedin),
        linkedin_url = quote(&sims.linkedin.base_url),
        stripe = file_secret(&secrets.stripe),
    )
}

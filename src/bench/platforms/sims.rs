//! The four platforms of scenario d as the benchmark runs them: each simulator behind its arrivals
//! layer (counting only, no bodies kept), its destination's section and catalog route, and how its
//! counters and the ledger say it took an event (`Lane`). Every platform the scenario names is here.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::bench::harness::{Arrivals, Marker, Sim, GA4_DESTINATION};
use crate::platforms::google_ads::sim::GoogleAdsSimState;
use crate::platforms::linkedin::sim::LinkedinSimState;
use crate::platforms::meta::sim::MetaSimState;

const META_DESTINATION: &str = "meta-bench";
pub(super) const GOOGLE_ADS_DESTINATION: &str = "gads-bench";
const LINKEDIN_DESTINATION: &str = "linkedin-bench";

/// Meta: the Surety event id (`order:N:order_paid`) is the `event_id`.
const META_MARKER: Marker = Marker { path: "/events", key: "\"event_id\":\"order:" };
/// Google Ads: the order number is the `transactionId`.
const GOOGLE_ADS_MARKER: Marker = Marker { path: "/v1/events:ingest", key: "\"transactionId\":\"" };
/// LinkedIn: the Surety event id is the `eventId`.
const LINKEDIN_MARKER: Marker = Marker { path: "/rest/conversionEvents", key: "\"eventId\":\"order:" };

/// One destination: its simulator's arrivals and counters, and what its ledger reason for an
/// accepted delivery is.
pub(super) struct Lane {
    pub(super) destination: &'static str,
    pub(super) platform: &'static str,
    pub(super) arrivals: Arc<Arrivals>,
    /// Events the simulator took (its own counter, independent of the arrival layer).
    pub(super) received: Box<dyn Fn() -> u64 + Send + Sync>,
    pub(super) requests: Box<dyn Fn() -> u64 + Send + Sync>,
    pub(super) accepted_reason: Option<&'static str>,
}

/// The four simulators, counting only (no bodies kept).
pub(super) struct Sims {
    pub(super) ga4: Sim,
    meta: Sim<MetaSimState>,
    google: Sim<GoogleAdsSimState>,
    linkedin: Sim<LinkedinSimState>,
}

impl Sims {
    pub(super) async fn start(events: usize, epoch: Instant) -> anyhow::Result<Self> {
        let ga4 = Sim::start(events, epoch).await?;
        let meta = MetaSimState::new();
        meta.set_recording(false);
        let meta = Sim::serve(
            crate::platforms::meta::sim::router(meta.clone()),
            meta,
            Arrivals::new(events, epoch, META_MARKER),
        )
        .await?;
        let google = GoogleAdsSimState::with_test_key();
        google.set_recording(false);
        let arrivals = Arrivals::new(events, epoch, GOOGLE_ADS_MARKER);
        let google = Sim::serve(crate::platforms::google_ads::sim::router(google.clone()), google, arrivals).await?;
        let linkedin = LinkedinSimState::new();
        linkedin.set_recording(false);
        let arrivals = Arrivals::new(events, epoch, LINKEDIN_MARKER);
        let linkedin =
            Sim::serve(crate::platforms::linkedin::sim::router(linkedin.clone()), linkedin, arrivals).await?;
        Ok(Self { ga4, meta, google, linkedin })
    }

    pub(super) fn lanes(&self) -> Vec<Lane> {
        let (ga4, meta, google, linkedin) =
            (self.ga4.state.clone(), self.meta.state.clone(), self.google.state.clone(), self.linkedin.state.clone());
        let (ga4_requests, meta_requests, google_requests, linkedin_requests) =
            (ga4.clone(), meta.clone(), google.clone(), linkedin.clone());
        vec![
            Lane {
                destination: GA4_DESTINATION,
                platform: "GA4",
                arrivals: self.ga4.arrivals.clone(),
                received: Box::new(move || ga4.event_count()),
                requests: Box::new(move || ga4_requests.request_count()),
                accepted_reason: None,
            },
            Lane {
                destination: META_DESTINATION,
                platform: "Meta",
                arrivals: self.meta.arrivals.clone(),
                received: Box::new(move || meta.event_count()),
                requests: Box::new(move || meta_requests.request_count()),
                accepted_reason: Some("accepted"),
            },
            Lane {
                destination: GOOGLE_ADS_DESTINATION,
                platform: "Google Ads",
                arrivals: self.google.arrivals.clone(),
                received: Box::new(move || google.event_count()),
                requests: Box::new(move || google_requests.accepted_requests()),
                accepted_reason: Some("accepted"),
            },
            Lane {
                destination: LINKEDIN_DESTINATION,
                platform: "LinkedIn",
                arrivals: self.linkedin.arrivals.clone(),
                received: Box::new(move || linkedin.conversion_count()),
                requests: Box::new(move || linkedin_requests.request_count()),
                accepted_reason: Some("accepted"),
            },
        ]
    }

    pub(super) async fn stop(self) {
        self.ga4.stop().await;
        self.meta.stop().await;
        self.google.stop().await;
        self.linkedin.stop().await;
    }
}

/// The three destinations besides GA4's, and their catalog routes, as TOML; secrets in `dir`.
pub(super) fn more_destinations(sims: &Sims, dir: &std::path::Path, concurrency: usize) -> anyhow::Result<String> {
    let q = |s: String| toml::Value::String(s).to_string();
    let secret = |name: &str, value: &str| -> anyhow::Result<String> {
        let path = dir.join(name);
        std::fs::write(&path, value).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(q(format!("file:{}", path.display())))
    };
    Ok(format!(
        "\n[[destinations]]\nname = \"{META_DESTINATION}\"\ntype = \"meta\"\npixel_id = \"1234567890\"\n\
         access_token = {meta_token}\nbase_url = {meta_url}\nconcurrency = {concurrency}\n\n\
         [[destinations]]\nname = \"{GOOGLE_ADS_DESTINATION}\"\ntype = \"google_ads\"\ncustomer_id = \"123-456-7890\"\n\
         service_account_key = {google_key}\nbase_url = {google_url}\ntoken_url = {google_token_url}\n\
         status_poll_delay_secs = 0\nrequests_per_minute = 60000\nconcurrency = {concurrency}\n\n\
         [[destinations]]\nname = \"{LINKEDIN_DESTINATION}\"\ntype = \"linkedin\"\naccess_token = {li_token}\n\
         base_url = {li_url}\nconcurrency = {concurrency}\n\n\
         [catalog.order_paid.{META_DESTINATION}]\nevent = \"Purchase\"\n\
         [catalog.order_paid.{GOOGLE_ADS_DESTINATION}]\nevent = \"111111111\"\n\
         [catalog.order_paid.{LINKEDIN_DESTINATION}]\nevent = \"104012\"\n",
        meta_token = secret("meta_token", "bench-meta-token")?,
        meta_url = q(sims.meta.base_url.clone()),
        google_key = secret("google_key.json", crate::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON)?,
        google_url = q(sims.google.base_url.clone()),
        google_token_url = q(format!("{}/token", sims.google.base_url)),
        li_token = secret("linkedin_token", "bench-linkedin-token")?,
        li_url = q(sims.linkedin.base_url.clone()),
    ))
}

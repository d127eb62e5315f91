//! How `surety demo` and `surety bench` show Google Ads: its catalog routes, its simulator's
//! destination section and counters, and what they say of it (`platforms::Showcase`,
//! `platforms::Simulator`).

use std::path::Path;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::sim::{self, Endpoint, GoogleAdsSim, GoogleAdsSimState};
use crate::platforms::{
    secret_file, toml_string, Fault, Marker, Purpose, ShowRoute, Showcase, SimOptions, Simulator, Starting,
};

/// Conversion actions (the Data Manager API's `productDestinationId`) of the demo's catalog.
pub const PURCHASE_ACTION: &str = "555000111";
pub const LEAD_ACTION: &str = "555000222";

pub(super) const SHOWCASE: Showcase = Showcase {
    demo_name: "google-ads",
    routes: &[
        ShowRoute { kind: "order_paid", event: PURCHASE_ACTION, extra: "", shown: "action 555000111" },
        // The same conversion action again is an adjustment of the purchase…
        ShowRoute { kind: "refund_completed", event: PURCHASE_ACTION, extra: "", shown: "adjustment of 555000111" },
        // …and a chargeback retracts it.
        ShowRoute { kind: "chargeback_opened", event: PURCHASE_ACTION, extra: "", shown: "retraction of 555000111" },
        ShowRoute { kind: "lead_qualified", event: LEAD_ACTION, extra: "", shown: "action 555000222" },
    ],
    // The order number is the `transactionId`.
    marker: Marker { path: "/v1/events:ingest", key: "\"transactionId\":\"" },
    accepts: true,
    confirms_later: Some(
        "Google Ads confirms what it processed. events:ingest answering 200 means \"accepted for\n    \
         processing\": those deliveries are 'delivered:sent'. Surety asks requestStatus:retrieve (Google: about\n    \
         30 minutes later; the simulator: at once) and settles each request's deliveries as accepted,\n    \
         partially_accepted or processing_failed — or, if Google never says, processing_unknown after 24 h.",
    ),
    // docs/platforms.md §Google Ads: conversions up to 90 days old.
    window_hours: 90 * 24,
    needs_client_id: false,
    consent: "ad_user_data",
    identity: "a hashed email or a click id",
    bench_note: Some(
        "Google Ads requests_per_minute is lifted to 60,000 to measure Surety, not Google's quota (300 \
         requests/min per project, which would cap it at 5 requests/s)",
    ),
};

pub(super) fn simulate(options: SimOptions) -> Starting {
    async move {
        let running = sim::serve(GoogleAdsSimState::with_test_key(), &options).await?;
        Ok(Box::new(running) as Box<dyn Simulator>)
    }
    .boxed()
}

impl Simulator for GoogleAdsSim {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn received(&self) -> u64 {
        self.event_count()
    }

    fn requests(&self) -> u64 {
        self.accepted_requests()
    }

    fn faulted(&self) -> u64 {
        self.fault_count()
    }

    fn set_fault(&self, fault: Option<Fault>) {
        self.state().set_fault(fault);
    }

    fn destination_toml(&self, name: &str, dir: &Path, purpose: Purpose) -> std::io::Result<String> {
        // The simulator's public test key, built into the binary: it grants nothing anywhere but here.
        let key = secret_file(dir, &format!("{name}_service_account.json"), sim::TEST_SERVICE_ACCOUNT_JSON)?;
        let quota = match purpose {
            Purpose::Tour => "",
            Purpose::Load => "requests_per_minute = 60000\n",
        };
        Ok(format!(
            "[[destinations]]\nname = {}\ntype = \"google_ads\"\ncustomer_id = \"123-456-7890\"\n\
             service_account_key = {key}\nbase_url = {}\ntoken_url = {}\n\
             # Google answers requestStatus:retrieve about 30 minutes after a send; the simulator at once.\n\
             status_poll_delay_secs = 0\n{quota}",
            toml_string(name),
            toml_string(&self.base_url),
            toml_string(&self.token_url),
        ))
    }

    fn introduce(&self) -> Vec<String> {
        vec![
            format!("Google Ads (Data Manager API) at {}: customer 123-456-7890, OAuth with", self.base_url),
            "a service-account key; a 200 is \"sent\", and requestStatus:retrieve later says \"accepted\"".to_owned(),
        ]
    }

    fn describe(&self) -> String {
        let conversions = self.conversions();
        format!(
            "Google Ads sim {} events in {} accepted requests, {} status checks; it holds {} conversions ({} \
             restated by an adjustment, {} retracted to value 0), {} access token(s) issued",
            self.event_count(),
            self.accepted_requests(),
            self.requests_to(Endpoint::Status).len(),
            conversions.len(),
            conversions.iter().filter(|c| c.adjustments > 0).count(),
            conversions.iter().filter(|c| c.value == Some(0.0)).count(),
            self.token_grants()
        )
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        GoogleAdsSim::shutdown(self).boxed()
    }
}

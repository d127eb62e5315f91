//! How `surety demo` and `surety bench` show GA4: its catalog routes, its simulator's destination
//! section and counters, and what they say of it (`platforms::Showcase`, `platforms::Simulator`).

use std::path::Path;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::sim::{self, Ga4Sim, Ga4SimState};
use crate::platforms::{
    secret_file, toml_string, Fault, Marker, Purpose, ShowRoute, Showcase, SimOptions, Simulator, Starting,
};

pub(super) const SHOWCASE: Showcase = Showcase {
    demo_name: "ga4-web",
    routes: &[
        // The shop's browser tag sends no purchase (bank transfers are confirmed days later).
        ShowRoute { kind: "order_paid", event: "purchase", extra: ", browser_tracked = false", shown: "purchase" },
        ShowRoute { kind: "refund_completed", event: "refund", extra: "", shown: "refund" },
        // Revenue at risk: a custom event next to purchases.
        ShowRoute { kind: "chargeback_opened", event: "chargeback", extra: "", shown: "chargeback" },
        ShowRoute { kind: "lead_qualified", event: "qualify_lead", extra: "", shown: "qualify_lead" },
    ],
    // `params.transaction_id` is the order number.
    marker: Marker { path: "/mp/collect", key: "\"transaction_id\":\"" },
    // The production endpoint answers 2xx to any payload: a delivery is `sent`.
    accepts: false,
    confirms_later: None,
    // docs/platforms.md §GA4: events up to 72 hours old.
    window_hours: 72,
    needs_client_id: true,
    consent: "analytics",
    identity: "a client_id",
    bench_note: None,
};

pub(super) fn simulate(options: SimOptions) -> Starting {
    async move {
        let state = Ga4SimState::new();
        state.set_recording(!options.counting_only);
        let running = crate::sim::serve(state.clone(), options.apply(sim::router(state)), "GA4").await?;
        Ok(Box::new(running) as Box<dyn Simulator>)
    }
    .boxed()
}

impl Simulator for Ga4Sim {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn received(&self) -> u64 {
        self.event_count()
    }

    fn requests(&self) -> u64 {
        self.request_count()
    }

    fn faulted(&self) -> u64 {
        self.fault_count()
    }

    fn set_fault(&self, fault: Option<Fault>) {
        self.state().set_fault(fault);
    }

    fn destination_toml(&self, name: &str, dir: &Path, purpose: Purpose) -> std::io::Result<String> {
        let secret = secret_file(dir, &format!("{name}_api_secret"), "sim-ga4-secret")?;
        let (measurement_id, validate) = match purpose {
            // Each batch checked at /debug/mp/collect first: a delivery can say "accepted".
            Purpose::Tour => ("G-DEMO2024", "validate_with_debug_endpoint = true\n"),
            Purpose::Load => ("G-BENCH01", ""),
        };
        Ok(format!(
            "[[destinations]]\nname = {}\ntype = \"ga4\"\nmeasurement_id = \"{measurement_id}\"\napi_secret = {secret}\n\
             base_url = {}\n{validate}",
            toml_string(name),
            toml_string(&self.base_url),
        ))
    }

    fn introduce(&self) -> Vec<String> {
        vec![
            format!("GA4 Measurement Protocol at {}: measurement id G-DEMO2024; each batch is", self.base_url),
            "checked at /debug/mp/collect first, so a delivery can say \"accepted\", not just \"sent\"".to_owned(),
        ]
    }

    fn describe(&self) -> String {
        format!(
            "GA4 sim        {} events in {} requests (+ {} validations at /debug/mp/collect); {} requests answered \
             with the injected 503",
            self.event_count(),
            self.request_count(),
            self.debug_request_count(),
            self.fault_count()
        )
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Ga4Sim::shutdown(self).boxed()
    }
}

//! How `surety demo` and `surety bench` show Meta: its catalog routes, its simulator's
//! destination section and counters, and what they say of it (`platforms::Showcase`,
//! `platforms::Simulator`).

use std::path::Path;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::sim::{self, MetaSim, MetaSimState};
use crate::platforms::{
    secret_file, toml_string, Fault, Marker, Purpose, ShowRoute, Showcase, SimOptions, Simulator, Starting,
};

pub(super) const SHOWCASE: Showcase = Showcase {
    demo_name: "meta",
    routes: &[
        ShowRoute { kind: "order_paid", event: "Purchase", extra: "", shown: "Purchase" },
        ShowRoute { kind: "lead_qualified", event: "Lead", extra: "", shown: "Lead" },
    ],
    // The Surety event id (`order:N:order_paid`) is the `event_id`.
    marker: Marker { path: "/events", key: "\"event_id\":\"order:" },
    // `events_received` equal to the events sent.
    accepts: true,
    confirms_later: None,
    // docs/platforms.md §Meta: events up to 7 days old.
    window_hours: 7 * 24,
    needs_client_id: false,
    consent: "ad_user_data",
    identity: "a hashed email or a click id",
    bench_note: None,
};

pub(super) fn simulate(options: SimOptions) -> Starting {
    async move {
        let state = MetaSimState::new();
        state.set_recording(!options.counting_only);
        let running = crate::sim::serve(state.clone(), options.apply(sim::router(state)), "Meta").await?;
        Ok(Box::new(running) as Box<dyn Simulator>)
    }
    .boxed()
}

impl Simulator for MetaSim {
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

    fn destination_toml(&self, name: &str, dir: &Path, _purpose: Purpose) -> std::io::Result<String> {
        let token = secret_file(dir, &format!("{name}_access_token"), "sim-meta-token")?;
        Ok(format!(
            "[[destinations]]\nname = {}\ntype = \"meta\"\npixel_id = \"1234567890\"\naccess_token = {token}\n\
             base_url = {}\n",
            toml_string(name),
            toml_string(&self.base_url),
        ))
    }

    fn introduce(&self) -> Vec<String> {
        vec![format!("Meta Conversions API at {}: pixel 1234567890", self.base_url)]
    }

    fn describe(&self) -> String {
        format!(
            "Meta sim       {} events in {} requests (events_received); {} dropped as duplicates",
            self.event_count(),
            self.request_count(),
            self.deduplicated_count()
        )
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        MetaSim::shutdown(self).boxed()
    }
}

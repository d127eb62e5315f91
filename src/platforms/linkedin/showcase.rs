//! How `surety demo` and `surety bench` show LinkedIn: its catalog routes, its simulator's
//! destination section and counters, and what they say of it (`platforms::Showcase`,
//! `platforms::Simulator`).

use std::path::Path;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::sim::{self, LinkedinSim, LinkedinSimState};
use crate::platforms::{
    secret_file, toml_string, Fault, Marker, Purpose, ShowRoute, Showcase, SimOptions, Simulator, Starting,
};

/// The bearer token the tour's simulator takes (and its destination sends).
const TOKEN: &str = "demo-linkedin-token";

pub(super) const SHOWCASE: Showcase = Showcase {
    demo_name: "linkedin",
    routes: &[
        ShowRoute { kind: "order_paid", event: "104012", extra: "", shown: "rule 104012" },
        ShowRoute { kind: "lead_qualified", event: "104013", extra: "", shown: "rule 104013" },
    ],
    // The Surety event id is the `eventId`.
    marker: Marker { path: "/rest/conversionEvents", key: "\"eventId\":\"order:" },
    // Each element answered 201.
    accepts: true,
    confirms_later: None,
    // docs/platforms.md §LinkedIn: conversions up to 90 days old.
    window_hours: 90 * 24,
    needs_client_id: false,
    consent: "ad_user_data",
    identity: "a hashed email or a click id",
    bench_note: None,
};

pub(super) fn simulate(options: SimOptions) -> Starting {
    async move {
        let state = LinkedinSimState::new();
        state.set_recording(!options.counting_only);
        let running = crate::sim::serve(state.clone(), options.apply(sim::router(state)), "LinkedIn").await?;
        Ok(Box::new(running) as Box<dyn Simulator>)
    }
    .boxed()
}

impl Simulator for LinkedinSim {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn received(&self) -> u64 {
        self.conversion_count()
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
        if purpose == Purpose::Tour {
            // The tour's simulator takes this token only.
            self.state().set_access_token(Some(TOKEN));
        }
        let token = secret_file(dir, &format!("{name}_access_token"), TOKEN)?;
        Ok(format!(
            "[[destinations]]\nname = {}\ntype = \"linkedin\"\naccess_token = {token}\nbase_url = {}\n",
            toml_string(name),
            toml_string(&self.base_url),
        ))
    }

    fn introduce(&self) -> Vec<String> {
        vec![format!("LinkedIn Conversions API at {}", self.base_url)]
    }

    fn describe(&self) -> String {
        format!(
            "LinkedIn sim   {} conversions in {} requests (each element answered 201)",
            self.conversion_count(),
            self.request_count()
        )
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        LinkedinSim::shutdown(self).boxed()
    }
}

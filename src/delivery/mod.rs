//! What every destination adapter is ([`Destination`]) and shares (`http`); the adapters
//! themselves are in `crate::platforms::<p>`, each building payloads from stored events,
//! batching by the platform's rules, sending, and classifying answers into [`Outcome`]s. HTTP
//! clients only; nothing here knows axum or SQL.

pub mod http;
pub mod rules_of;
pub mod validate_mode;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::core::plan::{Planner, Rules};
use crate::core::{Claimed, FollowUp, Outcome, RequestRecord, Route};

/// What became of one delivery of a batch: its [`Outcome`], with what was sent for it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryOutcome {
    pub delivery_id: i64,
    pub outcome: Outcome,
    /// SHA-256 of this delivery's own part of the payload (the same for every resend: G2).
    pub payload_sha256: Option<String>,
    /// Index into the report's `requests` of the request this result came from.
    pub request: Option<usize>,
}

/// Everything one send (or preflight) did: the requests made and an outcome per delivery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendReport {
    pub requests: Vec<RequestRecord>,
    /// One entry per delivery handled; a preflight lists only those it refused.
    pub outcomes: Vec<DeliveryOutcome>,
    /// Deliveries a preflight found valid: sending them may count as accepted.
    pub validated: Vec<i64>,
    /// Requests the platform took "for processing", to ask about later: (index into
    /// `requests`, the platform's id for the request).
    pub follow_ups: Vec<(usize, String)>,
}

/// How long after a send a platform's silence about it is still worth asking about. Google
/// promises the processing status "about 30 minutes" after the send and documents no retention:
/// a day is 48 times that, long past any delay it describes.
pub const FOLLOW_UP_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// One check of `surety destinations test`: what was checked, whether it holds, and what the
/// platform said (or what the check cannot tell).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(check: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Self { check: check.into(), ok, detail: detail.into() }
    }
}

/// A configured platform target.
pub trait Destination: Send + Sync {
    fn name(&self) -> &str;
    /// The pure rules planning asks of this destination.
    fn rules(&self) -> Arc<dyn Rules>;
    /// Most requests in flight at once.
    fn concurrency(&self) -> usize;
    /// Splits claimed deliveries into requests the platform accepts (grouping and size rules).
    fn batches(&self, claimed: Vec<Claimed>) -> Vec<Vec<Claimed>>;
    /// Checks a batch before anything is sent for real (GA4: the debug endpoint, if configured).
    /// Returns results only for deliveries that must not be sent now.
    fn preflight<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport>;
    /// Sends a batch and classifies the answer for each delivery in it. `validated` lists the
    /// deliveries the preflight just found valid. The worker has already ended what must not be
    /// sent (outside the window, past the age limit, …): an adapter does not check the window.
    fn send<'a>(&'a self, batch: &'a [Claimed], validated: &'a [i64]) -> BoxFuture<'a, SendReport>;
    /// How long after a send to ask the platform what became of it; `None`: it never says later.
    fn follow_up_after(&self) -> Option<Duration> {
        None
    }
    /// How long after a send to keep asking about it; past this, a request still processing (or
    /// still unanswerable) is closed as [`FollowUp::Unconfirmed`].
    fn follow_up_give_up_after(&self) -> Duration {
        FOLLOW_UP_GIVE_UP_AFTER
    }
    /// Hands the destination the ledger, for payloads that depend on a subject's earlier events
    /// (a Google Ads adjustment's restated value). Called once at start; most ignore it.
    fn attach_ledger(&self, ledger: Arc<dyn crate::store::Store>) {
        let _ = ledger;
    }
    /// Asks the platform what became of an earlier request.
    fn follow_up<'a>(&'a self, platform_request_id: &'a str) -> BoxFuture<'a, FollowUp> {
        let _ = platform_request_id;
        Box::pin(async { FollowUp::Error("this destination has no follow-up".into()) })
    }
    /// `surety destinations test`: checks the credentials and settings against the platform
    /// without creating a conversion (its validation route, a test event, a lookup). `routes`:
    /// the catalog's routes to this destination (conversion actions, conversion rules).
    fn check<'a>(&'a self, routes: &'a [Route]) -> BoxFuture<'a, Vec<Check>>;
    /// `mode = "validate"`: checks a batch against the platform's validation route without
    /// anything counted, and says per delivery what the platform made of it: the outcome a send
    /// would have had (`Delivered` = valid, `Rejected`, `Halt`, `Retry`), read by
    /// [`validate_mode::verdict`]. Nothing is sent for real. The default, for a platform with
    /// no validation route: the payload built and the local rules run.
    fn validate_only<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        Box::pin(async move { validate_mode::locally(self.rules().as_ref(), batch, "no validation route") })
    }
}

/// The planner for this configuration: its routes, each destination's rules and identity wait.
pub fn planner(config: &crate::config::Config, destinations: &[Arc<dyn Destination>]) -> Planner {
    rules_of::planner_with(config, destinations.iter().map(|d| (d.name().to_owned(), d.rules())).collect())
}

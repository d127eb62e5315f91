//! The follow-up loop against the Google Ads simulator and a real ledger: a request id Google does
//! not know, and a request that stays `PROCESSING`, both end — delivered, `processing_unknown` —
//! instead of being asked about forever; a final answer stands at any age.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{close_unanswered, next_ask, round};
use crate::config::Config;
use crate::core::delivery::reason;
use crate::core::DeliveryState;
use crate::core::FollowUp;
use crate::delivery::{Destination, FOLLOW_UP_GIVE_UP_AFTER};
use crate::platforms::google_ads::sim::{GoogleAdsSim, TEST_SERVICE_ACCOUNT_JSON};
use crate::store::{DeliveryView, Intake, Store};
use crate::telemetry::Metrics;
use crate::worker::{send, Breaker, WorkerContext};

/// A ledger, a Google Ads destination pointed at the simulator, and a worker context.
struct Setup {
    sim: GoogleAdsSim,
    ctx: WorkerContext,
    dest: Arc<dyn Destination>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let sim = crate::platforms::google_ads::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::File::create(&key).unwrap().write_all(TEST_SERVICE_ACCOUNT_JSON.as_bytes()).unwrap();
    let q = |s: String| toml::Value::String(s).to_string();
    let toml = format!(
        "[storage]\nurl = {db}\n\n[[destinations]]\nname = \"gads\"\ntype = \"google_ads\"\n\
         customer_id = \"123-456-7890\"\nservice_account_key = {key}\nbase_url = {base}\ntoken_url = {token}\n\
         status_poll_delay_secs = 0\n\n[catalog.order_paid]\ngads = {{ event = \"111\" }}\n",
        db = q(format!("sqlite://{}", dir.path().join("ledger.db").display())),
        key = q(format!("file:{}", key.display())),
        base = q(sim.base_url.clone()),
        token = q(sim.token_url.clone()),
    );
    let config = Config::from_toml(&toml).unwrap();
    let store: Arc<dyn Store> = crate::store::open_sqlite(&config).unwrap();
    let destinations = crate::platforms::build(&config.destinations).unwrap();
    let planner = Arc::new(crate::delivery::planner(&config, &destinations));
    let ctx = WorkerContext {
        store,
        planner,
        metrics: Arc::new(Metrics::new()),
        retry: config.retry.clone(),
        config: config.worker.clone(),
        owner: "test".into(),
        breaker: config.worker.breaker(),
        keep_request_bodies: true,
    };
    Setup { sim, ctx, dest: destinations[0].clone(), _dir: dir }
}

impl Setup {
    /// Ingests paid orders and sends them as the worker does (one request, answered 200).
    async fn send_orders(&self, orders: &[&str]) {
        let now = Utc::now();
        let events = orders
            .iter()
            .map(|o| {
                let body = json!({
                    "kind": "order_paid", "occurred_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
                    "subject": {"type": "order", "id": o}, "value": 59.9, "currency": "EUR",
                    "identity": {"gclid": format!("Cj0KCQ-{o}")},
                    "consent": {"ad_user_data": "granted", "ad_personalization": "denied"},
                });
                crate::ingest::canonical::parse_event(body, "api", now, "").unwrap()
            })
            .collect();
        self.ctx.store.intake(Intake::of_events(Utc::now(), events), self.ctx.planner.clone()).await.unwrap();
        let claimed = self.ctx.store.claim("gads", 100, Duration::from_secs(60), "test", Utc::now()).await.unwrap();
        assert_eq!(claimed.len(), orders.len());
        let breaker = Arc::new(Mutex::new(Breaker::new(self.ctx.breaker.clone())));
        for batch in self.dest.batches(claimed) {
            send(&self.ctx, self.dest.as_ref(), batch, &breaker).await;
        }
        for o in orders {
            let d = self.delivery(o).await;
            assert_eq!((d.state, d.reason.as_deref()), (DeliveryState::Delivered, Some(reason::SENT)), "{d:?}");
        }
    }

    async fn round(&self, now: DateTime<Utc>) -> usize {
        round(self.ctx.store.as_ref(), &self.ctx.metrics, self.dest.as_ref(), Duration::ZERO, now).await
    }

    async fn delivery(&self, order: &str) -> DeliveryView {
        let view = self.ctx.store.event(&format!("order:{order}:order_paid")).await.unwrap().unwrap();
        view.deliveries.into_iter().next().unwrap()
    }

    /// The `follow_up` attempt details recorded for an order.
    async fn follow_up_details(&self, order: &str) -> Vec<String> {
        let view = self.ctx.store.event(&format!("order:{order}:order_paid")).await.unwrap().unwrap();
        view.attempts.into_iter().filter(|a| a.outcome == "follow_up").filter_map(|a| a.detail).collect()
    }

    async fn still_asked_about(&self, at: DateTime<Utc>) -> bool {
        !self.ctx.store.due_follow_ups("gads", at, 10).await.unwrap().is_empty()
    }
}

fn later(hours: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::hours(hours)
}

#[tokio::test]
async fn a_request_google_does_not_know_ends_unconfirmed_and_is_not_asked_about_again() {
    let s = setup().await;
    s.send_orders(&["1", "2"]).await;
    s.sim.clear(); // Google forgot the request: requestStatus:retrieve answers INVALID_REQUEST_ID

    assert_eq!(s.round(Utc::now()).await, 1, "one request, asked about once");
    for order in ["1", "2"] {
        let d = s.delivery(order).await;
        assert_eq!(d.state, DeliveryState::Delivered, "the events were taken: still delivered");
        assert_eq!(d.reason.as_deref(), Some(reason::PROCESSING_UNKNOWN), "{d:?}");
        assert!(d.messages.iter().any(|m| m.contains("INVALID_REQUEST_ID")), "{:?}", d.messages);
        let details = s.follow_up_details(order).await;
        assert!(details.len() == 1 && details[0].starts_with("gave up: "), "{details:?}");
    }
    assert!(!s.still_asked_about(later(24 * 365)).await, "the follow-up ended");
    let asked = s.sim.requests_to(crate::platforms::google_ads::sim::Endpoint::Status).len();
    assert_eq!(s.round(later(24 * 365)).await, 0);
    assert_eq!(
        s.sim.requests_to(crate::platforms::google_ads::sim::Endpoint::Status).len(),
        asked,
        "Google is not asked again"
    );
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_request_still_processing_past_the_bound_is_given_up_but_a_final_answer_stands() {
    let s = setup().await;
    s.sim.set_processing_polls(u32::MAX); // PROCESSING, forever
    s.send_orders(&["10"]).await;

    // Within the bound: still processing, asked again later.
    assert_eq!(s.round(Utc::now()).await, 1);
    let d = s.delivery("10").await;
    assert_eq!(d.reason.as_deref(), Some(reason::SENT), "not given up yet: {d:?}");
    assert!(s.still_asked_about(later(1)).await, "asked about again");

    // A day later Google still says PROCESSING: the follow-up ends, the delivery says so.
    let hours = (FOLLOW_UP_GIVE_UP_AFTER.as_secs() / 3600) as i64;
    assert_eq!(s.round(later(hours + 1)).await, 1);
    let d = s.delivery("10").await;
    assert_eq!((d.state, d.reason.as_deref()), (DeliveryState::Delivered, Some(reason::PROCESSING_UNKNOWN)));
    assert!(d.messages.iter().any(|m| m.contains("still processing") && m.contains("24 h")), "{:?}", d.messages);
    assert!(!s.still_asked_about(later(24 * 365)).await, "the follow-up ended");

    // Past the bound, a final answer still settles the request as Google says.
    s.sim.set_processing_polls(0);
    s.send_orders(&["11"]).await;
    assert_eq!(s.round(later(hours + 1)).await, 1);
    assert_eq!(s.delivery("11").await.reason.as_deref(), Some("accepted"));
    s.sim.shutdown().await;
}

#[test]
fn open_answers_close_at_the_bound_and_final_ones_never_do() {
    let sent = Utc::now();
    let day = Duration::from_secs(24 * 3600);
    let at = |secs: i64| sent + chrono::Duration::seconds(secs);
    assert_eq!(close_unanswered(FollowUp::NotYet, sent, at(86_399), day), FollowUp::NotYet);
    assert!(matches!(close_unanswered(FollowUp::NotYet, sent, at(86_400), day), FollowUp::Unconfirmed(m)
        if m == "no processing result within 24 h of the send (last answer: still processing)"));
    let error = FollowUp::Error("HTTP 503".into());
    assert_eq!(close_unanswered(error.clone(), sent, at(10), day), error);
    assert!(matches!(close_unanswered(error, sent, at(90_000), day), FollowUp::Unconfirmed(m)
        if m.contains("could not ask: HTTP 503")));
    for final_answer in [FollowUp::Accepted, FollowUp::Failed { messages: vec![] }] {
        assert_eq!(close_unanswered(final_answer.clone(), sent, at(900_000), day), final_answer);
    }
}

#[test]
fn polls_thin_out_and_stop_at_the_bound() {
    let day = Duration::from_secs(24 * 3600);
    for (after, at_most) in [(Duration::ZERO, 60), (Duration::from_secs(1800), 20)] {
        let sent = Utc::now();
        let mut now = sent + chrono::Duration::from_std(after).unwrap();
        let mut polls = 1;
        while now - sent < chrono::Duration::from_std(day).unwrap() {
            let next = next_ask(sent, now, after, day);
            assert!(next > now, "always later");
            assert!(next <= sent + chrono::Duration::from_std(day).unwrap() + chrono::Duration::seconds(1));
            now = next;
            polls += 1;
        }
        assert!(polls <= at_most, "{polls} polls from a first delay of {after:?}");
    }
    // Early on, a quarter of the first delay; a second at least.
    let sent = Utc::now();
    assert_eq!(next_ask(sent, sent, Duration::ZERO, day) - sent, chrono::Duration::seconds(1));
    let first = sent + chrono::Duration::seconds(1800);
    assert_eq!(next_ask(sent, first, Duration::from_secs(1800), day) - first, chrono::Duration::seconds(450));
}

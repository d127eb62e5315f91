//! Windows at send time. A browser-tracked delivery whose retry (or crash resend) would reach
//! Meta after its dedupe window is not sent: the worker ends it `skipped:browser_tracked`, and
//! crash recovery leaves a maybe-sent one `in_doubt` instead of resending it. A batch whose
//! destination window closed while it waited to be sent is ended `skipped:outside_window` by the
//! worker, the one place the window is checked after planning (no adapter checks it).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{end_unsendable, send, Breaker, Checks};
use crate::config::Config;
use crate::core::delivery::reason;
use crate::core::DeliveryState;
use crate::store::{DeliveryFilter, Intake, Store};
use crate::telemetry::Metrics;
use crate::worker::WorkerContext;

struct Setup {
    ctx: WorkerContext,
    destinations: Vec<Arc<dyn crate::delivery::Destination>>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "meta-test-token").unwrap();
    let q = |s: String| toml::Value::String(s).to_string();
    let toml = format!(
        "[storage]\nurl = {db}\n\n[[destinations]]\nname = \"meta\"\ntype = \"meta\"\npixel_id = \"1234567890\"\n\
         access_token = {token}\nbase_url = \"http://127.0.0.1:9\"\n\n\
         [catalog.order_paid]\nmeta = {{ event = \"Purchase\", browser_tracked = true }}\n",
        db = q(format!("sqlite://{}", dir.path().join("ledger.db").display())),
        token = q(format!("file:{}", token.display())),
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
    Setup { ctx, destinations, _dir: dir }
}

impl Setup {
    /// Ingests a browser-tracked purchase that happened `hours_ago` before `now`.
    async fn purchase(&self, order: &str, hours_ago: i64, now: DateTime<Utc>) {
        let body = json!({
            "kind": "order_paid", "occurred_at": (now - chrono::Duration::hours(hours_ago)).to_rfc3339(),
            "subject": {"type": "order", "id": order}, "value": 20.0, "currency": "EUR",
            "identity": {"email": "jane@example.com", "browser_event_id": format!("pixel-{order}")},
            "consent": {"ad_user_data": "granted", "ad_personalization": "granted", "analytics": "granted"},
        });
        let event = crate::ingest::canonical::parse_event(body, "api", now, "").unwrap();
        let planned =
            self.ctx.store.intake(Intake::of_events(now, vec![event]), self.ctx.planner.clone()).await.unwrap().events;
        assert_eq!(planned[0].deliveries[0].state, DeliveryState::Pending, "{planned:?}");
    }

    async fn only_delivery(&self) -> crate::store::DeliveryView {
        let all = self.ctx.store.deliveries(DeliveryFilter::default()).await.unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all.into_iter().next().unwrap()
    }
}

#[tokio::test]
async fn a_retry_that_would_leave_after_metas_dedupe_window_is_skipped() {
    let s = setup().await;
    let now = Utc::now();
    s.purchase("1", 47, now).await;
    let claimed = s.ctx.store.claim("meta", 10, Duration::from_secs(60), "test", Utc::now()).await.unwrap();
    assert_eq!(claimed.len(), 1);

    // Within the window it goes.
    let ready = end_unsendable(&s.ctx, "meta", claimed.clone(), now, Checks::All).await;
    assert_eq!(ready.len(), 1, "47 h after the event Meta still dedupes");

    // The same delivery, due again two hours later (a retry), would arrive 49 h after the event.
    let later = now + chrono::Duration::hours(2);
    let ready = end_unsendable(&s.ctx, "meta", claimed, later, Checks::All).await;
    assert!(ready.is_empty(), "not sent");
    let d = s.only_delivery().await;
    assert_eq!((d.state, d.reason.as_deref()), (DeliveryState::Skipped, Some(reason::BROWSER_TRACKED)));
    assert!(d.messages.iter().any(|m| m.contains("outside the dedupe window")), "{:?}", d.messages);
}

#[tokio::test]
async fn a_crash_resend_after_the_window_stays_in_doubt() {
    for (hours_later, expected) in [(0, DeliveryState::Pending), (2, DeliveryState::InDoubt)] {
        let s = setup().await;
        let now = Utc::now();
        s.purchase("1", 47, now).await;
        let claimed = s.ctx.store.claim("meta", 10, Duration::from_secs(60), "test", Utc::now()).await.unwrap();
        let ids: Vec<i64> = claimed.iter().map(|c| c.delivery_id).collect();
        s.ctx.store.mark_sending(&ids, "test", now).await.unwrap();
        // The process dies while sending; the next one recovers `hours_later`.
        let at = now + chrono::Duration::hours(hours_later);
        let recovered = s.ctx.store.recover(s.ctx.planner.clone(), true, at).await.unwrap();
        let d = s.only_delivery().await;
        assert_eq!(d.state, expected, "recovered {hours_later} h later: {recovered:?}");
    }
}

#[tokio::test]
async fn a_batch_whose_window_closed_while_it_waited_is_ended_not_sent() {
    // Meta's base URL is a closed port: whatever is sent fails and waits as a retry.
    for (window_closed, expected, attempts) in
        [(false, (DeliveryState::Pending, None), 1), (true, (DeliveryState::Skipped, Some(reason::OUTSIDE_WINDOW)), 0)]
    {
        let s = setup().await;
        let now = Utc::now();
        s.purchase("1", 1, now).await;
        let mut batch = s.ctx.store.claim("meta", 10, Duration::from_secs(60), "test", now).await.unwrap();
        assert_eq!(batch.len(), 1);
        if window_closed {
            // Claimed inside Meta's 7 days, then held (by the pace, or for a permit) past them.
            batch[0].event.occurred_at = Utc::now() - chrono::Duration::days(7) - chrono::Duration::minutes(1);
        }
        let breaker = Arc::new(Mutex::new(Breaker::new(s.ctx.breaker.clone())));
        send(&s.ctx, s.destinations[0].as_ref(), batch, &breaker).await;
        let d = s.only_delivery().await;
        assert_eq!((d.state, d.reason.as_deref()), expected, "window closed: {window_closed}; {d:?}");
        assert_eq!(d.attempts, attempts, "window closed: {window_closed}");
    }
}

/// A delivery whose lease ran out while its batch waited for a permit is taken back and claimed
/// again — by this process too. Only the claim that marks it `sending` first may send it: the
/// stale batch gets nothing back from `mark_sending` and sends nothing (`scripts/bench_http.sh`
/// on PostgreSQL caught the platform receiving such deliveries twice before this held).
#[tokio::test]
async fn a_delivery_claimed_again_after_its_lease_ran_out_is_marked_for_one_claim_only() {
    let s = setup().await;
    let now = Utc::now();
    s.purchase("1", 1, now).await;
    let lease = Duration::from_secs(1);
    let stale: Vec<i64> =
        s.ctx.store.claim("meta", 10, lease, "test", now).await.unwrap().iter().map(|c| c.delivery_id).collect();
    assert_eq!(stale.len(), 1);
    let later = now + chrono::Duration::seconds(5);
    s.ctx.store.recover(s.ctx.planner.clone(), false, later).await.unwrap();
    let again: Vec<i64> =
        s.ctx.store.claim("meta", 10, lease, "test", later).await.unwrap().iter().map(|c| c.delivery_id).collect();
    assert_eq!(again, stale, "taken back and claimed again");
    assert!(s.ctx.store.mark_sending(&again, "another-process", later).await.unwrap().is_empty(), "not its claim");
    assert_eq!(s.ctx.store.mark_sending(&again, "test", later).await.unwrap(), again, "the first to mark sends");
    assert!(
        s.ctx.store.mark_sending(&stale, "test", later).await.unwrap().is_empty(),
        "the stale batch is told it holds nothing"
    );
}

//! `surety bench --history N`: before a scenario's server starts, its fresh ledger is filled with
//! N ended events written straight into the tables (`store::fill`), so the scenario measures ingest
//! and claim on a ledger with a long history. The stored body is built once here, by the real
//! parser, from an order with email, phone, client id, consent and two items.

use std::time::Instant;

use anyhow::{anyhow, Context};
use chrono::{Duration, Utc};
use serde_json::json;

use crate::config::Config;
use crate::core::Route;
use crate::store::fill::{self, HistorySpec};

/// The destination the history was delivered to: one no scenario configures, so each scenario's
/// exactly-once checks count its own events only (claim and the queue's indexes are per
/// destination and hold live deliveries only, so the name changes no plan).
pub const DESTINATION: &str = "history";

/// The history for `events` events ending now.
pub fn spec(events: u64) -> anyhow::Result<HistorySpec> {
    let now = Utc::now();
    let occurred = now - Duration::minutes(3);
    let input = json!({
        "event_id": "histtemplateid", "kind": "order_paid", "occurred_at": occurred.to_rfc3339(),
        "subject": {"type": "order", "id": "histtemplatesubject"}, "value": 129.9, "currency": "EUR",
        "items": [
            {"id": "SKU-1042", "name": "Trail shoe", "price": 99.9, "quantity": 1},
            {"id": "SKU-7", "name": "Socks", "price": 15.0, "quantity": 2}
        ],
        "identity": {"email": "Template.Customer@example.com", "phone": "+49 30 1234567", "client_id": "1234567890.1700000000"},
        "consent": {"ad_user_data": "granted", "ad_personalization": "granted"},
    });
    let event = crate::ingest::canonical::parse_event(input, "api", now, "")
        .map_err(|e| anyhow!("the history's template event does not parse: {e:?}"))?;
    let mut body = serde_json::to_string(&event)?;
    let time = |t: &chrono::DateTime<Utc>| -> anyhow::Result<String> {
        Ok(serde_json::to_string(t)?.trim_matches('"').to_owned())
    };
    let mut swap = |from: String, to: &str| {
        body = body.replace(&from, to);
    };
    swap("histtemplateid".to_owned(), fill::ID);
    swap("histtemplatesubject".to_owned(), fill::SUBJECT);
    swap(time(&event.occurred_at)?, fill::OCCURRED);
    swap(time(&event.received_at)?, fill::RECEIVED);
    let (email, phone) = event.identity.email.as_ref().zip(event.identity.phone.as_ref()).context("no hashes")?;
    for (h, slot) in [(email, fill::EMAIL), (phone, fill::PHONE)] {
        swap(h.google.as_str().to_owned(), slot);
        swap(h.meta.as_str().to_owned(), slot);
    }
    Ok(HistorySpec {
        events,
        destination: DESTINATION.to_owned(),
        dest_event: "purchase".to_owned(),
        route: serde_json::to_string(&Route { event: "purchase".to_owned(), ..Route::default() })?,
        kind: "order_paid".to_owned(),
        subject_type: "order".to_owned(),
        body,
        now,
    })
}

/// Fills the ledger `config` names with `events` ended events; returns the seconds it took.
pub async fn fill(config: &Config, events: u64) -> anyhow::Result<f64> {
    let spec = spec(events)?;
    let started = Instant::now();
    fill::fill_history_for_bench(config, &spec).await?;
    Ok(started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::DeliveryState;
    use crate::store::Store;

    const EVENTS: u64 = 1_234;

    /// Every event reads back whole, with its one delivered delivery and its one attempt, and
    /// retention's prune deletes the whole history (and nothing is left behind).
    async fn consistent(store: Arc<dyn Store>, spec: &HistorySpec) {
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.events, counts.routed), (EVENTS, EVENTS));
        assert_eq!(counts.deliveries, vec![(DESTINATION.to_owned(), DeliveryState::Delivered, None, EVENTS)]);
        assert!(counts.queues.is_empty(), "nothing left to deliver: {:?}", counts.queues);
        for n in [0, fill::PER_REQUEST, EVENTS / 2, EVENTS - 1] {
            let row = spec.row(n);
            let view = store.event(&row.event_id).await.unwrap().expect("the event is in the ledger");
            assert_eq!(view.event.event_id.as_str(), row.event_id);
            assert_eq!(view.event.subject.id, row.subject_id);
            assert_eq!(view.event.occurred_at.timestamp_micros(), row.occurred_us);
            assert_eq!(view.event.received_at.timestamp_micros(), row.received_us);
            assert_eq!(view.event.items.len(), 2);
            assert_eq!(view.event.identity.email.as_ref().map(|h| h.meta.as_str()), Some(row.email.as_str()));
            assert_eq!(view.event.identity.phone.as_ref().map(|h| h.google.as_str()), Some(row.phone.as_str()));
            assert_eq!(view.deliveries.len(), 1);
            assert_eq!((view.deliveries[0].state, view.deliveries[0].attempts), (DeliveryState::Delivered, 1));
            assert_eq!(view.attempts.len(), 1);
        }
        let oldest = spec.row(0).received_us;
        let newest = spec.row(EVENTS - 1).received_us;
        assert!(spec.now.timestamp_micros() - oldest > Duration::days(89).num_microseconds().unwrap());
        assert!(newest < spec.now.timestamp_micros());

        let (mut events, mut attempts, mut requests) = (0, 0, 0);
        loop {
            let p = store.prune(spec.now + Duration::days(1), 500).await.unwrap();
            if p.events == 0 && p.requests == 0 {
                break;
            }
            (events, attempts, requests) = (events + p.events, attempts + p.attempts, requests + p.requests);
        }
        assert_eq!((events, attempts), (EVENTS, EVENTS));
        assert_eq!(requests, EVENTS.div_ceil(fill::PER_REQUEST));
        assert_eq!(store.counts().await.unwrap(), crate::store::Counts::default());
    }

    #[tokio::test]
    async fn sqlite_history_is_ended_events_that_read_back_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let url = toml::Value::String(format!("sqlite://{}", dir.path().join("ledger.db").display())).to_string();
        let config = Config::from_toml(&format!("[storage]\nurl = {url}\n")).unwrap();
        let spec = spec(EVENTS).unwrap();
        fill::fill_history_for_bench(&config, &spec).await.unwrap();
        consistent(crate::store::open_sqlite(&config).unwrap(), &spec).await;
    }

    #[tokio::test]
    async fn postgres_history_is_ended_events_that_read_back_and_prune() {
        let store = crate::store::postgres::testdb::fresh().await;
        let spec = spec(EVENTS).unwrap();
        crate::store::postgres::fill::fill_history(store.pool(), &spec).await.unwrap();
        consistent(Arc::new(store), &spec).await;
    }
}

//! The restated value of an adjustment, computed from the subject's ledger.

use super::*;
use crate::platforms::google_ads::restate;

fn paid(order: &str, value: f64, hours_ago: i64) -> Event {
    let mut e = purchase(order);
    e.value = Some(value);
    e.occurred_at = Utc::now() - Duration::hours(hours_ago);
    e
}

fn adjustment(order: &str, kind: &str, id: &str, amount: Option<f64>, hours_ago: i64) -> Event {
    let mut e = purchase(order);
    e.kind = Kind::parse(kind).unwrap();
    e.event_id = EventId::parse(id).unwrap();
    e.value = amount;
    e.occurred_at = Utc::now() - Duration::hours(hours_ago);
    e
}

fn history(events: &[&Event]) -> Vec<(Event, String)> {
    events.iter().map(|e| ((*e).clone(), ACTION.to_owned())).collect()
}

#[test]
fn each_adjustment_restates_the_original_minus_everything_refunded_so_far() {
    let shape = shape();
    let order = paid("1042", 34.60, 10);
    let r1 = adjustment("1042", "refund_completed", "re_1", Some(9.90), 8);
    let r2 = adjustment("1042", "refund_completed", "re_2", Some(9.90), 6);
    let r3 = adjustment("1042", "refund_completed", "re_3", Some(14.80), 4);
    let cb = adjustment("1042", "chargeback_opened", "dp_1", Some(34.60), 2);
    let ledger = history(&[&order, &r1, &r2, &r3, &cb]);
    let values: Vec<(f64, f64)> = [&r1, &r2, &r3, &cb]
        .iter()
        .map(|a| restate(a, ACTION, &ledger, &shape).map(|r| (r.value, r.previous)).unwrap())
        .collect();
    // Exact, not approximately: the arithmetic is on integers.
    assert_eq!(values, vec![(24.70, 34.60), (14.80, 24.70), (0.0, 14.80), (0.0, 0.0)]);
    let second = restate(&r2, ACTION, &ledger, &shape).unwrap();
    assert_eq!(second.arithmetic, "34.60 − 9.90 − 9.90 = 14.80 EUR");
    assert_eq!(second.conversion_at, order.occurred_at, "the original conversion's time");
    assert_eq!(second.currency.as_ref().map(|c| c.as_str()), Some("EUR"));
}

#[test]
fn event_time_decides_not_arrival_and_later_refunds_do_not_count() {
    let shape = shape();
    let order = paid("1042", 34.60, 10);
    let r1 = adjustment("1042", "refund_completed", "re_1", Some(9.90), 8);
    let r2 = adjustment("1042", "refund_completed", "re_2", Some(5.00), 6);
    // The ledger is in event-time order whatever the arrival order was.
    let ledger = history(&[&order, &r1, &r2]);
    assert_eq!(restate(&r1, ACTION, &ledger, &shape).unwrap().value, 24.70);
    assert_eq!(restate(&r2, ACTION, &ledger, &shape).unwrap().value, 19.70);
}

#[test]
fn never_below_zero_other_currencies_and_other_orders_are_left_alone() {
    let shape = shape();
    let order = paid("1042", 20.0, 10);
    let other_order = adjustment("1043", "refund_completed", "re_x", Some(5.0), 9);
    let mut usd = adjustment("1042", "refund_completed", "re_usd", Some(3.0), 8);
    usd.currency = Some(Currency::parse("USD").unwrap());
    let big = adjustment("1042", "refund_completed", "re_big", Some(50.0), 7);
    let ledger = history(&[&order, &other_order, &usd, &big]);
    let r = restate(&usd, ACTION, &ledger, &shape).unwrap();
    assert_eq!(r.value, 20.0, "{}", r.arithmetic);
    assert!(r.arithmetic.contains("not subtracted: another currency"), "{}", r.arithmetic);
    assert_eq!(restate(&big, ACTION, &ledger, &shape).unwrap().value, 0.0);
    // Another conversion action holds another conversion.
    let elsewhere: Vec<(Event, String)> = ledger.iter().map(|(e, _)| (e.clone(), "555".to_owned())).collect();
    assert!(restate(&big, ACTION, &elsewhere, &shape).is_none(), "no original in this conversion action");
}

#[test]
fn a_stated_value_resets_the_running_total_and_an_amountless_one_retracts() {
    let shape = shape();
    let order = paid("1042", 34.60, 10);
    let mut stated = adjustment("1042", "refund_completed", "re_1", Some(1.0), 8);
    stated.attributes.insert("restated_value".into(), 30.0.into());
    let r2 = adjustment("1042", "refund_completed", "re_2", Some(10.0), 6);
    let cb = adjustment("1042", "chargeback_opened", "dp_1", None, 4);
    let ledger = history(&[&order, &stated, &r2, &cb]);
    assert_eq!(restate(&r2, ACTION, &ledger, &shape).unwrap().value, 20.0);
    assert_eq!(restate(&cb, ACTION, &ledger, &shape).unwrap().value, 0.0);
}

/// A SQLite ledger routing orders and refunds to `gads` (conversion action [`ACTION`]) holding
/// `events`, as ingest stores them.
async fn ledger(dir: &tempfile::TempDir, events: &[&Event]) -> std::sync::Arc<dyn crate::store::Store> {
    let q = |s: String| toml::Value::String(s).to_string();
    let key = dir.path().join("key.json");
    std::fs::write(&key, TEST_SERVICE_ACCOUNT_JSON).unwrap();
    let toml = format!(
        "[storage]\nurl = {db}\n\n[[destinations]]\nname = \"gads\"\ntype = \"google_ads\"\n\
         customer_id = \"123-456-7890\"\nservice_account_key = {key}\n\n\
         [catalog.order_paid]\ngads = {{ event = \"{ACTION}\" }}\n\
         [catalog.refund_completed]\ngads = {{ event = \"{ACTION}\" }}\n",
        db = q(format!("sqlite://{}", dir.path().join("ledger.db").display())),
        key = q(format!("file:{}", key.display())),
    );
    let config = crate::config::Config::from_toml(&toml).unwrap();
    let store: std::sync::Arc<dyn crate::store::Store> = crate::store::open_sqlite(&config).unwrap();
    let planner =
        std::sync::Arc::new(crate::delivery::planner(&config, &crate::platforms::build(&config.destinations).unwrap()));
    let events: Vec<Event> = events.iter().map(|e| (*e).clone()).collect();
    store.intake(crate::store::Intake::of_events(chrono::Utc::now(), events), planner).await.unwrap();
    store
}

#[tokio::test]
async fn sending_with_a_ledger_restates_and_refuses_a_skipped_retraction() {
    use crate::core::Outcome;
    use crate::delivery::Destination;
    use crate::platforms::google_ads::config::Retraction;

    let dir = tempfile::tempdir().unwrap();
    let order = paid("1042", 20.0, 10);
    let partial = adjustment("1042", "refund_completed", "re_1", Some(5.0), 8);
    let rest = adjustment("1042", "refund_completed", "re_2", Some(15.0), 6);
    let store = ledger(&dir, &[&order, &partial, &rest]).await;
    let (sim, _, mut t) = setup().await;
    t.config.adjustments.retraction = Retraction::Skip;
    let gads = crate::platforms::google_ads::GoogleAds::new(&t.config).unwrap().with_ledger(store);

    gads.send(&[claimed(1, order, ACTION)], &[]).await;
    let report = gads.send(&[claimed(2, partial, ACTION)], &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Delivered { detail: Some(d), .. } => assert!(d.contains("20.00 − 5.00 = 15.00 EUR"), "{d}"),
        other => panic!("expected delivered, got {other:?}"),
    }
    assert_eq!(sim.conversion(ACTION, "1042").unwrap().value, Some(15.0));

    // The second refund takes the rest: a full retraction, which `skip` does not send.
    let report = gads.send(&[claimed(3, rest, ACTION)], &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Rejected { messages, .. } => assert!(messages[0].contains("adjustments.retraction"), "{messages:?}"),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert_eq!(sim.conversion(ACTION, "1042").unwrap().value, Some(15.0), "nothing sent");
    sim.shutdown().await;
}

//! The shop's day, step by step, through the real HTTP API: identity captures at checkout, card
//! payments, a bank transfer confirmed two days late, a refund, a redelivered webhook, a
//! conflicting restatement, a back-office import with an 80-hour-old and an anonymous order, a
//! kind the catalog does not route, a declined consent, a lead, a chargeback, a refused replay,
//! and a GA4 outage with its recovery.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::api::{Answer, Api};
use crate::core::DeliveryState;
use crate::sim::ga4::Ga4Sim;
use crate::sim::Fault;

/// What the tour expects of an event's delivery to `ga4-web`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    NotRouted,
    Delivered,
    Skipped(&'static str),
}

/// One business event of the tour, and what the API answered each time it was posted.
pub struct Tracked {
    pub event_id: String,
    pub story: &'static str,
    pub answers: Vec<String>,
    pub expect: Expect,
}

#[derive(Default)]
pub struct Tour {
    pub events: Vec<Tracked>,
    /// Ingest answers that were not what the step expected.
    pub surprises: Vec<String>,
    /// The outage's events, whose timelines are worth showing.
    pub outage_event: Option<String>,
    pub late_event: Option<String>,
}

impl Tour {
    fn track(&mut self, event_id: &str, story: &'static str, expect: Expect, answer: String) {
        match self.events.iter_mut().find(|t| t.event_id == event_id) {
            Some(t) => t.answers.push(answer),
            None => self.events.push(Tracked { event_id: event_id.to_owned(), story, answers: vec![answer], expect }),
        }
    }
}

/// Order and lead numbers: 1042 and friends, shifted when `--db` already holds an earlier tour.
struct Ids {
    shift: u32,
}

impl Ids {
    fn order(&self, n: u32) -> String {
        (n + self.shift).to_string()
    }
    fn lead(&self, n: u32) -> String {
        format!("L-{}", n + self.shift)
    }
    fn client(&self, n: u32) -> String {
        // GA's client id shape: a random number, a dot, the first visit's Unix time.
        format!("{}.{}", 1_234_560_000 + n + self.shift, 1_700_000_000 + n * 7)
    }
}

fn at(now: DateTime<Utc>, minutes_ago: i64) -> String {
    (now - chrono::Duration::minutes(minutes_ago)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn say(text: &str) {
    println!("{text}");
}

/// Plays the day. Errors are transport failures only; unexpected answers are collected.
pub async fn play(api: &Api, sim: &Ga4Sim) -> anyhow::Result<Tour> {
    let ids = Ids { shift: free_shift(api).await? };
    let now = Utc::now();
    let mut tour = Tour::default();
    let o = |n| ids.order(n);

    say("\n1. Checkout. The shop's checkout page sends the browser's identifiers and consent for each");
    say("   order to the identity bridge, before any payment is known (POST /v1/identities).");
    let captures: [(String, u32, i64, bool); 8] = [
        (format!("order/{}", o(1041)), 1, 26 * 60, true),
        (format!("order/{}", o(1042)), 2, 180, true),
        (format!("order/{}", o(1043)), 3, 49 * 60, true),
        (format!("order/{}", o(1044)), 4, 120, true),
        (format!("order/{}", o(1045)), 5, 90, false),
        (format!("order/{}", o(1046)), 6, 60, true),
        (format!("order/{}", o(1048)), 8, 50, true),
        (format!("lead/{}", ids.lead(311)), 9, 30 * 60, true),
    ];
    let mut answered = Vec::new();
    for (subject, n, minutes_ago, analytics) in &captures {
        let (kind, id) = subject.split_once('/').unwrap_or(("order", subject));
        let consent = if *analytics { "granted" } else { "denied" };
        let body = json!({
            "subject": {"type": kind, "id": id},
            "captured_at": at(now, *minutes_ago),
            "identity": {"client_id": ids.client(*n), "session_id": (1_700_000_000 + n * 13).to_string(),
                         "email": format!("Shopper{n}@Example.com")},
            "consent": {"analytics": consent, "ad_user_data": consent, "ad_personalization": "denied"},
        });
        let a = api.ingest("/v1/identities", &body).await?;
        if a.status != 202 {
            tour.surprises.push(format!("identity capture for {subject}: {} {}", a.status.as_u16(), a.body));
        }
        answered.push(format!("{kind} {id}{}", if *analytics { "" } else { " (analytics DENIED)" }));
    }
    say(&format!("    → 202 captured: {}", answered.join(", ")));
    say("    (the email is normalised and SHA-256 hashed on arrival; the raw address is never stored)");

    let card_1042 = order_paid(&o(1042), &at(now, 175), 59.90, "card", None);
    step(
        "2. Order 1042 is paid by card. The payment provider's webhook carries no browser ids: Surety joins\n   \
         client_id, session_id and consent from the checkout capture.",
    );
    post(api, &mut tour, &card_1042, "paid by card; identity joined from checkout", Expect::Delivered, 202).await?;

    let bank_1043 = order_paid(&o(1043), &at(now, 48 * 60), 129.00, "bank_transfer", None);
    step(
        "3. Order 1043 was placed two days ago and paid by bank transfer; the bank statement confirming it\n   \
         arrives only now. Its event time is the payment's value date (48 h ago, inside GA4's 72 h window),\n   \
         and that is the time GA4 gets — not \"now\".",
    );
    let late = post(api, &mut tour, &bank_1043, "bank transfer confirmed 2 days late", Expect::Delivered, 202).await?;
    tour.late_event = Some(late);

    let refund = json!({
        "event_id": format!("re_{}", 2001 + ids.shift),
        "kind": "refund_completed", "occurred_at": at(now, 30),
        "subject": {"type": "order", "id": o(1042)},
        "value": 59.90, "currency": "EUR",
        "attributes": {"refund_reason": "wrong_size"},
    });
    step("4. Order 1042 is refunded. The refund has its own id from the payment provider (re_…), which Surety keeps.");
    post(api, &mut tour, &refund, "refunded; GA4 'refund' with the original transaction_id", Expect::Delivered, 202)
        .await?;

    step("5. The payment provider redelivers order 1042's payment webhook — the same event, byte for byte.");
    post(api, &mut tour, &card_1042, "", Expect::Delivered, 200).await?;
    say("    (a duplicate: nothing new is created and nothing is sent again)");

    let first_1044 = order_paid(&o(1044), &at(now, 110), 120.00, "card", None);
    let restated_1044 = order_paid(&o(1044), &at(now, 110), 100.00, "card", None);
    step("6. Order 1044 is paid (120.00 EUR). Later a second message arrives for the same payment with 100.00.");
    post(api, &mut tour, &first_1044, "paid; then restated with a different value", Expect::Delivered, 202).await?;
    post(api, &mut tour, &restated_1044, "", Expect::Delivered, 409).await?;
    say("    (a conflict: the original stands and the attempt is recorded; a changed value is a new kind of");
    say("    event, such as a restatement, never an overwrite)");

    let failed = json!({
        "kind": "fulfillment_failed", "occurred_at": at(now, 100),
        "subject": {"type": "order", "id": o(1044)},
        "attributes": {"warehouse": "berlin-2", "cause": "out_of_stock"},
    });
    step("7. The warehouse reports that order 1044's fulfilment failed. The catalog routes this kind nowhere:");
    say("    an operational state, kept in the ledger for the warehouse, never sent to analytics.");
    post(api, &mut tour, &failed, "operational state: kept, not sent", Expect::NotRouted, 202).await?;

    let declined = order_paid(&o(1045), &at(now, 85), 45.00, "card", None);
    step("8. Order 1045 is paid. Its shopper declined analytics at checkout.");
    post(api, &mut tour, &declined, "shopper declined analytics", Expect::Skipped("consent_denied"), 202).await?;

    step(
        "9. The back office imports two orders in one batch ({\"events\": [...]}), answered per item:\n   \
         order 1039, paid 80 hours ago (older than GA4's 72 h), and order 1047, taken by phone: consent and\n   \
         an email, but no browser, so no GA4 client_id.",
    );
    let old_1039 = order_paid(
        &o(1039),
        &at(now, 80 * 60),
        75.00,
        "card",
        Some((json!({"client_id": ids.client(10)}), json!({"analytics": "granted", "ad_user_data": "granted"}))),
    );
    let phone_1047 = order_paid(
        &o(1047),
        &at(now, 70),
        310.00,
        "invoice",
        Some((json!({"email": "phone.buyer@example.com"}), json!({"analytics": "granted", "ad_user_data": "granted"}))),
    );
    let a = api.ingest("/v1/events", &json!({"events": [old_1039, phone_1047]})).await?;
    let results = a.body.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
    if a.status != 200 || results.len() != 2 {
        tour.surprises.push(format!("batch import: {} {}", a.status.as_u16(), a.body));
    }
    let stories: [(&'static str, Expect); 2] = [
        ("80 h old: outside GA4's window, never re-timed", Expect::Skipped("outside_window")),
        ("phone order: no client_id for GA4", Expect::Skipped("no_identity")),
    ];
    for (r, (story, expect)) in results.iter().zip(stories) {
        let id = r.get("event_id").and_then(Value::as_str).unwrap_or("?").to_owned();
        let word = r.get("status").and_then(Value::as_str).unwrap_or("?");
        let line = format!("{} {word}", a.status.as_u16());
        say(&format!("    events[{}] {id}  → {word} · {}", r.get("index").unwrap_or(&Value::Null), planned(r)));
        tour.track(&id, story, expect, line);
    }

    let lead = json!({
        "kind": "lead_qualified", "occurred_at": at(now, 40),
        "subject": {"type": "lead", "id": ids.lead(311)},
        "value": 500.0, "currency": "EUR",
        "attributes": {"lead_source": "wholesale_form"},
    });
    step("10. Sales qualifies lead L-311 (a wholesale enquiry from the shop's form) in the CRM.");
    post(api, &mut tour, &lead, "CRM lead qualified; joined by lead id", Expect::Delivered, 202).await?;

    let chargeback = json!({
        "kind": "chargeback_opened", "occurred_at": at(now, 20),
        "subject": {"type": "order", "id": o(1041)},
        "value": 89.00, "currency": "EUR",
        "attributes": {"dispute_reason": "fraudulent"},
    });
    step("11. The card network opens a chargeback on yesterday's order 1041 (a custom GA4 event, 'chargeback').");
    post(api, &mut tour, &chargeback, "chargeback: custom GA4 event", Expect::Delivered, 202).await?;

    say("\n   … the workers deliver in the background; waiting until nothing is pending …");
    if !api.wait_idle(Duration::from_secs(20)).await? {
        tour.surprises.push("deliveries were still pending 20 s after the morning's events".into());
    }

    step("12. Someone asks to replay order 1042's purchase (POST /v1/deliveries/replay).");
    let paid_1042 = format!("order:{}:order_paid", o(1042));
    let a = api.admin_post("/v1/deliveries/replay", &json!({"event_id": paid_1042})).await?;
    let refused = a.body.get("refused").and_then(Value::as_array).cloned().unwrap_or_default();
    match refused.first() {
        Some(r) => say(&format!(
            "    → refused: {}\n    (no double success: only a replay with \"force\": true sends it again, and it is logged as forced)",
            r.get("reason").and_then(Value::as_str).unwrap_or("?")
        )),
        None => tour.surprises.push(format!("replay of a delivered purchase was not refused: {}", a.body)),
    }

    outage(api, sim, &mut tour, &ids, now).await?;
    Ok(tour)
}

/// GA4 answers 503 until the workers have retried a few times, then recovers.
async fn outage(api: &Api, sim: &Ga4Sim, tour: &mut Tour, ids: &Ids, now: DateTime<Utc>) -> anyhow::Result<()> {
    step("13. GA4 goes down: from now on the simulator answers every request with 503 Service Unavailable.");
    say("    Orders 1046 and 1048 are paid meanwhile.");
    sim.state().set_fault(Some(Fault::Status(503)));
    let paid_1046 = order_paid(&ids.order(1046), &at(now, 5), 64.50, "card", None);
    let paid_1048 = order_paid(&ids.order(1048), &at(now, 4), 18.00, "card", None);
    let id = post(api, tour, &paid_1046, "paid during the GA4 outage", Expect::Delivered, 202).await?;
    post(api, tour, &paid_1048, "paid during the GA4 outage", Expect::Delivered, 202).await?;
    tour.outage_event = Some(id.clone());

    // Let the workers fail a few times and the circuit open, showing each attempt as the ledger
    // records it; the outage lasts until both were seen (bounded).
    let (mut seen, mut circuit_seen, started) = (0, false, Instant::now());
    let deadline = started + Duration::from_secs(20);
    while (seen < 2 || !circuit_seen || started.elapsed() < Duration::from_secs(2)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let view = api.event(&id).await?;
        let delivery = view.deliveries.first();
        let total = view.attempts.len();
        for (i, a) in view.attempts.iter().enumerate().skip(seen) {
            let status = a.http_status.map_or_else(|| a.error.clone().unwrap_or_default(), |s| s.to_string());
            // The backoff chosen after the latest attempt, if it is still waiting.
            let next = delivery.and_then(|d| d.next_attempt_at).filter(|_| i + 1 == total);
            let wait = next.map(|n| (n - a.at).num_milliseconds().max(0) as f64 / 1000.0);
            say(&format!(
                "    order 1046, attempt {}: GA4 answered {status} → {}{}",
                a.attempt,
                a.outcome,
                wait.map(|w| format!(", next try {w:.2} s later (exponential backoff, full jitter)"))
                    .unwrap_or_default()
            ));
        }
        seen = total;
        if !circuit_seen && api.circuit_open(super::DESTINATION).await? {
            circuit_seen = true;
            say("    ga4-web's circuit is open: after 3 failed requests in a row Surety pauses this destination");
            say("    (1 s, then 2 s, 4 s … between probes) instead of spending attempts; other destinations");
            say("    would not notice (GET /metrics: surety_circuit_open{destination=\"ga4-web\"} 1)");
        }
    }
    if seen == 0 {
        tour.surprises.push("no attempt was recorded during the outage".into());
    }
    sim.state().set_fault(None);
    step("14. GA4 recovers. Nothing to do: the next probe succeeds, the circuit closes, the backlog drains.");
    let started = Instant::now();
    if api.wait_idle(Duration::from_secs(30)).await? {
        let view = api.event(&id).await?;
        let attempts = view.deliveries.first().map_or(0, |d| d.attempts);
        say(&format!(
            "    → both delivered {:.1} s after recovery (order 1046 after {attempts} attempts); the backlog is empty",
            started.elapsed().as_secs_f64()
        ));
    } else {
        tour.surprises.push("deliveries were still pending 30 s after GA4 recovered".into());
    }
    Ok(())
}

fn step(text: &str) {
    say(&format!("\n{text}"));
}

/// A canonical `order_paid` event; identity and consent only if given (else joined from the bridge).
fn order_paid(order: &str, occurred_at: &str, value: f64, method: &str, who: Option<(Value, Value)>) -> Value {
    let mut e = json!({
        "kind": "order_paid",
        "occurred_at": occurred_at,
        "subject": {"type": "order", "id": order},
        "value": value, "currency": "EUR",
        "items": [{"id": "SKU-LIN-01", "name": "Linen shirt", "price": value, "quantity": 1}],
        "attributes": {"payment_method": method},
    });
    if let Some((identity, consent)) = who {
        e["identity"] = identity;
        e["consent"] = consent;
    }
    e
}

/// POSTs one event, prints the answer, tracks it. Returns the event id.
async fn post(
    api: &Api,
    tour: &mut Tour,
    event: &Value,
    story: &'static str,
    expect: Expect,
    expected_status: u16,
) -> anyhow::Result<String> {
    let a = api.ingest("/v1/events", event).await?;
    let id = event_id(event, &a);
    let word = a.word();
    say(&format!(
        "    POST /v1/events {id}  → {} {word}{}",
        a.status.as_u16(),
        match a.status.as_u16() {
            202 => format!(" · {}", planned(&a.body)),
            _ => String::new(),
        }
    ));
    if a.status != expected_status {
        tour.surprises.push(format!("{id}: expected HTTP {expected_status}, got {} {}", a.status.as_u16(), a.body));
    }
    tour.track(&id, story, expect, format!("{} {word}", a.status.as_u16()));
    Ok(id)
}

/// The event id the answer names, else the one the event carries or derives to.
fn event_id(event: &Value, a: &Answer) -> String {
    if let Some(id) = a.body.get("event_id").and_then(Value::as_str) {
        return id.to_owned();
    }
    if let Some(id) = event.get("event_id").and_then(Value::as_str) {
        return id.to_owned();
    }
    let s = |p: &str| event.pointer(p).and_then(Value::as_str).unwrap_or("?").to_owned();
    format!("{}:{}:{}", s("/subject/type"), s("/subject/id"), s("/kind"))
}

/// "planned ga4-web: pending" or "not routed", from an ingest answer.
fn planned(body: &Value) -> String {
    let deliveries = body.get("deliveries").and_then(Value::as_array).cloned().unwrap_or_default();
    if deliveries.is_empty() {
        return "routed nowhere (not_routed)".to_owned();
    }
    let parts: Vec<String> = deliveries
        .iter()
        .map(|d| {
            let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
            let reason = s("reason");
            let state = s("state");
            let state =
                if state == DeliveryState::Pending.as_str() { "pending (queued for delivery)".into() } else { state };
            format!(
                "{}: {state}{}",
                s("destination"),
                if reason.is_empty() { String::new() } else { format!(":{reason}") }
            )
        })
        .collect();
    format!("planned {}", parts.join(", "))
}

/// 0, or a multiple of 1000 so that `--db` pointing at an earlier tour's ledger gets fresh ids.
async fn free_shift(api: &Api) -> anyhow::Result<u32> {
    for k in 0..100 {
        let id = format!("order:{}:order_paid", 1042 + k * 1000);
        if !api.exists(&id).await? {
            if k > 0 {
                say(&format!(
                    "(this ledger holds an earlier tour: order and lead numbers below are shifted by {})",
                    k * 1000
                ));
            }
            return Ok(k * 1000);
        }
    }
    anyhow::bail!("the ledger already holds 100 demo tours; use a fresh --db")
}

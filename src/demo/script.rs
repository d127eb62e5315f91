//! The shop's day, step by step, through the real HTTP API: identity captures at checkout, card
//! payments, a bank transfer confirmed two days late, a refund, a redelivered webhook, a
//! conflicting restatement, a back-office import with an 80-hour-old and an anonymous order, a
//! kind the catalog does not route, a declined consent, a lead, a chargeback, a refused replay,
//! an outage of the first platform with its recovery ([`super::outage`]), and the platforms that
//! confirm processing later confirming it. Every event goes to each destination the catalog routes
//! its kind to; each step says what it expects of each, from what the platform says of itself
//! (`platforms::Showcase`). The narration names the platforms as the shop's day meets them.

mod steps;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use self::steps::free_shift;
pub(super) use self::steps::{order_paid, post, post_stripe, step, stripe_payment};
use super::api::{planned, Api};
use crate::platforms::{Showcase, ALL};

/// What the tour expects of one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Delivered,
    Skipped(&'static str),
}

/// What the tour expects of an event: an outcome per destination the catalog routes it to.
/// Empty: the kind is routed nowhere (`not_routed`).
pub type Expected = Vec<(&'static str, Expect)>;

/// The same outcome at every destination the catalog routes `kind` to.
pub(super) fn everywhere(kind: &str, e: Expect) -> Expected {
    routed(kind, |_| e)
}

/// An outcome per destination the catalog routes `kind` to, from what its platform says of itself.
fn routed(kind: &str, expect: impl Fn(&Showcase) -> Expect) -> Expected {
    ALL.iter()
        .filter(|p| p.showcase.route(kind).is_some())
        .map(|p| (p.showcase.demo_name, expect(&p.showcase)))
        .collect()
}

const DELIVERED: Expect = Expect::Delivered;

/// One business event of the tour, and what the API answered each time it was posted.
pub struct Tracked {
    pub event_id: String,
    pub story: &'static str,
    pub answers: Vec<String>,
    pub expect: Expected,
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
    pub(super) fn track(&mut self, event_id: &str, story: &'static str, expect: Expected, answer: String) {
        match self.events.iter_mut().find(|t| t.event_id == event_id) {
            Some(t) => t.answers.push(answer),
            None => self.events.push(Tracked { event_id: event_id.to_owned(), story, answers: vec![answer], expect }),
        }
    }
}

/// Order and lead numbers: 1042 and friends, shifted when `--db` already holds an earlier tour.
pub(super) struct Ids {
    shift: u32,
}

impl Ids {
    pub(super) fn order(&self, n: u32) -> String {
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

pub(super) fn at(now: DateTime<Utc>, minutes_ago: i64) -> String {
    (now - chrono::Duration::minutes(minutes_ago)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn say(text: &str) {
    println!("{text}");
}

/// Plays the day. Errors are transport failures only; unexpected answers are collected.
/// The morning: steps 1–12. Returns the tour so far, with the ids and clock the later steps use.
pub async fn play(api: &Api) -> anyhow::Result<(Tour, Ids, DateTime<Utc>)> {
    let ids = Ids { shift: free_shift(api).await? };
    let now = Utc::now();
    let mut tour = Tour::default();
    let o = |n| ids.order(n);

    say("\n1. Checkout. The shop's checkout page sends the browser's identifiers and consent for each");
    say("   order to the identity bridge, before any payment is known (POST /v1/identities).");
    let captures: [(String, u32, i64, bool); 7] = [
        (format!("order/{}", o(1042)), 2, 180, true),
        (format!("order/{}", o(1043)), 3, 49 * 60, true),
        (format!("order/{}", o(1044)), 4, 120, true),
        (format!("order/{}", o(1045)), 5, 90, false),
        (format!("order/{}", o(1046)), 6, 60, true),
        (format!("order/{}", o(1048)), 8, 50, true),
        (format!("lead/{}", ids.lead(311)), 9, 30 * 60, true),
    ];
    let mut answered = Vec::new();
    for (subject, n, minutes_ago, granted) in &captures {
        let (kind, id) = subject.split_once('/').unwrap_or(("order", subject));
        let consent = if *granted { "granted" } else { "denied" };
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
        answered.push(format!("{kind} {id}{}", if *granted { "" } else { " (consent DENIED)" }));
    }
    say(&format!("    → 202 captured: {}", answered.join(", ")));
    say("    (the email is normalised and SHA-256 hashed on arrival; the raw address is never stored)");

    let card_1042 = stripe_payment(&o(1042), now - chrono::Duration::minutes(175), 5990);
    step(
        "2. Order 1042 is paid by card. Stripe's signed webhook (payment_intent.succeeded) carries the order\n   \
         id in its metadata but no browser ids: Surety verifies the signature, takes the payment's time\n   \
         from the Stripe event, joins client_id, session_id, the hashed email and consent from the\n   \
         checkout capture, and plans one delivery per destination.",
    );
    let story = "paid by card (Stripe webhook); identity joined from checkout; sent everywhere";
    post_stripe(api, &mut tour, &card_1042, story, everywhere("order_paid", DELIVERED), "accepted").await?;

    let bank_1043 = order_paid(&o(1043), &at(now, 48 * 60), 129.00, "bank_transfer", None);
    step(
        "3. Order 1043 was placed two days ago and paid by bank transfer; the bank statement confirming it\n   \
         arrives only now. Its event time is the payment's value date (48 h ago, inside every platform's\n   \
         window: GA4's 72 h is the shortest), and that is the time each platform gets — not \"now\".",
    );
    let story = "bank transfer confirmed 2 days late";
    let late = post(api, &mut tour, &bank_1043, story, everywhere("order_paid", DELIVERED), 202).await?;
    tour.late_event = Some(late);

    let refund = json!({
        "event_id": format!("re_{}", 2001 + ids.shift),
        "kind": "refund_completed", "occurred_at": at(now, 30),
        "subject": {"type": "order", "id": o(1042)},
        "value": 59.90, "currency": "EUR",
        "attributes": {"refund_reason": "wrong_size"},
    });
    step(
        "4. Order 1042 is refunded in full. The refund has its own id from the payment provider (re_…), which\n   \
         Surety keeps. GA4 gets a 'refund'; Google Ads gets an adjustment: the same transactionId to the\n   \
         same conversion action, value 0 (Meta and LinkedIn have no refund: the catalog routes it to neither).",
    );
    first_reach_the_platforms(api, &mut tour, "order 1042's purchase").await?;
    let story = "refunded: GA4 'refund', Google Ads conversion restated to 0";
    post(api, &mut tour, &refund, story, everywhere("refund_completed", DELIVERED), 202).await?;

    step("5. Stripe redelivers order 1042's payment webhook — the same event, byte for byte, signed anew.");
    post_stripe(api, &mut tour, &card_1042, "", everywhere("order_paid", DELIVERED), "duplicate").await?;
    say("    (a duplicate: nothing new is created and nothing is sent again, to any platform)");

    let first_1044 = order_paid(&o(1044), &at(now, 110), 120.00, "card", None);
    let restated_1044 = order_paid(&o(1044), &at(now, 110), 100.00, "card", None);
    step("6. Order 1044 is paid (120.00 EUR). Later a second message arrives for the same payment with 100.00.");
    let story = "paid; then restated with a different value";
    post(api, &mut tour, &first_1044, story, everywhere("order_paid", DELIVERED), 202).await?;
    post(api, &mut tour, &restated_1044, "", everywhere("order_paid", DELIVERED), 409).await?;
    say("    (a conflict: the original stands and the attempt is recorded; a changed value is a new kind of");
    say("    event, such as a restatement, never an overwrite)");

    let failed = json!({
        "kind": "fulfillment_failed", "occurred_at": at(now, 100),
        "subject": {"type": "order", "id": o(1044)},
        "attributes": {"warehouse": "berlin-2", "cause": "out_of_stock"},
    });
    step("7. The warehouse reports that order 1044's fulfilment failed. The catalog routes this kind nowhere:");
    say("    an operational state, kept in the ledger for the warehouse, never sent to a platform.");
    post(api, &mut tour, &failed, "operational state: kept, not sent", vec![], 202).await?;

    let declined = order_paid(&o(1045), &at(now, 85), 45.00, "card", None);
    step("8. Order 1045 is paid. Its shopper declined consent at checkout (analytics and ad user data).");
    let story = "shopper declined consent: sent nowhere";
    post(api, &mut tour, &declined, story, everywhere("order_paid", Expect::Skipped("consent_denied")), 202).await?;

    step(
        "9. The back office imports two orders in one batch ({\"events\": [...]}), answered per item:\n   \
         order 1039, paid 80 hours ago (older than GA4's 72 h, well inside the ad platforms' windows), and\n   \
         order 1047, taken by phone: consent and an email, but no browser, so no GA4 client_id.",
    );
    let granted = || json!({"analytics": "granted", "ad_user_data": "granted"});
    let old_1039 = order_paid(
        &o(1039),
        &at(now, 80 * 60),
        75.00,
        "card",
        Some((json!({"client_id": ids.client(10), "email": "back.office@example.com"}), granted())),
    );
    let phone_1047 = order_paid(
        &o(1047),
        &at(now, 70),
        310.00,
        "invoice",
        Some((json!({"email": "phone.buyer@example.com"}), granted())),
    );
    let a = api.ingest("/v1/events", &json!({"events": [old_1039, phone_1047]})).await?;
    let results = a.body.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
    if a.status != 200 || results.len() != 2 {
        tour.surprises.push(format!("batch import: {} {}", a.status.as_u16(), a.body));
    }
    let stories: [(&'static str, Expected); 2] = [
        (
            "80 h old: outside GA4's window (never re-timed), inside the others'",
            routed("order_paid", |s| if s.window_hours < 80 { Expect::Skipped("outside_window") } else { DELIVERED }),
        ),
        (
            "phone order: no client_id for GA4; the ad platforms match the hashed email",
            routed("order_paid", |s| if s.needs_client_id { Expect::Skipped("no_identity") } else { DELIVERED }),
        ),
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
    let story = "CRM lead qualified; joined by lead id; a lead conversion everywhere";
    post(api, &mut tour, &lead, story, everywhere("lead_qualified", DELIVERED), 202).await?;

    let chargeback = json!({
        "kind": "chargeback_opened", "occurred_at": at(now, 20),
        "subject": {"type": "order", "id": o(1044)},
        "value": 120.00, "currency": "EUR",
        "attributes": {"dispute_reason": "fraudulent"},
    });
    step(
        "11. The card network opens a chargeback on order 1044: a custom GA4 event ('chargeback'), and in\n    \
         Google Ads a retraction of the purchase's conversion (value 0).",
    );
    first_reach_the_platforms(api, &mut tour, "order 1044's purchase").await?;
    let story = "chargeback: custom GA4 event, Google Ads conversion retracted";
    post(api, &mut tour, &chargeback, story, everywhere("chargeback_opened", DELIVERED), 202).await?;

    say("\n   … the workers deliver in the background, one per destination; waiting until nothing is pending …");
    if !api.wait_idle(Duration::from_secs(20)).await? {
        tour.surprises.push("deliveries were still pending 20 s after the morning's events".into());
    }

    step("12. Someone asks to replay order 1042's purchase (POST /v1/deliveries/replay).");
    let paid_1042 = format!("order:{}:order_paid", o(1042));
    let a = api.admin_post("/v1/deliveries/replay", &json!({"event_id": paid_1042})).await?;
    let refused = a.body.get("refused").and_then(Value::as_array).cloned().unwrap_or_default();
    if refused.len() == everywhere("order_paid", DELIVERED).len() {
        say(&format!(
            "    → refused at all {} destinations: {}\n    (no double success: only a replay with \"force\": true sends it again, and it is logged as forced)",
            refused.len(),
            refused.first().and_then(|r| r.get("reason")).and_then(Value::as_str).unwrap_or("?")
        ));
    } else {
        tour.surprises.push(format!("replay of a delivered purchase was not refused everywhere: {}", a.body));
    }

    Ok((tour, ids, now))
}

/// Waits until what was posted so far reached the platforms: an adjustment must follow the
/// conversion it adjusts (in the shop's day, hours pass between the two).
async fn first_reach_the_platforms(api: &Api, tour: &mut Tour, what: &str) -> anyhow::Result<()> {
    if !api.wait_idle(Duration::from_secs(15)).await? {
        tour.surprises.push(format!("{what} was still pending 15 s later"));
    }
    Ok(())
}

/// A platform's processing status turns "sent" into "accepted": for each platform that confirms
/// later, waits (bounded) until it has.
pub async fn confirmations(api: &Api, tour: &mut Tour) -> anyhow::Result<()> {
    for platform in ALL {
        let Some(story) = platform.showcase.confirms_later else { continue };
        step(&format!("15. {story}"));
        let (name, label) = (platform.showcase.demo_name, platform.label);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let delivered = api.deliveries(name, "delivered").await?;
            let waiting = delivered.iter().filter(|d| d.get("reason").and_then(Value::as_str) == Some("sent")).count();
            if waiting == 0 {
                say(&format!("    → all {} {label} deliveries confirmed processed", delivered.len()));
                break;
            }
            if std::time::Instant::now() > deadline {
                tour.surprises.push(format!("{waiting} {label} deliveries were still unconfirmed after 20 s"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

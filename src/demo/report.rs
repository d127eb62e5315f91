//! The tour's ending: what happened to each event at each destination, two timelines, and
//! totals per destination that add up and match what each simulator received — all read back
//! through `GET /v1/events/{id}`.

use std::collections::BTreeMap;

use super::api::Api;
use super::script::{Expect, Expected, Tour};
use super::setup::destinations;
use super::setup::Sims;
use crate::core::DeliveryState;
use crate::store::{EventView, Routing};

/// What the tour came to: each destination's tally and every way it differs from the story.
#[derive(Debug, Default)]
pub struct Summary {
    pub by_destination: BTreeMap<String, Tally>,
    pub mismatches: Vec<String>,
}

/// One destination's deliveries in this tour, by end state and reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub planned: u64,
    /// State (claimed and sending counted as pending) → deliveries.
    pub states: BTreeMap<&'static str, u64>,
    /// `state:reason` → deliveries, for ended ones.
    pub reasons: BTreeMap<String, u64>,
    /// What the destination's simulator says it received.
    pub received: Option<u64>,
}

impl Tally {
    pub fn count(&self, state: &str) -> u64 {
        self.states.get(state).copied().unwrap_or(0)
    }
}

/// Prints the report; returns the tallies and every way the ledger differs from the tour's story.
pub async fn print(api: &Api, sims: &Sims, tour: &Tour) -> anyhow::Result<Summary> {
    let mut mismatches = tour.surprises.clone();
    let mut views = Vec::with_capacity(tour.events.len());
    for t in &tour.events {
        views.push(api.event(&t.event_id).await?);
    }

    println!("\n══ What happened to each event, per destination (GET /v1/events/{{id}}) ══");
    for (i, (t, v)) in tour.events.iter().zip(&views).enumerate() {
        println!("\n{:>2}. {}  ({}, {})", i + 1, t.event_id, v.event.kind, v.routing);
        println!("    {}", t.story);
        println!("    API answered: {}", t.answers.join(", then "));
        if v.deliveries.is_empty() {
            println!("    → no delivery: the catalog routes '{}' nowhere", v.event.kind);
        }
        for d in &v.deliveries {
            let reason = d.reason.as_deref().map(|r| format!(":{r}")).unwrap_or_default();
            let attempts = match d.attempts {
                0 => "never sent".to_owned(),
                1 => "1 attempt".to_owned(),
                n => format!("{n} attempts"),
            };
            println!("    → {:<11} as '{}': {}{reason}, {attempts}", d.destination, d.destination_event, d.state);
        }
        if !v.event.joined.is_empty() {
            println!("    joined from the identity bridge: {}", joined(&v.event.joined));
        }
        match check(&t.expect, v) {
            Ok(()) => println!("    ✓ as expected"),
            Err(why) => {
                println!("    ✗ UNEXPECTED: {why}");
                mismatches.push(format!("{}: {why}", t.event_id));
            }
        }
    }

    for (id, why) in [
        (&tour.outage_event, "the outage: failed attempts, backoff, then delivery — each attempt recorded"),
        (&tour.late_event, "the late bank transfer: event time (sent to each platform) vs processing time"),
    ] {
        if let Some(v) = id.as_ref().and_then(|id| views.iter().find(|v| v.event.event_id.as_str() == id)) {
            println!("\n══ Timeline: {why} ══");
            println!("   (surety events show {}  prints the same from the ledger)\n", v.event.event_id);
            for line in v.to_string().lines() {
                println!("   {line}");
            }
        }
    }

    let by_destination = totals(&views, tour, sims, &mut mismatches);
    Ok(Summary { by_destination, mismatches })
}

/// `identity.client_id, …, consent.analytics, …` as `client_id, …, consent (analytics, …)`.
fn joined(fields: &[String]) -> String {
    let ids: Vec<&str> = fields.iter().filter_map(|f| f.strip_prefix("identity.")).collect();
    let consent: Vec<&str> = fields.iter().filter_map(|f| f.strip_prefix("consent.")).collect();
    let mut parts = ids.join(", ");
    if !consent.is_empty() {
        if !parts.is_empty() {
            parts.push_str(", ");
        }
        parts.push_str(&format!("consent ({})", consent.join(", ")));
    }
    parts
}

/// Whether an event's deliveries are exactly the expected ones, destination by destination.
fn check(expect: &Expected, v: &EventView) -> Result<(), String> {
    let got = |v: &EventView| {
        v.deliveries
            .iter()
            .map(|d| {
                let reason = d.reason.as_deref().map(|r| format!(":{r}")).unwrap_or_default();
                format!("{} {}{reason}", d.destination, d.state)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if expect.is_empty() {
        return if v.routing == Routing::NotRouted && v.deliveries.is_empty() {
            Ok(())
        } else {
            Err(format!("expected not_routed, got {} [{}]", v.routing, got(v)))
        };
    }
    let mut wrong = Vec::new();
    for (dest, e) in expect {
        let d = v.deliveries.iter().find(|d| d.destination == *dest);
        let ok = match (e, d) {
            (_, None) => false,
            (Expect::Delivered, Some(d)) => d.state == DeliveryState::Delivered,
            (Expect::Skipped(reason), Some(d)) => {
                d.state == DeliveryState::Skipped && d.reason.as_deref() == Some(*reason)
            }
        };
        if !ok {
            let want = match e {
                Expect::Delivered => "delivered".to_owned(),
                Expect::Skipped(r) => format!("skipped:{r}"),
            };
            wrong.push(format!("{dest} should be {want}"));
        }
    }
    for d in &v.deliveries {
        if !expect.iter().any(|(dest, _)| *dest == d.destination) {
            wrong.push(format!("{} was not expected", d.destination));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{} [got {}]", wrong.join("; "), got(v)))
    }
}

const ENDED: [&str; 5] = ["delivered", "rejected", "skipped", "dead", "in_doubt"];

fn totals(views: &[EventView], tour: &Tour, sims: &Sims, mismatches: &mut Vec<String>) -> BTreeMap<String, Tally> {
    let events = views.len();
    let routed = views.iter().filter(|v| v.routing == Routing::Routed).count();
    let mut by_dest: BTreeMap<String, Tally> = BTreeMap::new();
    for d in views.iter().flat_map(|v| &v.deliveries) {
        let t = by_dest.entry(d.destination.clone()).or_default();
        t.planned += 1;
        // Claimed and sending are still on their way: they count as pending here.
        let state = match d.state {
            DeliveryState::Claimed | DeliveryState::Sending => DeliveryState::Pending,
            s => s,
        };
        *t.states.entry(state.as_str()).or_default() += 1;
        if state.is_ended() {
            let key = format!("{}:{}", state.as_str(), d.reason.as_deref().unwrap_or("?"));
            *t.reasons.entry(key).or_default() += 1;
        }
    }
    for (dest, t) in &mut by_dest {
        t.received = sims.received(dest);
    }

    println!("\n══ Totals for this tour, per destination (they add up: nothing disappears) ══\n");
    println!("  events        {events} = routed {routed} + not_routed {}", events - routed);
    let mut all = Tally::default();
    let known = destinations();
    for &dest in &known {
        let t = by_dest.get(dest).cloned().unwrap_or_default();
        print_tally(dest, &t);
        check_tally(dest, &t, tour, mismatches);
        all.planned += t.planned;
        for (s, n) in &t.states {
            *all.states.entry(s).or_default() += n;
        }
    }
    for dest in by_dest.keys().filter(|d| !known.contains(&d.as_str())) {
        mismatches.push(format!("{dest}: a destination the tour does not know"));
    }
    println!("  {:-<13}", "");
    print_tally("all", &all);

    let answers: Vec<&str> = tour.events.iter().flat_map(|t| &t.answers).map(String::as_str).collect();
    let mut words: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &answers {
        *words.entry(a.split_once(' ').map_or(*a, |(_, w)| w)).or_default() += 1;
    }
    let words: Vec<String> = words.iter().map(|(w, k)| format!("{k} {w}")).collect();
    println!("\n  ingest        {} posts of these events: {}", answers.len(), words.join(", "));
    for line in sims.describe() {
        println!("  {line}");
    }
    by_dest
}

fn print_tally(dest: &str, t: &Tally) {
    let n = |s: &str| t.count(s);
    println!(
        "  {dest:<13} planned {:>2} = delivered {:>2} + rejected {} + skipped {} + dead {} + in_doubt {} + pending {}",
        t.planned,
        n("delivered"),
        n("rejected"),
        n("skipped"),
        n("dead"),
        n("in_doubt"),
        n("pending")
    );
    if !t.reasons.is_empty() {
        let reasons: Vec<String> = t.reasons.iter().map(|(r, k)| format!("{r} {k}")).collect();
        println!("  {:<13} by reason: {}", "", reasons.join(", "));
    }
    if let Some(received) = t.received {
        let verdict = if received == n("delivered") { "one per delivered delivery" } else { "MISMATCH" };
        println!("  {:<13} its simulator received {received} events: {verdict}", "");
    }
}

/// The checks a destination's totals must pass: states add up to what was planned, nothing is
/// left pending, the tour planned exactly what it expected there, the simulator received one
/// event per delivered delivery, and a platform that confirms later confirmed every delivery it took.
fn check_tally(dest: &str, t: &Tally, tour: &Tour, mismatches: &mut Vec<String>) {
    let sum: u64 = ENDED.iter().chain(["pending"].iter()).map(|s| t.count(s)).sum();
    if sum != t.planned {
        mismatches.push(format!("{dest}: planned {} but the states add up to {sum}", t.planned));
    }
    if t.count("pending") > 0 {
        mismatches.push(format!("{dest}: {} deliveries never ended", t.count("pending")));
    }
    let expected = tour.events.iter().flat_map(|e| &e.expect).filter(|(d, _)| *d == dest).count() as u64;
    if t.planned != expected {
        mismatches.push(format!("{dest}: {} deliveries planned, the tour expected {expected}", t.planned));
    }
    if let Some(received) = t.received {
        if received != t.count("delivered") {
            mismatches.push(format!(
                "{dest}: {} delivered in the ledger but the simulator received {received} events",
                t.count("delivered")
            ));
        }
    }
    let confirms_later =
        crate::platforms::ALL.iter().any(|p| p.showcase.demo_name == dest && p.showcase.confirms_later.is_some());
    if confirms_later {
        let sent = t.reasons.get("delivered:sent").copied().unwrap_or(0);
        if sent > 0 {
            mismatches.push(format!("{dest}: {sent} deliveries never had their processing confirmed"));
        }
    }
}

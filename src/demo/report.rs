//! The tour's ending: what happened to each event, two timelines, and totals that add up — all
//! read back through `GET /v1/events/{id}`.

use std::collections::BTreeMap;

use super::api::Api;
use super::script::{Expect, Tour};
use crate::cli::render_timeline;
use crate::core::DeliveryState;
use crate::sim::ga4::Ga4Sim;
use crate::store::EventView;

/// Prints the report; returns every way the ledger differs from what the tour expected.
pub async fn print(api: &Api, sim: &Ga4Sim, tour: &Tour) -> anyhow::Result<Vec<String>> {
    let mut mismatches = tour.surprises.clone();
    let mut views = Vec::with_capacity(tour.events.len());
    for t in &tour.events {
        views.push(api.event(&t.event_id).await?);
    }

    println!("\n══ What happened to each event (GET /v1/events/{{id}}) ══");
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
            println!("    → {} as '{}': {}{reason}, {attempts}", d.destination, d.destination_event, d.state);
        }
        if !v.event.joined.is_empty() {
            println!("    joined from the identity bridge: {}", joined(&v.event.joined));
        }
        match check(t.expect, v) {
            Ok(()) => println!("    ✓ as expected"),
            Err(why) => {
                println!("    ✗ UNEXPECTED: {why}");
                mismatches.push(format!("{}: {why}", t.event_id));
            }
        }
    }

    for (id, why) in [
        (&tour.outage_event, "the GA4 outage: failed attempts, backoff, then delivery — each attempt recorded"),
        (&tour.late_event, "the late bank transfer: event time (sent to GA4) vs processing time"),
    ] {
        if let Some(v) = id.as_ref().and_then(|id| views.iter().find(|v| v.event.event_id.as_str() == id)) {
            println!("\n══ Timeline: {why} ══");
            println!("   (surety events show {}  prints the same from the ledger)\n", v.event.event_id);
            for line in render_timeline(v).lines() {
                println!("   {line}");
            }
        }
    }

    totals(&views, tour, sim, &mut mismatches);
    Ok(mismatches)
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

fn check(expect: Expect, v: &EventView) -> Result<(), String> {
    let got = |v: &EventView| {
        v.deliveries
            .iter()
            .map(|d| format!("{}{}", d.state, d.reason.as_deref().map(|r| format!(":{r}")).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match expect {
        Expect::NotRouted if v.routing == "not_routed" && v.deliveries.is_empty() => Ok(()),
        Expect::NotRouted => Err(format!("expected not_routed, got {} [{}]", v.routing, got(v))),
        Expect::Delivered if v.deliveries.len() == 1 && v.deliveries[0].state == DeliveryState::Delivered => Ok(()),
        Expect::Delivered => Err(format!("expected one delivered delivery, got [{}]", got(v))),
        Expect::Skipped(reason)
            if v.deliveries.len() == 1
                && v.deliveries[0].state == DeliveryState::Skipped
                && v.deliveries[0].reason.as_deref() == Some(reason) =>
        {
            Ok(())
        }
        Expect::Skipped(reason) => Err(format!("expected skipped:{reason}, got [{}]", got(v))),
    }
}

#[derive(Default)]
struct Tally {
    planned: u64,
    states: BTreeMap<&'static str, u64>,
    skipped: BTreeMap<String, u64>,
}

fn totals(views: &[EventView], tour: &Tour, sim: &Ga4Sim, mismatches: &mut Vec<String>) {
    let events = views.len();
    let routed = views.iter().filter(|v| v.routing == "routed").count();
    let mut by_dest: BTreeMap<&str, Tally> = BTreeMap::new();
    for d in views.iter().flat_map(|v| &v.deliveries) {
        let t = by_dest.entry(d.destination.as_str()).or_default();
        t.planned += 1;
        // Claimed and sending are still on their way: they count as pending here.
        let state = match d.state {
            DeliveryState::Claimed | DeliveryState::Sending => DeliveryState::Pending,
            s => s,
        };
        *t.states.entry(state.as_str()).or_default() += 1;
        if state == DeliveryState::Skipped {
            *t.skipped.entry(d.reason.clone().unwrap_or_default()).or_default() += 1;
        }
    }

    println!("\n══ Totals for this tour (they add up: nothing disappears) ══\n");
    println!("  events      {events} = routed {routed} + not_routed {}", events - routed);
    for (dest, t) in &by_dest {
        let n = |s: &str| t.states.get(s).copied().unwrap_or(0);
        let sum: u64 = ["delivered", "rejected", "skipped", "dead", "in_doubt", "pending"].iter().map(|s| n(s)).sum();
        println!(
            "  {dest:<11} planned {} = delivered {} + rejected {} + skipped {} + dead {} + in_doubt {} + pending {}",
            t.planned,
            n("delivered"),
            n("rejected"),
            n("skipped"),
            n("dead"),
            n("in_doubt"),
            n("pending")
        );
        if !t.skipped.is_empty() {
            let reasons: Vec<String> = t.skipped.iter().map(|(r, k)| format!("{r} {k}")).collect();
            println!("  {:<11} skipped by reason: {}", "", reasons.join(", "));
        }
        if sum != t.planned {
            mismatches.push(format!("{dest}: planned {} but the states add up to {sum}", t.planned));
        }
        if *dest == super::DESTINATION && n("delivered") != sim.event_count() {
            mismatches.push(format!(
                "{dest}: {} delivered in the ledger but the simulator received {} events",
                n("delivered"),
                sim.event_count()
            ));
        }
    }
    let answers: Vec<&str> = tour.events.iter().flat_map(|t| &t.answers).map(String::as_str).collect();
    let mut words: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &answers {
        *words.entry(a.split_once(' ').map_or(*a, |(_, w)| w)).or_default() += 1;
    }
    let words: Vec<String> = words.iter().map(|(w, k)| format!("{k} {w}")).collect();
    println!("  ingest      {} posts of these events: {}", answers.len(), words.join(", "));
    println!(
        "  GA4 sim     received {} events in {} requests (+ {} validations at /debug/mp/collect); answered {} with the injected 503",
        sim.event_count(),
        sim.request_count(),
        sim.debug_request_count(),
        sim.fault_count()
    );
}

//! The tour's outage: the first platform's simulator answers 503 while two orders are paid. Its
//! worker retries with backoff and opens its circuit; the other destinations, each with a worker
//! of its own, deliver the same orders meanwhile (G9). Then it recovers and its backlog drains.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::api::Api;
use super::script::{at, everywhere, order_paid, post, say, step, Expect, Ids, Tour};
use super::setup::Sims;
use crate::core::DeliveryState;
use crate::sim::Fault;
use crate::store::EventView;

/// The first platform answers 503 until its worker has retried a few times and the others
/// delivered, then recovers.
pub async fn play(api: &Api, sims: &Sims, tour: &mut Tour, ids: &Ids, now: DateTime<Utc>) -> anyhow::Result<()> {
    let down = sims.outage()?;
    let (name, label) = (down.name, down.platform.label);
    step(&format!(
        "13. {label} goes down: from now on its simulator answers every request with 503 Service Unavailable."
    ));
    say("    Orders 1046 and 1048 are paid meanwhile.");
    down.sim.set_fault(Some(Fault::Status(503)));
    let paid_1046 = order_paid(&ids.order(1046), &at(now, 5), 64.50, "card", None);
    let paid_1048 = order_paid(&ids.order(1048), &at(now, 4), 18.00, "card", None);
    let story = "paid during the outage";
    let id = post(api, tour, &paid_1046, story, everywhere("order_paid", Expect::Delivered), 202).await?;
    let other = post(api, tour, &paid_1048, story, everywhere("order_paid", Expect::Delivered), 202).await?;
    tour.outage_event = Some(id.clone());

    // Let its worker fail a few times and its circuit open, showing each attempt as the ledger
    // records it, while the other destinations deliver; the outage lasts until all of that was
    // seen (bounded).
    let (mut seen, mut circuit_seen, mut others_seen, started) = (0, false, false, Instant::now());
    let deadline = started + Duration::from_secs(20);
    while (seen < 2 || !circuit_seen || !others_seen || started.elapsed() < Duration::from_secs(2))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let view = api.event(&id).await?;
        seen = show_attempts(&view, name, label, seen);
        if !circuit_seen && api.circuit_open(name).await? {
            circuit_seen = true;
            say(&format!(
                "    {name}'s circuit is open: after 3 failed requests in a row Surety pauses this destination"
            ));
            say("    (1 s, then 2 s, 4 s … between probes) instead of spending attempts");
            say(&format!("    (GET /metrics: surety_circuit_open{{destination=\"{name}\"}} 1)"));
        }
        if !others_seen && others_delivered(&view, name) && others_delivered(&api.event(&other).await?, name) {
            others_seen = true;
            let names: Vec<&str> = sims.lanes.iter().map(|l| l.name).filter(|d| *d != name).collect();
            say(&format!(
                "    meanwhile {} delivered both orders: each destination has its own worker,",
                names.join(", ")
            ));
            say("    queue and circuit, so one platform's outage holds up only itself (G9)");
        }
    }
    if seen == 0 {
        tour.surprises.push(format!("no {label} attempt was recorded during the outage"));
    }
    if !others_seen {
        tour.surprises.push(format!("the other destinations did not deliver while {label} was down"));
    }
    down.sim.set_fault(None);
    step(&format!(
        "14. {label} recovers. Nothing to do: the next probe succeeds, the circuit closes, the backlog drains."
    ));
    let started = Instant::now();
    if api.wait_idle(Duration::from_secs(30)).await? {
        let view = api.event(&id).await?;
        let attempts = delivery_to(&view, name).map_or(0, |d| d.attempts);
        say(&format!(
            "    → both delivered to {label} {:.1} s after recovery (order 1046 after {attempts} attempts); the backlog is empty",
            started.elapsed().as_secs_f64()
        ));
    } else {
        tour.surprises.push(format!("deliveries were still pending 30 s after {label} recovered"));
    }
    Ok(())
}

fn delivery_to<'a>(view: &'a EventView, name: &str) -> Option<&'a crate::store::DeliveryView> {
    view.deliveries.iter().find(|d| d.destination == name)
}

/// Prints the attempts of the delivery to `name` after the first `seen`; returns how many there
/// are now.
fn show_attempts(view: &EventView, name: &str, label: &str, seen: usize) -> usize {
    let Some(delivery) = delivery_to(view, name) else { return seen };
    let attempts: Vec<_> = view.attempts.iter().filter(|a| a.delivery_id == delivery.id).collect();
    let total = attempts.len();
    for (i, a) in attempts.iter().enumerate().skip(seen) {
        let status = a.http_status.map_or_else(|| a.error.clone().unwrap_or_default(), |s| s.to_string());
        // The backoff chosen after the latest attempt, if it is still waiting.
        let next = delivery.next_attempt_at.filter(|_| i + 1 == total);
        let wait = next.map(|n| (n - a.at).num_milliseconds().max(0) as f64 / 1000.0);
        say(&format!(
            "    order 1046 to {label}, attempt {}: {label} answered {status} → {}{}",
            a.attempt,
            a.outcome,
            wait.map(|w| format!(", next try {w:.2} s later (exponential backoff, full jitter)")).unwrap_or_default()
        ));
    }
    total
}

/// Whether every delivery but the one to `down` has been delivered.
fn others_delivered(view: &EventView, down: &str) -> bool {
    let others: Vec<_> = view.deliveries.iter().filter(|d| d.destination != down).collect();
    !others.is_empty() && others.iter().all(|d| d.state == DeliveryState::Delivered)
}

//! The value an adjustment restates, computed from the ledger: the original conversion's value
//! minus everything refunded or charged back up to and including this adjustment, in event-time
//! order, in the original's currency, never below zero. Google overwrites `conversionValue` with
//! what an adjustment states (docs/platforms.md §Google Ads: "an adjustment states the
//! conversion's new total, not the refunded amount"), so each one must carry the running total.
//!
//! Amounts are added and subtracted as whole ten-thousandths with checked integer arithmetic:
//! 34.60 − 9.90 − 9.90 is exactly 14.80, and every ISO 4217 exponent (0, 2, 3) fits.

use super::payload::{restated_value, transaction_id, Restatement, Shape};
use crate::core::Event;

/// Units per major unit in the arithmetic.
const SCALE: f64 = 10_000.0;

fn units(v: f64) -> Option<i64> {
    let u = (v * SCALE).round();
    (u.is_finite() && u.abs() < 9.0e15).then_some(u as i64)
}

fn major(u: i64) -> f64 {
    u as f64 / SCALE
}

/// An amount as written in the arithmetic: at least two decimals, more only when it has them.
fn text(u: i64) -> String {
    let two = format!("{:.2}", major(u));
    if units(two.parse().unwrap_or(f64::NAN)) == Some(u) {
        two
    } else {
        format!("{:.4}", major(u)).trim_end_matches('0').to_owned()
    }
}

/// The restatement of `adjustment` (routed to conversion action `action`) from `history`: the
/// subject's events with a delivery to this destination and each one's conversion action, in
/// event-time order (`Store::subject_history`). `None` if the ledger holds no original
/// conversion with the same `transactionId` in the same conversion action.
///
/// An earlier adjustment that stated its own `restated_value` resets the running value to it; an
/// adjustment without an amount (`value`) retracts the rest; one in another currency than the
/// original is not subtracted (no conversion rate is assumed) and the arithmetic says so.
pub fn restate(adjustment: &Event, action: &str, history: &[(Event, String)], shape: &Shape) -> Option<Restatement> {
    let tx = transaction_id(adjustment);
    let same = |e: &Event, a: &str| a == action && transaction_id(e) == tx;
    let original = history
        .iter()
        .find(|(e, a)| same(e, a) && !shape.is_adjustment(e) && e.occurred_at <= adjustment.occurred_at)?;
    let original = &original.0;
    let mut earlier: Vec<&Event> = history
        .iter()
        .filter(|(e, a)| same(e, a) && shape.is_adjustment(e))
        .map(|(e, _)| e)
        .take_while(|e| e.event_id != adjustment.event_id)
        .filter(|e| e.occurred_at <= adjustment.occurred_at)
        .collect();
    earlier.push(adjustment);

    let currency = original.currency.clone();
    let mut running = units(original.value.unwrap_or(0.0))?.max(0);
    let mut previous = running;
    let mut arithmetic = text(running);
    for e in earlier {
        previous = running;
        if let Some(stated) = restated_value(e).and_then(units) {
            running = stated.max(0);
            arithmetic = format!("{} (stated by {})", text(running), e.event_id.as_str());
            continue;
        }
        match (e.value.and_then(units), &e.currency) {
            (None, _) => {
                running = 0;
                arithmetic.push_str(" − all (no amount)");
            }
            (Some(amount), Some(c)) if currency.as_ref().is_some_and(|o| o != c) => {
                arithmetic.push_str(&format!(" (− {} {} not subtracted: another currency)", text(amount), c.as_str()));
            }
            (Some(amount), _) => {
                running = running.checked_sub(amount.max(0)).unwrap_or(0).max(0);
                arithmetic.push_str(&format!(" − {}", text(amount.max(0))));
            }
        }
    }
    let unit = currency.as_ref().map(|c| format!(" {}", c.as_str())).unwrap_or_default();
    Some(Restatement {
        value: major(running),
        previous: major(previous),
        currency,
        conversion_at: original.occurred_at,
        arithmetic: format!("{arithmetic} = {}{unit}", text(running)),
    })
}

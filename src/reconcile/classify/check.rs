//! How one ledger event is classed per destination: against the source of truth, by what became
//! of its delivery, and by what the platform's report shows; and the counting.

use std::hash::BuildHasher;

use super::{Matcher, Side};
use crate::core::{DeliveryState, Event};
use crate::reconcile::read::{PlatformRow, SourceRow};
use crate::reconcile::report::Mismatch;
use crate::store::LedgerDelivery;

impl Matcher {
    /// The ledger against the source of truth: value or currency, then time.
    pub(super) fn against_source(&self, s: &SourceRow, ev: &Event) -> Option<(&'static str, String)> {
        let tol = self.settings.tolerance;
        let value_off = match (s.value, ev.value) {
            (Some(a), Some(b)) => (a - b).abs() > tol,
            (Some(a), None) => a.abs() > tol,
            _ => false,
        };
        let ledger_currency = ev.currency.as_ref().map(|c| c.as_str());
        let source_currency = s.currency.as_deref();
        let currency_off = source_currency.is_some() && source_currency != ledger_currency;
        if value_off || currency_off {
            let show = |v: Option<f64>, c: Option<&str>| {
                format!("{} {}", v.map_or("-".into(), |v| format!("{v:.2}")), c.unwrap_or(""))
            };
            return Some((
                "value_differs",
                format!(
                    "the source says {}, the ledger {}",
                    show(s.value, source_currency).trim(),
                    show(ev.value, ledger_currency).trim()
                ),
            ));
        }
        if (s.occurred_at - ev.occurred_at).num_seconds().abs() >= 1 {
            return Some((
                "time_differs",
                format!(
                    "occurred_at: the source says {}, the ledger {} (received {}): processing time sent as event time?",
                    s.occurred_at.to_rfc3339(),
                    ev.occurred_at.to_rfc3339(),
                    ev.received_at.to_rfc3339()
                ),
            ));
        }
        None
    }

    /// What became of the delivery, when it did not reach the platform.
    pub(super) fn delivery_class(&self, i: usize, delivery: Option<&LedgerDelivery>) -> Option<(String, String, bool)> {
        let Some(d) = delivery else {
            return Some((
                "skipped:not_routed".into(),
                "routed by the catalog now, not when it was ingested".into(),
                true,
            ));
        };
        let reason = d.reason.clone().unwrap_or_default();
        match d.state {
            DeliveryState::Delivered => None,
            DeliveryState::Skipped => Some((format!("skipped:{reason}"), String::new(), true)),
            DeliveryState::Rejected => Some(("rejected".into(), reason, false)),
            DeliveryState::Dead => Some(("dead".into(), reason, false)),
            DeliveryState::InDoubt => Some(("in_doubt".into(), reason, false)),
            DeliveryState::Pending | DeliveryState::Claimed | DeliveryState::Sending => {
                let age = self.settings.now - d.created_at;
                let young = age < self.scopes[i].retry_age;
                let detail = format!("{} for {}h", d.state.as_str(), age.num_hours());
                let detail = if young { detail } else { format!("{detail}: past the retry age, should have ended") };
                Some(("pending".into(), detail, young))
            }
        }
    }

    /// Takes the platform's rows for this event; for a delivered one, what the platform shows.
    pub(super) fn platform_check(
        &mut self,
        i: usize,
        ev: &Event,
        delivery: Option<&LedgerDelivery>,
        delivered: bool,
    ) -> Option<(&'static str, String)> {
        let scope = &self.scopes[i];
        let tol = self.settings.tolerance;
        let side = self.sides.get_mut(&scope.name)?;
        let dest_event = delivery.map(|d| d.dest_event.clone()).unwrap_or_default();
        let day = ev.occurred_at.date_naive();
        match side {
            Side::PerEvent(side) => {
                let txn = (scope.platform.report_id)(ev)?;
                let event = if side.use_event { dest_event.as_str() } else { "" };
                let hash = self.hasher.hash_one((event, txn.as_str()));
                let taken = side.take(hash, event, &txn);
                if !delivered {
                    return None;
                }
                let found: Vec<&PlatformRow> = taken.iter().map(|&i| &side.rows[i as usize]).collect();
                if found.is_empty() {
                    return Some((
                        "missing_at_platform",
                        format!("delivered; the report has no row for transaction {txn} (a silent drop?)"),
                    ));
                };
                let lines = found.iter().map(|r| r.line.to_string()).collect::<Vec<_>>().join(", ");
                let count: u64 = found.iter().map(|r| u64::from(r.count)).sum();
                if count > 1 {
                    return Some((
                        "duplicate_at_platform",
                        format!("transaction {txn} counted {count} times (line {lines})"),
                    ));
                }
                let value: Option<f64> = found.iter().filter_map(|r| r.value).reduce(|a, b| a + b);
                if let (Some(p), Some(l)) = (value, ev.value) {
                    if (p - l).abs() > tol {
                        return Some((
                            "value_differs_at_platform",
                            format!("the platform shows {p:.2}, the ledger {l:.2} (line {lines})"),
                        ));
                    }
                }
                if found[0].day != day {
                    return Some((
                        "date_differs_at_platform",
                        format!("the platform's day is {}, the event's {day} (line {lines})", found[0].day),
                    ));
                }
                None
            }
            Side::Aggregate { use_event, ledger, .. } => {
                if delivered {
                    let event = if *use_event { dest_event } else { String::new() };
                    let g = ledger.entry((day, event)).or_default();
                    g.0 += 1;
                    g.1 += ev.value.unwrap_or(0.0);
                }
                None
            }
            Side::FollowUps => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn count(
        &mut self,
        dest: &str,
        class: String,
        explained: bool,
        key: &str,
        event_id: Option<&str>,
        detail: String,
        value: Option<f64>,
    ) {
        self.count_n(dest, class, explained, key, event_id, detail, value, 1);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn count_n(
        &mut self,
        dest: &str,
        class: String,
        explained: bool,
        key: &str,
        event_id: Option<&str>,
        detail: String,
        value: Option<f64>,
        n: u64,
    ) {
        let d = self.report.destinations.entry(dest.to_owned()).or_default();
        *d.classes.entry(class.clone()).or_default() += n;
        if class == "matched" {
            return;
        }
        if explained {
            d.explained += n;
            return;
        }
        d.unexplained += n;
        self.report.mismatches.push(Mismatch {
            key: key.to_owned(),
            event_id: event_id.map(str::to_owned),
            destination: dest.to_owned(),
            class,
            detail,
            value,
        });
    }
}

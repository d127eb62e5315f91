//! Where the rules' values come from: the ledger (queue stats, delivery counts, coverage), this
//! process's circuit gauges and the last reconcile report, read per destination (`Reader`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::Reading;
use crate::config::alerts::{AlertRule, Condition};
use crate::core::DeliveryState;
use crate::reconcile::coverage::{self, CoverageQuery, CoverageReport, GroupBy};
use crate::reconcile::Recorded;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// Delivery counts per destination at one time, for the rejection share over a window.
#[derive(Clone, Debug, Default)]
pub(super) struct Ended {
    pub(super) rejected: u64,
    pub(super) ended: u64,
}

/// Reads every rule's value per destination.
pub struct Reader {
    destinations: Vec<String>,
    /// Snapshots of ended-delivery counts, oldest first, kept for the longest window.
    pub(super) history: VecDeque<(DateTime<Utc>, HashMap<String, Ended>)>,
    /// When each destination's circuit was first seen open.
    open_since: HashMap<String, DateTime<Utc>>,
    /// The latest reconcile report kept in the ledger, as last read.
    reconcile: Option<Recorded>,
}

impl Reader {
    pub fn new(destinations: Vec<String>) -> Self {
        Self { destinations, history: VecDeque::new(), open_since: HashMap::new(), reconcile: None }
    }

    pub async fn read(
        &mut self,
        rules: &[AlertRule],
        watched: &Watched,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reading>, StoreError> {
        let (store, metrics) = (watched.store.as_ref(), watched.metrics.as_ref());
        // Read only when a rule asks for it. A report this binary cannot read (one a newer
        // process kept) leaves the last one read in place, and the other rules evaluated.
        if rules.iter().any(|r| r.when == Condition::ReconcileUnexplained) {
            match crate::reconcile::latest(store).await {
                Ok(last) => self.reconcile = last,
                Err(StoreError::Corrupt(why)) => {
                    tracing::warn!(%why, "alerts: the latest reconcile report cannot be read; keeping the last one read")
                }
                Err(e) => return Err(e),
            }
        }
        let coverage = coverage_by_window(rules, store, now).await?;
        let counts = store.counts().await?;
        let mut per: HashMap<String, HashMap<DeliveryState, u64>> = HashMap::new();
        for (dest, state, _, n) in &counts.deliveries {
            let slot = per.entry(dest.clone()).or_default().entry(*state).or_default();
            *slot = slot.saturating_add(*n);
        }
        let ended: HashMap<String, Ended> = per
            .iter()
            .map(|(d, s)| {
                let get = |st: DeliveryState| s.get(&st).copied().unwrap_or(0);
                let rejected = get(DeliveryState::Rejected);
                let ended =
                    [DeliveryState::Delivered, DeliveryState::Rejected, DeliveryState::Dead, DeliveryState::InDoubt]
                        .into_iter()
                        .map(get)
                        .fold(0u64, u64::saturating_add);
                (d.clone(), Ended { rejected, ended })
            })
            .collect();
        let longest = rules.iter().map(|r| r.window_secs).max().unwrap_or(0);
        self.history.push_back((now, ended.clone()));
        while self.history.len() > 2
            && self
                .history
                .get(1)
                .is_some_and(|(t, _)| now - *t >= Duration::seconds(longest.min(i64::MAX as u64) as i64))
        {
            self.history.pop_front();
        }
        for d in &self.destinations {
            if circuit_open(metrics, d) {
                self.open_since.entry(d.clone()).or_insert(now);
            } else {
                self.open_since.remove(d);
            }
        }
        let mut out = Vec::new();
        for rule in rules {
            for dest in self.destinations.iter().filter(|d| rule.destination.as_ref().is_none_or(|x| x == *d)) {
                let states = per.get(dest);
                let get = |st: DeliveryState| states.and_then(|s| s.get(&st)).copied().unwrap_or(0) as f64;
                let queue = counts.queues.iter().find(|q| &q.destination == dest);
                let value = match rule.when {
                    Condition::Coverage => {
                        let report = coverage.get(&rule.window_secs);
                        match report.and_then(|r| share_carrying(r, dest, rule.field.as_deref().unwrap_or_default())) {
                            Some(share) => share,
                            // No event routed to it in the window: nothing to judge.
                            None => continue,
                        }
                    }
                    Condition::ReconcileUnexplained => unexplained(self.reconcile.as_ref(), dest),
                    Condition::OldestPendingSecs => queue
                        .and_then(|q| q.oldest)
                        .map_or(0.0, |o| (now - o).num_milliseconds().max(0) as f64 / 1000.0),
                    Condition::QueueDepth => queue.map_or(0.0, |q| q.depth as f64),
                    Condition::Dead => get(DeliveryState::Dead),
                    Condition::InDoubt => get(DeliveryState::InDoubt),
                    Condition::NeedsPerson => {
                        get(DeliveryState::Dead) + get(DeliveryState::InDoubt) + get(DeliveryState::Rejected)
                    }
                    Condition::RejectionShare => self.share(dest, rule.window_secs, now, &ended),
                    Condition::CircuitOpenSecs => {
                        self.open_since.get(dest).map_or(0.0, |t| (now - *t).num_milliseconds().max(0) as f64 / 1000.0)
                    }
                };
                out.push(Reading { rule: rule.name.clone(), destination: dest.clone(), value });
            }
        }
        Ok(out)
    }

    /// Rejected / ended over the window, from the oldest snapshot at least `window` old (or the
    /// oldest there is, right after start).
    pub(super) fn share(&self, dest: &str, window: u64, now: DateTime<Utc>, current: &HashMap<String, Ended>) -> f64 {
        let window = Duration::seconds(window.min(i64::MAX as u64) as i64);
        let base = self
            .history
            .iter()
            .rev()
            .find(|(t, _)| now - *t >= window)
            .or_else(|| self.history.front())
            .and_then(|(_, m)| m.get(dest).cloned())
            .unwrap_or_default();
        let cur = current.get(dest).cloned().unwrap_or_default();
        let ended = cur.ended.saturating_sub(base.ended);
        if ended == 0 {
            0.0
        } else {
            cur.rejected.saturating_sub(base.rejected) as f64 / ended as f64
        }
    }
}

/// One coverage report by destination per distinct `window_secs` of the `coverage` rules (each
/// reads its window's events from the ledger once per evaluation).
async fn coverage_by_window(
    rules: &[AlertRule],
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<HashMap<u64, CoverageReport>, StoreError> {
    let mut out = HashMap::new();
    for rule in rules.iter().filter(|r| r.when == Condition::Coverage) {
        if out.contains_key(&rule.window_secs) {
            continue;
        }
        let window = Duration::seconds(rule.window_secs.min(i64::MAX as u64 / 1000) as i64);
        let q = CoverageQuery { since: now - window, until: now, by: GroupBy::Destination };
        match coverage::coverage(store, &q).await {
            Ok(r) => {
                out.insert(rule.window_secs, r);
            }
            Err(crate::reconcile::late::CountError::Store(e)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, rule = %rule.name, "alerts: coverage could not be counted"),
        }
    }
    Ok(out)
}

/// The share of `dest`'s events carrying `field` (see `config::alerts::COVERAGE_EXTRA`), or
/// `None` when no event in the window was routed to it.
pub(super) fn share_carrying(report: &CoverageReport, dest: &str, field: &str) -> Option<f64> {
    let row = report.rows.iter().find(|r| r.key == dest).filter(|r| r.events > 0)?;
    let n = if field == "joined" {
        row.joined
    } else if let Some(purpose) = field.strip_prefix("consent.") {
        row.consent.get(purpose).copied().unwrap_or(0)
    } else {
        row.fields.get(field).copied().unwrap_or(0)
    };
    Some(n as f64 / row.events as f64)
}

/// Unexplained mismatches for `dest` in the latest reconcile report (0 without one).
pub(super) fn unexplained(last: Option<&Recorded>, dest: &str) -> f64 {
    last.and_then(|r| r.report.destinations.get(dest)).map_or(0.0, |d| d.unexplained as f64)
}

/// What the rules read: the ledger (the latest reconcile report too), this process's gauges.
#[derive(Clone)]
pub struct Watched {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
}

/// Whether this process's worker for `destination` has its circuit open (the `surety_circuit_open` gauge).
fn circuit_open(metrics: &Metrics, destination: &str) -> bool {
    let labels = crate::telemetry::DestinationLabels { destination: destination.to_owned() };
    metrics.circuit_open.get_or_create(&labels).get() > 0
}

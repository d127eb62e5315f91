//! Alerts on what needs a person: `[[alerts]]` rules evaluated by `serve` every
//! `alerting.interval_secs`, each per destination; a rule that holds (for `for_secs`) fires once,
//! and resolves once when it no longer holds. Notifications go to `alerting.webhook_url` (generic
//! JSON or Slack-compatible text), retried with backoff; `GET /v1/alerts` lists what is firing and
//! the recent firing/resolved messages with how their notification went.
//!
//! The book (what fires) is `AlertBook`: pure state, fed readings, answering notices; `read`
//! takes the readings from the ledger (queue stats, delivery counts) and the process's circuit
//! gauges; `notify` sends. State is in memory: after a restart a condition that still holds fires
//! again (one message). With several processes on one PostgreSQL ledger, the one that leads
//! (`Store::lead("alerts")`, an advisory lock) evaluates; when it goes, another takes the lead
//! within an interval (and fires again what still holds). `alerting.evaluate = false` keeps a
//! process out of it altogether.

mod notify;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use self::notify::Notifier;
pub use crate::config::alerts::{AlertRule, AlertingConfig, Condition};
use crate::config::Config;
use crate::core::DeliveryState;
use crate::reconcile::coverage::{self, CoverageQuery, CoverageReport, GroupBy};
use crate::reconcile::{LastReport, Recorded};
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// One rule's value for one destination at one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub rule: String,
    pub destination: String,
    pub value: f64,
}

/// A rule that holds for a destination.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActiveAlert {
    pub rule: String,
    pub when: Condition,
    pub destination: String,
    pub above: f64,
    /// For a `coverage` rule, the share it fires below (then `above` is not used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    pub value: f64,
    /// When the condition started to hold.
    pub since: DateTime<Utc>,
    /// When it fired (held for `for_secs`); `None` while it is still waiting to.
    pub fired_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

/// How a message's notification went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Delivery {
    /// No `alerting.webhook_url`: listed here only.
    NotConfigured,
    Pending {
        attempts: u32,
    },
    Sent {
        attempts: u32,
    },
    Failed {
        attempts: u32,
        error: String,
    },
}

/// A firing or resolved message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notice {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub status: Status,
    pub rule: String,
    pub when: Condition,
    pub destination: String,
    pub value: f64,
    pub above: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    pub since: DateTime<Utc>,
    pub notification: Delivery,
}

impl Notice {
    /// One line a person reads.
    pub fn summary(&self) -> String {
        let what = match self.status {
            Status::Firing => "FIRING",
            Status::Resolved => "RESOLVED",
        };
        let threshold = match self.below {
            Some(b) => format!("alert below {}", fmt_value(b)),
            None => format!("alert above {}", fmt_value(self.above)),
        };
        format!(
            "{what} {}: {} — {} is {} ({threshold})",
            self.rule,
            self.destination,
            self.when.describe(),
            fmt_value(self.value)
        )
    }
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// The answer of `GET /v1/alerts`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertsView {
    /// Whether this process evaluates rules now (`alerting.evaluate`, at least one rule, and it
    /// leads the processes sharing the ledger).
    pub evaluating: bool,
    pub last_evaluated_at: Option<DateTime<Utc>>,
    pub active: Vec<ActiveAlert>,
    /// Newest first, at most [`HISTORY`].
    pub recent: Vec<Notice>,
}

/// Messages kept for `GET /v1/alerts`.
pub const HISTORY: usize = 200;

/// What fires: rules, what holds now, and the recent messages.
pub struct AlertBook {
    rules: Vec<AlertRule>,
    /// Whether this process may evaluate (configured to, with rules to evaluate).
    evaluating: bool,
    /// Whether it leads the processes sharing the ledger now (`Store::lead`).
    leading: std::sync::atomic::AtomicBool,
    inner: Mutex<BookState>,
}

#[derive(Default)]
struct BookState {
    active: BTreeMap<(String, String), ActiveAlert>,
    recent: VecDeque<Notice>,
    next_id: u64,
    last_evaluated_at: Option<DateTime<Utc>>,
}

impl AlertBook {
    pub fn new(rules: Vec<AlertRule>, evaluating: bool) -> Self {
        Self {
            rules,
            evaluating,
            leading: std::sync::atomic::AtomicBool::new(false),
            inner: Mutex::new(BookState::default()),
        }
    }

    pub fn from_config(config: &Config) -> Self {
        Self::new(config.alerts.clone(), config.alerting.evaluate && !config.alerts.is_empty())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BookState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one evaluation's readings; answers the messages to send (firing and resolved), each
    /// once per rule and destination until the condition changes.
    pub fn observe(&self, now: DateTime<Utc>, readings: &[Reading], notify: bool) -> Vec<Notice> {
        let mut st = self.state();
        st.last_evaluated_at = Some(now);
        let mut out = Vec::new();
        let mut holding = std::collections::BTreeSet::new();
        for r in readings {
            let Some(rule) = self.rules.iter().find(|x| x.name == r.rule) else { continue };
            if !rule.breached(r.value) {
                continue;
            }
            let key = (r.rule.clone(), r.destination.clone());
            holding.insert(key.clone());
            let a = st.active.entry(key).or_insert_with(|| ActiveAlert {
                rule: rule.name.clone(),
                when: rule.when,
                destination: r.destination.clone(),
                above: rule.above,
                below: rule.below,
                value: r.value,
                since: now,
                fired_at: None,
            });
            a.value = r.value;
            let held = now - a.since >= Duration::seconds(i64::try_from(rule.for_secs).unwrap_or(i64::MAX));
            if a.fired_at.is_none() && held {
                a.fired_at = Some(now);
                let a = a.clone();
                out.push(self.message(&mut st, now, Status::Firing, &a, notify));
            }
        }
        let ended: Vec<(String, String)> = st.active.keys().filter(|k| !holding.contains(*k)).cloned().collect();
        for key in ended {
            if let Some(a) = st.active.remove(&key) {
                // One that never fired (it did not hold for `for_secs`) ends silently.
                if a.fired_at.is_some() {
                    out.push(self.message(&mut st, now, Status::Resolved, &a, notify));
                }
            }
        }
        out
    }

    fn message(&self, st: &mut BookState, now: DateTime<Utc>, status: Status, a: &ActiveAlert, notify: bool) -> Notice {
        st.next_id = st.next_id.saturating_add(1);
        let n = Notice {
            id: st.next_id,
            at: now,
            status,
            rule: a.rule.clone(),
            when: a.when,
            destination: a.destination.clone(),
            value: a.value,
            above: a.above,
            below: a.below,
            since: a.since,
            notification: if notify { Delivery::Pending { attempts: 0 } } else { Delivery::NotConfigured },
        };
        st.recent.push_front(n.clone());
        st.recent.truncate(HISTORY);
        n
    }

    /// Records how a message's notification went.
    pub fn delivered(&self, id: u64, how: Delivery) {
        let mut st = self.state();
        if let Some(n) = st.recent.iter_mut().find(|n| n.id == id) {
            n.notification = how;
        }
    }

    /// Whether this process may evaluate rules (it does while it leads).
    pub fn is_evaluating(&self) -> bool {
        self.evaluating
    }

    /// Takes or gives up the lead. A process that gives it up forgets what it held: the new
    /// leader judges afresh.
    fn set_leading(&self, leading: bool) {
        let was = self.leading.swap(leading, std::sync::atomic::Ordering::Relaxed);
        if was && !leading {
            self.state().active.clear();
        }
    }

    pub fn view(&self) -> AlertsView {
        let st = self.state();
        AlertsView {
            evaluating: self.evaluating && self.leading.load(std::sync::atomic::Ordering::Relaxed),
            last_evaluated_at: st.last_evaluated_at,
            active: st.active.values().cloned().collect(),
            recent: st.recent.iter().cloned().collect(),
        }
    }
}

/// Delivery counts per destination at one time, for the rejection share over a window.
#[derive(Clone, Debug, Default)]
struct Ended {
    rejected: u64,
    ended: u64,
}

/// Reads every rule's value per destination.
pub struct Reader {
    destinations: Vec<String>,
    /// Snapshots of ended-delivery counts, oldest first, kept for the longest window.
    history: VecDeque<(DateTime<Utc>, HashMap<String, Ended>)>,
    /// When each destination's circuit was first seen open.
    open_since: HashMap<String, DateTime<Utc>>,
}

impl Reader {
    pub fn new(destinations: Vec<String>) -> Self {
        Self { destinations, history: VecDeque::new(), open_since: HashMap::new() }
    }

    pub async fn read(
        &mut self,
        rules: &[AlertRule],
        watched: &Watched,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reading>, StoreError> {
        let (store, metrics) = (watched.store.as_ref(), watched.metrics.as_ref());
        let last_reconcile = watched.last_reconcile.get();
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
                    Condition::ReconcileUnexplained => unexplained(last_reconcile.as_deref(), dest),
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
    fn share(&self, dest: &str, window: u64, now: DateTime<Utc>, current: &HashMap<String, Ended>) -> f64 {
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
fn share_carrying(report: &CoverageReport, dest: &str, field: &str) -> Option<f64> {
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

/// Unexplained mismatches for `dest` in the last reconcile report (0 without one).
fn unexplained(last: Option<&Recorded>, dest: &str) -> f64 {
    last.and_then(|r| r.report.destinations.get(dest)).map_or(0.0, |d| d.unexplained as f64)
}

/// What the rules read: the ledger, this process's gauges, the last reconcile report.
#[derive(Clone)]
pub struct Watched {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub last_reconcile: Arc<LastReport>,
}

/// Whether this process's worker for `destination` has its circuit open (the `surety_circuit_open` gauge).
fn circuit_open(metrics: &Metrics, destination: &str) -> bool {
    let labels = crate::telemetry::DestinationLabels { destination: destination.to_owned() };
    metrics.circuit_open.get_or_create(&labels).get() > 0
}

/// Evaluates the rules every `alerting.interval_secs` until cancelled; notifications are sent by
/// a task of their own, in order, so a slow receiver does not delay evaluation.
pub async fn run(
    config: AlertingConfig,
    rules: Vec<AlertRule>,
    destinations: Vec<String>,
    book: Arc<AlertBook>,
    watched: Watched,
    cancel: CancellationToken,
) {
    let notifier = Notifier::start(&config, book.clone(), cancel.clone());
    let mut reader = Reader::new(destinations);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(config.interval_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match watched.store.lead("alerts").await {
            Ok(true) => book.set_leading(true),
            Ok(false) => {
                book.set_leading(false);
                continue;
            }
            Err(e) => {
                book.set_leading(false);
                tracing::warn!(error = %e, "alerts: could not ask the ledger who leads; asking again next interval");
                continue;
            }
        }
        let now = Utc::now();
        match reader.read(&rules, &watched, now).await {
            Ok(readings) => {
                for n in book.observe(now, &readings, notifier.is_some()) {
                    tracing::warn!(rule = %n.rule, destination = %n.destination, value = n.value, "{}", n.summary());
                    if let Some(tx) = &notifier {
                        tx.send(n);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "alerts: the ledger could not be read; evaluating again next interval")
            }
        }
    }
}

#[cfg(test)]
mod tests;

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
mod read;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use self::notify::Notifier;
#[cfg(test)]
use self::read::{share_carrying, unexplained, Ended};
pub use self::read::{Reader, Watched};
pub use crate::config::alerts::{AlertRule, AlertingConfig, Condition};
use crate::config::Config;

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

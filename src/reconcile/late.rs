//! Late arrivals, labelled: per event day, how many of its events came in after the day had
//! ended (and how long after), how many a destination skipped as `outside_window` because they
//! came too late, and which days changed since a given time — so a jump in a past day's figures
//! reads as a backfill, not as business. (`surety late`, `GET /v1/late-arrivals`.)
//!
//! Days are UTC calendar days of the event time (`occurred_at`). An event arrived late when its
//! `received_at` is after its day's end; the bucket is how long after the end it came. Whole days
//! come from the cached day rollups while they are fresh, the rest of the window and what changed
//! since `changed_since` are read live (`reconcile::rollup`, ADR 0008); nothing is written.

mod command;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use self::command::{check_order, cli, query, window, LateArgs, DEFAULT_DAYS};
pub(super) use super::count::each_in_window;
pub use super::count::CountError;
use crate::core::Event;
use crate::store::{LedgerEntry, Store};

/// The delivery reason for an event that came after the destination's window closed.
const OUTSIDE_WINDOW: &str = "outside_window";

/// What to count.
#[derive(Clone, Debug, PartialEq)]
pub struct LateQuery {
    /// Event time, from (inclusive).
    pub since: DateTime<Utc>,
    /// Event time, until (exclusive).
    pub until: DateTime<Utc>,
    /// Also count, per day, what was received at or after this time.
    pub changed_since: Option<DateTime<Utc>>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<String>,
}

/// How long after its day had ended an event arrived.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateBuckets {
    pub under_1h: u64,
    pub under_24h: u64,
    pub under_72h: u64,
    pub later: u64,
}

impl LateBuckets {
    fn add(&mut self, after_day_end: Duration) -> Option<()> {
        let slot = if after_day_end < Duration::hours(1) {
            &mut self.under_1h
        } else if after_day_end < Duration::hours(24) {
            &mut self.under_24h
        } else if after_day_end < Duration::hours(72) {
            &mut self.under_72h
        } else {
            &mut self.later
        };
        *slot = slot.checked_add(1)?;
        Some(())
    }

    /// Events that arrived after their day had ended.
    pub fn total(&self) -> u64 {
        self.under_1h.saturating_add(self.under_24h).saturating_add(self.under_72h).saturating_add(self.later)
    }
}

/// Sums of `value` per currency, kept in thousandths so that adding is exact and checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Money(BTreeMap<String, i128>);

impl Money {
    fn add(&mut self, e: &Event) -> Option<()> {
        if let (Some(v), Some(c)) = (e.value, &e.currency) {
            let slot = self.0.entry(c.as_str().to_owned()).or_default();
            // `value` is bounded at ingest (`core::event::MAX_AMOUNT`), so this fits.
            *slot = slot.checked_add((v * 1000.0).round() as i128)?;
        }
        Some(())
    }

    fn merge(&mut self, other: &Money) -> Option<()> {
        for (c, v) in &other.0 {
            let slot = self.0.entry(c.clone()).or_default();
            *slot = slot.checked_add(*v)?;
        }
        Some(())
    }

    fn to_map(&self) -> BTreeMap<String, f64> {
        self.0.iter().map(|(c, v)| (c.clone(), *v as f64 / 1000.0)).collect()
    }
}

/// What was received at or after `changed_since` for one day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayChange {
    pub events: u64,
    /// Sum of their `value`, per currency.
    pub value: BTreeMap<String, f64>,
}

/// One event day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LateDay {
    /// The UTC calendar day of the event time.
    pub day: NaiveDate,
    /// Events that occurred that day.
    pub events: u64,
    /// Of those, received before the day ended.
    pub on_time: u64,
    /// Of those, received after the day ended, by how long after.
    pub late: LateBuckets,
    /// Deliveries skipped `outside_window` (they came too late for the platform), per destination.
    pub outside_window: BTreeMap<String, u64>,
    /// Sum of `value` over the day's events, per currency.
    pub value: BTreeMap<String, f64>,
    /// With `changed_since`: what the day gained since then (absent when it gained nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<DayChange>,
}

/// The answer of `surety late --json` and `GET /v1/late-arrivals`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LateReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_since: Option<DateTime<Utc>>,
    /// Days in order; a day without events is left out.
    pub days: Vec<LateDay>,
    /// All days together.
    pub events: u64,
    pub late: LateBuckets,
}

/// One day's (or, in a rollup, one day and kind's) figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct DayTally {
    events: u64,
    on_time: u64,
    late: LateBuckets,
    outside_window: BTreeMap<String, u64>,
    value: Money,
    #[serde(skip)]
    changed_events: u64,
    #[serde(skip)]
    changed_value: Money,
}

impl DayTally {
    /// Adds another part of the same day (not its `changed` figures: those are read live).
    pub(super) fn merge(&mut self, o: &DayTally) -> Option<()> {
        self.events = self.events.checked_add(o.events)?;
        self.on_time = self.on_time.checked_add(o.on_time)?;
        let (l, r) = (&mut self.late, &o.late);
        l.under_1h = l.under_1h.checked_add(r.under_1h)?;
        l.under_24h = l.under_24h.checked_add(r.under_24h)?;
        l.under_72h = l.under_72h.checked_add(r.under_72h)?;
        l.later = l.later.checked_add(r.later)?;
        for (d, n) in &o.outside_window {
            let slot = self.outside_window.entry(d.clone()).or_default();
            *slot = slot.checked_add(*n)?;
        }
        self.value.merge(&o.value)
    }
}

/// Folds ledger entries into days; pure, so that tests can feed it directly.
#[derive(Default)]
pub struct LateTally {
    pub(super) days: BTreeMap<NaiveDate, DayTally>,
}

impl LateTally {
    /// Adds one event (with its deliveries) of the window.
    pub fn add(&mut self, entry: &LedgerEntry, q: &LateQuery) -> Result<(), CountError> {
        let e = &entry.event;
        if e.occurred_at < q.since || e.occurred_at >= q.until {
            return Ok(());
        }
        if !q.kinds.is_empty() && !q.kinds.iter().any(|k| k == e.kind.as_str()) {
            return Ok(());
        }
        let day = e.occurred_at.date_naive();
        let day_end = day.succ_opt().ok_or(CountError::Overflow)?.and_time(chrono::NaiveTime::MIN).and_utc();
        let t = self.days.entry(day).or_default();
        t.events = t.events.checked_add(1).ok_or(CountError::Overflow)?;
        if e.received_at < day_end {
            t.on_time = t.on_time.checked_add(1).ok_or(CountError::Overflow)?;
        } else {
            t.late.add(e.received_at - day_end).ok_or(CountError::Overflow)?;
        }
        for d in &entry.deliveries {
            if d.reason.as_deref() == Some(OUTSIDE_WINDOW) {
                let n = t.outside_window.entry(d.destination.clone()).or_default();
                *n = n.checked_add(1).ok_or(CountError::Overflow)?;
            }
        }
        t.value.add(e).ok_or(CountError::Overflow)?;
        if q.changed_since.is_some_and(|c| e.received_at >= c) {
            t.changed_events = t.changed_events.checked_add(1).ok_or(CountError::Overflow)?;
            t.changed_value.add(e).ok_or(CountError::Overflow)?;
        }
        Ok(())
    }

    /// Counts one event of the window received at or after `q.changed_since` as what its day
    /// gained (the day's other figures come from elsewhere: a rollup or [`LateTally::add`]
    /// with no `changed_since`).
    pub(super) fn add_changed(&mut self, entry: &LedgerEntry, q: &LateQuery) -> Result<(), CountError> {
        let e = &entry.event;
        let in_window = e.occurred_at >= q.since && e.occurred_at < q.until;
        let of_kind = q.kinds.is_empty() || q.kinds.iter().any(|k| k == e.kind.as_str());
        let changed = q.changed_since.is_some_and(|c| e.received_at >= c);
        if !(in_window && of_kind && changed) {
            return Ok(());
        }
        let t = self.days.entry(e.occurred_at.date_naive()).or_default();
        t.changed_events = t.changed_events.checked_add(1).ok_or(CountError::Overflow)?;
        t.changed_value.add(e).ok_or(CountError::Overflow)
    }

    pub fn finish(self, q: &LateQuery) -> Result<LateReport, CountError> {
        let mut events = 0u64;
        let mut late = LateBuckets::default();
        let mut days = Vec::with_capacity(self.days.len());
        for (day, t) in self.days {
            events = events.checked_add(t.events).ok_or(CountError::Overflow)?;
            late.under_1h = late.under_1h.checked_add(t.late.under_1h).ok_or(CountError::Overflow)?;
            late.under_24h = late.under_24h.checked_add(t.late.under_24h).ok_or(CountError::Overflow)?;
            late.under_72h = late.under_72h.checked_add(t.late.under_72h).ok_or(CountError::Overflow)?;
            late.later = late.later.checked_add(t.late.later).ok_or(CountError::Overflow)?;
            let changed =
                (t.changed_events > 0).then(|| DayChange { events: t.changed_events, value: t.changed_value.to_map() });
            days.push(LateDay {
                day,
                events: t.events,
                on_time: t.on_time,
                late: t.late,
                outside_window: t.outside_window,
                value: t.value.to_map(),
                changed,
            });
        }
        Ok(LateReport { since: q.since, until: q.until, changed_since: q.changed_since, days, events, late })
    }
}

/// Counts the window: fresh cached days from their rollups, the rest read live; what changed
/// since `changed_since` from the events received since (an index range).
pub async fn late_arrivals(store: &dyn Store, q: &LateQuery) -> Result<LateReport, CountError> {
    let sources = super::rollup::sources(store, q.since, q.until).await?;
    let mut tally = LateTally::default();
    for (day, part) in &sources.cached {
        part.merge_late(*day, &q.kinds, &mut tally)?;
    }
    let plain = LateQuery { changed_since: None, ..q.clone() };
    for &(since, until) in &sources.live {
        super::rollup::each_live(store, since, until, |e| tally.add(e, &plain)).await?;
    }
    if let Some(changed_since) = q.changed_since {
        super::rollup::each_received(store, changed_since, |e| tally.add_changed(e, q)).await?;
    }
    tally.finish(q)
}

/// Counts the window by reading every event of it (what the rollups must equal).
pub async fn late_scan(store: &dyn Store, q: &LateQuery) -> Result<LateReport, CountError> {
    let mut tally = LateTally::default();
    each_in_window(store, q.since, q.until, |e| tally.add(e, q)).await?;
    tally.finish(q)
}

#[cfg(test)]
mod tests;

//! Cached day rollups for coverage and late arrivals (ADR 0008): per UTC event day, the day's
//! partial aggregates ([`DayPart`]), kept in the ledger's `day_rollups` by `serve` (the leader,
//! every [`EVERY`] and at start) so that a report reads whole days from them instead of every
//! event of its window.
//!
//! A cached day counts only while nothing it counts changed since it was computed. What can
//! change a day's figures, and how `Store::changed_days` finds it (an index range each, bounded by
//! what changed since the last refresh, never a scan of history):
//! - a new event of the day, however late: `events.seq > through_seq` (primary key), and
//!   `received_at` since (events_received; catches a PostgreSQL transaction that committed a
//!   lower seq late);
//! - the identity bridge joining a waiting event (identifiers, `joined`): `events.changed_at`;
//! - a delivery ending delivered, rejected, dead or in doubt (the worker's outcome, a follow-up
//!   turning `delivered` into `accepted`/`partially_accepted`/rejected, a settlement, a lease
//!   recovered as in doubt): `deliveries.updated_at` (deliveries_ended);
//! - a delivery skipped (at planning it comes with its event; later: validate_only, not_sampled at
//!   send, no_identity after an identity wait): `updated_at` (deliveries_skipped);
//! - a replay putting an ended delivery back to pending: `replays.at` (replays_at);
//! - a prune deleting the day's events: the prune deletes the day's rollup in its transaction.
//!
//! Moves among pending, claimed and sending change nothing counted (coverage counts them all as
//! pending), and neither does a pending delivery re-planned to pending. Change times are the
//! writers' clocks: [`MARGIN`] covers skew between processes and transactions that commit late.

mod part;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use self::part::{DayPart, DayPartBuilder};
use super::count::CountError;
use crate::core::event::COVERAGE_FIELDS;
use crate::store::{DayRollup, LedgerEntry, Store, TimeColumn, TimePage};

/// How many closed days before today are kept.
pub const HORIZON_DAYS: i64 = 92;
/// How far back before `computed_at` a change still makes a day stale.
pub const MARGIN: Duration = Duration::minutes(5);
/// How often `serve` refreshes.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Ledger events per page.
const PAGE: usize = 5000;
/// A live range longer than this is read in storage order rather than through events_occurred.
const LONG_RANGE: Duration = Duration::days(3);

/// `fields`/`consent` names read back from a rollup's JSON as the names the tallies use.
pub(crate) fn static_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<&'static str, u64>, D::Error> {
    const CONSENT: [&str; 3] = ["analytics", "ad_user_data", "ad_personalization"];
    let raw = BTreeMap::<String, u64>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, n)| {
            let name = COVERAGE_FIELDS.iter().chain(CONSENT.iter()).find(|f| **f == k);
            name.map(|f| (*f, n)).ok_or_else(|| serde::de::Error::custom(format!("unknown coverage name '{k}'")))
        })
        .collect()
}

fn start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// Where a report's figures come from: fresh cached days, and time ranges to read live.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub cached: Vec<(NaiveDate, DayPart)>,
    pub live: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The whole days of `[since, until)` that have a fresh rollup, and the rest as live ranges (the
/// partial first and last days, today, days not cached or changed since they were). Reads only.
pub(crate) async fn sources(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Sources, CountError> {
    let mut out = Sources::default();
    if since >= until {
        return Ok(out);
    }
    let first = since.date_naive() + Duration::days(i64::from(start(since.date_naive()) < since));
    let end = until.date_naive();
    if first >= end {
        out.live.push((since, until));
        return Ok(out);
    }
    let fresh = fresh(store, first, end).await?;
    let mut from = since;
    let mut day = first;
    while day < end {
        if let Some(part) = fresh.get(&day) {
            if from < start(day) {
                out.live.push((from, start(day)));
            }
            out.cached.push((day, part.clone()));
            from = start(day) + Duration::days(1);
        }
        day += Duration::days(1);
    }
    if from < until {
        out.live.push((from, until));
    }
    Ok(out)
}

/// The cached days of `[from, until)` nothing changed in since they were computed.
async fn fresh(
    store: &dyn Store,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<HashMap<NaiveDate, DayPart>, CountError> {
    let rows = store.day_rollups(from, until).await?;
    let (Some(seq), Some(at)) = (rows.iter().map(|r| r.through_seq).min(), rows.iter().map(|r| r.computed_at).min())
    else {
        return Ok(HashMap::new());
    };
    let changes = store.changed_days(seq, at - MARGIN).await?;
    let changed: HashMap<NaiveDate, (i64, DateTime<Utc>)> =
        changes.days.into_iter().map(|c| (c.day, (c.max_seq, c.last_at))).collect();
    let mut out = HashMap::new();
    for r in rows {
        let stale = changed.get(&r.day).is_some_and(|&(s, t)| s > r.through_seq || t >= r.computed_at - MARGIN);
        if !stale {
            // A body that does not parse is treated as not cached: the day is read live.
            if let Ok(part) = serde_json::from_str::<DayPart>(&r.body) {
                out.insert(r.day, part);
            }
        }
    }
    Ok(out)
}

/// Recomputes the stale closed days of the horizon (not cached, or changed since they were) and
/// stamps the others as unchanged. Returns how many days were recomputed. For `serve` only.
pub async fn refresh(store: &dyn Store, now: DateTime<Utc>) -> Result<usize, CountError> {
    let today = now.date_naive();
    let from = today - Duration::days(HORIZON_DAYS);
    let rows = store.day_rollups(from, today).await?;
    let seq = rows.iter().map(|r| r.through_seq).min().unwrap_or(i64::MAX);
    let at = rows.iter().map(|r| r.computed_at).min().unwrap_or(DateTime::<Utc>::MAX_UTC);
    let changes = store.changed_days(seq, at - MARGIN).await?;
    let changed: HashMap<NaiveDate, (i64, DateTime<Utc>)> =
        changes.days.iter().map(|c| (c.day, (c.max_seq, c.last_at))).collect();
    let cached: HashMap<NaiveDate, &DayRollup> = rows.iter().map(|r| (r.day, r)).collect();
    let mut recomputed = Vec::new();
    let mut day = from;
    while day < today {
        let stale = match cached.get(&day) {
            None => true,
            Some(r) => changed.get(&day).is_some_and(|&(s, t)| s > r.through_seq || t >= r.computed_at - MARGIN),
        };
        if stale {
            let mut b = DayPartBuilder::new(day);
            each_occurred(store, start(day), start(day) + Duration::days(1), |e| b.add(e)).await?;
            let body = serde_json::to_string(&b.finish()).map_err(|e| CountError::Store(e.into()))?;
            recomputed.push(DayRollup { day, computed_at: now, through_seq: changes.max_seq, body });
        }
        day += Duration::days(1);
    }
    let n = recomputed.len();
    store.put_day_rollups(recomputed, (from, today, now, changes.max_seq)).await?;
    Ok(n)
}

/// `serve`'s refresher: at start and every [`EVERY`], on the process that leads `rollups`.
pub async fn run(store: Arc<dyn Store>, cancel: CancellationToken) {
    loop {
        match store.lead("rollups").await {
            Ok(true) => match refresh(store.as_ref(), Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(days = n, "day rollups recomputed"),
                Err(e) => tracing::warn!(error = %e, "refreshing the day rollups failed; reports read live meanwhile"),
            },
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not ask who leads the day rollups"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

async fn each_by(
    store: &dyn Store,
    column: TimeColumn,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    mut each: impl FnMut(&LedgerEntry) -> Result<(), CountError>,
) -> Result<(), CountError> {
    let mut page = TimePage { column, since, until, after: None, limit: PAGE };
    loop {
        let entries = store.time_page(page).await?;
        if let Some(last) = entries.last() {
            let t = match column {
                TimeColumn::Occurred => last.event.occurred_at,
                TimeColumn::Received => last.event.received_at,
            };
            page.after = Some((t, last.seq));
        }
        for e in &entries {
            each(e)?;
        }
        if entries.len() < PAGE {
            return Ok(());
        }
    }
}

/// Hands every event that occurred in `[since, until)` to `each`, the cheaper way: a short range
/// through events_occurred; a long one (a window nothing is cached for yet) in one pass of the
/// primary key, which beats an index range's scattered reads once the range holds a good share of
/// the ledger.
pub(crate) async fn each_live(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    each: impl FnMut(&LedgerEntry) -> Result<(), CountError>,
) -> Result<(), CountError> {
    if until - since > LONG_RANGE {
        super::count::each_in_window(store, since, until, each).await
    } else {
        each_occurred(store, since, until, each).await
    }
}

/// Hands every event that occurred in `[since, until)` to `each` (events_occurred, a page at a time).
pub(crate) async fn each_occurred(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    each: impl FnMut(&LedgerEntry) -> Result<(), CountError>,
) -> Result<(), CountError> {
    each_by(store, TimeColumn::Occurred, since, until, each).await
}

/// Hands every event received at or after `since` to `each` (events_received).
pub(crate) async fn each_received(
    store: &dyn Store,
    since: DateTime<Utc>,
    each: impl FnMut(&LedgerEntry) -> Result<(), CountError>,
) -> Result<(), CountError> {
    each_by(store, TimeColumn::Received, since, DateTime::<Utc>::MAX_UTC, each).await
}

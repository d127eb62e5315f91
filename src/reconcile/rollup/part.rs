//! One UTC event day's partial aggregates, from which coverage (by kind, destination or day) and
//! late arrivals (any kind filter) of whole days are merged.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::reconcile::coverage::{CoverageQuery, CoverageRow, CoverageTally, DestinationCoverage, GroupBy};
use crate::reconcile::late::{CountError, DayTally, LateQuery, LateTally};
use crate::store::LedgerEntry;

/// A day's figures: coverage rows per kind and per destination (event-level counts of the events
/// routed there, `(none)` for events routed nowhere), lateness per kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DayPart {
    kinds: BTreeMap<String, CoverageRow>,
    destinations: BTreeMap<String, CoverageRow>,
    late: BTreeMap<String, DayTally>,
}

/// Folds one day's events into a [`DayPart`].
pub struct DayPartBuilder {
    by_kind: CoverageTally,
    by_destination: CoverageTally,
    late: BTreeMap<String, LateTally>,
    kind_q: CoverageQuery,
    destination_q: CoverageQuery,
    late_q: LateQuery,
    day: NaiveDate,
}

impl DayPartBuilder {
    pub fn new(day: NaiveDate) -> Self {
        let since = day.and_time(chrono::NaiveTime::MIN).and_utc();
        let until = since + Duration::days(1);
        DayPartBuilder {
            by_kind: CoverageTally::default(),
            by_destination: CoverageTally::default(),
            late: BTreeMap::new(),
            kind_q: CoverageQuery { since, until, by: GroupBy::Kind },
            destination_q: CoverageQuery { since, until, by: GroupBy::Destination },
            late_q: LateQuery { since, until, changed_since: None, kinds: vec![] },
            day,
        }
    }

    /// Adds one event of the day (others are ignored).
    pub fn add(&mut self, entry: &LedgerEntry) -> Result<(), CountError> {
        self.by_kind.add(entry, &self.kind_q)?;
        self.by_destination.add(entry, &self.destination_q)?;
        let kind = entry.event.kind.as_str();
        if entry.event.occurred_at.date_naive() == self.day {
            self.late.entry(kind.to_owned()).or_default().add(entry, &self.late_q)?;
        }
        Ok(())
    }

    pub fn finish(self) -> DayPart {
        let day = self.day;
        DayPart {
            kinds: self.by_kind.rows,
            destinations: self.by_destination.rows,
            late: self.late.into_iter().filter_map(|(k, mut t)| t.days.remove(&day).map(|d| (k, d))).collect(),
        }
    }
}

impl DayPart {
    /// Adds the day's late-arrival figures of the kinds asked for (all when empty).
    pub fn merge_late(&self, day: NaiveDate, kinds: &[String], tally: &mut LateTally) -> Result<(), CountError> {
        for (kind, t) in &self.late {
            if kinds.is_empty() || kinds.iter().any(|k| k == kind) {
                tally.days.entry(day).or_default().merge(t).ok_or(CountError::Overflow)?;
            }
        }
        Ok(())
    }
}

impl CoverageTally {
    /// Adds a cached day's rows, grouped as asked.
    pub(crate) fn merge_day(&mut self, day: NaiveDate, part: &DayPart, by: GroupBy) -> Result<(), CountError> {
        for row in part.kinds.values() {
            self.events = self.events.checked_add(row.events).ok_or(CountError::Overflow)?;
        }
        let rows = if by == GroupBy::Destination { &part.destinations } else { &part.kinds };
        for (k, row) in rows {
            let key = if by == GroupBy::Day { day.to_string() } else { k.clone() };
            let into = self.rows.entry(key.clone()).or_insert_with(|| CoverageRow { key, ..Default::default() });
            merge_row(into, row)?;
        }
        Ok(())
    }
}

fn add(n: &mut u64, by: u64) -> Result<(), CountError> {
    *n = n.checked_add(by).ok_or(CountError::Overflow)?;
    Ok(())
}

fn add_map<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) -> Result<(), CountError> {
    for (k, n) in from {
        add(into.entry(k.clone()).or_default(), *n)?;
    }
    Ok(())
}

fn merge_row(into: &mut CoverageRow, row: &CoverageRow) -> Result<(), CountError> {
    add(&mut into.events, row.events)?;
    add_map(&mut into.fields, &row.fields)?;
    add_map(&mut into.consent, &row.consent)?;
    add(&mut into.joined, row.joined)?;
    for (dest, c) in &row.destinations {
        let d: &mut DestinationCoverage = into.destinations.entry(dest.clone()).or_default();
        for (a, b) in [
            (&mut d.planned, c.planned),
            (&mut d.sent, c.sent),
            (&mut d.delivered, c.delivered),
            (&mut d.accepted, c.accepted),
            (&mut d.rejected, c.rejected),
            (&mut d.dead, c.dead),
            (&mut d.in_doubt, c.in_doubt),
            (&mut d.pending, c.pending),
        ] {
            add(a, b)?;
        }
        add_map(&mut d.skipped, &c.skipped)?;
    }
    Ok(())
}

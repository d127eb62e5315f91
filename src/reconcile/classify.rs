//! Matching: every source row, ledger event and platform row of the window ends in exactly one
//! class per destination. The source and the platform reports are held in hash maps; the ledger
//! streams past them once, taking what it matches; what is left over at the end is
//! `not_received` (source) or `extra_at_platform` (platform).

mod check;
mod finish;
mod follow_ups;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, NaiveDate, Utc};

use super::read::{PlatformRow, Shape, SourceRow};
use super::report::{DestReport, Report};
use crate::core::DeliveryState;
use crate::platforms::Entry;
use crate::store::LedgerEntry;

/// What reconcile knows of one destination from the configuration.
#[derive(Clone, Debug)]
pub struct Scope {
    pub name: String,
    /// Its platform: the id its reports name a conversion by, and whether they name the route's event.
    pub platform: &'static Entry,
    /// The kinds the catalog routes to it.
    pub kinds: HashSet<String>,
    /// The platform event names (conversion actions) those routes use.
    pub route_events: HashSet<String>,
    /// A pending delivery younger than this is on its way (`retry.max_age_secs`).
    pub retry_age: chrono::Duration,
    /// Its configuration (what `DEST=api` reads the platform's count with).
    pub config: crate::config::DestinationConfig,
}

/// The window and the knobs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub tolerance: f64,
    pub now: DateTime<Utc>,
    /// Only these kinds (none: all).
    pub kinds: Option<HashSet<String>>,
}

/// No next row in a chain.
const NONE: u32 = u32::MAX;

/// A per-conversion report, compact: rows in file order, chained per hash of (event name or "",
/// transaction id), each taken at most once.
struct PerEvent {
    use_event: bool,
    rows: Vec<PlatformRow>,
    heads: HashMap<u64, u32>,
    next: Vec<u32>,
    taken: Vec<bool>,
}

impl PerEvent {
    fn event_of<'a>(&self, r: &'a PlatformRow) -> &'a str {
        if self.use_event {
            r.event.as_deref().unwrap_or("")
        } else {
            ""
        }
    }

    /// Takes the rows of (event, txn), in file order.
    fn take(&mut self, hash: u64, event: &str, txn: &str) -> Vec<u32> {
        let mut found = Vec::new();
        let mut at = self.heads.get(&hash).copied().unwrap_or(NONE);
        while at != NONE {
            let i = at as usize;
            let r = &self.rows[i];
            if !self.taken[i] && self.event_of(r) == event && r.transaction_id.as_deref() == Some(txn) {
                self.taken[i] = true;
                found.push(at);
            }
            at = self.next[i];
        }
        found.reverse();
        found
    }
}

/// The platform's side for one destination.
enum Side {
    PerEvent(PerEvent),
    /// Counts and values per (day, event name or ""), the platform's and the ledger's.
    Aggregate {
        use_event: bool,
        platform: HashMap<(NaiveDate, String), (u64, f64)>,
        ledger: HashMap<(NaiveDate, String), (u64, f64)>,
    },
    /// No report: what the platform confirmed per request, as the ledger's follow-ups say.
    FollowUps,
}

pub struct Matcher {
    settings: Settings,
    scopes: Vec<Scope>,
    /// The source rows, and where each event id is (by hash; the id is compared on a hit).
    source: Vec<SourceRow>,
    source_index: HashMap<u64, u32>,
    hasher: RandomState,
    sides: HashMap<String, Side>,
    /// kind → source → ledger events: where a missing event should have come from.
    kind_sources: HashMap<String, HashMap<String, u64>>,
    report: Report,
}

impl Matcher {
    pub fn new(settings: Settings, scopes: Vec<Scope>) -> Self {
        let mut report = Report::new(settings.since, settings.until);
        for s in &scopes {
            report.destinations.insert(s.name.clone(), DestReport::default());
        }
        Self {
            settings,
            scopes,
            source: Vec::new(),
            source_index: HashMap::new(),
            hasher: RandomState::new(),
            sides: HashMap::new(),
            kind_sources: HashMap::new(),
            report,
        }
    }

    pub fn report_mut(&mut self) -> &mut Report {
        &mut self.report
    }

    fn in_window(&self, t: DateTime<Utc>) -> bool {
        t >= self.settings.since && t < self.settings.until
    }

    fn kind_wanted(&self, kind: Option<&str>) -> bool {
        match (&self.settings.kinds, kind) {
            (Some(kinds), Some(k)) => kinds.contains(k),
            _ => true,
        }
    }

    /// A source row (kept when it or its ledger event can fall in the window).
    pub fn add_source(&mut self, row: SourceRow) {
        if !self.kind_wanted(row.kind.as_deref()) {
            return;
        }
        if self.in_window(row.occurred_at) {
            self.report.totals.source_rows += 1;
            self.report.totals.source_value += row.value.unwrap_or(0.0);
        }
        let hash = self.hasher.hash_one(&*row.event_id);
        let at = self.source.len() as u32;
        if let Some(prev) = self.source_index.insert(hash, at) {
            let dup = &mut self.source[prev as usize];
            if dup.event_id == row.event_id {
                dup.taken = true;
                self.report.bad_rows.push(super::read::BadRow {
                    file: "source".into(),
                    line: u64::from(dup.line),
                    message: format!("event {} appears again later in the file; the later row is used", dup.event_id),
                });
            }
        }
        self.source.push(row);
    }

    /// A platform's report for a destination (rows outside the window are kept: a shifted day
    /// may move a conversion across its edge).
    pub fn add_platform(&mut self, dest: &str, shape: Shape, rows: Vec<PlatformRow>) {
        let Some(scope) = self.scopes.iter().find(|s| s.name == dest) else { return };
        // Google Ads reports the conversion action's name, the ledger its id: match on the order.
        let use_event = shape.has_event && scope.platform.reports_route_event;
        let wanted = |r: &PlatformRow| !use_event || r.event.as_deref().is_some_and(|e| scope.route_events.contains(e));
        let mut reported = 0;
        let side = if shape.per_event {
            let rows: Vec<PlatformRow> = rows.into_iter().filter(wanted).collect();
            let mut side = PerEvent {
                use_event,
                heads: HashMap::with_capacity(rows.len()),
                next: vec![NONE; rows.len()],
                taken: vec![false; rows.len()],
                rows: Vec::new(),
            };
            for (i, r) in rows.iter().enumerate() {
                if self.in_window_day(r.day) {
                    reported += u64::from(r.count);
                }
                let Some(txn) = r.transaction_id.as_deref() else { continue };
                let hash = self.hasher.hash_one((side.event_of(r), txn));
                if let Some(prev) = side.heads.insert(hash, i as u32) {
                    side.next[i] = prev;
                }
            }
            side.rows = rows;
            Side::PerEvent(side)
        } else {
            let mut platform: HashMap<(NaiveDate, String), (u64, f64)> = HashMap::new();
            for r in rows.into_iter().filter(wanted) {
                if !self.in_window_day(r.day) {
                    continue;
                }
                reported += u64::from(r.count);
                let event = if use_event { r.event.as_deref().unwrap_or_default().to_owned() } else { String::new() };
                let g = platform.entry((r.day, event)).or_default();
                g.0 += u64::from(r.count);
                g.1 += r.value.unwrap_or(0.0);
            }
            Side::Aggregate { use_event, platform, ledger: HashMap::new() }
        };
        if let Some(d) = self.report.destinations.get_mut(dest) {
            d.platform_reported = Some(reported);
        }
        self.sides.insert(dest.to_owned(), side);
    }

    /// Whether a report's day overlaps the window.
    fn in_window_day(&self, day: NaiveDate) -> bool {
        let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
        start < self.settings.until && start + chrono::Duration::days(1) > self.settings.since
    }

    /// One ledger event (from a window slightly wider than the report's).
    pub fn ledger(&mut self, entry: LedgerEntry) {
        let ev = entry.event;
        let hash = self.hasher.hash_one(ev.event_id.as_str());
        let src = match self.source_index.get(&hash) {
            Some(&i)
                if !self.source[i as usize].taken && &*self.source[i as usize].event_id == ev.event_id.as_str() =>
            {
                self.source[i as usize].taken = true;
                Some(self.source[i as usize].clone())
            }
            _ => None,
        };
        if !self.in_window(ev.occurred_at) && !src.as_ref().is_some_and(|s| self.in_window(s.occurred_at)) {
            return;
        }
        if !self.kind_wanted(Some(ev.kind.as_str())) {
            return;
        }
        *self.kind_sources.entry(ev.kind.as_str().to_owned()).or_default().entry(ev.source.clone()).or_default() += 1;
        self.report.totals.ledger_events += 1;
        let against_source = src.as_ref().map_or_else(
            || Some(("not_in_source", format!("in the ledger (source {}), not in the source of truth", ev.source))),
            |s| self.against_source(s, &ev),
        );
        for i in 0..self.scopes.len() {
            let name = self.scopes[i].name.clone();
            let delivery = entry.deliveries.iter().find(|d| d.destination == name);
            if delivery.is_none() && !self.scopes[i].kinds.contains(ev.kind.as_str()) {
                continue;
            }
            let d = self.report.destinations.entry(name.clone()).or_default();
            if let Some(s) = &src {
                d.source += 1;
                d.source_value += s.value.unwrap_or(0.0);
            }
            d.received += 1;
            d.planned += u64::from(delivery.is_some());
            let delivered = delivery.is_some_and(|d| d.state == DeliveryState::Delivered);
            d.delivered += u64::from(delivered);
            let at_platform = self.platform_check(i, &ev, delivery, delivered);
            let (class, detail, explained) = if let Some((class, detail)) = &against_source {
                ((*class).to_owned(), detail.clone(), false)
            } else if let Some(c) = self.follow_up_class(i, delivery) {
                c
            } else if let Some(c) = self.delivery_class(i, delivery) {
                c
            } else if let Some((class, detail)) = at_platform {
                (class.to_owned(), detail, false)
            } else if delivered && matches!(self.sides.get(&name), Some(Side::Aggregate { .. })) {
                // Counted when the day's aggregate is compared, in `finish`.
                continue;
            } else {
                ("matched".to_owned(), String::new(), true)
            };
            let value = ev.value.or(src.as_ref().and_then(|s| s.value));
            self.count(&name, class, explained, ev.event_id.as_str(), Some(ev.event_id.as_str()), detail, value);
        }
    }
}

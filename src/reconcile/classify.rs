//! Matching: every source row, ledger event and platform row of the window ends in exactly one
//! class per destination. The source and the platform reports are held in hash maps; the ledger
//! streams past them once, taking what it matches; what is left over at the end is
//! `not_received` (source) or `extra_at_platform` (platform).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, NaiveDate, Utc};

use super::read::{PlatformRow, Shape, SourceRow};
use super::report::{DestReport, Mismatch, Report};
use crate::core::{DeliveryState, Event};
use crate::platforms::Entry;
use crate::store::{LedgerDelivery, LedgerEntry};

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

    /// The ledger against the source of truth: value or currency, then time.
    fn against_source(&self, s: &SourceRow, ev: &Event) -> Option<(&'static str, String)> {
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
    fn delivery_class(&self, i: usize, delivery: Option<&LedgerDelivery>) -> Option<(String, String, bool)> {
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
    fn platform_check(
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
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn count(
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
    fn count_n(
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

    /// The leftovers: source rows the ledger never had, platform rows nothing matched, and the
    /// aggregate reports compared per (day, event name).
    pub fn finish(mut self) -> Report {
        let source = std::mem::take(&mut self.source);
        let mut missing: Vec<SourceRow> =
            source.into_iter().filter(|s| !s.taken && self.in_window(s.occurred_at)).collect();
        missing.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        // A lost event the platform still counted (its browser tag): the row is not extra.
        let mut lost_orders: HashMap<&str, usize> = HashMap::new();
        for (i, s) in missing.iter().enumerate() {
            if let Some(id) = order_id(&s.event_id) {
                lost_orders.insert(id, i);
            }
        }
        let mut seen_at_platform: HashSet<usize> = HashSet::new();
        let mut extra = Vec::new();
        let sides = std::mem::take(&mut self.sides);
        for (dest, side) in sides {
            match side {
                Side::PerEvent(side) => {
                    let mut left: BTreeMap<(String, String), Vec<&PlatformRow>> = BTreeMap::new();
                    for (i, r) in side.rows.iter().enumerate() {
                        if side.taken[i] {
                            continue;
                        }
                        let txn = r
                            .transaction_id
                            .as_deref()
                            .map_or_else(|| format!("(none, line {})", r.line), str::to_owned);
                        left.entry((side.event_of(r).to_owned(), txn)).or_default().push(r);
                    }
                    for ((event, txn), found) in left {
                        if !found.iter().any(|r| self.in_window_day(r.day)) {
                            continue;
                        }
                        if let Some(&i) = lost_orders.get(txn.as_str()) {
                            seen_at_platform.insert(i);
                            continue;
                        }
                        let count: u64 = found.iter().map(|r| u64::from(r.count)).sum();
                        let value: f64 = found.iter().filter_map(|r| r.value).sum();
                        let lines = found.iter().map(|r| r.line.to_string()).collect::<Vec<_>>().join(", ");
                        let detail = format!(
                            "the platform counted {count} {} for transaction {txn} ({value:.2}, line {lines}) that Surety never sent: a browser tag or another sender?",
                            if event.is_empty() { "conversion(s)" } else { event.as_str() },
                        );
                        extra.push((dest.clone(), txn, detail, value));
                    }
                }
                Side::Aggregate { platform, ledger, .. } => self.compare_aggregate(&dest, platform, ledger),
            }
        }
        for (dest, txn, detail, value) in extra {
            self.count(&dest, "extra_at_platform".into(), false, &txn, None, detail, Some(value));
        }
        for (i, s) in missing.iter().enumerate() {
            let from = s.source.as_deref().map(str::to_owned).or_else(|| {
                let kind = s.kind.as_deref()?;
                self.kind_sources.get(kind)?.iter().max_by_key(|(_, n)| **n).map(|(src, _)| src.clone())
            });
            let mut detail = match &from {
                Some(src) => {
                    format!("in the source (line {}), never reached Surety: expected from source '{src}'", s.line)
                }
                None => format!("in the source (line {}), never reached Surety", s.line),
            };
            if seen_at_platform.contains(&i) {
                detail.push_str("; the platform counted it (browser tag)");
            }
            let dests: Vec<String> = self
                .scopes
                .iter()
                .filter(|sc| s.kind.as_deref().is_none_or(|k| sc.kinds.contains(k)))
                .map(|sc| sc.name.clone())
                .collect();
            for dest in dests {
                let d = self.report.destinations.entry(dest.clone()).or_default();
                d.source += 1;
                d.source_value += s.value.unwrap_or(0.0);
                self.count(
                    &dest,
                    "not_received".into(),
                    false,
                    &s.event_id,
                    Some(&s.event_id),
                    detail.clone(),
                    s.value,
                );
            }
        }
        let mut report = self.report;
        report.finish();
        report
    }

    fn compare_aggregate(
        &mut self,
        dest: &str,
        platform: HashMap<(NaiveDate, String), (u64, f64)>,
        ledger: HashMap<(NaiveDate, String), (u64, f64)>,
    ) {
        let mut keys: Vec<(NaiveDate, String)> = platform.keys().chain(ledger.keys()).cloned().collect();
        keys.sort();
        keys.dedup();
        let tol = self.settings.tolerance;
        for key in keys {
            let (pn, pv) = platform.get(&key).copied().unwrap_or_default();
            let (ln, lv) = ledger.get(&key).copied().unwrap_or_default();
            let grain = if key.1.is_empty() { key.0.to_string() } else { format!("{}/{}", key.0, key.1) };
            let matched = pn.min(ln);
            if ln > pn {
                let detail = format!("{grain}: Surety delivered {ln} ({lv:.2}), the platform reports {pn} ({pv:.2})");
                self.count_n(dest, "missing_at_platform".into(), false, &grain, None, detail, Some(lv - pv), ln - pn);
            } else if pn > ln {
                let detail = format!("{grain}: the platform reports {pn} ({pv:.2}), Surety delivered {ln} ({lv:.2})");
                self.count_n(dest, "extra_at_platform".into(), false, &grain, None, detail, Some(pv - lv), pn - ln);
            } else if (pv - lv).abs() > tol * (ln.max(1) as f64) {
                let detail = format!("{grain}: {ln} conversions; the platform's value {pv:.2}, the ledger's {lv:.2}");
                self.count_n(
                    dest,
                    "value_differs_at_platform".into(),
                    false,
                    &grain,
                    None,
                    detail,
                    Some((pv - lv).abs()),
                    ln,
                );
                continue;
            }
            if matched > 0 {
                *self
                    .report
                    .destinations
                    .entry(dest.to_owned())
                    .or_default()
                    .classes
                    .entry("matched".into())
                    .or_default() += matched;
            }
        }
    }
}

/// The order id in a derived `order:{id}:{kind}` event id.
fn order_id(event_id: &str) -> Option<&str> {
    event_id.strip_prefix("order:")?.rsplit_once(':').map(|(id, _)| id)
}

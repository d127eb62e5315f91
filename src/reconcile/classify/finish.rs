//! The end of a matching pass: the leftovers classed (source rows the ledger never had, platform
//! rows nothing matched) and the aggregate reports compared per (day, event name).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;

use super::{Matcher, Side};
use crate::reconcile::read::{PlatformRow, SourceRow};
use crate::reconcile::report::Report;

impl Matcher {
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
                Side::FollowUps => {}
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

//! Coverage: what each event carried and what became of it. Per kind (or destination, or event
//! day): how many events had each identifier, consent granted per purpose, an identity joined
//! from the bridge, and per destination how many deliveries were planned, reached the sender,
//! were delivered, confirmed by the platform, skipped (per reason), rejected, dead or in doubt.
//! (`surety coverage`, `GET /v1/coverage`.) Whole days come from the cached day rollups while
//! they are fresh, the rest of the window is read live (`reconcile::rollup`, ADR 0008).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::late::CountError;
use crate::core::delivery::reason;
pub use crate::core::event::COVERAGE_FIELDS as FIELDS;
use crate::core::{ConsentState, DeliveryState, Event};
use crate::store::{LedgerEntry, Store};

/// How the rows are grouped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Kind,
    Destination,
    Day,
}

/// What to count.
#[derive(Clone, Debug, PartialEq)]
pub struct CoverageQuery {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub by: GroupBy,
}

/// What became of one destination's deliveries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationCoverage {
    pub planned: u64,
    /// Ended through the sender: delivered, rejected, dead or in doubt.
    pub sent: u64,
    pub delivered: u64,
    /// Delivered and confirmed by the platform (`accepted`, `partially_accepted`); a platform
    /// that only says "received" (GA4, a Google request still processing) confirms nothing.
    pub accepted: u64,
    /// Skipped, per reason.
    pub skipped: BTreeMap<String, u64>,
    pub rejected: u64,
    pub dead: u64,
    pub in_doubt: u64,
    /// Still on their way (pending, claimed, sending).
    pub pending: u64,
}

/// One group's row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageRow {
    /// The kind, the destination, or the UTC event day.
    pub key: String,
    pub events: u64,
    /// Events carrying each identifier (see [`FIELDS`]).
    #[serde(deserialize_with = "super::rollup::static_keys")]
    pub fields: BTreeMap<&'static str, u64>,
    /// Events with consent granted, per purpose.
    #[serde(deserialize_with = "super::rollup::static_keys")]
    pub consent: BTreeMap<&'static str, u64>,
    /// Events to which the identity bridge added something.
    pub joined: u64,
    pub destinations: BTreeMap<String, DestinationCoverage>,
}

/// The answer of `surety coverage --json` and `GET /v1/coverage`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoverageReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub by: GroupBy,
    pub events: u64,
    pub rows: Vec<CoverageRow>,
}

fn bump(n: &mut u64) -> Result<(), CountError> {
    *n = n.checked_add(1).ok_or(CountError::Overflow)?;
    Ok(())
}

fn present(e: &Event) -> Vec<&'static str> {
    let i = &e.identity;
    let mut out = Vec::new();
    let fields: [(&'static str, bool); 11] = [
        ("client_id", i.client_id.is_some()),
        ("session_id", i.session_id.is_some()),
        ("user_id", i.user_id.is_some()),
        ("email", i.email.is_some()),
        ("phone", i.phone.is_some()),
        ("gclid", i.gclid.is_some()),
        ("gbraid", i.gbraid.is_some()),
        ("wbraid", i.wbraid.is_some()),
        ("fbc", i.fbc.is_some()),
        ("fbp", i.fbp.is_some()),
        ("li_fat_id", i.li_fat_id.is_some()),
    ];
    for (name, has) in fields {
        if has {
            out.push(name);
        }
    }
    if [&i.gclid, &i.gbraid, &i.wbraid, &i.fbc, &i.fbp, &i.li_fat_id].iter().any(|c| c.is_some()) {
        out.push("any_click_id");
    }
    out
}

fn granted(e: &Event) -> Vec<&'static str> {
    let c = &e.consent;
    [("analytics", c.analytics), ("ad_user_data", c.ad_user_data), ("ad_personalization", c.ad_personalization)]
        .into_iter()
        .filter(|(_, s)| *s == Some(ConsentState::Granted))
        .map(|(n, _)| n)
        .collect()
}

/// Folds ledger entries into rows; pure, so that tests can feed it directly.
#[derive(Default)]
pub struct CoverageTally {
    pub(super) rows: BTreeMap<String, CoverageRow>,
    pub(super) events: u64,
}

impl CoverageTally {
    pub fn add(&mut self, entry: &LedgerEntry, q: &CoverageQuery) -> Result<(), CountError> {
        let e = &entry.event;
        if e.occurred_at < q.since || e.occurred_at >= q.until {
            return Ok(());
        }
        bump(&mut self.events)?;
        let keys: Vec<String> = match q.by {
            GroupBy::Kind => vec![e.kind.as_str().to_owned()],
            GroupBy::Day => vec![e.occurred_at.date_naive().to_string()],
            GroupBy::Destination => {
                let mut d: Vec<String> = entry.deliveries.iter().map(|d| d.destination.clone()).collect();
                d.sort();
                d.dedup();
                if d.is_empty() {
                    // Routed nowhere: still an event whose coverage counts.
                    d.push("(none)".to_owned());
                }
                d
            }
        };
        let (fields, consent) = (present(e), granted(e));
        for key in keys {
            let row =
                self.rows.entry(key.clone()).or_insert_with(|| CoverageRow { key: key.clone(), ..Default::default() });
            bump(&mut row.events)?;
            for f in &fields {
                bump(row.fields.entry(f).or_default())?;
            }
            for c in &consent {
                bump(row.consent.entry(c).or_default())?;
            }
            if !e.joined.is_empty() {
                bump(&mut row.joined)?;
            }
            for d in &entry.deliveries {
                if q.by == GroupBy::Destination && d.destination != key {
                    continue;
                }
                let c = row.destinations.entry(d.destination.clone()).or_default();
                bump(&mut c.planned)?;
                let reason = d.reason.as_deref();
                match d.state {
                    DeliveryState::Pending | DeliveryState::Claimed | DeliveryState::Sending => bump(&mut c.pending)?,
                    DeliveryState::Delivered => {
                        bump(&mut c.sent)?;
                        bump(&mut c.delivered)?;
                        if matches!(reason, Some("accepted" | "partially_accepted")) {
                            bump(&mut c.accepted)?;
                        }
                    }
                    DeliveryState::Rejected => {
                        bump(&mut c.sent)?;
                        bump(&mut c.rejected)?;
                    }
                    DeliveryState::Dead => {
                        bump(&mut c.sent)?;
                        bump(&mut c.dead)?;
                    }
                    DeliveryState::InDoubt => {
                        bump(&mut c.sent)?;
                        bump(&mut c.in_doubt)?;
                    }
                    DeliveryState::Skipped => {
                        let why = reason.unwrap_or(reason::INVALID).to_owned();
                        bump(c.skipped.entry(why).or_default())?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish(self, q: &CoverageQuery) -> CoverageReport {
        CoverageReport {
            since: q.since,
            until: q.until,
            by: q.by,
            events: self.events,
            rows: self.rows.into_values().collect(),
        }
    }
}

/// Counts the window: fresh cached days from their rollups, the rest read live.
pub async fn coverage(store: &dyn Store, q: &CoverageQuery) -> Result<CoverageReport, CountError> {
    let sources = super::rollup::sources(store, q.since, q.until).await?;
    let mut tally = CoverageTally::default();
    for (day, part) in &sources.cached {
        tally.merge_day(*day, part, q.by)?;
    }
    for &(since, until) in &sources.live {
        super::rollup::each_live(store, since, until, |e| tally.add(e, q)).await?;
    }
    Ok(tally.finish(q))
}

/// Counts the window by reading every event of it (what the rollups must equal).
pub async fn coverage_scan(store: &dyn Store, q: &CoverageQuery) -> Result<CoverageReport, CountError> {
    let mut tally = CoverageTally::default();
    super::late::each_in_window(store, q.since, q.until, |e| tally.add(e, q)).await?;
    Ok(tally.finish(q))
}

/// `surety coverage`.
#[derive(clap::Args, Debug)]
pub struct CoverageArgs {
    /// Start of the window (a date, UTC midnight, or an RFC 3339 time) [default: 30 days before --until].
    #[arg(long)]
    pub since: Option<String>,
    /// End of the window, exclusive; a date means the end of that day [default: now].
    #[arg(long)]
    pub until: Option<String>,
    /// One row per kind, destination or event day.
    #[arg(long, value_enum, default_value = "kind")]
    pub by: GroupBy,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The TOML configuration naming the ledger.
    #[arg(long, short, env = "SURETY_CONFIG")]
    pub config: Option<std::path::PathBuf>,
}

/// `surety coverage`: exit 0 with the report, 2 on usage errors.
pub fn cli(args: CoverageArgs) -> anyhow::Result<std::process::ExitCode> {
    let usage = |m: String| {
        eprintln!("error: {m}");
        Ok(std::process::ExitCode::from(2))
    };
    let config = match crate::config::Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return usage(e.to_string()),
    };
    let (since, until) = match super::late::window(args.since.as_deref(), args.until.as_deref(), Utc::now())
        .and_then(|(s, u)| super::late::check_order(s, u).map(|()| (s, u)))
    {
        Ok(w) => w,
        Err(e) => return usage(format!("--{e}")),
    };
    let q = CoverageQuery { since, until, by: args.by };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let store = crate::store::open(&config).await?;
        anyhow::Ok(coverage(store.as_ref(), &q).await?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

impl CoverageReport {
    /// The report as text: one block per row, shares as percentages of the row's events.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let pct = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Coverage by {:?}, event time {} .. {}: {} events\n",
            self.by,
            self.since.to_rfc3339(),
            self.until.to_rfc3339(),
            self.events
        );
        for r in &self.rows {
            let _ = writeln!(out, "{}  ({} events, {} joined from the bridge)", r.key, r.events, r.joined);
            let fields: Vec<String> = FIELDS
                .iter()
                .filter_map(|f| r.fields.get(f).map(|n| format!("{f} {:.0}%", pct(*n, r.events))))
                .collect();
            let _ = writeln!(out, "  carried   {}", if fields.is_empty() { "-".into() } else { fields.join(", ") });
            let consent: Vec<String> =
                r.consent.iter().map(|(c, n)| format!("{c} {:.0}%", pct(*n, r.events))).collect();
            let _ = writeln!(out, "  consent   {}", if consent.is_empty() { "-".into() } else { consent.join(", ") });
            for (dest, c) in &r.destinations {
                let skipped: Vec<String> = c.skipped.iter().map(|(why, n)| format!("{why} {n}")).collect();
                let _ = writeln!(
                    out,
                    "  → {dest}: planned {}, sent {}, delivered {}, accepted {}, rejected {}, dead {}, in doubt {}, pending {}{}",
                    c.planned,
                    c.sent,
                    c.delivered,
                    c.accepted,
                    c.rejected,
                    c.dead,
                    c.in_doubt,
                    c.pending,
                    if skipped.is_empty() { String::new() } else { format!(", skipped: {}", skipped.join(", ")) }
                );
            }
            let _ = writeln!(out);
        }
        out
    }
}

#[cfg(test)]
mod tests;

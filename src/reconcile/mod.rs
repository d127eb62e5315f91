//! `surety reconcile`: the source of truth ↔ the ledger ↔ the platforms' own reports, every
//! difference classed and explained. Reads only: the source export and the platform reports
//! (files, or `DEST=api`: read back through the platform's reporting API — the only network
//! a run makes — or taken from the ledger's follow-up results), and the ledger through
//! `Store::window_page`, one pass. No ledger write but keeping the report itself where asked
//! (`POST /v1/reconcile`, `--record`: `kept`).
//!
//! Memory: the source rows and the per-event platform rows of the window are held in hash maps
//! keyed by id; the ledger streams past them a page at a time, taking what it matches.

mod classify;
mod count;
pub mod coverage;
mod kept;
pub mod late;
mod read;
mod read_back;
mod report;
pub mod rollup;
mod table;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use self::classify::Matcher;
pub use self::classify::{Scope, Settings};
pub use self::kept::{latest, record, Recorded, KEPT_MISMATCHES};
pub use self::read::{parse_day, BadRow};
pub use self::read_back::{parse_platform, PlatformArg, PlatformInput};
pub use self::report::{DestReport, FailOn, Mismatch, Report, Window};
pub use self::table::Format;
use crate::config::Config;
use crate::import::{parse_map, Mapping};
use crate::store::{Store, StoreError, WindowPage};

/// How far beyond the window the ledger is read, so an event whose time the source states
/// differently (`time_differs`) is still found.
const MARGIN_DAYS: i64 = 7;
/// Ledger events per page.
const PAGE: usize = 5000;

#[derive(clap::Args, Debug)]
pub struct ReconcileArgs {
    /// The business system's export: CSV or NDJSON, one business event per row, with the
    /// canonical headers of `surety import` (event_id, or subject.type + subject.id + kind;
    /// occurred_at; value; currency; optionally source).
    #[arg(long)]
    pub source: PathBuf,
    /// DEST=FILE: what the platform reports for destination DEST (a GA4, Google Ads, Meta or
    /// LinkedIn export); DEST=api: read back by Surety (GA4: the Data API, per the destination's
    /// `data_api` table; Google Ads: the ledger's follow-up results). Repeatable.
    #[arg(long = "platform", value_name = "DEST=FILE|api", value_parser = parse_platform)]
    pub platforms: Vec<(String, PlatformArg)>,
    /// Start of the window (a date, UTC midnight, or an RFC 3339 time) [default: the source's first day].
    #[arg(long)]
    pub since: Option<String>,
    /// End of the window, exclusive; a date means the end of that day [default: the source's last day].
    #[arg(long)]
    pub until: Option<String>,
    /// Only these kinds. Repeatable.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Read column OLD as NEW (source: canonical names; reports: transaction_id, date,
    /// event_name, value, count). Repeatable.
    #[arg(long = "map", value_name = "OLD=NEW", value_parser = parse_map)]
    pub map: Vec<(String, String)>,
    /// Values closer than this are equal.
    #[arg(long, default_value_t = 0.01)]
    pub value_tolerance: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when something is unexplained (default), when anything is not matched, or never.
    #[arg(long, value_enum, default_value = "unexplained")]
    pub fail_on: FailOn,
    /// The TOML configuration naming the ledger and destinations.
    #[arg(long, short, env = "SURETY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also keep the report in the ledger (as `cli:<OS user>`), where the dashboard's reconcile
    /// page and the `reconcile_unexplained` alert rule read the latest. Without it nothing is written.
    #[arg(long)]
    pub record: bool,
}

/// One file to read: its name (for messages), format and bytes.
pub struct Input {
    pub name: String,
    pub format: Format,
    pub reader: Box<dyn Read + Send>,
}

/// What a run is asked: the inputs and the knobs (the CLI and the API both build this).
pub struct Request {
    pub source: Input,
    /// Destination → its report, or `api`.
    pub platforms: Vec<(String, PlatformInput)>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub kinds: Vec<String>,
    pub mapping: Mapping,
    pub tolerance: f64,
    pub now: DateTime<Utc>,
}

/// Why a run could not start: the caller's to fix (usage), or the ledger's.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Usage(String),
    /// A platform's count could not be read back (`DEST=api`): its API refused or failed.
    #[error("{0}")]
    ReadBack(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A time bound: an RFC 3339 time, or a date (its midnight UTC; `end` = the next midnight).
pub fn parse_bound(s: &str, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("'{s}' is not a date (YYYY-MM-DD) or RFC 3339 time"))?;
    let d = if end { d.succ_opt().unwrap_or(d) } else { d };
    Ok(d.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// The destinations as reconcile sees them: platform, routed kinds and events, retry age.
pub fn scopes(config: &Config) -> Vec<Scope> {
    config
        .destinations
        .iter()
        .filter_map(|d| {
            let name = d.name().to_owned();
            let platform = crate::platforms::of(d)?;
            let routes = config.catalog.iter().filter_map(|(kind, r)| r.get(&name).map(|r| (kind, r)));
            let (mut kinds, mut route_events) = (HashSet::new(), HashSet::new());
            for (kind, route) in routes {
                kinds.insert(kind.clone());
                route_events.insert(route.event.clone());
            }
            let retry_age = Duration::seconds(config.retry.max_age_secs.min(i64::MAX as u64) as i64);
            Some(Scope { name, platform, kinds, route_events, retry_age, config: d.clone() })
        })
        .collect()
}

/// Runs a reconcile: reads the files, streams the window of the ledger, classes everything.
pub async fn reconcile(store: &dyn Store, scopes: Vec<Scope>, req: Request) -> Result<Report, ReconcileError> {
    for (dest, input) in &req.platforms {
        let Some(scope) = scopes.iter().find(|s| &s.name == dest) else {
            let known: Vec<&str> = scopes.iter().map(|s| s.name.as_str()).collect();
            return Err(ReconcileError::Usage(format!(
                "--platform {dest}=…: no destination '{dest}' is configured (known: {})",
                known.join(", ")
            )));
        };
        if matches!(input, PlatformInput::Api) {
            read_back::check(scope)?;
        }
    }
    let mut bad = Vec::new();
    let mut rows = Vec::new();
    let Input { name, format, reader } = req.source;
    let mapping = req.mapping;
    let reading = {
        let name = name.clone();
        let mapping = mapping.clone();
        tokio::task::spawn_blocking(move || {
            let mut bad = Vec::new();
            let mut rows = Vec::new();
            read::source(&name, reader, format, &mapping, &mut bad, |r| rows.push(r)).map(|_| (rows, bad))
        })
    };
    let (source_rows, source_bad) =
        reading.await.map_err(|e| ReconcileError::Usage(e.to_string()))?.map_err(ReconcileError::Usage)?;
    rows.extend(source_rows);
    bad.extend(source_bad);
    // The window: as asked, else the days the source covers.
    let first = rows.iter().map(|r| r.occurred_at).min();
    let last = rows.iter().map(|r| r.occurred_at).max();
    let day = |t: DateTime<Utc>| t.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    let since = req.since.or(first.map(day)).unwrap_or(req.now);
    let until = req.until.or(last.map(|t| day(t) + Duration::days(1))).unwrap_or(req.now);
    if until <= since {
        return Err(ReconcileError::Usage(format!(
            "the window is empty: --until {until} is not after --since {since}"
        )));
    }
    let kinds = (!req.kinds.is_empty()).then(|| req.kinds.iter().cloned().collect::<HashSet<_>>());
    let settings = Settings { since, until, tolerance: req.tolerance, now: req.now, kinds };
    let mut matcher = Matcher::new(settings, scopes.clone());
    for r in rows {
        matcher.add_source(r);
    }
    let mut platform_rows: HashMap<String, usize> = HashMap::new();
    for (dest, input) in req.platforms {
        let input = match input {
            PlatformInput::File(input) => input,
            PlatformInput::Api => {
                let Some(scope) = scopes.iter().find(|s| s.name == dest) else { continue };
                if scope.platform.read_back == crate::platforms::ReadBack::FollowUps {
                    matcher.add_follow_ups(&dest);
                } else {
                    let (shape, prows) = read_back::pull(scope, since, until).await?;
                    *platform_rows.entry(dest.clone()).or_default() += prows.len();
                    matcher.add_platform(&dest, shape, prows);
                }
                continue;
            }
        };
        let Input { name, format, reader } = input;
        let mapping = mapping.clone();
        let (shape, prows, pbad) = tokio::task::spawn_blocking(move || {
            let mut bad = Vec::new();
            let mut rows = Vec::new();
            read::platform(&name, reader, format, &mapping, &mut bad, |r| rows.push(r)).map(|s| (s, rows, bad))
        })
        .await
        .map_err(|e| ReconcileError::Usage(e.to_string()))?
        .map_err(ReconcileError::Usage)?;
        *platform_rows.entry(dest.clone()).or_default() += prows.len();
        bad.extend(pbad);
        matcher.add_platform(&dest, shape, prows);
    }
    let margin = Duration::days(MARGIN_DAYS);
    let mut page = WindowPage { since: since - margin, until: until + margin, after_seq: 0, limit: PAGE };
    loop {
        let entries = store.window_page(page).await?;
        let n = entries.len();
        if let Some(last) = entries.last() {
            page.after_seq = last.seq;
        }
        for e in entries {
            matcher.ledger(e);
        }
        if n < PAGE {
            break;
        }
    }
    matcher.report_mut().bad_rows.extend(bad);
    Ok(matcher.finish())
}

fn open(path: &std::path::Path) -> anyhow::Result<Input> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.display().to_string();
    Ok(Input { format: Format::of(&name), name, reader: Box::new(std::io::BufReader::with_capacity(1 << 16, file)) })
}

/// `surety reconcile`: exit 0 when nothing is unexplained, 1 when something is (per
/// `--fail-on`), 2 on usage errors and when a platform's count cannot be read back (`DEST=api`).
pub fn cli(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let usage = |m: String| {
        eprintln!("error: {m}");
        Ok(ExitCode::from(2))
    };
    let config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return usage(e.to_string()),
    };
    let since = match args.since.as_deref().map(|s| parse_bound(s, false)).transpose() {
        Ok(s) => s,
        Err(e) => return usage(format!("--since {e}")),
    };
    let until = match args.until.as_deref().map(|s| parse_bound(s, true)).transpose() {
        Ok(s) => s,
        Err(e) => return usage(format!("--until {e}")),
    };
    if !(args.value_tolerance >= 0.0 && args.value_tolerance.is_finite()) {
        return usage("--value-tolerance must be a number of at least 0".into());
    }
    let source = match open(&args.source) {
        Ok(s) => s,
        Err(e) => return usage(format!("{e:#}")),
    };
    let mut platforms = Vec::new();
    for (dest, arg) in &args.platforms {
        match arg {
            PlatformArg::Api => platforms.push((dest.clone(), PlatformInput::Api)),
            PlatformArg::File(path) => match open(path) {
                Ok(i) => platforms.push((dest.clone(), PlatformInput::File(i))),
                Err(e) => return usage(format!("{e:#}")),
            },
        }
    }
    let request = Request {
        source,
        platforms,
        since,
        until,
        kinds: args.kinds,
        mapping: Mapping::new(&args.map),
        tolerance: args.value_tolerance,
        now: Utc::now(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        let store = crate::store::open_existing(&config).await?;
        let result = reconcile(store.as_ref(), scopes(&config), request).await;
        if let (true, Ok(report)) = (args.record, &result) {
            kept::record(store.as_ref(), Utc::now(), &kept::cli_user(), report)
                .await
                .context("cannot keep the report in the ledger")?;
        }
        anyhow::Ok(result)
    })?;
    let report = match result {
        Ok(r) => r,
        Err(ReconcileError::Usage(m) | ReconcileError::ReadBack(m)) => return usage(m),
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render(20));
    }
    Ok(if report.fails(args.fail_on) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

//! `surety late` and what it shares with the API: the window from `--since`/`--until` (or query
//! parameters), the query, and the report as a terminal table.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{late_arrivals, LateDay, LateQuery, LateReport};
use crate::reconcile::parse_bound;

/// Days counted when no `--since` is given.
pub const DEFAULT_DAYS: i64 = 30;

/// `surety late`.
#[derive(clap::Args, Debug)]
pub struct LateArgs {
    /// First event day (a date, UTC midnight, or an RFC 3339 time) [default: 30 days before --until].
    #[arg(long)]
    pub since: Option<String>,
    /// End of the window, exclusive; a date means the end of that day [default: now].
    #[arg(long)]
    pub until: Option<String>,
    /// Also show what each day gained since this time (a date or an RFC 3339 time).
    #[arg(long)]
    pub changed_since: Option<String>,
    /// Only these kinds. Repeatable.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The TOML configuration naming the ledger.
    #[arg(long, short, env = "SURETY_CONFIG")]
    pub config: Option<std::path::PathBuf>,
}

/// The event-time window from its textual bounds; the error starts with the bound's name. An
/// empty window (since at or after until) is no error here: it counts nothing (the CLI refuses
/// it, see [`check_order`]).
pub fn window(
    since: Option<&str>,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let until = until.map(|s| parse_bound(s, true)).transpose().map_err(|e| format!("until: {e}"))?.unwrap_or(now);
    let since = since
        .map(|s| parse_bound(s, false))
        .transpose()
        .map_err(|e| format!("since: {e}"))?
        .unwrap_or(until - Duration::days(DEFAULT_DAYS));
    Ok((since, until))
}

/// For the command line: a window that can hold nothing is a usage error.
pub fn check_order(since: DateTime<Utc>, until: DateTime<Utc>) -> Result<(), String> {
    if since >= until {
        return Err(format!("since: {} is not before until ({})", since.to_rfc3339(), until.to_rfc3339()));
    }
    Ok(())
}

/// The query from its textual bounds (CLI flags or HTTP parameters); the error says which bound.
pub fn query(
    since: Option<&str>,
    until: Option<&str>,
    changed_since: Option<&str>,
    kinds: Vec<String>,
    now: DateTime<Utc>,
) -> Result<LateQuery, String> {
    let (since, until) = window(since, until, now)?;
    let changed_since =
        changed_since.map(|s| parse_bound(s, false)).transpose().map_err(|e| format!("changed_since: {e}"))?;
    Ok(LateQuery { since, until, changed_since, kinds })
}

/// `surety late`: exit 0 with the report, 2 on usage errors.
pub fn cli(args: LateArgs) -> anyhow::Result<std::process::ExitCode> {
    let usage = |m: String| {
        eprintln!("error: {m}");
        Ok(std::process::ExitCode::from(2))
    };
    let config = match crate::config::Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return usage(e.to_string()),
    };
    let q = match query(
        args.since.as_deref(),
        args.until.as_deref(),
        args.changed_since.as_deref(),
        args.kinds,
        Utc::now(),
    ) {
        Ok(q) => q,
        Err(e) => return usage(format!("--{}", e.replacen('_', "-", 1))),
    };
    if let Err(e) = check_order(q.since, q.until) {
        return usage(format!("--{e}"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let store = crate::store::open(&config).await?;
        anyhow::Ok(late_arrivals(store.as_ref(), &q).await?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

impl LateReport {
    /// The report as a table for a terminal.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let money = |m: &BTreeMap<String, f64>| {
            if m.is_empty() {
                "-".to_owned()
            } else {
                m.iter().map(|(c, v)| format!("{v:.2} {c}")).collect::<Vec<_>>().join(", ")
            }
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Late arrivals, event time {} .. {} (UTC days; late = received after the day ended)\n",
            self.since.to_rfc3339(),
            self.until.to_rfc3339()
        );
        let _ = writeln!(
            out,
            "{:<10}  {:>7}  {:>7}  {:>6}  {:>6}  {:>6}  {:>6}  {:>14}  value",
            "day", "events", "on time", "<1h", "<24h", "<72h", "later", "outside_window"
        );
        for d in &self.days {
            let outside: u64 = d.outside_window.values().sum();
            let _ = writeln!(
                out,
                "{:<10}  {:>7}  {:>7}  {:>6}  {:>6}  {:>6}  {:>6}  {:>14}  {}",
                d.day,
                d.events,
                d.on_time,
                d.late.under_1h,
                d.late.under_24h,
                d.late.under_72h,
                d.late.later,
                outside,
                money(&d.value)
            );
        }
        let _ = writeln!(out, "\n{} events, {} arrived after their day had ended", self.events, self.late.total());
        if let Some(since) = self.changed_since {
            let changed: Vec<&LateDay> = self.days.iter().filter(|d| d.changed.is_some()).collect();
            if changed.is_empty() {
                let _ = writeln!(out, "No day changed since {}.", since.to_rfc3339());
            } else {
                let _ = writeln!(out, "Changed since {}:", since.to_rfc3339());
                for d in changed {
                    let c = d.changed.as_ref().map_or((0, String::new()), |c| (c.events, money(&c.value)));
                    let _ = writeln!(out, "  {} gained {} events and {}", d.day, c.0, c.1);
                }
            }
        }
        out
    }
}

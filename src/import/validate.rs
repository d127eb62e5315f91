//! `surety validate FILE`: what `surety import FILE` would do, writing nothing. The same readers,
//! `--map` and canonical parser decide which rows are valid; the planner the import would use
//! (rules from configuration alone, no secret read) says what each destination would get. The
//! ledger is neither opened nor created: whether an event is already there (the import would
//! count it a duplicate) and what the identity bridge would join are not known here, and the
//! summary says so.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use serde::Serialize;

use super::{open_rows, FileArgs, Input};
use crate::config::Config;
use crate::core::delivery::DeliveryState;
use crate::ingest::canonical::parse_event;
use crate::ingest::FieldError;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// The file, read exactly as `surety import` would read it.
    #[command(flatten)]
    pub input: FileArgs,
    /// How many invalid rows to list (all are counted).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What the import would make of the file.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Report {
    pub file: String,
    pub format: &'static str,
    /// Rows read (a CSV header is not a row).
    pub rows: u64,
    /// Rows that would become events (the first of each event id).
    pub valid: u64,
    /// Rows the import would reject, with the first `--show` of them.
    pub invalid: u64,
    /// Valid rows whose event id an earlier row of the file already had: the import keeps the
    /// first and counts these as duplicates (or conflicts, when they differ).
    pub repeated: u64,
    /// Valid events no destination's catalog entry routes (`not_routed`).
    pub not_routed: u64,
    pub errors: Vec<InvalidRow>,
    /// Per destination: the deliveries the valid events would plan, by state and reason.
    pub destinations: BTreeMap<String, Plans>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct InvalidRow {
    pub line: u64,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Plans {
    /// Would be sent (`pending`).
    pub planned: u64,
    /// Would wait for an identity capture (`pending:awaiting_identity`).
    pub awaiting_identity: u64,
    /// `skipped` and `rejected` deliveries by `state:reason`.
    pub ended: BTreeMap<String, u64>,
}

/// Runs `surety validate`; the exit code is 1 when a row is invalid or the file has none.
pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let report = check(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(if report.invalid > 0 || report.valid == 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Reads the whole file as the import would, and plans each valid event.
pub fn check(args: &ValidateArgs) -> anyhow::Result<Report> {
    let args_in = &args.input;
    let file = args_in.file.as_path();
    let how = Input::check(args_in)?;
    let config = Config::load_for_planning(args_in.config.as_deref())?;
    let planner = crate::platforms::planner_from_config(&config);
    let input = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut rows = open_rows(input, args_in, how, None)?;

    let now = Utc::now();
    let mut report = Report { file: file.display().to_string(), format: how.format.name(), ..Report::default() };
    let mut seen = HashSet::new();
    while let Some(row) = rows.next_row().with_context(|| format!("reading {} failed", file.display()))? {
        report.rows = report.rows.saturating_add(1);
        let event = match row.value.and_then(|v| parse_event(v, &args_in.source, now, "")) {
            Ok(event) => event,
            Err(errors) => {
                report.invalid = report.invalid.saturating_add(1);
                if report.errors.len() < args.show {
                    report.errors.push(InvalidRow { line: row.line, errors });
                }
                continue;
            }
        };
        if !seen.insert(event.event_id.as_str().to_owned()) {
            report.repeated = report.repeated.saturating_add(1);
            continue;
        }
        report.valid = report.valid.saturating_add(1);
        let plans = planner.plan(&event, now);
        if plans.is_empty() {
            report.not_routed = report.not_routed.saturating_add(1);
        }
        for plan in plans {
            let counts = report.destinations.entry(plan.destination).or_default();
            let slot = match (plan.state, plan.reason) {
                (DeliveryState::Pending, None) => &mut counts.planned,
                (DeliveryState::Pending, Some(_)) => &mut counts.awaiting_identity,
                (state, reason) => {
                    let key = format!("{}:{}", state.as_str(), reason.unwrap_or("-"));
                    counts.ended.entry(key).or_default()
                }
            };
            *slot = slot.saturating_add(1);
        }
    }
    Ok(report)
}

impl Report {
    fn text(&self) -> String {
        let mut out = format!(
            "{} ({}): {} rows, nothing written\n  valid      {}\n  invalid    {}\n  repeated   {} (an event id an \
             earlier row had: the import keeps the first)\n",
            self.file, self.format, self.rows, self.valid, self.invalid, self.repeated
        );
        for row in &self.errors {
            let why: Vec<String> = row.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            out.push_str(&format!("    line {}: {}\n", row.line, why.join("; ")));
        }
        let listed = u64::try_from(self.errors.len()).unwrap_or(u64::MAX);
        if self.invalid > listed {
            out.push_str(&format!("    … and {} more (--show N lists more)\n", self.invalid.saturating_sub(listed)));
        }
        if self.valid > 0 {
            out.push_str("per destination, from each row as written (before the identity bridge joins):\n");
            for (name, plans) in &self.destinations {
                let ended: Vec<String> = plans.ended.iter().map(|(k, n)| format!("{k} {n}")).collect();
                out.push_str(&format!(
                    "  {name}: {} would be sent, {} would wait for an identity{}\n",
                    plans.planned,
                    plans.awaiting_identity,
                    if ended.is_empty() { String::new() } else { format!(", {}", ended.join(", ")) }
                ));
            }
            if self.not_routed > 0 {
                out.push_str(&format!("  not routed to any destination: {}\n", self.not_routed));
            }
            out.push_str(
                "whether an event is already in the ledger is not checked: the import counts those as duplicates\n",
            );
        }
        if self.rows == 0 {
            out.push_str("error: the file has no rows\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ValidateArgs,
    }

    /// `surety validate` over `text` in a file with `extension`, with one GA4 destination routed
    /// for `order_paid` (its secret unset: validate reads none).
    fn run(text: &str, extension: &str, flags: &[&str]) -> Report {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("rows.{extension}"));
        std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
        let config = dir.path().join("surety.toml");
        let toml = format!(
            "[storage]\nurl = \"sqlite://{}\"\n\n[catalog.order_paid.ga4-web]\nevent = \"purchase\"\n\n\
             [[destinations]]\nname = \"ga4-web\"\ntype = \"ga4\"\nmeasurement_id = \"G-TEST123\"\n\
             api_secret = \"env:SURETY_UNSET_ON_PURPOSE\"\n",
            dir.path().join("ledger.db").display()
        );
        std::fs::write(&config, toml).unwrap();
        let mut argv = vec!["validate", path.to_str().unwrap(), "--config", config.to_str().unwrap()];
        argv.extend_from_slice(flags);
        let report = check(&Cli::parse_from(argv).args).unwrap();
        assert!(!dir.path().join("ledger.db").exists(), "no ledger is created");
        report
    }

    #[test]
    fn valid_rows_say_what_each_destination_would_get() {
        let at = (Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
        let text = format!(
            "kind,subject.type,subject.id,occurred_at,value,currency,identity.client_id,consent.analytics\n\
             order_paid,order,1,{at},10.5,EUR,555.1,granted\norder_paid,order,2,{at},3,EUR,555.2,granted\n"
        );
        let report = run(&text, "csv", &[]);
        assert_eq!((report.rows, report.valid, report.invalid, report.repeated), (2, 2, 0, 0));
        assert_eq!(report.destinations["ga4-web"].planned, 2, "{report:?}");
    }

    #[test]
    fn invalid_and_repeated_rows_are_counted_with_their_lines_and_old_events_skipped() {
        let at = Utc::now().to_rfc3339();
        let old = (Utc::now() - chrono::Duration::days(400)).to_rfc3339();
        let row = |id: &str, at: &str, extra: &str| {
            format!(
                "{{\"kind\":\"order_paid\",\"subject\":{{\"type\":\"order\",\"id\":\"{id}\"}},\"occurred_at\":\"{at}\",\
                 \"identity\":{{\"client_id\":\"555.{id}\"}},\"consent\":{{\"analytics\":\"granted\"}}{extra}}}\n"
            )
        };
        let text =
            [row("1", &at, ""), row("2", &at, ",\"value\":\"x\""), row("1", &at, ""), row("3", &old, "")].concat();
        let report = run(&text, "ndjson", &["--show", "5"]);
        assert_eq!((report.rows, report.valid, report.invalid, report.repeated), (4, 2, 1, 1), "{report:?}");
        assert_eq!(report.errors[0].line, 2);
        assert_eq!(report.errors[0].errors[0].field, "value");
        let ga4 = &report.destinations["ga4-web"];
        assert_eq!(ga4.planned, 1, "{report:?}");
        assert_eq!(ga4.ended.get("skipped:outside_window"), Some(&1), "{report:?}");
    }
}

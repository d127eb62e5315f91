//! The report: counts per destination and class, the unexplained mismatches, the bad rows; as
//! JSON (`--json`, `POST /v1/reconcile`) or as a human summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::read::BadRow;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Source rows in the window, and their value.
    pub source_rows: u64,
    pub source_value: f64,
    /// Ledger events in the window (or matching a source row in it).
    pub ledger_events: u64,
    pub bad_rows: u64,
    pub explained: u64,
    pub unexplained: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DestReport {
    /// Class → how many rows or events ended in it.
    pub classes: BTreeMap<String, u64>,
    pub source: u64,
    pub source_value: f64,
    pub received: u64,
    pub planned: u64,
    pub delivered: u64,
    /// Conversions the platform's report counts in the window (none without a report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_reported: Option<u64>,
    pub explained: u64,
    pub unexplained: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The event id, a platform transaction id, or `day/event name` for aggregate reports.
    pub key: String,
    pub event_id: Option<String>,
    pub destination: String,
    pub class: String,
    pub detail: String,
    /// The amount at stake (for ordering the largest first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub window: Window,
    pub totals: Totals,
    pub destinations: BTreeMap<String, DestReport>,
    /// Every unexplained difference (explained ones are only counted).
    pub mismatches: Vec<Mismatch>,
    pub bad_rows: Vec<BadRow>,
}

/// When the run should exit 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Something unexplained (or a bad row).
    #[default]
    Unexplained,
    /// Anything but `matched`.
    Any,
    Never,
}

impl Report {
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>) -> Self {
        Self {
            window: Window { since, until },
            totals: Totals::default(),
            destinations: BTreeMap::new(),
            mismatches: Vec::new(),
            bad_rows: Vec::new(),
        }
    }

    /// Totals and the mismatch order: the largest amounts first.
    pub fn finish(&mut self) {
        self.totals.bad_rows = self.bad_rows.len() as u64;
        self.totals.explained = self.destinations.values().map(|d| d.explained).sum();
        self.totals.unexplained = self.destinations.values().map(|d| d.unexplained).sum();
        self.mismatches.sort_by(|a, b| {
            let v = |m: &Mismatch| m.value.map_or(0.0, f64::abs);
            v(b).total_cmp(&v(a)).then_with(|| a.key.cmp(&b.key)).then_with(|| a.destination.cmp(&b.destination))
        });
    }

    pub fn fails(&self, on: FailOn) -> bool {
        match on {
            FailOn::Never => false,
            FailOn::Unexplained => self.totals.unexplained > 0 || self.totals.bad_rows > 0,
            FailOn::Any => self.totals.unexplained + self.totals.explained + self.totals.bad_rows > 0,
        }
    }

    /// The human summary: per destination the funnel and its gaps, then the largest mismatches.
    pub fn render(&self, largest: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Reconcile {} .. {}: {} source row(s) ({:.2}), {} ledger event(s)",
            self.window.since.to_rfc3339(),
            self.window.until.to_rfc3339(),
            self.totals.source_rows,
            self.totals.source_value,
            self.totals.ledger_events
        );
        for (name, d) in &self.destinations {
            let platform = d.platform_reported.map_or("no report".to_owned(), |n| n.to_string());
            let _ = writeln!(
                out,
                "\n{name}: source {} ({:.2}) · received {} · planned {} · delivered {} · platform {platform}",
                d.source, d.source_value, d.received, d.planned, d.delivered
            );
            let _ = writeln!(out, "  explained gaps {} · unexplained {}", d.explained, d.unexplained);
            for (class, n) in &d.classes {
                let _ = writeln!(out, "  {class:<28} {n}");
            }
        }
        if !self.mismatches.is_empty() {
            let _ = writeln!(out, "\nLargest unexplained mismatches ({} in all):", self.mismatches.len());
            for m in self.mismatches.iter().take(largest) {
                let _ = writeln!(out, "  [{}] {} {}: {}", m.destination, m.class, m.key, m.detail);
                if let Some(id) = &m.event_id {
                    let _ = writeln!(out, "      surety events show {id}");
                }
            }
        }
        if !self.bad_rows.is_empty() {
            let _ = writeln!(out, "\nRows that could not be read ({}):", self.bad_rows.len());
            for b in self.bad_rows.iter().take(largest) {
                let _ = writeln!(out, "  {} line {}: {}", b.file, b.line, b.message);
            }
        }
        let verdict = if self.totals.unexplained == 0 { "nothing unexplained" } else { "unexplained differences" };
        let _ =
            writeln!(out, "\n{verdict}: {} unexplained, {} explained", self.totals.unexplained, self.totals.explained);
        out
    }
}

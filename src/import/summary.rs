//! What an import made of its rows, and the summary it prints.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{IngestResult, IngestStatus};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Counts {
    /// Rows read (blank lines not counted).
    pub rows: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub conflict: u64,
    pub rejected: u64,
    /// Accepted events that no destination's catalog entry names.
    pub not_routed: u64,
    /// Deliveries planned for the accepted events, by `destination:state[:reason]`.
    pub deliveries: BTreeMap<String, u64>,
}

impl Counts {
    pub fn add_results(&mut self, results: &[IngestResult]) {
        for r in results {
            match r.status {
                IngestStatus::Accepted => {
                    self.accepted += 1;
                    if r.deliveries.is_empty() {
                        self.not_routed += 1;
                    }
                    for d in &r.deliveries {
                        let key = match d.reason {
                            Some(reason) => format!("{}:{}:{reason}", d.destination, d.state),
                            None => format!("{}:{}", d.destination, d.state),
                        };
                        *self.deliveries.entry(key).or_default() += 1;
                    }
                }
                IngestStatus::Duplicate => self.duplicate += 1,
                IngestStatus::Conflict => self.conflict += 1,
            }
        }
    }

    pub fn add(&mut self, other: &Counts) {
        self.rows += other.rows;
        self.accepted += other.accepted;
        self.duplicate += other.duplicate;
        self.conflict += other.conflict;
        self.rejected += other.rejected;
        self.not_routed += other.not_routed;
        for (k, v) in &other.deliveries {
            *self.deliveries.entry(k.clone()).or_default() += v;
        }
    }

    /// Rows that were valid events (whatever the ledger already held).
    pub fn usable(&self) -> u64 {
        self.accepted + self.duplicate + self.conflict
    }
}

/// The end of one run.
#[derive(Serialize)]
pub(crate) struct Summary<'a> {
    pub file: &'a Path,
    pub format: &'a str,
    /// Set when this run continued from a checkpoint.
    pub resumed_at_line: Option<u64>,
    /// This run.
    #[serde(flatten)]
    pub run: &'a Counts,
    /// Every run over this file so far (equal to the run's unless resumed).
    pub totals: &'a Counts,
    pub elapsed_secs: f64,
    pub rows_per_sec: f64,
    /// Set when rows were rejected.
    pub rejects_file: Option<&'a Path>,
    pub checkpoint: &'a Path,
}

impl<'a> Summary<'a> {
    pub fn new(file: &'a Path, format: &'a str, run: &'a Counts, totals: &'a Counts, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        Summary {
            file,
            format,
            resumed_at_line: None,
            run,
            totals,
            elapsed_secs: (secs * 1000.0).round() / 1000.0,
            rows_per_sec: if secs > 0.0 { (run.rows as f64 / secs).round() } else { 0.0 },
            rejects_file: None,
            checkpoint: Path::new(""),
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let c = self.run;
        let _ = writeln!(out, "imported {} ({})", self.file.display(), self.format);
        if let (Some(line), 0) = (self.resumed_at_line, c.rows) {
            let t = self.totals;
            let _ = writeln!(
                out,
                "  no rows after line {line}, where the checkpoint {} says earlier runs stopped \
                 ({} rows: {} accepted, {} duplicate, {} conflict, {} rejected)",
                self.checkpoint.display(),
                t.rows,
                t.accepted,
                t.duplicate,
                t.conflict,
                t.rejected
            );
            return out;
        }
        if let Some(line) = self.resumed_at_line {
            let _ = writeln!(out, "  resumed at line {line} (a checkpoint said the rows before were committed)");
        }
        let _ = writeln!(out, "  rows        {:>10}", c.rows);
        let _ = writeln!(out, "  accepted    {:>10}   not routed {}", c.accepted, c.not_routed);
        let _ = writeln!(out, "  duplicate   {:>10}", c.duplicate);
        let _ = writeln!(out, "  conflict    {:>10}", c.conflict);
        let rejects = self.rejects_file.map(|p| format!("   → {}", p.display())).unwrap_or_default();
        let _ = writeln!(out, "  rejected    {:>10}{rejects}", c.rejected);
        for (key, n) in &c.deliveries {
            let _ = writeln!(out, "  delivery    {n:>10}   {key}");
        }
        let _ = writeln!(out, "  took {:.1} s, {} rows/s", self.elapsed_secs, self.rows_per_sec);
        if self.resumed_at_line.is_some() {
            let t = self.totals;
            let _ = writeln!(
                out,
                "  whole file so far: {} rows, {} accepted, {} duplicate, {} conflict, {} rejected",
                t.rows, t.accepted, t.duplicate, t.conflict, t.rejected
            );
        }
        let _ = writeln!(
            out,
            "checkpoint {} (a rerun continues after the last row; --restart reads the file again)",
            self.checkpoint.display()
        );
        if c.deliveries.keys().any(|k| k.contains(":pending")) {
            let _ = writeln!(out, "pending deliveries are sent by `surety serve` (the ledger is the queue)");
        }
        out
    }
}

//! Progress on stderr: a bar with rate and ETA on a terminal, a plain line every few seconds
//! otherwise (logs, CI). Measured in committed bytes of the input, reported in rows.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    start_offset: u64,
    total: u64,
}

impl Progress {
    /// `total` is the input's size; `start_offset` where this run begins in it.
    pub fn new(total: u64, start_offset: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style =
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(start_offset);
            bar.reset_eta();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self { bar, started: now, last_line: now, start_offset, total }
    }

    /// After a commit: `offset` reached, `rows` read by this run.
    pub fn update(&mut self, offset: u64, rows: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = rows as f64 / secs;
        match &self.bar {
            Some(bar) => {
                bar.set_position(offset);
                bar.set_message(format!("{rows} rows, {rate:.0} rows/s"));
            }
            None if self.last_line.elapsed() >= PLAIN_EVERY => {
                self.last_line = Instant::now();
                let done = offset.saturating_sub(self.start_offset) as f64;
                let left = self.total.saturating_sub(offset) as f64;
                let eta = if done > 0.0 { format!("{:.0} s", left * secs / done) } else { "?".into() };
                let pct = if self.total > 0 { offset as f64 * 100.0 / self.total as f64 } else { 100.0 };
                eprintln!("import: {rows} rows, {pct:.0} % of the file, {rate:.0} rows/s, ETA {eta}");
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

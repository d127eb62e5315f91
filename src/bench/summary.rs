//! The closing table of `surety bench`: one line per scenario (and per destination of d).

use super::{harness, proc, Report, Row};

pub(super) fn summary(rows: &[Row], report: &Report) {
    report.line(String::new());
    report.line("summary".to_owned());
    report.line(format!(
        "  {:<22} {:>9} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}  target",
        "scenario", "count", "secs", "per sec", "per CPU-s", "p50 ms", "p90 ms", "p99 ms", "max ms", "peak MiB"
    ));
    for r in rows {
        let l = r.latency_ms;
        let verdict = match r.target_met {
            Some(true) => format!("met ({})", r.target),
            Some(false) => format!("MISSED ({})", r.target),
            None => r.target.to_owned(),
        };
        report.line(format!(
            "  {:<22} {:>9} {:>7.2} {:>9} {:>10} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8}  {verdict}",
            format!("{:?}. {}", r.scenario, r.name).to_lowercase(),
            harness::grouped(r.count as f64),
            r.seconds,
            harness::grouped(r.per_second),
            r.per_cpu_second.map_or_else(|| "-".to_owned(), harness::grouped),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            r.peak_rss_mib.map_or_else(|| "-".to_owned(), |m| format!("{m:.1}")),
        ));
        for d in &r.destinations {
            let l = d.latency_ms;
            report.line(format!(
                "    {:<20} {:>9} {:>7.2} {:>9} {:>10} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8}  {}",
                format!("-> {}", d.platform),
                harness::grouped(d.events as f64),
                d.seconds,
                harness::grouped(d.per_second),
                "-",
                l.p50,
                l.p90,
                l.p99,
                l.max,
                "-",
                if d.check_passed { "exactly once: OK" } else { "exactly once: FAIL" },
            ));
        }
    }
    report.line(
        "  latency: a per 1000-event request, b per request, c and d per event from ingest request to the \
         simulator's receipt"
            .to_owned(),
    );
    if rows.iter().any(|r| !r.destinations.is_empty()) {
        report.line(
            "  d: per destination, delivered events/s from the first ingest request to the last event its \
             simulator took; the destinations share the run"
                .to_owned(),
        );
    }
    report.line("  per CPU-s: count per CPU-second of this whole process (client and simulator included)".to_owned());
    let busy = rows.iter().filter_map(|r| r.cpu).map(|c| c.other_cores).fold(0.0, f64::max);
    if busy > proc::CpuUse::BUSY_MACHINE {
        report.line(format!(
            "  NOTE: other processes used up to {busy:.2} cores during the run; rates are lower than on an idle machine"
        ));
    }
}

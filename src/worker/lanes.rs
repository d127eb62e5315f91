//! Tells the process's [`Lanes`] what a report said about the platform, after the breaker heard
//! it: the circuit as it now stands (and until when), the last error the platform gave, the
//! last time it took something. The console's health lines read it.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::Breaker;
use crate::core::Outcome;
use crate::delivery::SendReport;
use crate::telemetry::lanes::{Circuit, Lanes, PlatformError};

/// A breaker's instant as a wall-clock time.
fn wall(until: Instant, now: Instant, utc: DateTime<Utc>) -> DateTime<Utc> {
    let ahead = until.saturating_duration_since(now);
    utc + chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::MAX)
}

pub(super) fn tell_lanes(destination: &str, report: &SendReport, breaker: &Breaker, lanes: &Lanes, now: Instant) {
    if report.outcomes.is_empty() && report.requests.is_empty() {
        return;
    }
    let utc = Utc::now();
    // The answer that says most about the platform: a halt, then a rejection, then a retry.
    let error = report
        .outcomes
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Halt { reason } => Some((0, "halt", reason.clone())),
            Outcome::Rejected { reason, messages } if messages.is_empty() => Some((1, "rejected", reason.clone())),
            Outcome::Rejected { reason, messages } => {
                Some((1, "rejected", format!("{reason}: {}", messages.join("; "))))
            }
            Outcome::Retry { reason, .. } => Some((2, "retry", reason.clone())),
            _ => None,
        })
        .min_by_key(|(rank, ..)| *rank);
    let took = report.outcomes.iter().any(|r| matches!(r.outcome, Outcome::Delivered { .. }));
    let halted = error.as_ref().is_some_and(|(_, outcome, _)| *outcome == "halt");
    lanes.update(destination, |lane| {
        lane.circuit = match breaker.open_until() {
            None => Circuit::Closed,
            // A halt keeps the lane halted through its probes until the platform takes something.
            Some(_) if halted || lane.circuit == Circuit::Halted => Circuit::Halted,
            Some(_) => Circuit::Open,
        };
        lane.open_until = breaker.open_until().map(|until| wall(until, now, utc));
        if let Some((_, outcome, message)) = error {
            lane.last_error = Some(PlatformError { at: utc, outcome, message });
        }
        if took {
            lane.last_success = Some(utc);
        }
    });
}

//! `--platform DEST=api`: the platform's side read back without a file, as its platform offers
//! (`platforms::ReadBack`): through its reporting API (GA4's Data API), from the follow-up
//! results the ledger already holds (Google Ads), or refused with why a file is needed.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};

use super::read::{Interner, PlatformRow, Shape};
use super::{Input, ReconcileError, Scope};
use crate::platforms::{PullError, PullQuery, ReadBack};

/// What `--platform DEST=…` names: a report file, or `api`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformArg {
    File(PathBuf),
    Api,
}

/// `DEST=FILE` or `DEST=api` (a file named `api` is `./api`).
pub fn parse_platform(s: &str) -> Result<(String, PlatformArg), String> {
    match s.split_once('=') {
        Some((d, "api")) if !d.is_empty() => Ok((d.to_owned(), PlatformArg::Api)),
        Some((d, f)) if !d.is_empty() && !f.is_empty() => Ok((d.to_owned(), PlatformArg::File(PathBuf::from(f)))),
        _ => Err(format!("expected DEST=FILE or DEST=api, got '{s}'")),
    }
}

/// A platform's side as a run gets it.
pub enum PlatformInput {
    /// Its report, as a file.
    File(Input),
    /// Read back by Surety (`api`).
    Api,
}

/// Refuses `DEST=api` for a platform that offers no read back, before anything is read.
pub fn check(scope: &Scope) -> Result<(), ReconcileError> {
    match scope.platform.read_back {
        ReadBack::Api | ReadBack::FollowUps => Ok(()),
        ReadBack::File(why) => Err(ReconcileError::Usage(format!(
            "--platform {}=api: {} cannot be read back: {why}",
            scope.name, scope.platform.label
        ))),
    }
}

/// The platform's count for the window, through its reporting API, as report rows (per
/// conversion, with event names). A refusal or failure of the API ends the run.
pub async fn pull(
    scope: &Scope,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(Shape, Vec<PlatformRow>), ReconcileError> {
    let mut events: Vec<String> = scope.route_events.iter().cloned().collect();
    events.sort();
    // `until` is exclusive: the last day is the one holding the instant before it.
    let last = until - Duration::nanoseconds(1);
    let query =
        PullQuery { first_day: since.date_naive(), last_day: last.date_naive().max(since.date_naive()), events };
    let label = scope.platform.label;
    let rows = scope.platform.pull(&scope.config, query).await.map_err(|e| match e {
        PullError::NotConfigured(m) => ReconcileError::Usage(format!("--platform {}=api: {m}", scope.name)),
        e => ReconcileError::ReadBack(format!("--platform {}=api: reading {label}'s count failed: {e}", scope.name)),
    })?;
    let mut interner = Interner::default();
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| PlatformRow {
            // The row's place in the API's answer stands for a file's line number.
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            transaction_id: r.transaction_id.map(String::into_boxed_str),
            day: r.day,
            event: r.event.map(|e| interner.get(e)),
            value: r.value,
            count: r.count,
        })
        .collect();
    Ok((Shape { per_event: true, has_event: true }, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_is_a_word_and_anything_else_a_file() {
        assert_eq!(parse_platform("ga4-web=api"), Ok(("ga4-web".into(), PlatformArg::Api)));
        assert_eq!(parse_platform("ga4-web=./api"), Ok(("ga4-web".into(), PlatformArg::File("./api".into()))));
        assert_eq!(parse_platform("gads=r.csv"), Ok(("gads".into(), PlatformArg::File("r.csv".into()))));
        assert!(parse_platform("=api").unwrap_err().contains("DEST=FILE or DEST=api"));
        assert!(parse_platform("ga4-web").is_err() && parse_platform("ga4-web=").is_err());
    }
}

//! Reading a platform's own count back for `surety reconcile --platform DEST=api`: what each
//! platform offers for it ([`ReadBack`]), and the platform-neutral rows an API read returns
//! (reconcile turns them into its report rows). docs/platforms.md §Reading the platforms' side back.

use chrono::NaiveDate;
use futures::future::BoxFuture;

/// How reconcile can learn what a platform counted, without a person exporting a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBack {
    /// A reporting API lists the conversions it counted, per transaction id ([`Entry::pull`](super::Entry::pull)).
    Api,
    /// The platform confirms each request later (Google's `requestStatus:retrieve`): the ledger's
    /// follow-up results are its side, with no further request.
    FollowUps,
    /// No per-conversion read API: an export is needed, for the reason given.
    File(&'static str),
}

/// One row of what a platform reports it counted: a conversion (or several, `count`) of one day.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedRow {
    pub transaction_id: Option<String>,
    pub day: NaiveDate,
    pub event: Option<String>,
    pub value: Option<f64>,
    pub count: u32,
}

/// What to read: the days (both included, the platform's reporting days) and, when the
/// destination routes only some events, those event names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullQuery {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub events: Vec<String>,
}

/// Why a platform's count could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PullError {
    /// The destination is not set up for it (no `data_api` table, an unreadable key).
    #[error("{0}")]
    NotConfigured(String),
    /// No token: the grant was refused or the endpoint failed (never the token itself).
    #[error("{0}")]
    Auth(String),
    /// The API answered an error: HTTP status, Google's status name and message.
    #[error("the reporting API answered HTTP {status}{}: {message}", name.as_deref().map(|n| format!(" {n}")).unwrap_or_default())]
    Refused { status: u16, name: Option<String>, message: String },
    /// The answer could not be read (network, malformed JSON, a value that is not a number).
    #[error("{0}")]
    Unreadable(String),
}

/// A read in progress.
pub type Pulling = BoxFuture<'static, Result<Vec<ReportedRow>, PullError>>;

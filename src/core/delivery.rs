//! A delivery — one (event, destination) pair — and the vocabulary of its state machine.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::Event;

/// Where a delivery stands. `Pending`, `Claimed` and `Sending` are live; the rest are ended.
///
/// `Claimed` holds a lease but nothing has left; `Sending` is written (and committed) just before
/// the request leaves, so a crash while `Sending` means "maybe sent": it comes back `InDoubt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Claimed,
    Sending,
    Delivered,
    Rejected,
    Skipped,
    Dead,
    InDoubt,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 8] = [
        Self::Pending,
        Self::Claimed,
        Self::Sending,
        Self::Delivered,
        Self::Rejected,
        Self::Skipped,
        Self::Dead,
        Self::InDoubt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Sending => "sending",
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Skipped => "skipped",
            Self::Dead => "dead",
            Self::InDoubt => "in_doubt",
        }
    }

    /// Ended states have a reason and no next attempt.
    pub fn is_ended(self) -> bool {
        !matches!(self, Self::Pending | Self::Claimed | Self::Sending)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown delivery state '{s}'"))
    }
}

/// Stable reason codes, shown in the API, the CLI and metrics.
pub mod reason {
    pub const CONSENT_DENIED: &str = "consent_denied";
    pub const BROWSER_TRACKED: &str = "browser_tracked";
    pub const NO_IDENTITY: &str = "no_identity";
    /// Pending: the destination needs an identity the event lacks, and waits (its
    /// `identity_wait_secs`) for a capture of the subject; then `no_identity` if none came.
    pub const AWAITING_IDENTITY: &str = "awaiting_identity";
    pub const OUTSIDE_WINDOW: &str = "outside_window";
    pub const INVALID: &str = "invalid";
    pub const SENT: &str = "sent";
    pub const PLATFORM_REJECTED: &str = "platform_rejected";
    pub const ATTEMPTS_EXHAUSTED: &str = "attempts_exhausted";
    pub const AGE_EXHAUSTED: &str = "age_exhausted";
    pub const CRASHED_WHILE_SENDING: &str = "crashed_while_sending";
    /// A person checked the platform and ended a delivery that needed one (`surety dlq settle`):
    /// `delivered:settled_by_person` or, found missing and left so, `skipped:settled_by_person`.
    pub const SETTLED_BY_PERSON: &str = "settled_by_person";
    /// Delivered and taken for processing, but the platform never said what it kept (its
    /// follow-up was given up).
    pub const PROCESSING_UNKNOWN: &str = "processing_unknown";
    /// A Google Ads adjustment that would restate the value the conversion already has (a
    /// chargeback after a full refund): Google would refuse the repeat as a duplicate.
    pub const ALREADY_RESTATED: &str = "already_restated";
    /// The destination runs in `mode = "validate"`: the delivery was built and checked against
    /// the platform's validation route (its verdict in the detail), and nothing was counted.
    /// `surety dlq replay` releases it once the destination is live.
    pub const VALIDATE_ONLY: &str = "validate_only";
    /// The destination's `sample` holds this delivery back (another kind, or a subject outside
    /// the sampled share). `surety dlq replay` releases it once the sample admits it.
    pub const NOT_SAMPLED: &str = "not_sampled";
    /// Skipped reasons a plain (unforced) replay releases: held back by a roll-out setting, not
    /// by anything about the event itself.
    pub const RELEASABLE: [&str; 2] = [VALIDATE_ONLY, NOT_SAMPLED];
}

/// How a catalog entry routes a kind to one destination.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The destination's event name (`purchase`, `refund`, `Purchase`, …).
    pub event: String,
    /// The browser already records this kind for this destination.
    #[serde(default)]
    pub browser_tracked: bool,
    /// Meta `action_source` for this kind (`system_generated` unless stated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_source: Option<String>,
}

/// A delivery claimed by a worker, with the stored event it is built from.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery_id: i64,
    pub event: Event,
    pub route: Route,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Personal fields to leave out because consent for ad user data was not given.
    pub strip_personal: bool,
    /// When the delivery was planned: the age limit counts from here.
    pub created_at: DateTime<Utc>,
    /// This send is a forced replay of a delivered delivery.
    pub forced: bool,
}

/// What a destination made of one delivery in a send. Each variant is a different course for
/// the worker: the compiler, not a string prefix, tells a halt from a retry.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The platform took it. `accepted` says whether acceptance is known (vs. merely "sent").
    Delivered { accepted: bool, detail: Option<String> },
    /// Try again later, `after` the backoff or what the platform asked for.
    Retry { reason: String, after: RetryAfter },
    /// The destination cannot work until a person acts (credentials or access refused, an API
    /// version retired): the worker pauses the whole destination for `halt_cooldown_secs`, and
    /// this delivery waits as a retry would. The ledger shows the reason as `halt: …`.
    Halt { reason: String },
    /// Permanent, for this event only: the platform (or our validation of its rules) refused it.
    Rejected { reason: String, messages: Vec<String> },
    /// Not sent, on purpose: sending would add nothing or count twice (`reason` is a stable code).
    Skipped { reason: &'static str, detail: String },
}

impl Outcome {
    /// A retry on our own backoff, or no sooner than the platform's `Retry-After` if it sent one.
    pub fn retry(reason: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::Retry { reason: reason.into(), after: RetryAfter::from_header(retry_after) }
    }

    /// The destination must stop until a person acts.
    pub fn halt(reason: impl Into<String>) -> Self {
        Self::Halt { reason: reason.into() }
    }

    /// The delivery is to be sent again (a retry or a halt): it stays pending.
    pub fn is_retry(&self) -> bool {
        matches!(self, Self::Retry { .. } | Self::Halt { .. })
    }
}

/// When a retried delivery is due again: the retry action (as in Vector's `RetryAction`). The
/// delay itself is `core::retry::RetryPolicy::delay`, which takes [`RetryAfter::floor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// Our exponential backoff with jitter.
    Backoff,
    /// The platform said when (`Retry-After`): no sooner than that.
    Told(Duration),
    /// The platform said we send too much (a rate limit or quota): no sooner than this, which
    /// is never shorter than the platform's documented slow-down period.
    SlowDown(Duration),
}

impl RetryAfter {
    /// What a `Retry-After` header (read by `delivery::http::retry_after`) asks for.
    pub fn from_header(retry_after: Option<Duration>) -> Self {
        retry_after.map_or(Self::Backoff, Self::Told)
    }

    /// The least wait before the next attempt, if the platform set one.
    pub fn floor(self) -> Option<Duration> {
        match self {
            Self::Backoff => None,
            Self::Told(d) | Self::SlowDown(d) => Some(d),
        }
    }
}

/// What the attempt log records an attempt (or an ending without one) as: the `outcome` column
/// of `attempts`, shown on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    Delivered,
    /// Sent again later (a retry or a halt), or ended `dead` after its last retry.
    Retry,
    Rejected,
    Skipped,
    /// Ended before sending because its age limit passed.
    Dead,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Rejected => "rejected",
            Self::Skipped => "skipped",
            Self::Dead => "dead",
        }
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One HTTP request made to a platform, as the ledger records it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// What was called: `collect`, `debug`, …
    pub endpoint: &'static str,
    pub sent_at: DateTime<Utc>,
    pub duration: Duration,
    /// HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Network error or timeout, if no answer came.
    pub error: Option<String>,
    /// The first bytes of the answer (bounded; never holds personal data we did not send).
    pub response_excerpt: String,
    /// SHA-256 of the request body.
    pub body_sha256: String,
    /// The body itself, as sent, for the event page (`[ledger] keep_request_bodies_days`): a
    /// JSON payload whose personal fields are already hashes. `None` where a body may hold a
    /// secret (an OAuth token request) or is not text.
    pub body: Option<String>,
}

/// What a platform says, later, about a request it took for processing (Google's
/// `requestStatus:retrieve`): how "sent" becomes "accepted" or not.
#[derive(Clone, Debug, PartialEq)]
pub enum FollowUp {
    /// Still processing: ask again later.
    NotYet,
    /// Processed, everything kept.
    Accepted,
    /// Processed, some events refused; the platform gives reasons and counts, not which events.
    Partial { messages: Vec<String> },
    /// Processing failed for the whole request.
    Failed { messages: Vec<String> },
    /// The question itself failed (network, 5xx): ask again later.
    Error(String),
    /// The platform will never say: it does not know the request id, or the request stayed
    /// unanswered past the destination's give-up age (`Destination::follow_up_give_up_after`). Asking ends; the deliveries stay
    /// delivered, marked `processing_unknown` (sent and taken, processing never confirmed).
    Unconfirmed(String),
}

/// One destination's live queue.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueueStat {
    pub destination: String,
    /// Deliveries pending or in flight.
    pub depth: u64,
    /// When the oldest of them was planned.
    pub oldest: Option<DateTime<Utc>>,
}

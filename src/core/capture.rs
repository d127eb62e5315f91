//! What the identity bridge is fed: an identity captured for a subject (at checkout, a lead
//! form, or a server-side source), joined to that subject's events at planning time.

use chrono::{DateTime, Utc};

use super::event::{Consent, Identity, Subject};

/// An identity captured for a subject at checkout or lead capture.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityCapture {
    pub subject: Subject,
    pub captured_at: DateTime<Utc>,
    pub identity: Identity,
    pub consent: Consent,
    /// Posted from a browser with a capture key: untrusted, so it may add to the subject's
    /// identity and consent but never overwrite what the bridge already holds.
    pub from_browser: bool,
}

//! The domain, with no IO: events, ids, personal-data hashing, the catalog, planning rules,
//! delivery states and retry delays. Everything else depends on this; it depends on nothing else.

pub mod capture;
pub mod currency;
pub mod delivery;
pub mod event;
pub mod ga_cookie;
pub mod json;
pub mod pii;
pub mod plan;
pub mod retry;

pub use self::capture::IdentityCapture;
pub use self::delivery::{
    AttemptOutcome, Claimed, DeliveryState, FollowUp, Outcome, QueueStat, RequestRecord, RetryAfter, Route,
};
pub use self::event::{Consent, ConsentState, Currency, Event, EventId, IdError, Identity, Item, Kind, Subject};

//! Sources: turn what a source hands over into canonical events, then persist them. Ingest never
//! calls a destination; it commits events and their planned deliveries, and workers take it from
//! there.

pub mod canonical;
pub mod intake;

use serde::Serialize;

/// The one JSON entry point for request bodies (duplicate keys refused); it lives in `core` so
/// that `sources` can read with it too.
pub use crate::core::json;

/// One thing wrong with an input, named by its field path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path into the input, e.g. `identity.email` or `items[0].price`.
    pub field: String,
    /// Stable code: `required`, `invalid`, `unknown_field`, `malformed`, `too_long`, `out_of_range`,
    /// `invalid_characters` (an id with an invisible character), `duplicate_key`.
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into() }
    }
}

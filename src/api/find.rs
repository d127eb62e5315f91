//! `GET /v1/search?q=` and `GET /v1/events` (admin): find an order by whatever a person has at
//! hand, and list events with filters, a page at a time. The CLI's `surety events find` and
//! `surety events list` read the same parameters ([`ListParams`]) and call the same store methods.
//! A query may be a raw email or phone: it is hashed before the lookup and never logged.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;

use super::auth::Role;
use super::problem::Problem;
use crate::api::App;
use crate::core::DeliveryState;
use crate::store::search::{parse_cursor, EventFilter, EventPage, SearchKeys, SearchResult, MAX_PAGE, MAX_QUERY_CHARS};

/// Events per page when no `limit` is given.
pub const DEFAULT_PAGE: usize = 50;

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_query", "Invalid query", detail)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    q: Option<String>,
}

/// What a query is looked up as, or why it cannot be (the message never quotes the query).
pub fn search_keys(q: &str) -> Result<SearchKeys, String> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(format!("q: at most {MAX_QUERY_CHARS} characters"));
    }
    SearchKeys::parse(q).ok_or_else(|| {
        "q: name what to find — an event id, an order (1042 or order:1042), a Stripe, Shopify or Segment id, \
         an email, a phone or a click id"
            .to_owned()
    })
}

pub async fn search(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResult>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let Query(p) = query.map_err(|e| invalid(e.body_text()))?;
    let keys = search_keys(p.q.as_deref().unwrap_or_default()).map_err(invalid)?;
    Ok(Json(app.store.search(keys).await?))
}

/// The event list's filters, as query parameters (and `surety events list` flags).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub kind: Option<String>,
    pub source: Option<String>,
    pub destination: Option<String>,
    pub state: Option<DeliveryState>,
    pub reason: Option<String>,
    /// Occurred at or after: a date (`2026-12-01`) or an RFC 3339 time.
    pub since: Option<String>,
    /// Occurred before: a date (the whole day included) or an RFC 3339 time.
    pub until: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl ListParams {
    /// The store's filter, or what is wrong with a parameter (named).
    pub fn filter(self) -> Result<EventFilter, String> {
        let time = |name: &str, s: Option<String>, end: bool| {
            s.map(|s| crate::reconcile::parse_bound(s.trim(), end)).transpose().map_err(|e| format!("{name}: {e}"))
        };
        let since = time("since", self.since, false)?;
        let until = time("until", self.until, true)?;
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(format!("limit: must be 1 to {MAX_PAGE}"));
        }
        let before_seq = match self.cursor.as_deref() {
            Some(c) => Some(parse_cursor(c).ok_or("cursor: not a cursor this list gave (next_cursor)")?),
            None => None,
        };
        let text = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(EventFilter {
            kind: text(self.kind),
            source: text(self.source),
            destination: text(self.destination),
            state: self.state,
            reason: text(self.reason),
            since,
            until,
            limit,
            before_seq,
        })
    }
}

pub async fn list_events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<EventPage>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let Query(p) = query.map_err(|e| invalid(e.body_text()))?;
    let filter = p.filter().map_err(invalid)?;
    Ok(Json(app.store.list_events(filter).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_are_checked_and_named() {
        let f = ListParams { since: Some("2026-12-01".into()), until: Some("2026-12-01".into()), ..Default::default() }
            .filter()
            .unwrap();
        assert_eq!(f.until.unwrap() - f.since.unwrap(), chrono::Duration::days(1), "until takes the whole day");
        assert_eq!(f.limit, DEFAULT_PAGE);
        let err = |p: ListParams| p.filter().unwrap_err();
        assert!(err(ListParams { limit: Some(0), ..Default::default() }).starts_with("limit:"));
        assert!(err(ListParams { limit: Some(MAX_PAGE + 1), ..Default::default() }).starts_with("limit:"));
        assert!(err(ListParams { cursor: Some("42".into()), ..Default::default() }).starts_with("cursor:"));
        assert!(err(ListParams { since: Some("yesterday".into()), ..Default::default() }).starts_with("since:"));
        assert!(err(ListParams { cursor: Some(String::new()), ..Default::default() }).starts_with("cursor:"));
        // A window that ends before it starts holds nothing: an empty page, not an error (the
        // schema cannot say "since before until", so the API does not refuse it).
        let backwards =
            ListParams { since: Some("2026-12-03".into()), until: Some("2026-12-01".into()), ..Default::default() };
        let f = backwards.filter().unwrap();
        assert!(f.since.unwrap() >= f.until.unwrap());
    }

    #[test]
    fn a_query_error_never_quotes_the_query() {
        let long = format!("{}@example.com", "a".repeat(MAX_QUERY_CHARS));
        assert!(!search_keys(&long).unwrap_err().contains("aaaa"));
        assert!(search_keys(" ").is_err());
    }
}

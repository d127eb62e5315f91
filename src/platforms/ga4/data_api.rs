//! Reading GA4's own count back through the Data API (`properties/{id}:runReport`), for
//! `surety reconcile --platform DEST=api`: the purchases GA4 counted per transaction id, day and
//! event name, with their revenue and event count, a page at a time.
//!
//! Source: developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport
//! and …/data/v1/basics (pagination with `limit` ≤ 250,000 and `offset` until `rowCount`);
//! the shapes are in docs/platforms.md §Reading the platforms' side back. The token is the
//! service account's (crate::platforms::google_auth) with the read-only Analytics scope; it
//! never reaches a message.

mod parse;

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

pub use self::parse::{parse_error, parse_page, Page};
use super::config::{DataApiConfig, Ga4Config, DATA_API_SCOPE};
use crate::platforms::google_auth::{ServiceAccount, TokenSource};
use crate::platforms::{PullError, PullQuery, Pulling, ReportedRow};

/// Dimensions asked, in this order (`parse` finds them by header name, not position).
pub const DIMENSIONS: [&str; 3] = ["transactionId", "date", "eventName"];
/// Metrics asked, in this order.
pub const METRICS: [&str; 2] = ["purchaseRevenue", "eventCount"];

/// Reads the window's purchases through `runReport` (see the module doc).
pub fn pull(config: &Ga4Config, query: PullQuery) -> Pulling {
    let reader = Reader::new(config);
    Box::pin(async move { reader?.read(&query).await })
}

/// One destination's Data API reader: its token source, endpoint and page size.
struct Reader {
    tokens: TokenSource,
    client: reqwest::Client,
    url: String,
    page_size: u32,
}

impl Reader {
    fn new(config: &Ga4Config) -> Result<Self, PullError> {
        let n = &config.name;
        let Some(api) = &config.data_api else {
            return Err(PullError::NotConfigured(format!(
                "destination '{n}' has no [destinations.data_api] table (property_id, service_account_key): \
                 add one to read GA4's count through the Data API, or pass an export as --platform {n}=FILE"
            )));
        };
        let DataApiConfig { property_id, service_account_key, base_url, token_url, page_size } = api;
        let reference = service_account_key.reference();
        let key = service_account_key.resolve().map_err(|e| {
            PullError::NotConfigured(format!("destinations.{n}.data_api.service_account_key ({reference}): {e}"))
        })?;
        let account = ServiceAccount::from_json(key.expose(), DATA_API_SCOPE).map_err(|e| {
            PullError::NotConfigured(format!("destinations.{n}.data_api.service_account_key ({reference}): {e}"))
        })?;
        let client = crate::delivery::http::client(Duration::from_millis(config.common.timeout_ms));
        let url = format!("{}/v1beta/properties/{property_id}:runReport", base_url.trim_end_matches('/'));
        Ok(Self {
            tokens: TokenSource::new(account, token_url.clone(), client.clone()),
            client,
            url,
            page_size: (*page_size).clamp(1, super::config::MAX_PAGE_SIZE),
        })
    }

    /// Every page of the report, until `rowCount` rows are read.
    async fn read(&self, query: &PullQuery) -> Result<Vec<ReportedRow>, PullError> {
        let mut rows = Vec::new();
        let mut offset: u64 = 0;
        loop {
            let page = self.page(query, offset).await?;
            let got = page.rows.len() as u64;
            rows.extend(page.rows);
            offset = offset.checked_add(got).ok_or_else(|| PullError::Unreadable("rowCount overflows".into()))?;
            // An empty page before `rowCount` would loop forever: GA4 has no more to give.
            if got == 0 || offset >= page.row_count {
                return Ok(rows);
            }
        }
    }

    async fn page(&self, query: &PullQuery, offset: u64) -> Result<Page, PullError> {
        let mut records = Vec::new();
        let bearer = self.tokens.bearer(Utc::now(), &mut records).await.map_err(|e| PullError::Auth(e.reason()))?;
        let body = request_body(query, self.page_size, offset);
        let answer = self
            .client
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, bearer.header_value())
            .json(&body)
            .send()
            .await
            .map_err(|e| PullError::Unreadable(format!("the Data API could not be reached: {}", without_url(&e))))?;
        let status = answer.status().as_u16();
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| PullError::Unreadable(format!("the Data API's answer was cut off: {}", without_url(&e))))?;
        if !(200..300).contains(&status) {
            if status == 401 {
                self.tokens.invalidate(&bearer).await;
            }
            return Err(parse_error(status, &bytes));
        }
        parse_page(&bytes).map_err(|e| PullError::Unreadable(format!("the Data API's answer: {e}")))
    }
}

/// A reqwest error without its URL (which holds nothing secret, but is noise in a message).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection refused".into()
    } else {
        "network error".into()
    }
}

/// The `runReport` body for one page (the RunReportRequest fields; `property` is in the path).
pub fn request_body(query: &PullQuery, limit: u32, offset: u64) -> Value {
    let mut body = json!({
        "dateRanges": [{
            "startDate": query.first_day.format("%Y-%m-%d").to_string(),
            "endDate": query.last_day.format("%Y-%m-%d").to_string(),
        }],
        "dimensions": DIMENSIONS.iter().map(|d| json!({"name": d})).collect::<Vec<_>>(),
        "metrics": METRICS.iter().map(|m| json!({"name": m})).collect::<Vec<_>>(),
        "limit": limit.to_string(),
        "offset": offset.to_string(),
    });
    if !query.events.is_empty() {
        body["dimensionFilter"] = json!({"filter": {"fieldName": "eventName", "inListFilter": {"values": query.events, "caseSensitive": true}}});
    }
    body
}

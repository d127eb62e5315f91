//! Reading `runReport` answers: a page of rows (RunReportResponse: `dimensionHeaders`,
//! `metricHeaders`, `rows[].dimensionValues[].value`, `rows[].metricValues[].value`, `rowCount`)
//! or Google's error JSON (`{"error": {"code", "message", "status"}}`).

use chrono::NaiveDate;
use serde::Deserialize;

use crate::platforms::{PullError, ReportedRow};

/// One page: its rows, and how many the whole report has.
#[derive(Debug, PartialEq)]
pub struct Page {
    pub rows: Vec<ReportedRow>,
    pub row_count: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    dimension_headers: Vec<Header>,
    #[serde(default)]
    metric_headers: Vec<Header>,
    /// Absent when the report is empty.
    #[serde(default)]
    rows: Vec<Row>,
    #[serde(default)]
    row_count: Option<u64>,
}

#[derive(Deserialize)]
struct Header {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    #[serde(default)]
    dimension_values: Vec<Cell>,
    #[serde(default)]
    metric_values: Vec<Cell>,
}

#[derive(Deserialize)]
struct Cell {
    #[serde(default)]
    value: Option<String>,
}

/// Reads a page; a missing header or a value that is not what GA4 documents fails the page.
pub fn parse_page(body: &[u8]) -> Result<Page, String> {
    let r: Response = serde_json::from_slice(body).map_err(|e| format!("not a RunReportResponse: {e}"))?;
    let column = |headers: &[Header], name: &str, kind: &str| {
        headers
            .iter()
            .position(|h| h.name == name)
            .ok_or_else(|| format!("no {kind} header '{name}' (dimensionHeaders/metricHeaders)"))
    };
    let (txn, date, event) = (
        column(&r.dimension_headers, "transactionId", "dimension")?,
        column(&r.dimension_headers, "date", "dimension")?,
        column(&r.dimension_headers, "eventName", "dimension")?,
    );
    let (revenue, count) =
        (column(&r.metric_headers, "purchaseRevenue", "metric")?, column(&r.metric_headers, "eventCount", "metric")?);
    let mut rows = Vec::with_capacity(r.rows.len());
    for (i, row) in r.rows.iter().enumerate() {
        let at = |cells: &[Cell], j: usize| cells.get(j).and_then(|c| c.value.clone());
        let bad = |what: String| format!("row {}: {what}", i + 1);
        let day_text = at(&row.dimension_values, date).ok_or_else(|| bad("no date".into()))?;
        let day = parse_date(&day_text).ok_or_else(|| bad(format!("date '{day_text}' is not YYYYMMDD")))?;
        let value = match at(&row.metric_values, revenue) {
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| bad(format!("purchaseRevenue '{v}' is not a number")))?,
            ),
            None => None,
        };
        let count_text = at(&row.metric_values, count).ok_or_else(|| bad("no eventCount".into()))?;
        let count = count_text.parse::<u32>().map_err(|_| bad(format!("eventCount '{count_text}' is not a count")))?;
        let transaction_id = at(&row.dimension_values, txn).filter(|t| !t.is_empty() && t != "(not set)");
        let event = at(&row.dimension_values, event).filter(|e| !e.is_empty());
        rows.push(ReportedRow { transaction_id, day, event, value, count });
    }
    Ok(Page { row_count: r.row_count.unwrap_or(rows.len() as u64), rows })
}

/// The `date` dimension: exactly eight digits, `YYYYMMDD`.
fn parse_date(s: &str) -> Option<NaiveDate> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())).then(|| NaiveDate::parse_from_str(s, "%Y%m%d").ok())?
}

/// An error answer: its HTTP status, Google's status name and message (cut short).
pub fn parse_error(status: u16, body: &[u8]) -> PullError {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        message: String,
        #[serde(default)]
        status: Option<String>,
    }
    let (name, message) = match serde_json::from_slice::<Envelope>(body) {
        Ok(e) => (e.error.status, e.error.message.chars().take(300).collect()),
        Err(_) => (None, "no error JSON in the answer".to_owned()),
    };
    let hint = match status {
        401 => " (the service account's token was not accepted)",
        403 => " (does the service account have Viewer on the property?)",
        429 => " (the property's Data API quota is spent; try later)",
        _ => "",
    };
    PullError::Refused { status, name, message: format!("{message}{hint}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: &str) -> String {
        format!(
            r#"{{"dimensionHeaders":[{{"name":"transactionId"}},{{"name":"date"}},{{"name":"eventName"}}],
               "metricHeaders":[{{"name":"purchaseRevenue","type":"TYPE_CURRENCY"}},{{"name":"eventCount","type":"TYPE_INTEGER"}}],
               "rows":[{rows}],"rowCount":7,"kind":"analyticsData#runReport"}}"#
        )
    }

    fn row(txn: &str, date: &str, revenue: &str, count: &str) -> String {
        format!(
            r#"{{"dimensionValues":[{{"value":"{txn}"}},{{"value":"{date}"}},{{"value":"purchase"}}],
               "metricValues":[{{"value":"{revenue}"}},{{"value":"{count}"}}]}}"#
        )
    }

    #[test]
    fn a_page_is_read_by_header_name_with_its_row_count() {
        let body = page(&[row("1001", "20261120", "12.5", "1"), row("(not set)", "20261121", "0", "3")].join(","));
        let p = parse_page(body.as_bytes()).unwrap();
        assert_eq!(p.row_count, 7);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].transaction_id.as_deref(), Some("1001"));
        assert_eq!(p.rows[0].day, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
        assert_eq!((p.rows[0].value, p.rows[0].count), (Some(12.5), 1));
        assert_eq!(p.rows[0].event.as_deref(), Some("purchase"));
        assert_eq!((p.rows[1].transaction_id.as_deref(), p.rows[1].count), (None, 3));
        // An empty report has neither rows nor rowCount.
        let empty = r#"{"dimensionHeaders":[{"name":"transactionId"},{"name":"date"},{"name":"eventName"}],
            "metricHeaders":[{"name":"purchaseRevenue"},{"name":"eventCount"}]}"#;
        assert_eq!(parse_page(empty.as_bytes()).unwrap(), Page { rows: vec![], row_count: 0 });
    }

    #[test]
    fn bad_numbers_dates_and_missing_headers_fail_the_page_with_the_reason() {
        let err = |body: String| parse_page(body.as_bytes()).unwrap_err();
        assert!(err(page(&row("1", "20261120", "12,5x", "1"))).contains("purchaseRevenue '12,5x' is not a number"));
        assert!(err(page(&row("1", "20261120", "1", "-1"))).contains("eventCount '-1' is not a count"));
        assert!(err(page(&row("1", "20261120", "1", "1.5"))).contains("eventCount"));
        assert!(err(page(&row("1", "2026-11-20", "1", "1"))).contains("date '2026-11-20' is not YYYYMMDD"));
        assert!(err(page(&row("1", "20261340", "1", "1"))).contains("is not YYYYMMDD"));
        let no_count = page("").replace(r#",{"name":"eventCount","type":"TYPE_INTEGER"}"#, "");
        assert!(err(no_count).contains("no metric header 'eventCount'"));
        let no_txn = page("").replace(r#"{"name":"transactionId"},"#, "");
        assert!(err(no_txn).contains("no dimension header 'transactionId'"));
        assert!(err("[1]".into()).contains("not a RunReportResponse"));
    }

    #[test]
    fn google_errors_name_the_status_and_never_more_than_google_said() {
        let body = br#"{"error":{"code":403,"message":"User does not have sufficient permissions for this property.","status":"PERMISSION_DENIED"}}"#;
        let e = parse_error(403, body).to_string();
        assert!(e.contains("HTTP 403 PERMISSION_DENIED"), "{e}");
        assert!(e.contains("sufficient permissions") && e.contains("Viewer"), "{e}");
        let e = parse_error(503, b"<html>").to_string();
        assert!(e.contains("HTTP 503") && e.contains("no error JSON"), "{e}");
    }
}

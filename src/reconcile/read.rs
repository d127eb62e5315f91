//! Reading the source of truth and the platforms' reports into typed rows. A bad row becomes a
//! `BadRow` with its line number; it never stops the run.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use super::table::{Format, Table, Wanted};
use crate::core::{EventId, Kind, Subject};
use crate::import::Mapping;

/// A row that could not be read: which file, which line, why.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct BadRow {
    pub file: String,
    pub line: u64,
    pub message: String,
}

/// One business event as the source of truth states it. Compact (a million are held at once):
/// repeated texts (kind, currency, source) are shared.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRow {
    pub line: u32,
    pub event_id: Box<str>,
    pub kind: Option<Arc<str>>,
    pub occurred_at: DateTime<Utc>,
    pub value: Option<f64>,
    pub currency: Option<Arc<str>>,
    /// The source it should have come from (`stripe`, `shopify`, …), when the export says.
    pub source: Option<Arc<str>>,
    /// Matched by a ledger event already.
    pub taken: bool,
}

/// Shares repeated texts (kinds, currencies, event names) between rows.
#[derive(Default)]
pub struct Interner(HashMap<String, Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: String) -> Arc<str> {
        if let Some(a) = self.0.get(&s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s.as_str());
        if self.0.len() < 10_000 {
            self.0.insert(s, a.clone());
        }
        a
    }
}

/// The canonical columns of a source export (those of `surety import`).
const SOURCE_COLUMNS: [Wanted; 8] = [
    &["event_id"],
    &["subject.type"],
    &["subject.id"],
    &["kind"],
    &["occurred_at"],
    &["value"],
    &["currency"],
    &["source"],
];

/// Reads every row of a source export; `sink` gets each good one.
pub fn source(
    name: &str,
    input: Box<dyn Read + Send>,
    format: Format,
    mapping: &Mapping,
    bad: &mut Vec<BadRow>,
    mut sink: impl FnMut(SourceRow),
) -> Result<u64, String> {
    let mut table = Table::open(input, format, mapping, &SOURCE_COLUMNS)?;
    let mut interner = Interner::default();
    if format == Format::Csv && !table.has(0) && !(table.has(1) && table.has(2) && table.has(3)) {
        return Err(format!(
            "{name}: no column 'event_id', nor 'subject.type', 'subject.id' and 'kind' to derive it from (see --map)"
        ));
    }
    if format == Format::Csv && !table.has(4) {
        return Err(format!("{name}: no column 'occurred_at' (see --map)"));
    }
    let mut rows = 0;
    while let Some((line, cells)) = table.next_row().map_err(|e| format!("{name}: {e}"))? {
        rows += 1;
        match cells.and_then(|c| source_row(line, c, &mut interner)) {
            Ok(row) => sink(row),
            Err(message) => bad.push(BadRow { file: name.to_owned(), line, message }),
        }
    }
    Ok(rows)
}

fn source_row(line: u64, mut c: Vec<Option<String>>, interner: &mut Interner) -> Result<SourceRow, String> {
    let take = |c: &mut Vec<Option<String>>, i: usize| c[i].take();
    let kind = take(&mut c, 3);
    let subject_type = take(&mut c, 1);
    let subject_id = take(&mut c, 2);
    let event_id = match (take(&mut c, 0), &subject_type, &subject_id, &kind) {
        (Some(id), ..) => EventId::parse(&id).map_err(|e| format!("event_id {e}"))?,
        (None, Some(t), Some(id), Some(k)) => {
            let k = Kind::parse(k).map_err(|e| format!("kind {e}"))?;
            EventId::derive(&Subject { kind: t.clone(), id: id.clone() }, &k)
        }
        _ => return Err("needs event_id, or subject.type, subject.id and kind".into()),
    };
    let occurred = take(&mut c, 4).ok_or("occurred_at is missing")?;
    let occurred_at = parse_time(&occurred).ok_or_else(|| format!("occurred_at '{occurred}' is not a date-time"))?;
    let value = match take(&mut c, 5) {
        Some(v) => Some(parse_number(&v).ok_or_else(|| format!("value '{v}' is not a number"))?),
        None => None,
    };
    let currency = take(&mut c, 6).map(|s| interner.get(s.to_ascii_uppercase()));
    Ok(SourceRow {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        event_id: event_id.as_str().into(),
        kind: kind.map(|k| interner.get(k)),
        occurred_at,
        value,
        currency,
        source: take(&mut c, 7).map(|s| interner.get(s)),
        taken: false,
    })
}

/// One row of a platform's report: a conversion (keyed by transaction id) or a day's aggregate.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformRow {
    pub line: u32,
    pub transaction_id: Option<Box<str>>,
    pub day: NaiveDate,
    pub event: Option<Arc<str>>,
    pub value: Option<f64>,
    /// Conversions the row stands for (1 unless the report has a count column).
    pub count: u32,
}

/// What a platform report looks like: keyed per conversion, or aggregate per day and event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub per_event: bool,
    pub has_event: bool,
}

/// The column names recognised in platform reports (after `--map`), in order of preference:
/// GA4's UI and Data API, Google Ads' conversions report, Meta's and LinkedIn's exports, and
/// the canonical names `--map` can rename to.
pub const PLATFORM_COLUMNS: [Wanted; 5] = [
    &["transaction_id", "Transaction ID", "transactionId", "Order ID", "order_id"],
    &["date", "Date", "Day", "day", "Conversion time", "dateHour", "Date + hour (YYYYMMDDHH)", "Reporting starts"],
    &["event_name", "Event name", "eventName", "Conversion action", "Conversion", "Result type"],
    &[
        "value",
        "Purchase revenue",
        "purchaseRevenue",
        "Revenue",
        "totalRevenue",
        "Conversion value",
        "Value",
        "Conv. value",
    ],
    &["count", "Event count", "eventCount", "Events", "Conversions", "Results"],
];

/// Reads a platform report; `sink` gets each good row.
pub fn platform(
    name: &str,
    input: Box<dyn Read + Send>,
    format: Format,
    mapping: &Mapping,
    bad: &mut Vec<BadRow>,
    mut sink: impl FnMut(PlatformRow),
) -> Result<Shape, String> {
    let mut table = Table::open(input, format, mapping, &PLATFORM_COLUMNS)?;
    if format == Format::Csv && !table.has(1) {
        return Err(format!("{name}: no date column (Date, Day, Conversion time, dateHour, …; see --map)"));
    }
    let shape = Shape { per_event: table.has(0), has_event: table.has(2) };
    let mut interner = Interner::default();
    while let Some((line, cells)) = table.next_row().map_err(|e| format!("{name}: {e}"))? {
        match cells.and_then(|c| platform_row(line, c, &mut interner)) {
            Ok(Some(row)) => sink(row),
            Ok(None) => {}
            Err(message) => bad.push(BadRow { file: name.to_owned(), line, message }),
        }
    }
    Ok(shape)
}

fn platform_row(line: u64, mut c: Vec<Option<String>>, interner: &mut Interner) -> Result<Option<PlatformRow>, String> {
    let Some(date) = c[1].take() else {
        // A totals row ("Grand total", GA4's unlabelled sum line) has no date: not a conversion.
        return Ok(None);
    };
    let Some(day) = parse_day(&date) else {
        if date.to_ascii_lowercase().contains("total") {
            return Ok(None);
        }
        return Err(format!("date '{date}' is not a date"));
    };
    let value = match c[3].take() {
        Some(v) => Some(parse_number(&v).ok_or_else(|| format!("value '{v}' is not a number"))?),
        None => None,
    };
    let count = match c[4].take() {
        Some(n) => parse_number(&n).filter(|n| *n >= 0.0).ok_or_else(|| format!("count '{n}' is not a count"))? as u32,
        None => 1,
    };
    let transaction_id = c[0].take().filter(|t| t != "(not set)").map(String::into_boxed_str);
    let line = u32::try_from(line).unwrap_or(u32::MAX);
    Ok(Some(PlatformRow { line, transaction_id, day, event: c[2].take().map(|e| interner.get(e)), value, count }))
}

/// RFC 3339, or a date and time without offset (read as UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%:z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M%:z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    None
}

/// A report's day: `YYYYMMDD` (GA4), `YYYYMMDDHH` (GA4 dateHour), `YYYY-MM-DD`, `Nov 20, 2024`
/// (Google Ads' UI), or a date-time (Google Ads' conversion time; its UTC day).
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(&s[..8], "%Y%m%d").ok();
    }
    for f in ["%Y%m%d", "%Y-%m-%d", "%b %d, %Y", "%d/%m/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Some(d);
        }
    }
    parse_time(s).map(|t| t.date_naive())
}

/// A number as exports write it: `1234.5`, `1,234.50`, `€1,234.50`, `12,50` (decimal comma).
pub fn parse_number(s: &str) -> Option<f64> {
    let kept: String = s.chars().filter(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-')).collect();
    let normal = if kept.contains('.') {
        kept.replace(',', "")
    } else if kept.matches(',').count() == 1 && kept.rsplit(',').next().is_some_and(|d| d.len() != 3) {
        kept.replace(',', ".")
    } else {
        kept.replace(',', "")
    };
    normal.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_days_as_exports_write_them() {
        assert_eq!(parse_number("1,234.50"), Some(1234.5));
        assert_eq!(parse_number("€12,50"), Some(12.5));
        assert_eq!(parse_number("1,234"), Some(1234.0));
        assert_eq!(parse_number("abc"), None);
        let d = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        assert_eq!(parse_day("20261120"), Some(d));
        assert_eq!(parse_day("2026112023"), Some(d));
        assert_eq!(parse_day("2026-11-20"), Some(d));
        assert_eq!(parse_day("Nov 20, 2026"), Some(d));
        assert_eq!(parse_day("2026-11-21 00:30:00+01:00"), Some(d));
        assert_eq!(parse_day("Totals"), None);
    }

    #[test]
    fn ga4_exploration_export_with_comments_and_a_bad_row() {
        let text =
            "# ----\n# Explore\n# Account: Shop\n\nTransaction ID,Date,Event name,Purchase revenue,Event count\n\
                    1001,20261120,purchase,12.50,1\n1002,notadate,purchase,3,1\n,,,15.5,2\n";
        let mut rows = Vec::new();
        let mut bad = Vec::new();
        let shape = platform("ga4.csv", Box::new(text.as_bytes()), Format::Csv, &Mapping::default(), &mut bad, |r| {
            rows.push(r)
        })
        .unwrap();
        assert!(shape.per_event && shape.has_event);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].transaction_id.as_deref(), Some("1001"));
        assert_eq!(rows[0].value, Some(12.5));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 7);
    }

    #[test]
    fn source_ids_are_derived_like_ingest_and_bad_rows_keep_their_line() {
        let text = "subject.type,subject.id,kind,occurred_at,value,currency\n\
                    order,1001,order_paid,2026-11-20T10:00:00Z,12.5,eur\n\
                    order,1002,order_paid,yesterday,1,EUR\n";
        let mut rows = Vec::new();
        let mut bad = Vec::new();
        source("src.csv", Box::new(text.as_bytes()), Format::Csv, &Mapping::default(), &mut bad, |r| rows.push(r))
            .unwrap();
        assert_eq!(&*rows[0].event_id, "order:1001:order_paid");
        assert_eq!(rows[0].currency.as_deref(), Some("EUR"));
        assert_eq!((bad[0].line, bad.len()), (3, 1));
    }
}

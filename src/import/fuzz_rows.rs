//! The import readers as the fuzz targets drive them (`fuzz/`, `src/fuzzing.rs`): bytes in, every
//! row read and parsed as `surety import` would, nothing written. Not part of the API.

use std::io::Cursor;

use chrono::Utc;

use super::read_csv::{CsvOptions, CsvRows};
use super::read_ndjson::NdjsonRows;
use super::rows::{Mapping, Rows};
use crate::ingest::canonical::parse_event;

/// Reads `data` as a CSV file with `delimiter` (or as NDJSON when `delimiter` is `None`), then
/// parses each row with the canonical parser; returns how many rows became events.
pub fn read_all(data: &[u8], delimiter: Option<u8>, map: &[(String, String)]) -> usize {
    let mapping = Mapping::new(map);
    let input = Cursor::new(data.to_vec());
    let mut rows: Box<dyn Rows> = match delimiter {
        Some(delimiter) => {
            let options = CsvOptions { delimiter, mapping: &mapping, default_kind: Some("purchase") };
            match CsvRows::open(input, &options, None) {
                Ok(rows) => Box::new(rows),
                Err(_) => return 0,
            }
        }
        None => match NdjsonRows::open(input, mapping.clone(), Some("purchase"), None) {
            Ok(rows) => Box::new(rows),
            Err(_) => return 0,
        },
    };
    let now = Utc::now();
    let mut events = 0;
    while let Ok(Some(row)) = rows.next_row() {
        let _ = rows.position();
        match row.value.and_then(|v| parse_event(v, "import", now, "")) {
            Ok(_) => events += 1,
            Err(_) => {
                let _ = rows.raw();
            }
        }
    }
    events
}

//! CSV rows. The header names canonical fields, nested ones dotted (`subject.type`,
//! `identity.email`, `consent.ad_user_data`, `attributes.channel`); `value` is read as a number
//! and `items` as a JSON array in one cell; every other cell is a string; an empty cell is an
//! absent field. The header is checked against the canonical parser before any row is read.

use std::collections::HashSet;
use std::io::{Read, Seek};

use chrono::Utc;
use csv::ByteRecord;
use serde_json::{json, Map, Number, Value};

use super::rows::{default_kind, json_value, malformed, set_path, Mapping, Position, ReadError, Row, Rows};
use crate::ingest::canonical::parse_event;
use crate::ingest::FieldError;

/// How a cell becomes JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Text,
    Number,
    Json,
}

struct Column {
    /// The canonical dotted name.
    field: String,
    cell: Cell,
}

pub(crate) struct CsvOptions<'a> {
    pub delimiter: u8,
    pub mapping: &'a Mapping,
    pub default_kind: Option<&'a str>,
}

pub(crate) struct CsvRows<R> {
    reader: csv::Reader<R>,
    /// One per header column; `None` for a column `--map` ignores.
    columns: Vec<Option<Column>>,
    record: ByteRecord,
    scratch: ByteRecord,
    default_kind: Option<String>,
    delimiter: u8,
}

impl<R: Read + Seek + Send> CsvRows<R> {
    /// Reads and checks the header (every problem at once); with `resume`, continues there.
    pub fn open(input: R, options: &CsvOptions, resume: Option<Position>) -> Result<Self, ReadError> {
        // Records end at '\n' (a CRLF's '\r' is cut off the last field in `next_row`), so line
        // numbers count every line and a record's end is a position a rerun can seek to.
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .flexible(true)
            .has_headers(true)
            .from_reader(input);
        let headers = reader.byte_headers().map_err(csv_io)?.clone();
        let columns = plan_columns(&headers, options)?;
        if let Some(at) = resume {
            let mut pos = csv::Position::new();
            pos.set_byte(at.offset).set_line(at.line);
            reader.seek(pos).map_err(csv_io)?;
        }
        Ok(Self {
            reader,
            columns,
            record: ByteRecord::new(),
            scratch: ByteRecord::new(),
            default_kind: options.default_kind.map(str::to_owned),
            delimiter: options.delimiter,
        })
    }

    fn to_value(&self) -> Result<Value, Vec<FieldError>> {
        if self.record.len() != self.columns.len() {
            let message = format!("has {} fields; the header has {}", self.record.len(), self.columns.len());
            return Err(malformed("", message));
        }
        let mut obj = Map::new();
        let mut errors = Vec::new();
        for (cell, column) in self.record.iter().zip(&self.columns) {
            let Some(column) = column else { continue };
            let Ok(text) = std::str::from_utf8(cell) else {
                errors.push(FieldError::new(&column.field, "malformed", "is not valid UTF-8"));
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let value = match column.cell {
                Cell::Text => Value::String(text.to_owned()),
                // Not a number: left a string, so the canonical parser names the field.
                Cell::Number => text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map_or_else(|| Value::String(text.to_owned()), Value::Number),
                Cell::Json => match json_value(&column.field, text.as_bytes()) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
            };
            let path: Vec<&str> = column.field.split('.').collect();
            // Cannot fail: plan_columns refused overlapping columns.
            let _ = set_path(&mut obj, &path, value);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        default_kind(&mut obj, self.default_kind.as_deref());
        Ok(Value::Object(obj))
    }
}

impl<R: Read + Seek + Send> Rows for CsvRows<R> {
    fn next_row(&mut self) -> std::io::Result<Option<Row>> {
        loop {
            if !self.reader.read_byte_record(&mut self.record).map_err(csv_io)? {
                return Ok(None);
            }
            if self.record.iter().next_back().is_some_and(|f| f.ends_with(b"\r")) {
                self.scratch.clear();
                let last = self.record.len() - 1;
                for (i, field) in self.record.iter().enumerate() {
                    self.scratch.push_field(if i == last { &field[..field.len() - 1] } else { field });
                }
                self.scratch.set_position(self.record.position().cloned());
                std::mem::swap(&mut self.record, &mut self.scratch);
            }
            // A row of empty cells (spreadsheets leave them) is a blank line.
            if self.record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            let line = self.record.position().map_or(0, csv::Position::line);
            return Ok(Some(Row { line, value: self.to_value() }));
        }
    }

    fn position(&self) -> Position {
        let p = self.reader.position();
        Position { offset: p.byte(), line: p.line() }
    }

    /// The record as CSV text again.
    fn raw(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let _ = w.write_byte_record(&self.record);
        let bytes = w.into_inner().unwrap_or_default();
        String::from_utf8_lossy(bytes.strip_suffix(b"\n").unwrap_or(&bytes)).into_owned()
    }
}

fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// Maps and checks the header: every column a canonical field one cell can fill, no column
/// twice or inside another, the required fields present.
fn plan_columns(headers: &ByteRecord, options: &CsvOptions) -> Result<Vec<Option<Column>>, ReadError> {
    let mut problems = Vec::new();
    let mut columns = Vec::new();
    let mut names = HashSet::new();
    for (i, raw) in headers.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(raw) else {
            problems.push(format!("column {}: the header is not valid UTF-8", i + 1));
            columns.push(None);
            continue;
        };
        let name = name.trim_start_matches('\u{feff}').trim();
        names.insert(name.to_owned());
        let Some(field) = options.mapping.apply(name) else {
            columns.push(None);
            continue;
        };
        let cell = match field {
            "value" => Cell::Number,
            "items" => Cell::Json,
            _ => Cell::Text,
        };
        if field.is_empty() {
            problems.push(format!("column {} has no name", i + 1));
        } else if let Err(why) = probe(field, cell) {
            let shown = if field == name { format!("'{name}'") } else { format!("'{name}' (as '{field}')") };
            problems.push(format!("column {shown} {why}"));
        }
        columns.push(Some(Column { field: field.to_owned(), cell }));
    }
    for (old, _) in options.mapping.renames() {
        if !names.contains(old) {
            problems.push(format!("--map {old}=…: there is no column '{old}'"));
        }
    }
    let fields: Vec<&str> = columns.iter().flatten().map(|c| c.field.as_str()).filter(|f| !f.is_empty()).collect();
    for (i, a) in fields.iter().enumerate() {
        for b in &fields[i + 1..] {
            if a == b {
                problems.push(format!("two columns are '{a}'"));
            } else if b.starts_with(&format!("{a}.")) || a.starts_with(&format!("{b}.")) {
                problems.push(format!("columns '{a}' and '{b}' overlap"));
            }
        }
    }
    let mut required = vec!["occurred_at", "subject.type", "subject.id"];
    if options.default_kind.is_none() {
        required.insert(0, "kind");
    }
    for r in required {
        if !fields.contains(&r) {
            let hint = if r == "kind" { " (or give --kind)" } else { "" };
            problems.push(format!("no column '{r}'{hint}: the canonical event requires it"));
        }
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(ReadError::Header(problems))
    }
}

/// Asks the canonical parser whether one cell can fill `field`: an otherwise valid event with a
/// sample there must not come back with `unknown_field` or a type error for it. So the header
/// is checked by the same parser that checks the rows, with no second list of field names.
fn probe(field: &str, cell: Cell) -> Result<(), &'static str> {
    let mut obj = Map::new();
    obj.insert("kind".into(), json!("probe"));
    obj.insert("occurred_at".into(), json!("2000-01-01T00:00:00Z"));
    obj.insert("subject".into(), json!({"type": "probe", "id": "probe"}));
    obj.insert("currency".into(), json!("EUR"));
    let sample = match cell {
        Cell::Text => json!("probe"),
        Cell::Number => json!(1.5),
        Cell::Json => json!([]),
    };
    let path: Vec<&str> = field.split('.').collect();
    if path.iter().any(|p| p.is_empty()) || set_path(&mut obj, &path, sample).is_err() {
        return Err("names no canonical field");
    }
    let Err(errors) = parse_event(Value::Object(obj), "import", Utc::now(), "") else { return Ok(()) };
    if errors.iter().any(|e| e.code == "unknown_field") {
        Err("is not a canonical field (see --map)")
    } else if errors.iter().any(|e| e.message.starts_with("invalid type")) {
        Err("is a structured field: give its parts as columns (subject.type, identity.email, …)")
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "read_csv_tests.rs"]
mod tests;

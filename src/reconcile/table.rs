//! The files reconcile reads, as tables: CSV (a header row; platform exports' `#` comment lines
//! and blank lines skipped) or NDJSON (one object per line). Each wanted field is found by the
//! first of its accepted column names the file has, after `--map` renames; a row is read into
//! those fields only, so a million-row file costs no per-row map.

use std::io::{BufRead, BufReader, Read};

use serde_json::Value;

use crate::import::Mapping;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// From a file name's extension: `.ndjson`/`.jsonl` are NDJSON, anything else CSV.
    pub fn of(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
            Self::Ndjson
        } else {
            Self::Csv
        }
    }
}

/// One wanted field: its accepted column names, in order of preference.
pub type Wanted = &'static [&'static str];

/// A row: the line it starts on, and its wanted fields (empty cells are `None`) or what is wrong.
pub type Row = (u64, Result<Vec<Option<String>>, String>);

pub struct Table {
    inner: Inner,
    /// Per wanted field: the CSV column index (CSV) or the JSON key (NDJSON) it is read from.
    columns: Vec<Option<Column>>,
}

enum Column {
    Index(usize),
    Key(String),
}

enum Inner {
    Csv { reader: csv::Reader<Box<dyn Read + Send>>, record: csv::StringRecord },
    Ndjson { reader: BufReader<Box<dyn Read + Send>>, line: u64, buf: String },
}

impl Table {
    /// Opens a table and finds its columns. A CSV's columns come from its header; an NDJSON
    /// file's keys are looked up per row, under the names `--map` gives.
    pub fn open(
        input: Box<dyn Read + Send>,
        format: Format,
        mapping: &Mapping,
        wanted: &[Wanted],
    ) -> Result<Self, String> {
        match format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .comment(Some(b'#'))
                    .trim(csv::Trim::All)
                    .from_reader(input);
                let headers = reader.headers().map_err(|e| format!("cannot read the header: {e}"))?.clone();
                let names: Vec<Option<String>> = headers
                    .iter()
                    .map(|h| mapping.apply(h.trim_start_matches('\u{feff}').trim()).map(str::to_owned))
                    .collect();
                let columns = wanted
                    .iter()
                    .map(|accepted| {
                        accepted
                            .iter()
                            .find_map(|a| names.iter().position(|n| n.as_deref() == Some(*a)))
                            .map(Column::Index)
                    })
                    .collect();
                Ok(Self { inner: Inner::Csv { reader, record: csv::StringRecord::new() }, columns })
            }
            Format::Ndjson => {
                // Keys are per row; a key `--map` renames is read under its new name.
                let columns = wanted
                    .iter()
                    .map(|accepted| {
                        let renamed = mapping.renames().find(|(_, new)| new.is_some_and(|n| accepted.contains(&n)));
                        let key = renamed.map_or(accepted[0], |(old, _)| old);
                        Some(Column::Key(key.to_owned()))
                    })
                    .collect();
                let reader = BufReader::with_capacity(1 << 16, input);
                Ok(Self { inner: Inner::Ndjson { reader, line: 0, buf: String::new() }, columns })
            }
        }
    }

    /// Whether the wanted field `i` has a column (NDJSON: always).
    pub fn has(&self, i: usize) -> bool {
        self.columns[i].is_some()
    }

    /// The next row; `Err` only when the file cannot be read on.
    pub fn next_row(&mut self) -> std::io::Result<Option<Row>> {
        match &mut self.inner {
            Inner::Csv { reader, record } => loop {
                match reader.read_record(record) {
                    Ok(false) => return Ok(None),
                    Ok(true) => {}
                    Err(e) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        if let csv::ErrorKind::Io(_) = e.kind() {
                            return Err(std::io::Error::other(e.to_string()));
                        }
                        return Ok(Some((line, Err(format!("not readable as CSV: {e}")))));
                    }
                }
                if record.iter().all(str::is_empty) {
                    continue;
                }
                let line = record.position().map_or(0, csv::Position::line);
                let cells = self
                    .columns
                    .iter()
                    .map(|c| match c {
                        Some(Column::Index(i)) => record.get(*i).filter(|s| !s.is_empty()).map(str::to_owned),
                        _ => None,
                    })
                    .collect();
                return Ok(Some((line, Ok(cells))));
            },
            Inner::Ndjson { reader, line, buf } => loop {
                buf.clear();
                if reader.read_line(buf)? == 0 {
                    return Ok(None);
                }
                *line += 1;
                let text = buf.trim();
                if text.is_empty() {
                    continue;
                }
                let obj = match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(obj)) => obj,
                    Ok(_) => return Ok(Some((*line, Err("is not a JSON object".into())))),
                    Err(e) => return Ok(Some((*line, Err(format!("is not valid JSON: {e}"))))),
                };
                let cells = self
                    .columns
                    .iter()
                    .map(|c| {
                        let Some(Column::Key(key)) = c else { return None };
                        // Dotted keys (`subject.id`) reach into nested objects; a flat key wins.
                        if let Some(flat) = obj.get(key.as_str()) {
                            return cell(Some(flat));
                        }
                        let mut parts = key.split('.');
                        let mut v = parts.next().and_then(|p| obj.get(p));
                        for part in parts {
                            v = v.and_then(|v| v.get(part));
                        }
                        cell(v)
                    })
                    .collect();
                return Ok(Some((*line, Ok(cells))));
            },
        }
    }
}

fn cell(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_owned()),
        other => Some(other.to_string()),
    }
}

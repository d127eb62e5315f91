//! What the two readers share: a row (a canonical-event JSON value, or why it is not one), where
//! the next row starts, `--map` renames and dotted field paths.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ingest::FieldError;

/// One row of the input: the canonical event's JSON as the file states it, or what is wrong with
/// its shape. The canonical parser validates it further.
pub(crate) struct Row {
    /// The line the row starts on (1-based).
    pub line: u64,
    pub value: Result<Value, Vec<FieldError>>,
}

/// Where the next unread row starts: what a checkpoint records and a rerun seeks to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub offset: u64,
    pub line: u64,
}

/// A source of rows. `Err` is an I/O failure (fatal); a bad row is a `Row` with errors.
pub(crate) trait Rows: Send {
    fn next_row(&mut self) -> std::io::Result<Option<Row>>;
    /// Where the row after the last one returned starts.
    fn position(&self) -> Position;
    /// The last row returned, as it was written (for the reject file).
    fn raw(&self) -> String;
}

/// Why a reader could not start: the input cannot be opened or read, or its header cannot work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{}", .0.join("\n"))]
    Header(Vec<String>),
}

/// A rejected row as written to the reject file, one JSON object per line.
#[derive(Serialize)]
pub(crate) struct Reject {
    pub line: u64,
    pub errors: Vec<FieldError>,
    pub raw: String,
}

/// `--map OLD=NEW` renames: a header (CSV) or top-level key (NDJSON) `OLD` is read as the
/// canonical field `NEW`; `OLD=` ignores it.
#[derive(Clone, Debug, Default)]
pub struct Mapping(HashMap<String, Option<String>>);

impl Mapping {
    pub fn new(pairs: &[(String, String)]) -> Self {
        Self(pairs.iter().map(|(old, new)| (old.clone(), (!new.is_empty()).then(|| new.clone()))).collect())
    }

    /// The canonical name `name` stands for; `None` when it is to be ignored.
    pub fn apply<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        match self.0.get(name) {
            Some(new) => new.as_deref(),
            None => Some(name),
        }
    }

    pub(crate) fn renames(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(old, new)| (old.as_str(), new.as_deref()))
    }
}

/// Parses one `--map` argument.
pub fn parse_map(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((old, new)) if !old.is_empty() => Ok((old.to_owned(), new.to_owned())),
        _ => Err(format!("expected OLD=NEW (or OLD= to ignore a column), got '{s}'")),
    }
}

/// Sets `value` at a dotted path (`identity.email`), creating objects on the way. Fails when a
/// value that is not an object is in the way.
pub(crate) fn set_path(obj: &mut Map<String, Value>, path: &[&str], value: Value) -> Result<(), ()> {
    match path {
        [] => Err(()),
        [last] => {
            obj.insert((*last).to_owned(), value);
            Ok(())
        }
        [first, rest @ ..] => match obj.entry(*first).or_insert_with(|| Value::Object(Map::new())) {
            Value::Object(inner) => set_path(inner, rest, value),
            _ => Err(()),
        },
    }
}

/// Fills in `--kind` for a row that states none.
pub(crate) fn default_kind(obj: &mut Map<String, Value>, kind: Option<&str>) {
    if let Some(kind) = kind {
        if obj.get("kind").is_none_or(Value::is_null) {
            obj.insert("kind".into(), Value::String(kind.to_owned()));
        }
    }
}

pub(crate) fn malformed(field: &str, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError::new(field, "malformed", message)]
}

/// JSON text of a row or a cell, read as every other input is (`ingest::json`): an object that
/// names a key twice is refused (`duplicate_key`), not resolved last-wins.
pub(crate) fn json_value(field: &str, text: &[u8]) -> Result<Value, FieldError> {
    use crate::ingest::json::{self, JsonError};
    json::parse(text).map_err(|e| match e {
        JsonError::DuplicateKey { key } => {
            FieldError::new(field, "duplicate_key", format!("the key \"{key}\" appears twice in one object"))
        }
        JsonError::Syntax(e) => FieldError::new(field, "malformed", format!("is not valid JSON: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_nest_and_refuse_to_overwrite_a_value_with_an_object() {
        let mut obj = Map::new();
        set_path(&mut obj, &["subject", "type"], json!("order")).unwrap();
        set_path(&mut obj, &["subject", "id"], json!("1")).unwrap();
        set_path(&mut obj, &["kind"], json!("order_paid")).unwrap();
        assert_eq!(Value::Object(obj.clone()), json!({"subject": {"type": "order", "id": "1"}, "kind": "order_paid"}));
        assert!(set_path(&mut obj, &["kind", "x"], json!(1)).is_err());
    }

    #[test]
    fn map_renames_ignores_and_parses() {
        let m = Mapping::new(&[("Email".into(), "identity.email".into()), ("notes".into(), String::new())]);
        assert_eq!(m.apply("Email"), Some("identity.email"));
        assert_eq!(m.apply("notes"), None);
        assert_eq!(m.apply("kind"), Some("kind"));
        assert_eq!(parse_map("a=b.c").unwrap(), ("a".into(), "b.c".into()));
        assert_eq!(parse_map("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_map("=b").is_err());
        assert!(parse_map("ab").is_err());
    }

    #[test]
    fn default_kind_fills_only_what_is_missing() {
        let mut obj = Map::new();
        default_kind(&mut obj, Some("offline_sale"));
        assert_eq!(obj["kind"], "offline_sale");
        obj.insert("kind".into(), json!("refund_completed"));
        default_kind(&mut obj, Some("offline_sale"));
        assert_eq!(obj["kind"], "refund_completed");
    }
}

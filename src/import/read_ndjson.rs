//! NDJSON rows: one canonical event (the JSON of `POST /v1/events`) per line; blank lines are
//! skipped. `--map OLD=NEW` renames top-level keys (`NEW` may be dotted: `email=identity.email`).

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use serde_json::Value;

use super::rows::{default_kind, json_value, malformed, set_path, Mapping, Position, Row, Rows};
use crate::ingest::FieldError;

pub(crate) struct NdjsonRows<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    at: Position,
    mapping: Mapping,
    default_kind: Option<String>,
}

impl<R: Read + Seek + Send> NdjsonRows<R> {
    pub fn open(
        mut input: R,
        mapping: Mapping,
        default_kind: Option<&str>,
        resume: Option<Position>,
    ) -> std::io::Result<Self> {
        let at = resume.unwrap_or(Position { offset: 0, line: 1 });
        input.seek(SeekFrom::Start(at.offset))?;
        Ok(Self {
            reader: BufReader::with_capacity(1 << 16, input),
            buf: Vec::new(),
            at,
            mapping,
            default_kind: default_kind.map(str::to_owned),
        })
    }

    fn to_value(&self, text: &[u8]) -> Result<Value, Vec<FieldError>> {
        let mut obj = match json_value("", text) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return Err(malformed("", "must be a JSON object (one canonical event per line)")),
            Err(e) => return Err(vec![e]),
        };
        let mut errors = Vec::new();
        for (old, new) in self.mapping.renames() {
            let Some(value) = obj.remove(old) else { continue };
            let Some(new) = new else { continue };
            let path: Vec<&str> = new.split('.').collect();
            if path.iter().any(|p| p.is_empty()) || set_path(&mut obj, &path, value).is_err() {
                errors.push(FieldError::new(old, "malformed", format!("cannot be placed at '{new}'")));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        default_kind(&mut obj, self.default_kind.as_deref());
        Ok(Value::Object(obj))
    }
}

impl<R: Read + Seek + Send> Rows for NdjsonRows<R> {
    fn next_row(&mut self) -> std::io::Result<Option<Row>> {
        loop {
            self.buf.clear();
            let n = self.reader.read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            let line = self.at.line;
            self.at.line += 1;
            self.at.offset += n as u64;
            let text = trim_line(&self.buf);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(Row { line, value: self.to_value(text) }));
        }
    }

    fn position(&self) -> Position {
        self.at
    }

    fn raw(&self) -> String {
        String::from_utf8_lossy(trim_line(&self.buf)).into_owned()
    }
}

fn trim_line(buf: &[u8]) -> &[u8] {
    let text = buf.strip_suffix(b"\n").unwrap_or(buf);
    text.strip_suffix(b"\r").unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use serde_json::json;

    use super::*;

    fn rows(text: &str, mapping: Mapping, kind: Option<&str>, resume: Option<Position>) -> Vec<Row> {
        let mut r = NdjsonRows::open(Cursor::new(text.as_bytes().to_vec()), mapping, kind, resume).unwrap();
        std::iter::from_fn(|| r.next_row().unwrap()).collect()
    }

    #[test]
    fn one_event_per_line_with_line_numbers_and_blank_lines_skipped() {
        let text = "{\"kind\":\"a\"}\n\n  \r\n{\"kind\":\"b\"}\r\n{\"kind\":\"c\"}";
        let got = rows(text, Mapping::default(), None, None);
        assert_eq!(got.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 4, 5]);
        assert_eq!(got[1].value.as_ref().unwrap(), &json!({"kind": "b"}));
    }

    #[test]
    fn a_key_named_twice_is_refused_not_resolved_last_wins() {
        let text = "{\"kind\":\"order_paid\",\"kind\":\"refund_completed\"}\n";
        let got = rows(text, Mapping::default(), None, None);
        let e = got[0].value.as_ref().unwrap_err();
        assert_eq!(e[0].code, "duplicate_key");
        assert!(e[0].message.contains("\"kind\""), "{}", e[0].message);
    }

    #[test]
    fn bad_json_and_non_objects_are_rows_with_errors() {
        let text = "{\"kind\":\n[1]\n{\"kind\":\"ok\"}\n";
        let got = rows(text, Mapping::default(), None, None);
        let mut r = NdjsonRows::open(Cursor::new(text.as_bytes().to_vec()), Mapping::default(), None, None).unwrap();
        r.next_row().unwrap();
        assert_eq!(r.raw(), "{\"kind\":");
        assert_eq!(got.len(), 3);
        let e = got[0].value.as_ref().unwrap_err();
        assert_eq!((e[0].code, e[0].field.as_str()), ("malformed", ""));
        assert!(e[0].message.starts_with("is not valid JSON"), "{}", e[0].message);

        assert!(got[1].value.as_ref().unwrap_err()[0].message.contains("JSON object"));
        assert!(got[2].value.is_ok());
    }

    #[test]
    fn map_renames_top_level_keys_into_nested_fields_and_kind_defaults() {
        let m = Mapping::new(&[("mail".into(), "identity.email".into()), ("note".into(), String::new())]);
        let got = rows(
            "{\"mail\":\"a@b.c\",\"note\":\"x\",\"identity\":{\"ip\":\"1.2.3.4\"}}\n",
            m,
            Some("offline_sale"),
            None,
        );
        assert_eq!(
            got[0].value.as_ref().unwrap(),
            &json!({"identity": {"email": "a@b.c", "ip": "1.2.3.4"}, "kind": "offline_sale"})
        );
    }

    #[test]
    fn resuming_continues_at_the_recorded_offset_and_line() {
        let text = "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n";
        let mut r = NdjsonRows::open(Cursor::new(text.as_bytes().to_vec()), Mapping::default(), None, None).unwrap();
        r.next_row().unwrap();
        let at = r.position();
        assert_eq!(at, Position { offset: 8, line: 2 });
        let rest = rows(text, Mapping::default(), None, Some(at));
        assert_eq!(rest.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(rest[0].value.as_ref().unwrap(), &json!({"n": 2}));
    }
}

//! The reader thread of an import: rows parsed into canonical events (or rejected) in batches,
//! handed to the importer over a channel while earlier batches commit.

use chrono::Utc;
use tokio::sync::mpsc;

use super::rows::{Position, Reject, Rows};
use crate::core::Event;
use crate::ingest::canonical::parse_event;

/// A batch of rows as read: the valid events, the rejected rows, and where the next row starts.
pub(super) struct Batch {
    pub(super) events: Vec<Event>,
    pub(super) rejects: Vec<Reject>,
    pub(super) rows: u64,
    pub(super) first_line: u64,
    pub(super) end: Position,
}

/// The reader thread: rows → canonical events (or rejects) in batches, until the end of the
/// input, a read failure, or the importer going away.
pub(super) fn read_batches(
    mut rows: Box<dyn Rows>,
    source: &str,
    size: usize,
    tx: mpsc::Sender<std::io::Result<Batch>>,
) {
    loop {
        let now = Utc::now();
        let mut batch = Batch {
            events: Vec::with_capacity(size),
            rejects: Vec::new(),
            rows: 0,
            first_line: 0,
            end: rows.position(),
        };
        let mut done = false;
        while batch.rows < size as u64 {
            match rows.next_row() {
                Ok(Some(row)) => {
                    if batch.rows == 0 {
                        batch.first_line = row.line;
                    }
                    batch.rows += 1;
                    match row.value.and_then(|v| parse_event(v, source, now, "")) {
                        Ok(event) => batch.events.push(event),
                        Err(errors) => batch.rejects.push(Reject { line: row.line, errors, raw: rows.raw() }),
                    }
                }
                Ok(None) => {
                    done = true;
                    break;
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        batch.end = rows.position();
        if batch.rows > 0 && tx.blocking_send(Ok(batch)).is_err() {
            return;
        }
        if done {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::import::read_ndjson::NdjsonRows;
    use crate::import::rows::Mapping;

    #[test]
    fn the_reader_batches_events_and_rejects_with_their_lines_and_where_the_next_row_starts() {
        let ok = |id: &str| {
            format!(
                r#"{{"kind":"order_paid","occurred_at":"2026-01-01T00:00:00Z","subject":{{"type":"o","id":"{id}"}}}}"#
            )
        };
        let text = format!("{}\n{{\"kind\":\"Bad Kind\"}}\n\n{}\n", ok("1"), ok("2"));
        let rows = NdjsonRows::open(Cursor::new(text.clone().into_bytes()), Mapping::default(), None, None).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        read_batches(Box::new(rows), "crm", 2, tx);
        let first = rx.try_recv().unwrap().unwrap();
        assert_eq!((first.rows, first.first_line, first.events.len()), (2, 1, 1));
        assert_eq!(first.events[0].source, "crm");
        assert_eq!((first.rejects[0].line, first.rejects[0].raw.as_str()), (2, "{\"kind\":\"Bad Kind\"}"));
        assert_eq!(first.rejects[0].errors[0].field, "occurred_at", "the canonical parser's first error");
        assert_eq!(first.end, Position { offset: (ok("1").len() + 1 + 20) as u64, line: 3 });
        let second = rx.try_recv().unwrap().unwrap();
        assert_eq!((second.rows, second.first_line, second.end.offset), (1, 4, text.len() as u64));
        assert!(rx.try_recv().is_err(), "the channel closes at the end of the input");
    }
}

//! The query plans of the hot statements (intake, the worker's queue, what the dashboard's first
//! screen and `/metrics` run): each uses the index it is meant to and none scans `events`,
//! `deliveries`, `attempts` or `requests`, tables that grow with history. The audit behind this
//! list, and the statements left out of it (`counts`), is docs/adr/0010-a-long-history.md.
//! The statements are the code's own (constants and query builders), so a change to one is
//! checked here. The `claim: the event's body` lookup is the dedupe lookup's shape, repeated.

use rusqlite::Connection;

use super::ingest::{BRIDGE, DEDUPE};
use super::queries::{deliveries_sql, receipts_sql, NEXT_DUE, QUEUES};
use super::queue::{CLAIM, MARK_SENDING, RECORD, RECOVER_CLAIMED, RECOVER_SENDING};
use crate::store::{DeliveryFilter, ReceiptFilter};

fn ledger() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    super::migrate(&mut conn).unwrap();
    conn
}

fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let params = stmt.parameter_count();
    let rows: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(std::iter::repeat_n(0i64, params)), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("\n")
}

/// Tables (and the aliases the statements give them) that grow with history.
const GROWING: &[&str] = &["events", "deliveries", "attempts", "requests", "receipts", "d", "e", "e2", "d2"];

/// (what, statement, a line its plan must hold)
fn hot() -> Vec<(&'static str, String, &'static str)> {
    let needs_person = DeliveryFilter { needs_person: true, limit: Some(20), recent: true, ..Default::default() };
    let refused = ReceiptFilter { source: None, status: Some("invalid".to_owned()), limit: 20 };
    let s = |t: &str| t.to_owned();
    vec![
        ("intake: dedupe lookup", s(DEDUPE), "SEARCH events USING INDEX sqlite_autoindex_events_1 (event_id=?)"),
        (
            "intake: identity bridge",
            s(BRIDGE),
            "SEARCH identities USING INDEX sqlite_autoindex_identities_1 (subject_type=? AND subject_id=?)",
        ),
        ("claim", s(CLAIM), "SEARCH d USING INDEX deliveries_due (destination=? AND next_attempt_at<?)"),
        (
            "claim: earlier events of the subject",
            s(CLAIM),
            "SEARCH e2 USING INDEX events_subject (subject_type=? AND subject_id=?)",
        ),
        (
            "claim: the event's body",
            s("SELECT body FROM events WHERE event_id = ?1"),
            "USING INDEX sqlite_autoindex_events_1 (event_id=?)",
        ),
        ("mark_sending", s(MARK_SENDING), "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)"),
        ("record", s(RECORD), "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)"),
        ("recover: claimed", s(RECOVER_CLAIMED), "SEARCH deliveries USING INDEX deliveries_state (state=?)"),
        ("recover: sending", s(RECOVER_SENDING), "SEARCH deliveries USING INDEX deliveries_state (state=?)"),
        ("next_due", s(NEXT_DUE), "INDEX deliveries_due (destination=?)"),
        ("queues (/metrics, dashboard)", s(QUEUES), "SEARCH deliveries USING INDEX deliveries_state (state=?)"),
        ("dashboard: needing a person", deliveries_sql(&needs_person).0, "deliveries_needs_person"),
        (
            "dashboard: refused receipts",
            receipts_sql(&refused).0,
            "SEARCH receipts USING INDEX receipts_status (status=?)",
        ),
    ]
}

#[test]
fn hot_statements_use_their_index_and_scan_no_table_that_grows_with_history() {
    let conn = ledger();
    for (what, sql, want) in hot() {
        let plan = plan(&conn, &sql);
        assert!(plan.contains(want), "{what}: wanted {want:?} in\n{plan}");
        for line in plan.lines().map(|l| l.trim_start_matches(['|', '`', '-', ' '])) {
            let scanned = line.strip_prefix("SCAN ").and_then(|rest| rest.split(' ').next());
            // The newest needing a person walk their partial index from its end, stopping at the page.
            let bounded = line.ends_with("USING INDEX deliveries_needs_person");
            if let Some(table) = scanned.filter(|_| !bounded) {
                assert!(!GROWING.contains(&table), "{what} scans {table}:\n{plan}");
            }
        }
    }
}

#[test]
fn the_first_screens_lists_would_scan_without_their_fix() {
    // What the audit found: a catch-all receipts filter and the state index scan or sort history.
    let conn = ledger();
    let catch_all = "SELECT source FROM receipts WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR status = ?2) \
                     ORDER BY last_at DESC, id DESC LIMIT ?3";
    assert!(plan(&conn, catch_all).contains("SCAN receipts"));
    let unpinned = deliveries_sql(&DeliveryFilter { needs_person: true, recent: true, ..Default::default() })
        .0
        .replace(" INDEXED BY deliveries_needs_person", "");
    assert!(plan(&conn, &unpinned).contains("USE TEMP B-TREE FOR ORDER BY"), "{}", plan(&conn, &unpinned));
}

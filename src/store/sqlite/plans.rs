//! The query plans of the hot statements (intake, the worker's queue, what the dashboard's first
//! screen and `/metrics` run): each uses the index it is meant to and none scans `events`,
//! `deliveries`, `attempts` or `requests`, tables that grow with history. The audit behind this
//! list is docs/adr/0010-a-long-history.md.
//! The statements are the code's own (constants and query builders), so a change to one is
//! checked here. The `claim: the event's body` lookup is the dedupe lookup's shape, repeated.

use rusqlite::Connection;

use super::ingest::{BRIDGE, DEDUPE};
use super::queries::{deliveries_sql, receipts_sql, COUNTS, NEXT_DUE, QUEUES};
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
        ("dashboard, alerts: the ledger's totals", s(COUNTS), "SCAN ledger_counts"),
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

/// The totals the triggers keep equal what a count over the tables says, through inserts, state
/// and reason changes and deletes — including rows written before the migration that adds them.
#[test]
fn the_kept_totals_follow_every_change() {
    let mut conn = Connection::open_in_memory().unwrap();
    let before = super::MIGRATIONS.len() - 1;
    for sql in &super::MIGRATIONS[..before] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", before as i64).unwrap();
    let event = |conn: &Connection, id: &str, routed: bool| {
        conn.execute(
            "INSERT INTO events (event_id, kind, source, subject_type, subject_id, occurred_at, received_at, \
             content_hash, routed, body) VALUES (?1, 'order_paid', 'api', 'order', ?1, 0, 0, 'h', ?2, '{}')",
            rusqlite::params![id, routed],
        )
        .unwrap();
    };
    let delivery = |conn: &Connection, id: &str, dest: &str, state: &str| {
        conn.execute(
            "INSERT INTO deliveries (event_id, destination, dest_event, browser_tracked, strip_personal, state, \
             created_at, updated_at) VALUES (?1, ?2, 'purchase', 0, 0, ?3, 0, 0)",
            rusqlite::params![id, dest, state],
        )
        .unwrap();
    };
    event(&conn, "old", true);
    delivery(&conn, "old", "ga4", "delivered");
    conn.execute("INSERT INTO conflicts (event_id, received_at, content_hash, body) VALUES ('old', 0, 'x', '{}')", [])
        .unwrap();
    super::migrate(&mut conn).unwrap();

    for (i, routed) in [(1, true), (2, true), (3, false)] {
        event(&conn, &format!("e{i}"), routed);
    }
    delivery(&conn, "e1", "ga4", "pending");
    delivery(&conn, "e1", "meta", "pending");
    delivery(&conn, "e2", "ga4", "pending");
    conn.execute("UPDATE deliveries SET state = 'claimed' WHERE event_id = 'e1'", []).unwrap();
    conn.execute(
        "UPDATE deliveries SET state = 'rejected', reason = 'invalid' WHERE event_id = 'e1' AND destination = 'meta'",
        [],
    )
    .unwrap();
    conn.execute("UPDATE deliveries SET reason = 'invalid_again' WHERE reason = 'invalid'", []).unwrap();
    conn.execute("UPDATE deliveries SET updated_at = 5", []).unwrap();
    conn.execute("DELETE FROM deliveries WHERE event_id = 'old'", []).unwrap();
    conn.execute("DELETE FROM conflicts", []).unwrap();
    conn.execute("DELETE FROM events WHERE event_id = 'old'", []).unwrap();

    let kept = super::queries::counts(&conn).unwrap();
    let counted: Vec<(String, String, Option<String>, u64)> = conn
        .prepare(
            "SELECT destination, state, reason, count(*) FROM deliveries GROUP BY destination, state, reason \
             ORDER BY destination, state, reason",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let kept_deliveries: Vec<_> =
        kept.deliveries.iter().map(|(d, s, r, n)| (d.clone(), s.as_str().to_owned(), r.clone(), *n)).collect();
    assert_eq!(kept_deliveries, counted);
    assert_eq!(
        counted,
        [
            ("ga4".to_owned(), "claimed".to_owned(), None, 1),
            ("ga4".to_owned(), "pending".to_owned(), None, 1),
            ("meta".to_owned(), "rejected".to_owned(), Some("invalid_again".to_owned()), 1),
        ]
    );
    assert_eq!((kept.events, kept.routed, kept.not_routed, kept.conflicts), (3, 2, 1, 0));
}

//! The query plans of the hot statements (intake, the worker's queue, what the dashboard's first
//! screen and `/metrics` run): each uses the index it is meant to and none scans `events`,
//! `deliveries`, `attempts` or `requests`, tables that grow with history. The audit behind this
//! list, and the statements left out of it (`counts`), is docs/adr/0010-a-long-history.md.
//! Statements written inline elsewhere are repeated here verbatim; the claim and the lists are
//! the code's own.

use rusqlite::Connection;

use super::queries::{deliveries_sql, receipts_sql};
use super::queue::CLAIM;
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
        (
            "intake: dedupe lookup",
            s("SELECT content_hash FROM events WHERE event_id = ?1"),
            "SEARCH events USING INDEX sqlite_autoindex_events_1 (event_id=?)",
        ),
        (
            "intake: identity bridge",
            s("SELECT identity, consent FROM identities WHERE subject_type = ?1 AND subject_id = ?2"),
            "SEARCH identities USING INDEX sqlite_autoindex_identities_1 (subject_type=? AND subject_id=?)",
        ),
        ("claim", s(CLAIM), "SEARCH d USING INDEX deliveries_due (destination=? AND next_attempt_at<?)"),
        ("claim: earlier events of the subject", s(CLAIM), "SEARCH e2 USING INDEX events_subject (subject_type=? AND subject_id=?)"),
        ("claim: the event's body", s("SELECT body FROM events WHERE event_id = ?1"), "USING INDEX sqlite_autoindex_events_1 (event_id=?)"),
        (
            "mark_sending",
            s("UPDATE deliveries SET state = 'sending', updated_at = ?2 WHERE id = ?1 AND state = 'claimed'"),
            "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)",
        ),
        (
            "record",
            s("UPDATE deliveries SET state = ?2, reason = ?3, attempts = attempts + ?4, updated_at = ?5 \
               WHERE id = ?1 AND state IN ('claimed', 'sending') AND lease_owner = ?6"),
            "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)",
        ),
        (
            "recover: claimed",
            s("UPDATE deliveries SET state = 'pending', next_attempt_at = ?1, lease_owner = NULL, lease_until = NULL, \
               updated_at = ?1 WHERE state = 'claimed' AND lease_until < ?2"),
            "SEARCH deliveries USING INDEX deliveries_state (state=?)",
        ),
        (
            "recover: sending",
            s("SELECT id, event_id, destination, dest_event, attempt_base + attempts, route FROM deliveries \
               WHERE state = 'sending' AND lease_until < ?1"),
            "SEARCH deliveries USING INDEX deliveries_state (state=?)",
        ),
        (
            "next_due",
            s("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND destination = ?1"),
            "INDEX deliveries_due (destination=?)",
        ),
        (
            "queues (/metrics, dashboard)",
            s("SELECT destination, count(*), min(created_at) FROM deliveries \
               WHERE state IN ('pending', 'claimed', 'sending') GROUP BY destination ORDER BY destination"),
            "SEARCH deliveries USING INDEX deliveries_state (state=?)",
        ),
        ("dashboard: needing a person", deliveries_sql(&needs_person).0, "deliveries_needs_person"),
        ("dashboard: refused receipts", receipts_sql(&refused).0, "SEARCH receipts USING INDEX receipts_status (status=?)"),
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

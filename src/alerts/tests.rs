use std::collections::HashMap;

use chrono::TimeZone;

use super::*;
use crate::config::alerts::AlertRule;
use crate::reconcile::coverage::{CoverageReport, GroupBy};

fn rule(name: &str, when: Condition, above: f64, for_secs: u64) -> AlertRule {
    AlertRule {
        name: name.into(),
        when,
        above,
        below: None,
        field: None,
        destination: None,
        for_secs,
        window_secs: 3600,
    }
}

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap() + Duration::minutes(min)
}

fn reading(rule: &str, dest: &str, value: f64) -> Reading {
    Reading { rule: rule.into(), destination: dest.into(), value }
}

#[test]
fn an_alert_fires_once_while_it_holds_and_resolves_once() {
    let book = AlertBook::new(vec![rule("dead", Condition::Dead, 0.0, 0)], true);
    assert!(book.observe(at(0), &[reading("dead", "ga4", 0.0)], true).is_empty());
    let fired = book.observe(at(1), &[reading("dead", "ga4", 2.0), reading("dead", "meta", 0.0)], true);
    assert_eq!(fired.len(), 1);
    assert_eq!((fired[0].status, fired[0].destination.as_str()), (Status::Firing, "ga4"));
    assert_eq!(fired[0].notification, Delivery::Pending { attempts: 0 });
    // Still holding, even with another value: no second message.
    assert!(book.observe(at(2), &[reading("dead", "ga4", 3.0)], true).is_empty());
    assert_eq!(book.view().active.len(), 1);
    assert_eq!(book.view().active[0].value, 3.0);
    let resolved = book.observe(at(3), &[reading("dead", "ga4", 0.0)], true);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].status, Status::Resolved);
    assert_eq!(resolved[0].since, at(1));
    assert!(book.observe(at(4), &[reading("dead", "ga4", 0.0)], true).is_empty());
    let view = book.view();
    assert!(view.active.is_empty());
    assert_eq!(view.recent.iter().map(|n| n.status).collect::<Vec<_>>(), [Status::Resolved, Status::Firing]);
}

#[test]
fn for_secs_waits_and_a_blip_shorter_than_it_says_nothing() {
    let book = AlertBook::new(vec![rule("old", Condition::OldestPendingSecs, 3600.0, 600)], true);
    assert!(book.observe(at(0), &[reading("old", "ga4", 4000.0)], true).is_empty());
    // Gone before 10 minutes: never fired, so no resolved message either.
    assert!(book.observe(at(5), &[reading("old", "ga4", 10.0)], true).is_empty());
    assert!(book.observe(at(6), &[reading("old", "ga4", 4000.0)], true).is_empty());
    assert!(book.observe(at(15), &[reading("old", "ga4", 4600.0)], true).is_empty());
    let fired = book.observe(at(16), &[reading("old", "ga4", 4700.0)], true);
    assert_eq!(fired.len(), 1);
    assert!(fired[0].summary().contains("FIRING old: ga4"), "{}", fired[0].summary());
}

#[test]
fn each_destination_fires_on_its_own() {
    let book = AlertBook::new(vec![rule("depth", Condition::QueueDepth, 100.0, 0)], false);
    let fired = book.observe(at(0), &[reading("depth", "ga4", 500.0), reading("depth", "meta", 700.0)], false);
    assert_eq!(fired.len(), 2);
    assert!(fired.iter().all(|n| n.notification == Delivery::NotConfigured));
    let resolved = book.observe(at(1), &[reading("depth", "ga4", 500.0), reading("depth", "meta", 1.0)], false);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].destination, "meta");
}

#[test]
fn the_rejection_share_is_taken_over_the_window() {
    let mut r = Reader::new(vec!["li".into()]);
    let snap = |rejected, ended| HashMap::from([("li".to_owned(), Ended { rejected, ended })]);
    r.history.push_back((at(0), snap(100, 1000)));
    r.history.push_back((at(30), snap(100, 1500)));
    // Over the last 60 minutes: 50 of 600 ended were rejected.
    let now = snap(150, 2100);
    r.history.push_back((at(60), now.clone()));
    let share = r.share("li", 3600, at(60), &now);
    assert!((share - 50.0 / 1100.0).abs() < 1e-9, "{share}");
    // Over 30 minutes: 50 of 600.
    let share = r.share("li", 1800, at(60), &now);
    assert!((share - 50.0 / 600.0).abs() < 1e-9, "{share}");
    assert_eq!(r.share("other", 1800, at(60), &now), 0.0);
}

#[test]
fn messages_read_well_in_both_formats() {
    let book = AlertBook::new(vec![rule("share", Condition::RejectionShare, 0.05, 0)], true);
    let n = book.observe(at(0), &[reading("share", "linkedin", 0.125)], true).remove(0);
    let json = notify::body(&n, crate::config::alerts::AlertFormat::Json);
    assert_eq!(json["status"], "firing");
    assert_eq!(json["when"], "rejection_share");
    assert_eq!(json["destination"], "linkedin");
    let slack = notify::body(&n, crate::config::alerts::AlertFormat::Slack);
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("FIRING share: linkedin — share of ended deliveries rejected is 0.125 (alert above 0.050)"),
        "{text}"
    );
}

#[test]
fn a_coverage_rule_fires_below_its_share_and_says_so() {
    let mut r = rule("email", Condition::Coverage, 0.0, 0);
    r.below = Some(0.6);
    r.field = Some("email".into());
    let book = AlertBook::new(vec![r], true);
    assert!(book.observe(at(0), &[reading("email", "meta", 0.8)], true).is_empty());
    let fired = book.observe(at(1), &[reading("email", "meta", 0.25)], true);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].below, Some(0.6));
    assert!(fired[0].summary().contains("is 0.250 (alert below 0.600)"), "{}", fired[0].summary());
    let json = notify::body(&fired[0], crate::config::alerts::AlertFormat::Json);
    assert_eq!(json["below"], 0.6);
    // Exactly at the share is not below it: resolved.
    let resolved = book.observe(at(2), &[reading("email", "meta", 0.6)], true);
    assert_eq!(resolved.iter().map(|n| n.status).collect::<Vec<_>>(), [Status::Resolved]);
}

#[test]
fn coverage_shares_come_from_the_destination_row() {
    let mut row =
        crate::reconcile::coverage::CoverageRow { key: "meta".into(), events: 8, joined: 2, ..Default::default() };
    row.fields.insert("email", 6);
    row.consent.insert("ad_user_data", 4);
    let report = CoverageReport { since: at(0), until: at(60), by: GroupBy::Destination, events: 8, rows: vec![row] };
    assert_eq!(share_carrying(&report, "meta", "email"), Some(0.75));
    assert_eq!(share_carrying(&report, "meta", "phone"), Some(0.0));
    assert_eq!(share_carrying(&report, "meta", "joined"), Some(0.25));
    assert_eq!(share_carrying(&report, "meta", "consent.ad_user_data"), Some(0.5));
    // No event routed to a destination: nothing to judge (no reading, so no alert).
    assert_eq!(share_carrying(&report, "ga4", "email"), None);
}

#[test]
fn the_last_reconcile_counts_its_unexplained_mismatches_per_destination() {
    assert_eq!(unexplained(None, "ga4"), 0.0);
    let mut destinations = BTreeMap::new();
    destinations
        .insert("ga4".to_owned(), crate::reconcile::DestReport { unexplained: 3, explained: 5, ..Default::default() });
    let report = crate::reconcile::Report {
        window: crate::reconcile::Window { since: at(0), until: at(60) },
        totals: Default::default(),
        destinations,
        mismatches: Vec::new(),
        bad_rows: Vec::new(),
    };
    let recorded = crate::reconcile::Recorded { at: at(61), by: "cli:ops".into(), report };
    assert_eq!(unexplained(Some(&recorded), "ga4"), 3.0);
    assert_eq!(unexplained(Some(&recorded), "meta"), 0.0);
}

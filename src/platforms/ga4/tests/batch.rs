//! Grouping and size limits of requests.

use proptest::prelude::*;

use super::*;
use crate::delivery::Destination;
use crate::platforms::ga4::{payload, Ga4, Ga4Event, MAX_BODY_BYTES};

fn ga4() -> (Ga4, TestConfig) {
    let t = config("http://127.0.0.1:9");
    (Ga4::new(&t.config).unwrap(), t)
}

fn ids(batches: &[Vec<Claimed>]) -> Vec<Vec<i64>> {
    batches.iter().map(|b| b.iter().map(|c| c.delivery_id).collect()).collect()
}

fn for_client(id: i64, client: &str) -> Claimed {
    let mut e = event("lead_created", "lead", &id.to_string());
    e.identity.client_id = Some(client.into());
    claimed(id, e, "generate_lead")
}

#[test]
fn groups_by_request_level_fields_in_first_seen_order() {
    let (g, _t) = ga4();
    let mut with_user = for_client(4, "A");
    with_user.event.identity.user_id = Some("u1".into());
    let mut with_consent = for_client(5, "A");
    with_consent.event.consent.ad_user_data = Some(ConsentState::Granted);
    let mut with_email = for_client(6, "A");
    with_email.event.identity.email = Some(hash_email("a@example.com").unwrap());
    let mut stripped = with_email.clone();
    stripped.delivery_id = 7;
    stripped.strip_personal = true;
    let batch = vec![
        for_client(1, "A"),
        for_client(2, "B"),
        for_client(3, "A"),
        with_user,
        with_consent,
        with_email,
        stripped,
        for_client(8, "B"),
    ];
    // The stripped one has no user data left, so it joins plain client A.
    assert_eq!(ids(&g.batches(batch)), vec![vec![1, 3, 7], vec![2, 8], vec![4], vec![5], vec![6]]);
}

#[test]
fn at_most_25_events_or_the_configured_size() {
    let (g, _t) = ga4();
    let batch: Vec<Claimed> = (0..60).map(|i| for_client(i, "A")).collect();
    let sizes: Vec<usize> = g.batches(batch).iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![25, 25, 10]);

    let mut t = config("http://127.0.0.1:9");
    t.config.batch_size = 10;
    let g = Ga4::new(&t.config).unwrap();
    let batch: Vec<Claimed> = (0..25).map(|i| for_client(i, "A")).collect();
    let sizes: Vec<usize> = g.batches(batch).iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
}

fn big(id: i64, items: usize) -> Claimed {
    let mut c = claimed(id, purchase(&id.to_string()), "purchase");
    c.event.items = (0..items)
        .map(|i| Item {
            id: Some(format!("SKU-{i:05}")),
            name: Some("x".repeat(80)),
            price: Some(9.99),
            quantity: Some(2),
        })
        .collect();
    c
}

#[test]
fn bodies_stay_under_130kb() {
    let (g, _t) = ga4();
    // About 37 kB each: three fit, a fourth would not.
    let batch: Vec<Claimed> = (0..7).map(|i| big(i, 250)).collect();
    let batches = g.batches(batch);
    assert_eq!(ids(&batches), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    for b in &batches {
        let parts: Vec<Ga4Event> = b.iter().map(|c| Ga4Event::new(&c.event, &c.route, c.strip_personal)).collect();
        let refs: Vec<&Ga4Event> = parts.iter().collect();
        assert!(payload::request_body(&refs, true).len() < MAX_BODY_BYTES);
    }
}

#[test]
fn an_oversized_event_goes_alone() {
    let (g, _t) = ga4();
    let batch = vec![for_client(1, "1234567890.1700000000"), big(2, 1200), claimed(3, purchase("3"), "purchase")];
    assert_eq!(ids(&g.batches(batch)), vec![vec![1], vec![2], vec![3]]);
}

#[test]
fn empty_in_empty_out() {
    let (g, _t) = ga4();
    assert!(g.batches(Vec::new()).is_empty());
}

/// Few distinct request headers, so groups grow large enough to meet both limits.
fn arb_claimed() -> impl Strategy<Value = Claimed> {
    (0..4usize, 0..60usize, 0..30usize).prop_map(|(variant, items, attrs)| {
        let mut e = purchase("1");
        e.identity.client_id = Some(format!("client-{}", variant % 2));
        if variant == 3 {
            e.identity.user_id = None;
            e.consent.ad_personalization = Some(ConsentState::Granted);
        }
        e.items = (0..items)
            .map(|i| Item {
                id: Some(format!("SKU-{i}")),
                name: Some("y".repeat(90)),
                price: Some(1.0),
                quantity: Some(1),
            })
            .collect();
        for a in 0..attrs {
            e.attributes.insert(format!("attr_{a}"), serde_json::json!("z".repeat(100)));
        }
        let mut c = claimed(0, e, "purchase");
        c.strip_personal = variant == 2;
        c
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn every_batch_respects_the_limits_and_every_delivery_appears_once(
        mut claims in proptest::collection::vec(arb_claimed(), 0..80),
        batch_size in 1usize..=25,
    ) {
        for (i, c) in claims.iter_mut().enumerate() {
            c.delivery_id = i as i64;
        }
        let n = claims.len();
        let mut t = config("http://127.0.0.1:9");
        t.config.batch_size = batch_size;
        let g = Ga4::new(&t.config).unwrap();
        let batches = g.batches(claims.clone());
        prop_assert_eq!(ids(&batches), ids(&g.batches(claims)), "deterministic");

        let mut seen: Vec<i64> = batches.iter().flatten().map(|c| c.delivery_id).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..n as i64).collect::<Vec<_>>());
        for b in &batches {
            prop_assert!(!b.is_empty() && b.len() <= batch_size);
            let parts: Vec<Ga4Event> = b.iter().map(|c| Ga4Event::new(&c.event, &c.route, c.strip_personal)).collect();
            prop_assert!(parts.iter().all(|p| p.header_json == parts[0].header_json), "one header per request");
            let refs: Vec<&Ga4Event> = parts.iter().collect();
            let body = payload::request_body(&refs, true);
            if b.len() > 1 {
                prop_assert!(body.len() < MAX_BODY_BYTES, "{} bytes", body.len());
            }
            // Order within a group is the input order.
            prop_assert!(b.windows(2).all(|w| w[0].delivery_id < w[1].delivery_id));
        }
    }
}

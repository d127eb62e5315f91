use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::*;
use crate::config::sources::{default_stripe_events, IdentityKeys};
use crate::config::Secret;

fn config() -> StripeSource {
    StripeSource {
        signing_secret: Secret::try_from("env:UNUSED".to_owned()).unwrap(),
        previous_signing_secrets: vec![],
        tolerance_secs: 300,
        events: default_stripe_events(),
        keys: IdentityKeys::default(),
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/stripe/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn only_event(m: Mapped) -> (Value, Option<Value>) {
    match m {
        Mapped::Events { mut events, capture, .. } => {
            assert_eq!(events.len(), 1);
            (events.remove(0), capture)
        }
        Mapped::Ignored(why) => panic!("ignored: {why}"),
    }
}

#[test]
fn payment_intent_succeeded_is_the_orders_payment_at_event_time() {
    let (e, capture) = only_event(map(&fixture("payment_intent_succeeded"), &config(), None).unwrap());
    assert_eq!(e["kind"], "order_paid");
    assert_eq!(e["subject"], json!({"type": "order", "id": "ord_1"}));
    assert_eq!(e.get("event_id"), None, "derived from subject and kind: order:ord_1:order_paid");
    assert_eq!(e["value"], json!(25.5), "2550 cents");
    assert_eq!(e["currency"], "USD");
    // The Stripe event's `created`, not the payment intent's creation or the arrival time.
    assert_eq!(e["occurred_at"], "2024-05-01T12:00:00Z");
    assert_eq!(e["identity"]["client_id"], "123456789.1714564000");
    assert_eq!(e["identity"]["email"], "john.doe@example.com");
    let capture = capture.expect("identity goes to the bridge too");
    assert_eq!(capture["subject"], e["subject"]);
    assert_eq!(capture["identity"]["client_id"], "123456789.1714564000");
}

#[test]
fn a_partial_refund_is_its_own_event_with_the_refunded_amount() {
    let (e, _) = only_event(map(&fixture("charge_refunded"), &config(), None).unwrap());
    assert_eq!(e["kind"], "refund_completed");
    assert_eq!(e["subject"], json!({"type": "order", "id": "ord_1"}));
    assert_eq!(e["value"], json!(10.0), "amount_refunded 1000 minus previous 0");
    assert_eq!(e["event_id"], "order:ord_1:refund_completed:ch_3PBtestRelay0001@1000");
    assert_eq!(e["occurred_at"], "2024-05-01T13:00:00Z");

    // A second partial refund of the same charge: another event, with its own amount.
    let mut second = fixture("charge_refunded");
    second["data"]["object"]["amount_refunded"] = json!(2550);
    second["data"]["previous_attributes"]["amount_refunded"] = json!(1000);
    let (e2, _) = only_event(map(&second, &config(), None).unwrap());
    assert_eq!(e2["value"], json!(15.5));
    assert_ne!(e2["event_id"], e["event_id"]);

    // When the charge lists its refunds, the refund id names the event.
    let mut listed = fixture("charge_refunded");
    listed["data"]["object"]["refunds"]["data"] = json!([{"id": "re_123", "amount": 1000}]);
    let (e3, _) = only_event(map(&listed, &config(), None).unwrap());
    assert_eq!(e3["event_id"], "order:ord_1:refund_completed:re_123");
}

#[test]
fn a_dispute_of_a_payment_never_seen_is_about_the_payment_intent() {
    let (e, capture) = only_event(map(&fixture("charge_dispute_created"), &config(), None).unwrap());
    assert_eq!(e["kind"], "chargeback_opened");
    assert_eq!(e["subject"], json!({"type": "payment_intent", "id": "pi_3PBtestRelay0001"}));
    assert_eq!(e["event_id"], "payment_intent:pi_3PBtestRelay0001:chargeback_opened:dp_1PBtestRelay0001");
    assert_eq!(e["value"], json!(25.5));
    assert_eq!(e["attributes"]["dispute_reason"], "fraudulent");
    assert_eq!(capture, None);
}

#[test]
fn a_dispute_finds_the_order_through_the_payments_alias() {
    let Mapped::Events { aliases, .. } = map(&fixture("payment_intent_succeeded"), &config(), None).unwrap() else {
        panic!("ignored")
    };
    assert_eq!(aliases, ["stripe:ch_3PBtestRelay0001", "stripe:pi_3PBtestRelay0001"]);
    let dispute = fixture("charge_dispute_created");
    assert_eq!(alias_candidates(&dispute), ["stripe:pi_3PBtestRelay0001", "stripe:ch_3PBtestRelay0001"]);
    let order = Subject { kind: "order".into(), id: "ord_1".into() };
    let (e, _) = only_event(map(&dispute, &config(), Some(&order)).unwrap());
    assert_eq!(e["subject"], json!({"type": "order", "id": "ord_1"}));
    assert_eq!(e["event_id"], "order:ord_1:chargeback_opened:dp_1PBtestRelay0001");
}

#[test]
fn unmapped_types_are_ignored_not_errors() {
    let mut e = fixture("payment_intent_succeeded");
    e["type"] = json!("payment_intent.created");
    assert!(matches!(map(&e, &config(), None).unwrap(), Mapped::Ignored(_)));
    let mut c = config();
    c.events.remove("payment_intent.succeeded");
    assert!(matches!(map(&fixture("payment_intent_succeeded"), &c, None).unwrap(), Mapped::Ignored(_)));
}

#[test]
fn an_unpaid_checkout_session_waits_for_its_async_payment() {
    let session = |status: &str, kind: &str| {
        json!({"id": "evt_1", "type": kind, "created": 1714564800, "data": {"object": {
            "object": "checkout.session", "id": "cs_1", "amount_total": 12900, "currency": "eur",
            "payment_status": status, "client_reference_id": "1042", "payment_intent": "pi_9",
            "customer_details": {"email": "a@b.example", "address": {"country": "DE", "postal_code": "10115"}},
            "metadata": {"ga_client_id": "1.2"}}}})
    };
    assert!(matches!(
        map(&session("unpaid", "checkout.session.completed"), &config(), None).unwrap(),
        Mapped::Ignored(_)
    ));
    let (e, _) =
        only_event(map(&session("paid", "checkout.session.async_payment_succeeded"), &config(), None).unwrap());
    assert_eq!(e["subject"], json!({"type": "order", "id": "1042"}));
    assert_eq!(e["value"], json!(129.0));
    assert_eq!(e["identity"]["country"], "DE");
    assert_eq!(e["attributes"]["stripe_payment_intent"], "pi_9");
}

#[test]
fn only_the_first_invoice_starts_a_subscription() {
    let invoice = |reason: &str| {
        json!({"id": "evt_2", "type": "invoice.paid", "created": 1714564800, "data": {"object": {
            "object": "invoice", "amount_paid": 1500, "currency": "jpy", "billing_reason": reason,
            "subscription": "sub_1", "customer_email": "x@y.example"}}})
    };
    assert!(matches!(map(&invoice("subscription_cycle"), &config(), None).unwrap(), Mapped::Ignored(_)));
    let (e, _) = only_event(map(&invoice("subscription_create"), &config(), None).unwrap());
    assert_eq!(e["kind"], "subscription_started");
    assert_eq!(e["subject"], json!({"type": "subscription", "id": "sub_1"}));
    assert_eq!(e["value"], json!(1500.0), "JPY has no minor unit");
}

#[test]
fn amounts_follow_the_currency_exponent() {
    assert_eq!(major_units(12345, "eur"), 123.45);
    assert_eq!(major_units(500, "JPY"), 500.0);
    assert_eq!(major_units(1234, "KWD"), 1.234);
}

#[test]
fn a_mapped_type_without_a_subject_is_an_error() {
    let e = json!({"id": "evt_3", "type": "charge.dispute.created", "created": 1714564800,
                   "data": {"object": {"object": "dispute", "amount": 100, "currency": "usd", "id": "dp_1"}}});
    let err = map(&e, &config(), None).unwrap_err();
    assert_eq!(err.field, "data.object");
}

mod signature {
    use super::*;

    /// Signs like Stripe does, written out here independently of `verify`.
    fn sign(secret: &str, t: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn secrets(list: &[&str]) -> Vec<SecretValue> {
        list.iter().map(|s| SecretValue::for_tests(s)).collect()
    }

    #[test]
    fn accepts_any_v1_with_any_secret_and_refuses_the_rest() {
        let body = r#"{"id":"evt_1"}"#;
        let now = 1_700_000_000;
        let good = format!("t={now},v1={}", sign("whsec_new", now, body));
        assert_eq!(verify(Some(&good), body.as_bytes(), &secrets(&["whsec_old", "whsec_new"]), now, 300), Ok(()));
        let rotated = format!("t={now},v1={},v1={}", sign("whsec_other", now, body), sign("whsec_new", now, body));
        assert_eq!(verify(Some(&rotated), body.as_bytes(), &secrets(&["whsec_new"]), now, 300), Ok(()));
        assert_eq!(
            verify(Some(&good), br#"{"id":"evt_2"}"#, &secrets(&["whsec_new"]), now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&good), body.as_bytes(), &secrets(&["whsec_old"]), now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&good), body.as_bytes(), &secrets(&["whsec_new"]), now + 301, 300),
            Err(SignatureError::Stale)
        );
        // Signed in the future (a skewed Stripe clock): accepted, as Stripe's libraries do.
        assert_eq!(verify(Some(&good), body.as_bytes(), &secrets(&["whsec_new"]), now - 301, 300), Ok(()));
        assert_eq!(verify(None, body.as_bytes(), &secrets(&["whsec_new"]), now, 300), Err(SignatureError::Missing));
        assert_eq!(verify(Some("garbage"), b"", &secrets(&["x"]), now, 300), Err(SignatureError::Malformed));
        let v0 = format!("t={now},v0={}", sign("whsec_new", now, body));
        assert_eq!(verify(Some(&v0), body.as_bytes(), &secrets(&["whsec_new"]), now, 300), Err(SignatureError::NoV1));
    }
}

/// Every case of tests/vectors/stripe/signatures.json, whose verdicts Stripe's official library
/// gave (scripts/stripe_vectors.py), is answered the same way here.
#[test]
fn signatures_agree_with_stripes_library() {
    let path = format!("{}/tests/vectors/stripe/signatures.json", env!("CARGO_MANIFEST_DIR"));
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 20);
    for c in &cases {
        let secrets = [SecretValue::for_tests(c["secret"].as_str().unwrap())];
        let got = verify(
            c["header"].as_str(),
            c["body"].as_str().unwrap().as_bytes(),
            &secrets,
            c["now"].as_i64().unwrap(),
            c["tolerance"].as_u64().unwrap(),
        );
        let want = match c["expect"].as_str().unwrap() {
            "valid" => Ok(()),
            "bad_signature" => Err(SignatureError::Mismatch),
            "stale_timestamp" => Err(SignatureError::Stale),
            "missing_header" => Err(SignatureError::Missing),
            "malformed_header" => Err(SignatureError::Malformed),
            "no_v1" => Err(SignatureError::NoV1),
            other => panic!("unknown expectation {other}"),
        };
        assert_eq!(got, want, "case {}", c["name"]);
    }
}

/// A signed `charge.refunded` whose `amount_refunded` minus its previous value overflows an i64
/// once wrapped to a 1-cent refund; now it is refused, as is a negative cumulative amount.
#[test]
fn refund_amounts_that_overflow_or_go_negative_are_refused_not_wrapped() {
    let mut e = fixture("charge_refunded");
    e["data"]["object"]["amount_refunded"] = json!(i64::MIN);
    e["data"]["previous_attributes"]["amount_refunded"] = json!(i64::MAX);
    let err = map(&e, &config(), None).unwrap_err();
    assert_eq!(err.field, "data.object.amount_refunded");

    let mut e = fixture("charge_refunded");
    e["data"]["object"]["amount_refunded"] = json!(500);
    e["data"]["previous_attributes"]["amount_refunded"] = json!(1000);
    assert_eq!(map(&e, &config(), None).unwrap_err().field, "data.object.amount_refunded", "it only grows");
}

#[test]
fn a_subscription_total_that_overflows_is_refused() {
    let event = json!({
        "type": "customer.subscription.created", "created": 1714564800,
        "data": {"object": {"object": "subscription", "id": "sub_1", "currency": "eur",
            "items": {"data": [{"price": {"unit_amount": i64::MAX}, "quantity": 2}]}}}
    });
    assert_eq!(map(&event, &config(), None).unwrap_err().field, "data.object.items");
}

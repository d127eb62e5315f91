use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::core::pii::Sha256Hex;
use crate::core::ConsentState;

const RAW_EMAIL: &str = "Jane.Roe@Example.org";
const RAW_PHONE: &str = "+49 (151) 777-0123";
const RAW_FIRST: &str = "Wilhelmina";
const RAW_LAST: &str = "Zwiebelfisch";
const RAW_STREET: &str = "Kastanienallee 77";
const RAW_GENDER: &str = "Female";
const RAW_BIRTH_DATE: &str = "1987-06-05";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

/// The SPEC §6 example, with real-looking values in place of the "…".
fn full_event() -> Value {
    json!({
        "kind": "refund_completed",
        "occurred_at": "2026-11-20T10:15:00Z",
        "subject": {"type": "order", "id": "1042"},
        "value": 59.90, "currency": "EUR",
        "items": [{"id": "SKU-1", "name": "Linen shirt", "price": 59.90, "quantity": 1}],
        "identity": {"client_id": "1234567890.1700000000", "session_id": "1700000000", "user_id": "u-77",
                     "email": RAW_EMAIL, "phone": RAW_PHONE, "first_name": RAW_FIRST, "last_name": RAW_LAST,
                     "street": RAW_STREET, "gender": RAW_GENDER, "date_of_birth": RAW_BIRTH_DATE,
                     "city": "Berlin", "region": "BE", "postal_code": "10435",
                     "country": "de", "gclid": "gclid-1", "gbraid": "gbraid-1", "wbraid": "wbraid-1",
                     "fbp": "fb.1.1700000000.1", "fbc": "fb.1.1700000000.abc", "li_fat_id": "li-1",
                     "ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
        "consent": {"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "denied"},
        "attributes": {"payment_reference": "PR-9"}
    })
}

fn minimal_event() -> Value {
    json!({
        "kind": "order_paid",
        "occurred_at": "2026-11-20T10:15:00Z",
        "subject": {"type": "order", "id": "1042"}
    })
}

fn parse(v: Value) -> Result<Event, Vec<FieldError>> {
    parse_event(v, "api", now(), "")
}

fn errors(v: Value) -> Vec<FieldError> {
    match parse(v) {
        Ok(e) => panic!("expected errors, got {e:?}"),
        Err(errs) => errs,
    }
}

fn error_at<'a>(errs: &'a [FieldError], field: &str) -> &'a FieldError {
    errs.iter().find(|e| e.field == field).unwrap_or_else(|| panic!("no error at {field:?} in {errs:#?}"))
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    *v.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = new;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

// ---- the happy path ----

#[test]
fn the_spec_example_parses() {
    let e = parse(full_event()).unwrap_or_else(|errs| panic!("{errs:#?}"));
    assert_eq!(e.event_id.as_str(), "order:1042:refund_completed");
    assert_eq!(e.kind.as_str(), "refund_completed");
    assert_eq!(e.source, "api");
    assert_eq!(e.occurred_at, Utc.with_ymd_and_hms(2026, 11, 20, 10, 15, 0).unwrap());
    assert_eq!(e.received_at, now());
    assert_eq!(e.subject, Subject { kind: "order".into(), id: "1042".into() });
    assert_eq!(e.value, Some(59.90));
    assert_eq!(e.currency.as_ref().map(Currency::as_str), Some("EUR"));
    assert_eq!(
        e.items,
        vec![Item {
            id: Some("SKU-1".into()),
            name: Some("Linen shirt".into()),
            price: Some(59.90),
            quantity: Some(1)
        }]
    );
    assert_eq!(e.identity.client_id.as_deref(), Some("1234567890.1700000000"));
    assert_eq!(e.identity.session_id.as_deref(), Some("1700000000"));
    assert_eq!(e.identity.gclid.as_deref(), Some("gclid-1"));
    assert_eq!(e.identity.country.as_deref(), Some("DE"));
    assert_eq!(e.identity.email.as_ref().unwrap().meta, Sha256Hex::of("jane.roe@example.org"));
    assert_eq!(e.identity.phone.as_ref().unwrap().google, Sha256Hex::of("+491517770123"));
    assert_eq!(e.identity.phone.as_ref().unwrap().meta, Sha256Hex::of("491517770123"));
    assert_eq!(e.identity.first_name.as_ref().unwrap().google, Sha256Hex::of("wilhelmina"));
    assert_eq!(e.identity.gender.as_ref().unwrap().meta, Sha256Hex::of("f"));
    assert_eq!(e.identity.date_of_birth.as_ref().unwrap().meta, Sha256Hex::of("19870605"));
    assert_eq!(e.consent.analytics, Some(ConsentState::Granted));
    assert_eq!(e.consent.ad_personalization, Some(ConsentState::Denied));
    assert_eq!(e.attributes.get("payment_reference"), Some(&json!("PR-9")));
    assert!(e.joined.is_empty());
}

#[test]
fn a_minimal_event_parses() {
    let e = parse(minimal_event()).unwrap_or_else(|errs| panic!("{errs:#?}"));
    assert_eq!(e.event_id.as_str(), "order:1042:order_paid");
    assert_eq!(e.value, None);
    assert!(e.items.is_empty());
    assert_eq!(e.identity, Identity::default());
    assert_eq!(e.consent, Consent::default());
}

#[test]
fn a_supplied_event_id_is_kept() {
    let mut v = full_event();
    v["event_id"] = json!("re_3Mtw1042");
    let e = parse(v).unwrap_or_else(|errs| panic!("{errs:#?}"));
    assert_eq!(e.event_id.as_str(), "re_3Mtw1042");
}

#[test]
fn the_derived_id_is_stable_across_redeliveries() {
    let a = parse(full_event()).unwrap();
    let b = parse_event(full_event(), "api", now() + Duration::hours(5), "").unwrap();
    assert_eq!(a.event_id, b.event_id);
    assert_eq!(a.content_hash(), b.content_hash());
}

#[test]
fn a_derived_event_id_obeys_the_event_id_rules() {
    for (kind, id) in [(" order", "1042"), ("order", "1042 "), ("order", "10\n42")] {
        let v = with(with(minimal_event(), "/subject/type", json!(kind)), "/subject/id", json!(id));
        if let Ok(e) = parse(v) {
            assert!(
                EventId::parse(e.event_id.as_str()).is_ok(),
                "derived id {:?} breaks the EventId rules",
                e.event_id
            );
        }
    }
}

#[test]
fn an_offset_time_is_stored_in_utc() {
    let e = parse(with(minimal_event(), "/occurred_at", json!("2026-11-20T11:15:00+01:00"))).unwrap();
    assert_eq!(e.occurred_at, Utc.with_ymd_and_hms(2026, 11, 20, 10, 15, 0).unwrap());
}

#[test]
fn blank_plain_identifiers_are_dropped_and_others_trimmed() {
    let mut v = minimal_event();
    v["identity"] = json!({"client_id": "  c-1  ", "gclid": "   ", "email": "  "});
    let e = parse(v).unwrap_or_else(|errs| panic!("{errs:#?}"));
    assert_eq!(e.identity.client_id.as_deref(), Some("c-1"));
    assert_eq!(e.identity.gclid, None);
    assert_eq!(e.identity.email, None);
}

// ---- personal data never stored raw ----

#[test]
fn the_stored_event_holds_no_raw_personal_data() {
    let e = parse(full_event()).unwrap();
    let stored = serde_json::to_string(&e).unwrap();
    let lowered = stored.to_lowercase();
    for raw in [RAW_EMAIL, RAW_PHONE, RAW_FIRST, RAW_LAST, RAW_STREET, RAW_GENDER, RAW_BIRTH_DATE] {
        assert!(!lowered.contains(&raw.to_lowercase()), "{raw:?} is stored: {stored}");
    }
    // Nor any normalised form of them.
    for normalised in [
        "jane.roe@example.org",
        "janeroe",
        "491517770123",
        "wilhelmina",
        "zwiebelfisch",
        "kastanienallee",
        "19870605",
        "1987",
    ] {
        assert!(!lowered.contains(normalised), "{normalised:?} is stored: {stored}");
    }
    // A one-letter gender cannot be searched for: every personal field must hold a hash instead.
    let identity = serde_json::to_value(&e.identity).unwrap();
    for field in crate::core::event::PERSONAL_FIELDS {
        let hashed = &identity[field];
        assert!(hashed["meta"].as_str().is_some_and(|h| h.len() == 64), "{field} is not hashed: {hashed}");
    }
}

#[test]
fn the_stored_capture_holds_no_raw_personal_data() {
    let capture = parse_capture(
        json!({
            "subject": {"type": "order", "id": "1042"},
            "identity": {"email": RAW_EMAIL, "phone": RAW_PHONE, "first_name": RAW_FIRST,
                         "last_name": RAW_LAST, "street": RAW_STREET, "gender": RAW_GENDER,
                         "date_of_birth": RAW_BIRTH_DATE}
        }),
        now(),
    )
    .unwrap_or_else(|errs| panic!("{errs:#?}"));
    let stored = serde_json::to_string(&capture.identity).unwrap().to_lowercase();
    for raw in [RAW_EMAIL, RAW_PHONE, RAW_FIRST, RAW_LAST, RAW_STREET, RAW_GENDER, RAW_BIRTH_DATE, "19870605"] {
        assert!(!stored.contains(&raw.to_lowercase()), "{raw:?} is stored: {stored}");
    }
    assert_eq!(capture.identity.email.unwrap().meta, Sha256Hex::of("jane.roe@example.org"));
    assert_eq!(capture.identity.gender.unwrap().meta, Sha256Hex::of("f"));
    assert_eq!(capture.identity.date_of_birth.unwrap().meta, Sha256Hex::of("19870605"));
}

// ---- field paths of shape errors ----

#[test]
fn a_missing_kind_is_required_and_named() {
    let errs = errors(without(minimal_event(), "kind"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].code, "required");
    assert!(errs[0].message.contains("kind"), "{errs:#?}");
    assert!(!errs[0].message.contains(" at line "), "{errs:#?}");
}

#[test]
fn a_missing_kind_is_required_at_its_path() {
    let errs = errors(without(minimal_event(), "kind"));
    let e = error_at(&errs, "kind");
    assert_eq!(e.code, "required");
}

#[test]
fn a_missing_subject_id_is_required_at_its_path() {
    let mut v = minimal_event();
    v["subject"] = json!({"type": "order"});
    let e = error_at(&errors(v), "subject.id").clone();
    assert_eq!(e.code, "required");
}

#[test]
fn an_unknown_top_level_field_is_named() {
    let mut v = minimal_event();
    v["colour"] = json!("blue");
    let errs = errors(v);
    let e = error_at(&errs, "colour");
    assert_eq!(e.code, "unknown_field");
}

#[test]
fn an_unknown_identity_field_is_named_with_its_path() {
    let mut v = minimal_event();
    v["identity"] = json!({"emial": "x@example.com"});
    let errs = errors(v);
    let e = error_at(&errs, "identity.emial");
    assert_eq!(e.code, "unknown_field");
    assert!(!e.message.contains(" at line "), "{e:?}");
}

#[test]
fn a_wrongly_typed_field_is_invalid_at_its_path() {
    let errs = errors(with(minimal_event(), "/occurred_at", json!(1700000000)));
    assert_eq!(error_at(&errs, "occurred_at").code, "invalid");
    let mut v = minimal_event();
    v["items"] = json!([{"id": "a"}, {"id": "b", "price": "cheap"}]);
    assert_eq!(error_at(&errors(v), "items[1].price").code, "invalid");
}

#[test]
fn an_unknown_consent_value_is_invalid_at_its_path() {
    let mut v = minimal_event();
    v["consent"] = json!({"analytics": "maybe"});
    assert_eq!(error_at(&errors(v), "consent.analytics").code, "invalid");
}

// ---- field paths of value errors ----

#[test]
fn a_bad_occurred_at_is_invalid() {
    for bad in ["yesterday", "2026-11-20 10:15:00", "2026-11-20T10:15:00", ""] {
        let errs = errors(with(minimal_event(), "/occurred_at", json!(bad)));
        assert_eq!(error_at(&errs, "occurred_at").code, "invalid", "{bad:?}");
    }
}

#[test]
fn a_future_occurred_at_is_out_of_range_beyond_the_tolerance() {
    let later = |minutes: i64| (now() + Duration::minutes(minutes)).to_rfc3339();
    let errs = errors(with(minimal_event(), "/occurred_at", json!(later(6))));
    assert_eq!(error_at(&errs, "occurred_at").code, "out_of_range");
    // A little clock skew is tolerated.
    assert!(parse(with(minimal_event(), "/occurred_at", json!(later(5)))).is_ok());
}

#[test]
fn a_value_without_currency_needs_one() {
    let mut v = minimal_event();
    v["value"] = json!(10.0);
    let errs = errors(v);
    assert_eq!(error_at(&errs, "currency").code, "required");
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn a_bad_currency_is_invalid_and_reported_once() {
    let mut v = minimal_event();
    v["value"] = json!(10.0);
    v["currency"] = json!("EURO");
    let errs = errors(v);
    assert_eq!(error_at(&errs, "currency").code, "invalid");
    assert_eq!(errs.iter().filter(|e| e.field == "currency").count(), 1, "{errs:#?}");
}

#[test]
fn a_lowercase_currency_is_normalised() {
    let mut v = minimal_event();
    v["value"] = json!(10.0);
    v["currency"] = json!("eur");
    assert_eq!(parse(v).unwrap().currency.unwrap().as_str(), "EUR");
}

#[test]
fn a_bad_email_is_reported_at_identity_email_without_the_value() {
    let raw = "not-an-address.example.org";
    let mut v = minimal_event();
    v["identity"] = json!({"email": raw});
    let errs = errors(v);
    let e = error_at(&errs, "identity.email");
    assert_eq!(e.code, "invalid");
    let everything = serde_json::to_string(&errs).unwrap();
    assert!(!everything.contains(raw) && !everything.contains("not-an-address"), "{everything}");
}

#[test]
fn bad_personal_fields_are_each_reported_without_their_values() {
    let mut v = minimal_event();
    v["identity"] = json!({"phone": "ring 0151 secret", "first_name": "!!!", "street": "---", "country": "Germany"});
    let errs = errors(v);
    for f in ["identity.phone", "identity.first_name", "identity.street", "identity.country"] {
        assert_eq!(error_at(&errs, f).code, "invalid");
    }
    assert!(!serde_json::to_string(&errs).unwrap().contains("secret"));
}

#[test]
fn genders_are_letters_or_words_in_any_case() {
    for (raw, letter) in [("f", "f"), ("F", "f"), ("female", "f"), (" FEMALE ", "f"), ("m", "m"), ("Male", "m")] {
        let mut v = minimal_event();
        v["identity"] = json!({"gender": raw});
        let e = parse(v).unwrap_or_else(|errs| panic!("{raw:?}: {errs:#?}"));
        assert_eq!(e.identity.gender.unwrap().meta, Sha256Hex::of(letter), "{raw:?}");
    }
}

#[test]
fn dates_of_birth_as_iso_or_compact_dates() {
    for raw in ["1987-06-05", "19870605", " 1987-06-05 "] {
        let mut v = minimal_event();
        v["identity"] = json!({"date_of_birth": raw});
        let e = parse(v).unwrap_or_else(|errs| panic!("{raw:?}: {errs:#?}"));
        assert_eq!(e.identity.date_of_birth.unwrap().meta, Sha256Hex::of("19870605"), "{raw:?}");
    }
}

#[test]
fn a_bad_gender_or_date_of_birth_is_a_field_error_without_the_value() {
    for (gender, date, why) in [
        ("diverse", "1987-02-30", "calendar date"),
        ("w", "05.06.1987", "YYYY-MM-DD"),
        ("unknown", "2026-11-21", "today"),
        ("nb", "1899-12-31", "1900-01-01"),
    ] {
        let mut v = minimal_event();
        v["identity"] = json!({"gender": gender, "date_of_birth": date, "email": RAW_EMAIL});
        let errs = errors(v);
        let g = error_at(&errs, "identity.gender");
        assert_eq!(g.code, "invalid");
        assert!(g.message.contains("\"female\""), "{g:?}");
        let d = error_at(&errs, "identity.date_of_birth");
        assert_eq!(d.code, "invalid");
        assert!(d.message.contains(why), "{date:?}: {d:?}");
        assert_eq!(errs.len(), 2, "{errs:#?}");
        let everything = serde_json::to_string(&errs).unwrap();
        assert!(!everything.contains(date) && !everything.contains(gender), "{everything}");
    }
}

#[test]
fn a_date_of_birth_after_the_events_day_is_refused() {
    let mut v = minimal_event();
    v["identity"] = json!({"date_of_birth": "2026-11-20"});
    assert!(parse(v.clone()).is_ok(), "born today (the parse's clock)");
    v["identity"] = json!({"date_of_birth": "2026-11-21"});
    assert!(error_at(&errors(v), "identity.date_of_birth").message.contains("today"));
}

#[test]
fn blank_gender_and_date_of_birth_are_absent() {
    let mut v = minimal_event();
    v["identity"] = json!({"gender": " ", "date_of_birth": ""});
    let e = parse(v).unwrap_or_else(|errs| panic!("{errs:#?}"));
    assert_eq!((e.identity.gender, e.identity.date_of_birth), (None, None));
}

#[test]
fn an_overlong_identifier_is_too_long() {
    let mut v = minimal_event();
    v["identity"] = json!({"user_agent": "x".repeat(1025)});
    assert_eq!(error_at(&errors(v), "identity.user_agent").code, "too_long");
}

#[test]
fn items_need_an_id_or_a_name() {
    let mut v = minimal_event();
    v["items"] = json!([{"id": "SKU-1"}, {"name": "Shirt"}, {"price": 1.0, "quantity": 1}, {"id": "", "name": ""}]);
    let errs = errors(v);
    assert_eq!(error_at(&errs, "items[2]").code, "required");
    assert_eq!(error_at(&errs, "items[3]").code, "required");
    assert!(errs.iter().all(|e| e.field != "items[0]" && e.field != "items[1]"), "{errs:#?}");
}

#[test]
fn a_negative_quantity_is_out_of_range() {
    let mut v = minimal_event();
    v["items"] = json!([{"id": "SKU-1", "quantity": -1}]);
    assert_eq!(error_at(&errors(v), "items[0].quantity").code, "out_of_range");
}

#[test]
fn nested_attributes_are_invalid() {
    let mut v = minimal_event();
    v["attributes"] = json!({"ok": 1, "nested": {"a": 1}, "list": [1]});
    let errs = errors(v);
    assert_eq!(error_at(&errs, "attributes.nested").code, "invalid");
    assert_eq!(error_at(&errs, "attributes.list").code, "invalid");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn a_bad_kind_subject_and_event_id_are_reported_together() {
    let v = json!({
        "event_id": " padded ",
        "kind": "Order-Paid",
        "occurred_at": "2026-11-20T10:15:00Z",
        "subject": {"type": "", "id": "1042"}
    });
    let errs = errors(v);
    assert_eq!(error_at(&errs, "event_id").code, "invalid");
    assert_eq!(error_at(&errs, "kind").code, "invalid");
    assert_eq!(error_at(&errs, "subject.type").code, "required");
}

#[test]
fn a_subject_type_with_a_colon_is_invalid() {
    // The derived id is type:id:kind, so a ':' in the type would make ids ambiguous.
    let errs = errors(with(minimal_event(), "/subject/type", json!("a:b")));
    assert_eq!(error_at(&errs, "subject.type").code, "invalid");
}

// ---- batch prefix ----

#[test]
fn the_batch_prefix_is_applied_to_value_errors() {
    let mut v = minimal_event();
    v["value"] = json!(1.0);
    v["identity"] = json!({"email": "nope"});
    let errs = parse_event(v, "api", now(), "events[3]").unwrap_err();
    error_at(&errs, "events[3].currency");
    error_at(&errs, "events[3].identity.email");
    assert!(errs.iter().all(|e| e.field.starts_with("events[3].")), "{errs:#?}");
}

#[test]
fn the_batch_prefix_is_applied_to_shape_errors() {
    let mut v = minimal_event();
    v["identity"] = json!({"emial": "x"});
    let errs = parse_event(v, "api", now(), "events[3]").unwrap_err();
    assert_eq!(error_at(&errs, "events[3].identity.emial").code, "unknown_field");
}

#[test]
fn the_batch_prefix_is_applied_to_a_missing_field() {
    let errs = parse_event(without(minimal_event(), "kind"), "api", now(), "events[3]").unwrap_err();
    assert_eq!(error_at(&errs, "events[3].kind").code, "required");
}

#[test]
fn the_batch_prefix_is_applied_even_where_the_path_is_the_event() {
    let errs = parse_event(without(minimal_event(), "kind"), "api", now(), "events[3]").unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].field.starts_with("events[3]"), "{errs:#?}");
    assert_eq!(errs[0].code, "required");
}

#[test]
fn a_non_object_is_invalid() {
    let errs = parse_event(json!([1, 2]), "api", now(), "events[0]").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].field.starts_with("events[0]"), "{errs:#?}");
}

// ---- identity capture ----

#[test]
fn a_capture_with_captured_at_keeps_it() {
    let capture = parse_capture(
        json!({
            "subject": {"type": "order", "id": "1042"},
            "captured_at": "2026-11-20T10:09:12Z",
            "identity": {"client_id": "1234567890.1700000000", "session_id": "1700000000", "gclid": "g-1",
                         "fbp": "fb.1.1.1", "email": RAW_EMAIL},
            "consent": {"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "granted"}
        }),
        now(),
    )
    .unwrap_or_else(|errs| panic!("{errs:#?}"));
    assert_eq!(capture.subject, Subject { kind: "order".into(), id: "1042".into() });
    assert_eq!(capture.captured_at, Utc.with_ymd_and_hms(2026, 11, 20, 10, 9, 12).unwrap());
    assert_eq!(capture.identity.client_id.as_deref(), Some("1234567890.1700000000"));
    assert_eq!(capture.identity.gclid.as_deref(), Some("g-1"));
    assert_eq!(capture.consent.ad_personalization, Some(ConsentState::Granted));
}

#[test]
fn a_capture_without_captured_at_is_captured_now() {
    let capture = parse_capture(json!({"subject": {"type": "lead", "id": "L-9"}}), now()).unwrap();
    assert_eq!(capture.captured_at, now());
    assert_eq!(capture.identity, Identity::default());
}

#[test]
fn capture_errors_carry_field_paths() {
    let errs = parse_capture(
        json!({"subject": {"type": "order", "id": ""}, "captured_at": "soon", "identity": {"email": "bad"}}),
        now(),
    )
    .unwrap_err();
    assert_eq!(error_at(&errs, "subject.id").code, "required");
    assert_eq!(error_at(&errs, "captured_at").code, "invalid");
    assert_eq!(error_at(&errs, "identity.email").code, "invalid");

    let errs = parse_capture(json!({"subject": {"type": "order", "id": "1"}, "kind": "x"}), now()).unwrap_err();
    assert_eq!(error_at(&errs, "kind").code, "unknown_field");
}

// ---- GA cookie values as ids ----

#[test]
fn raw_ga_cookie_values_are_stored_as_the_plain_ids() {
    let mut v = minimal_event();
    v["identity"] = json!({"client_id": "GA1.1.1234567890.1700000000",
                           "session_id": "GS2.1.s1700000000$o3$g1$t1700000391$j60$l0$h0"});
    let e = parse(v).unwrap_or_else(|errs| panic!("{errs:#?}"));
    assert_eq!(e.identity.client_id.as_deref(), Some("1234567890.1700000000"));
    assert_eq!(e.identity.session_id.as_deref(), Some("1700000000"));

    let capture = parse_capture(
        json!({"subject": {"type": "order", "id": "1042"},
               "identity": {"client_id": "GA1.2.555.666", "session_id": "GS1.1.1700000001.3.1.1700000391.0.0.0"}}),
        now(),
    )
    .unwrap_or_else(|errs| panic!("{errs:#?}"));
    assert_eq!(capture.identity.client_id.as_deref(), Some("555.666"));
    assert_eq!(capture.identity.session_id.as_deref(), Some("1700000001"));
}

/// `INV-1042`, `INV-1042\u{200b}` and `\u{feff}INV-1042` were three orders; now only the first is.
#[test]
fn invisible_variants_of_ids_are_refused_with_the_field_named() {
    for (pointer, bad, field) in [
        ("/subject/id", json!("INV-1042\u{200b}"), "subject.id"),
        ("/subject/id", json!("\u{feff}INV-1042"), "subject.id"),
        ("/subject/type", json!("order\u{202e}"), "subject.type"),
    ] {
        let errs = errors(with(minimal_event(), pointer, bad));
        assert_eq!(error_at(&errs, field).code, "invalid_characters", "{errs:?}");
    }
    let mut v = minimal_event();
    v["event_id"] = json!("evt\u{2066}1");
    assert_eq!(error_at(&errors(v), "event_id").code, "invalid_characters");
    let mut v = minimal_event();
    v["identity"] = json!({"user_id": "u-1\u{200c}", "city": "Teh\u{200c}ran"});
    let errs = errors(v);
    assert_eq!(error_at(&errs, "identity.user_id").code, "invalid_characters");
    assert!(errs.iter().all(|e| e.field != "identity.city"), "free text may carry a joiner: {errs:?}");
}

#[test]
fn values_no_platform_should_get_are_refused() {
    let v = |value: Value| {
        let mut e = minimal_event();
        e["value"] = value;
        e["currency"] = json!("EUR");
        e
    };
    assert_eq!(error_at(&errors(v(json!(-100))), "value").code, "out_of_range");
    assert_eq!(error_at(&errors(v(json!(1e18))), "value").code, "out_of_range");
    assert!(parse(v(json!(1e12))).is_ok(), "the bound itself is accepted");
    let mut zzz = v(json!(10));
    zzz["currency"] = json!("ZZZ");
    assert_eq!(error_at(&errors(zzz), "currency").code, "invalid");

    let mut items = minimal_event();
    items["items"] = json!([{"id": "a", "quantity": i64::MAX}, {"id": "b", "quantity": i64::MAX, "price": -1}]);
    let errs = errors(items);
    assert_eq!(error_at(&errs, "items[0].quantity").code, "out_of_range");
    assert_eq!(error_at(&errs, "items[1].quantity").code, "out_of_range");
    assert_eq!(error_at(&errs, "items[1].price").code, "out_of_range");
}

/// serde's own type errors quote the value; under `identity` they must not.
#[test]
fn a_wrongly_typed_personal_field_is_reported_without_its_value() {
    for (field, raw) in [
        ("phone", json!(4917099998888_i64)),
        ("email", json!(12345.678)),
        ("postal_code", json!(10435)),
        ("date_of_birth", json!(19870605)),
        ("ip", json!(true)),
        ("first_name", json!(["Wilhelmina"])),
    ] {
        let mut v = minimal_event();
        v["identity"] = json!({ field: raw });
        let errs = errors(v);
        let e = error_at(&errs, &format!("identity.{field}"));
        assert_eq!(e.code, "invalid");
        let text = serde_json::to_string(&errs).unwrap();
        let shown = raw.to_string().trim_matches(|c| c == '[' || c == ']' || c == '"').to_owned();
        assert!(!text.contains(&shown), "{field}: {text}");
        assert!(e.message.contains("expected"), "still says what is expected: {}", e.message);
    }
    let errs =
        parse_capture(json!({"subject": {"type": "user", "id": "u"}, "identity": {"phone": 4917099998888_i64}}), now())
            .unwrap_err();
    assert!(!serde_json::to_string(&errs).unwrap().contains("4917099998888"), "{errs:?}");
}

#[test]
fn an_array_is_never_taken_for_an_object() {
    // serde alone reads a struct from an array of its fields: `["order", "1042"]` as a subject.
    for (pointer, array, field) in [
        ("/subject", json!(["order", "1042"]), "subject"),
        ("/consent", json!(["granted", null, null]), "consent"),
        ("/identity", json!([]), "identity"),
        ("/items", json!([["SKU-1", "Shirt", 10.0, 1]]), "items[0]"),
    ] {
        let mut event = minimal_event();
        event[&pointer[1..]] = array;
        let errs = errors(event);
        assert_eq!(error_at(&errs, field).code, "invalid", "{field}: {errs:?}");
    }
    let errs = parse_event(json!(["x", "order_paid", "2026-11-20T10:15:00Z"]), "api", now(), "events[2]").unwrap_err();
    assert_eq!(errs[0].field, "events[2]");
    let capture = json!({"subject": ["order", "1042"]});
    let errs = parse_capture(capture, now()).unwrap_err();
    assert_eq!(errs[0].field, "subject");
    assert!(parse_capture(json!({"subject": {"type": "order", "id": "1042"}, "consent": ["granted"]}), now()).is_err());
}

use super::*;

#[test]
fn derived_id_is_subject_then_kind() {
    let subject = Subject { kind: "order".into(), id: "1042".into() };
    let kind = Kind::parse("refund_completed").unwrap();
    assert_eq!(EventId::derive(&subject, &kind).as_str(), "order:1042:refund_completed");
}

#[test]
fn event_id_rules() {
    assert!(EventId::parse("").is_err());
    assert!(EventId::parse(" x").is_err());
    assert!(EventId::parse("a\u{0}b").is_err());
    assert!(EventId::parse(&"x".repeat(257)).is_err());
    assert!(EventId::parse("re_3Mtw").is_ok());
}

#[test]
fn kind_rules() {
    assert!(Kind::parse("order_paid").is_ok());
    assert!(Kind::parse("Order").is_err());
    assert!(Kind::parse("1x").is_err());
    assert!(Kind::parse("a-b").is_err());
}

/// `personal_fields` names exactly `PERSONAL_FIELDS`, by their serialised names, and only
/// hashed fields. (A field added to `Identity` later must first be classified there: its
/// destructuring is exhaustive, so it does not compile otherwise.)
#[test]
fn every_hashed_identity_field_is_a_personal_field() {
    let h = crate::core::pii::hash_name("x").unwrap();
    let full = Identity {
        email: Some(h.clone()),
        phone: Some(h.clone()),
        first_name: Some(h.clone()),
        last_name: Some(h.clone()),
        street: Some(h.clone()),
        gender: Some(h.clone()),
        date_of_birth: Some(h),
        ..Identity::default()
    };
    let json = serde_json::to_value(&full).unwrap();
    let mut hashed: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    hashed.sort_unstable();
    let mut listed = PERSONAL_FIELDS.to_vec();
    listed.sort_unstable();
    assert_eq!(hashed, listed);
    assert_eq!(full.personal_fields(), PERSONAL_FIELDS.to_vec());
    assert!(Identity { user_id: Some("u".into()), ..Identity::default() }.personal_fields().is_empty());
}

#[test]
fn currency_is_uppercased() {
    assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
    assert!(Currency::parse("EURO").is_err());
}

#[test]
fn a_currency_must_be_an_active_iso_4217_code() {
    assert!(Currency::parse("ZZZ").is_err());
    assert!(Currency::parse("XXX").is_err());
    assert!(Currency::parse("jpy").is_ok());
}

/// Each of these once made a second (and third) order of `INV-1042`.
#[test]
fn invisible_variants_of_an_id_are_refused_naming_the_code_point() {
    for (s, cp) in [
        ("INV-1042\u{200B}", "U+200B"),   // zero-width space
        ("\u{FEFF}INV-1042", "U+FEFF"),   // byte order mark
        ("INV\u{200D}-1042", "U+200D"),   // zero-width joiner
        ("INV-\u{202E}2401", "U+202E"),   // right-to-left override
        ("INV-\u{2066}1042", "U+2066"),   // left-to-right isolate
        ("INV-1042\u{2028}", "U+2028"),   // line separator
        ("INV-1042\u{2029}", "U+2029"),   // paragraph separator
        ("INV-\u{AD}1042", "U+00AD"),     // soft hyphen
        ("INV-1042\u{E0041}", "U+E0041"), // tag character
        ("INV-1042\u{FE0F}", "U+FE0F"),   // variation selector
        ("INV-1042\u{7}", "U+0007"),      // control
        ("INV-1042\u{85}", "U+0085"),     // C1 control (next line)
    ] {
        let e = EventId::parse(s).unwrap_err();
        assert_eq!(e.code, "invalid_characters", "{s:?}");
        assert!(e.message.contains(cp), "{s:?}: {}", e.message);
        assert!(!e.message.contains("INV"), "the value is not quoted");
        assert_eq!(Subject::parse("order".into(), s.into()).unwrap_err()[0].0, "id");
    }
}

#[test]
fn visible_unicode_in_ids_is_fine() {
    assert!(EventId::parse("Bestellung-Übergröße-42").is_ok());
    assert!(EventId::parse("注文-1042").is_ok());
    assert!(Subject::parse("order".into(), "a b".into()).is_ok(), "inner spaces are visible");
}

#[test]
fn subject_parts_follow_the_id_rule_and_a_type_has_no_colon() {
    let errs = Subject::parse("ord:er".into(), " 1".into()).unwrap_err();
    assert_eq!(errs.iter().map(|(n, e)| (*n, e.code)).collect::<Vec<_>>(), [("type", "invalid"), ("id", "invalid")]);
    let errs = Subject::parse(String::new(), "x".repeat(201)).unwrap_err();
    assert_eq!(errs.iter().map(|(n, e)| (*n, e.code)).collect::<Vec<_>>(), [("type", "required"), ("id", "too_long")]);
}

#[test]
fn amounts_are_finite_magnitudes_within_the_bound() {
    assert_eq!(check_amount(59.9), Ok(59.9));
    assert_eq!(check_amount(0.0), Ok(0.0));
    assert_eq!(check_amount(MAX_AMOUNT), Ok(MAX_AMOUNT));
    for bad in [-100.0, -0.01, 1e18, MAX_AMOUNT * 1.000_001, f64::INFINITY, f64::NAN] {
        assert!(check_amount(bad).is_err(), "{bad}");
    }
    assert_eq!(check_amount(-100.0).unwrap_err().0, "out_of_range");
    assert!(check_quantity(i64::MAX).is_err());
    assert!(check_quantity(-1).is_err());
    assert_eq!(check_quantity(MAX_QUANTITY), Ok(MAX_QUANTITY));
}

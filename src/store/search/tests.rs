use super::keys::fbclid;
use super::*;

#[test]
fn an_email_query_is_hashed_under_both_schemes_and_not_kept() {
    let k = SearchKeys::parse("  Jane.Doe@GMAIL.com ").unwrap();
    let h = hash_email("Jane.Doe@GMAIL.com").unwrap();
    assert!(k.keys.contains(&format!("email:{}", h.google.as_str())));
    assert!(k.keys.contains(&format!("email:{}", h.meta.as_str())));
    assert!(k.keys.iter().filter(|k| k.starts_with("email:")).all(|k| !k.contains("jane")));
    assert!(SearchKeys::parse("   ").is_none());
}

#[test]
fn a_phone_query_is_hashed_and_a_short_number_is_an_id() {
    let k = SearchKeys::parse("+49 151 2345 6789").unwrap();
    let h = hash_phone("+4915123456789").unwrap();
    assert!(k.keys.contains(&format!("phone:{}", h.google.as_str())));
    let k = SearchKeys::parse("1042").unwrap();
    assert!(!k.keys.iter().any(|k| k.starts_with("phone:")));
    assert_eq!(k.subject, None);
    let k = SearchKeys::parse("order:1042").unwrap();
    assert_eq!(k.subject, Some(Subject { kind: "order".into(), id: "1042".into() }));
    assert!(k.aliases.contains(&"stripe:order:1042".to_owned()));
}

#[test]
fn fbclid_is_the_last_part_of_fbc() {
    assert_eq!(fbclid("fb.1.1554763741205.AbCdEf.gh"), Some("AbCdEf.gh"));
    assert_eq!(fbclid("fb.1.1554763741205"), None);
    assert_eq!(fbclid("xx.1.2.abc"), None);
}

#[test]
fn receipt_details_name_their_event_ids() {
    assert_eq!(receipt_event_ids("a:1 accepted, b 2 duplicate"), ["a:1", "b 2"]);
    assert!(receipt_event_ids("").is_empty());
}

#[test]
fn cursors_round_trip_and_junk_is_refused() {
    assert_eq!(parse_cursor(&cursor(42)), Some(42));
    for bad in ["42", "e", "e-1", "e0", "ex", "e+5", "e05", "e1234567890123456789", " e5"] {
        assert_eq!(parse_cursor(bad), None, "{bad}");
    }
}

/// Blank is what the API's schema spells out for `q`: Unicode White_Space (U+0085 included),
/// the information separators U+001C–U+001F and U+FEFF; a zero-width space is a character.
#[test]
fn a_query_is_blank_exactly_as_the_schema_says() {
    for blank in ["\u{85}", "\u{1c}\u{1f}", "\u{feff}", "\u{a0}\u{3000}", "\t\n\u{b}\u{c}\r "] {
        assert!(SearchKeys::parse(blank).is_none(), "{blank:?} is blank");
    }
    for not_blank in ["\u{200b}", "\u{85}1042"] {
        assert!(SearchKeys::parse(not_blank).is_some(), "{not_blank:?} is not blank");
    }
}

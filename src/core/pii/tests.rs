use proptest::prelude::*;

use super::*;

// Expected digests computed independently with
// `python3 -c 'import hashlib;print(hashlib.sha256(b"...").hexdigest())'`.
const SHA_JOHNDOE_GMAIL: &str = "06a240d11cc201676da976f7b49341181fd180da37cbe40a77432c0a366c80c3"; // johndoe@gmail.com
const SHA_JOHN_DOT_DOE_GMAIL: &str = "375320dd9ae7ed408002f3768e16cb5f28c861062fd50dff9a3bff62e9dce4ef"; // john.doe@gmail.com
const SHA_JOHN_DOT_DOE_EXAMPLE: &str = "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"; // john.doe@example.com
const SHA_JANEDOE_GOOGLEMAIL: &str = "338abf9ef1c8793cadc7bcf51ed595338eb727ed9e06ce3d91d566d60b975937"; // janedoe@googlemail.com
const SHA_JANE_DOT_DOE_GOOGLEMAIL: &str = "9c2764e1af636435a4bcf2a98733aeb0e027d6e78855043310150e99d73d3440"; // jane.doe@googlemail.com
const SHA_PHONE_E164: &str = "8b4e479827e2bbd1b1883e7a808e7f18d2e834c2830b8451f7e47659b8ff1257"; // +491512345678
const SHA_PHONE_DIGITS: &str = "b357c67e06c8005d1264c38e7613920d5948135d91f0935695cd8ba65e26a781"; // 491512345678
const SHA_OBRIEN: &str = "b4cb6cb33fe4b865868de825023a1e2790dc12ac01ecc8d7c5afe8254071c8ba"; // obrien
const SHA_O_APOS_BRIEN: &str = "65b87174be3b1b122e2b0929f0b84888637d31a4a83bb96a860bcff411f5e668"; // o'brien
const SHA_ANNEMARIE: &str = "67495eb5715de43c26f7c18b25cc7f62a7540236516bd59d5162a6f743598083"; // annemarie
const SHA_ANNE_HYPHEN_MARIE: &str = "9ab5e3bbcfaa6dcec4f2871573324f033775b46d42dc25f199ea4ae0af64b1ed"; // anne-marie
const SHA_MUELLER: &str = "2dbd218072117713f2d5996a726a9b216ed791ffd0783b6ba4ab6d61b8333192"; // müller
const SHA_MAIN_ST: &str = "44e24a9d002a923dc64679433313f11b9ce3c5cabed13f8983872fd99f87d504"; // main st
const SHA_AMPHITHEATRE: &str = "22b7e2d69b91e0ef4a88e81a73d897b92fd9c93ccfbe0a860f77db16c26f662e"; // 1600 amphitheatre pkwy
const SHA_F: &str = "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"; // f
const SHA_M: &str = "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a"; // m
const SHA_19900131: &str = "267b39628557f31a6766b3d7f8823978c276759be4a5c9c52bf868d802ba5a0d"; // 19900131
const SHA_1214_HAUPTSTRASSE: &str = "9c952b3ccfb69db86f4182ec03131010a92fc415a63c39f24e1e546a148d9d91"; // 1214 hauptstraße

fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

// ---- email ----

#[test]
fn gmail_dots_are_dropped_for_google_but_kept_for_meta() {
    let h = hash_email("  John.Doe@GMAIL.com ").unwrap();
    assert_eq!(h.google.as_str(), SHA_JOHNDOE_GMAIL);
    assert_eq!(h.meta.as_str(), SHA_JOHN_DOT_DOE_GMAIL);
}

#[test]
fn googlemail_dots_are_dropped_for_google_too() {
    let h = hash_email("Jane.Doe@GoogleMail.com").unwrap();
    assert_eq!(h.google.as_str(), SHA_JANEDOE_GOOGLEMAIL);
    assert_eq!(h.meta.as_str(), SHA_JANE_DOT_DOE_GOOGLEMAIL);
}

#[test]
fn other_domains_keep_their_dots_for_both_schemes() {
    let h = hash_email("\tJohn.Doe@Example.COM\n").unwrap();
    assert_eq!(h.google.as_str(), SHA_JOHN_DOT_DOE_EXAMPLE);
    assert_eq!(h.meta.as_str(), SHA_JOHN_DOT_DOE_EXAMPLE);
}

#[test]
fn dots_in_a_gmail_lookalike_domain_are_kept() {
    // Only gmail.com / googlemail.com get the dot rule; a subdomain or lookalike does not.
    let h = hash_email("john.doe@mail.gmail.com.evil.example").unwrap();
    assert_eq!(h.google, h.meta);
    assert_eq!(h.google, Sha256Hex::of("john.doe@mail.gmail.com.evil.example"));
}

#[test]
fn inner_whitespace_of_an_email_is_removed_for_google_and_kept_for_meta() {
    // Google: "remove all whitespace"; Meta's SDK only trims and lowercases (vectors in
    // tests/vectors/meta/normalize.json).
    let h = hash_email("john.doe @ example.com").unwrap();
    assert_eq!(h.google.as_str(), SHA_JOHN_DOT_DOE_EXAMPLE);
    assert_eq!(h.meta, Sha256Hex::of("john.doe @ example.com"));
}

#[test]
fn invalid_emails_are_rejected() {
    for bad in ["john.doe", "john.doe@", "@example.com", "john@localhost", "a@b@example.com", "   ", ""] {
        assert!(hash_email(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn email_error_never_echoes_the_value() {
    let err = hash_email("secret.person.example.com").unwrap_err();
    assert!(!err.to_string().contains("secret.person"), "{err}");
}

#[test]
fn an_already_hashed_value_passes_through_lowercased() {
    let upper = SHA_JOHN_DOT_DOE_EXAMPLE.to_ascii_uppercase();
    for f in [hash_email, hash_phone, hash_name, hash_street] {
        let h = f(&format!("  {upper} ")).unwrap();
        assert_eq!(h.google.as_str(), SHA_JOHN_DOT_DOE_EXAMPLE);
        assert_eq!(h.meta.as_str(), SHA_JOHN_DOT_DOE_EXAMPLE);
    }
}

#[test]
fn sixty_three_or_non_hex_characters_are_not_taken_as_a_hash() {
    assert!(Sha256Hex::parse(&SHA_MAIN_ST[..63]).is_none());
    assert!(Sha256Hex::parse(&format!("{}g", &SHA_MAIN_ST[..63])).is_none());
    assert!(Sha256Hex::parse(&format!("{SHA_MAIN_ST}0")).is_none());
    assert_eq!(Sha256Hex::parse(SHA_MAIN_ST).unwrap().as_str(), SHA_MAIN_ST);
}

// ---- phone ----

#[test]
fn phone_google_is_e164_with_plus_meta_is_digits() {
    for raw in ["+49 (151) 234-5678", "0049 151 2345678", "+49.151.234.5678", "49 151 / 2345678", " +491512345678 "] {
        let h = hash_phone(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        assert_eq!(h.google.as_str(), SHA_PHONE_E164, "{raw:?}");
        assert_eq!(h.meta.as_str(), SHA_PHONE_DIGITS, "{raw:?}");
    }
}

#[test]
fn e164_digits_drops_prefix_and_separators() {
    assert_eq!(e164_digits("+49 (151) 234-5678").unwrap(), "491512345678");
    assert_eq!(e164_digits("0049 151 2345678").unwrap(), "491512345678");
}

#[test]
fn invalid_phones_are_rejected() {
    for bad in [
        "",
        "call me",
        "+49 151 CALLME",
        "+49 151 2345678 ext 9",
        "123456",            // too short
        "+1234567890123456", // 16 digits: too long for E.164
        "+",
        "00",
    ] {
        assert!(hash_phone(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn a_national_number_without_country_code_is_rejected() {
    // The doc of hash_phone says the input must carry its country code (+49, 0049 or 49...).
    // A single leading 0 is a national trunk prefix; no country code starts with 0.
    assert!(hash_phone("0151 2345678").is_err(), "got {:?}", hash_phone("0151 2345678"));
}

// ---- names and street ----

#[test]
fn names_are_trimmed_and_lowercased_for_both() {
    let h = hash_name("  MÜLLER ").unwrap();
    assert_eq!(h.google.as_str(), SHA_MUELLER);
    assert_eq!(h.meta.as_str(), SHA_MUELLER);
}

#[test]
fn meta_name_keeps_inner_punctuation() {
    assert_eq!(hash_name("  O'Brien ").unwrap().meta.as_str(), SHA_O_APOS_BRIEN);
    assert_eq!(hash_name("Anne-Marie").unwrap().meta.as_str(), SHA_ANNE_HYPHEN_MARIE);
}

#[test]
fn google_name_removes_symbols() {
    // GA4 uid-data: first/last name "remove digits and symbol characters, lowercase, trim".
    assert_eq!(hash_name("  O'Brien ").unwrap().google.as_str(), SHA_OBRIEN);
    assert_eq!(hash_name("Anne-Marie").unwrap().google.as_str(), SHA_ANNEMARIE);
}

#[test]
fn names_empty_after_normalisation_are_rejected() {
    for bad in ["", "   ", "'-.", "!!!"] {
        assert!(hash_name(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn street_is_lowercased_trimmed_and_symbol_free_for_both() {
    let h = hash_street("  1600   Amphitheatre Pkwy. ").unwrap();
    assert_eq!(h.google.as_str(), SHA_AMPHITHEATRE);
    assert_eq!(h.meta.as_str(), SHA_AMPHITHEATRE);
    assert_eq!(hash_street("Main St.").unwrap().google.as_str(), SHA_MAIN_ST);
    assert!(hash_street(" ,. ").is_err());
}

#[test]
fn google_street_removes_inner_symbols() {
    assert_eq!(hash_street("12-14 Hauptstraße").unwrap().google.as_str(), SHA_1214_HAUPTSTRASSE);
}

// ---- country ----

#[test]
fn country_is_iso_alpha2_uppercase() {
    assert_eq!(normalise_country(" de ").unwrap(), "DE");
    assert_eq!(normalise_country("Us").unwrap(), "US");
    for bad in ["", "D", "DEU", "Germany", "d1", "ü1", "  "] {
        assert!(normalise_country(bad).is_err(), "{bad:?} should be rejected");
    }
}

// ---- gender ----

#[test]
fn gender_letters_and_words_become_metas_letter() {
    for (raw, letter, sha) in [
        ("f", "f", SHA_F),
        ("F", "f", SHA_F),
        (" female ", "f", SHA_F),
        ("Female", "f", SHA_F),
        ("m", "m", SHA_M),
        ("\tMALE\n", "m", SHA_M),
        ("Male", "m", SHA_M),
    ] {
        assert_eq!(normalise_gender(raw).unwrap(), letter, "{raw:?}");
        let h = hash_gender(raw).unwrap();
        assert_eq!(h.meta.as_str(), sha, "{raw:?}");
        assert_eq!(h.google, h.meta, "one scheme: only Meta takes a gender");
    }
}

#[test]
fn other_genders_are_refused_with_one_message_that_never_echoes_the_value() {
    for bad in ["", " ", "x", "w", "d", "fem", "mf", "f m", "woman", "unknown", "non-binary", "ｆ"] {
        let e = hash_gender(bad).unwrap_err();
        assert_eq!(e.0, r#"must be "f" or "female", "m" or "male" (any case)"#, "{bad:?}");
    }
}

#[test]
fn an_already_hashed_gender_passes_through() {
    let h = hash_gender(&SHA_F.to_ascii_uppercase()).unwrap();
    assert_eq!(h.meta.as_str(), SHA_F);
}

// ---- date of birth ----

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn today() -> NaiveDate {
    day(2026, 11, 20)
}

#[test]
fn iso_and_compact_dates_of_birth_hash_as_yyyymmdd() {
    for raw in ["1990-01-31", "19900131", " 1990-01-31\n", "\t19900131 "] {
        assert_eq!(normalise_date_of_birth(raw, today()).unwrap(), "19900131", "{raw:?}");
        let h = hash_date_of_birth(raw, today()).unwrap();
        assert_eq!(h.meta.as_str(), SHA_19900131, "{raw:?}");
        assert_eq!(h.google, h.meta);
    }
    assert_eq!(normalise_date_of_birth("2000-02-29", today()).unwrap(), "20000229", "a leap day");
}

#[test]
fn dates_of_birth_in_other_shapes_are_refused() {
    for bad in [
        "1990-1-31",
        "1990-01-1",
        "1990/01/31",
        "1990.01.31",
        "31.01.1990",
        "01/31/1990",
        "31-01-1990",
        "900131",
        "199001311",
        "+1990-01-31",
        "1990-01-31T00:00:00Z",
        "Jan 31 1990",
        "１９９００１３１",
        "",
    ] {
        let e = normalise_date_of_birth(bad, today()).unwrap_err();
        assert!(e.0.contains("YYYY-MM-DD"), "{bad:?}: {e}");
    }
}

#[test]
fn impossible_dates_of_birth_are_refused() {
    for bad in ["1990-02-30", "19900230", "2001-02-29", "1990-13-01", "1990-00-10", "1990-01-00", "1990-04-31"] {
        let e = normalise_date_of_birth(bad, today()).unwrap_err();
        assert!(e.0.contains("calendar date"), "{bad:?}: {e}");
    }
}

#[test]
fn dates_of_birth_lie_between_1900_and_today() {
    assert_eq!(normalise_date_of_birth("1900-01-01", today()).unwrap(), "19000101");
    assert_eq!(normalise_date_of_birth("2026-11-20", today()).unwrap(), "20261120", "today");
    for bad in ["1899-12-31", "0001-01-01", "2026-11-21", "2999-01-01"] {
        let e = normalise_date_of_birth(bad, today()).unwrap_err();
        assert!(e.0.contains("between 1900-01-01 and today"), "{bad:?}: {e}");
    }
}

#[test]
fn an_already_hashed_date_of_birth_passes_through() {
    let h = hash_date_of_birth(SHA_19900131, today()).unwrap();
    assert_eq!(h.meta.as_str(), SHA_19900131);
}

// ---- properties ----

fn email_local() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._+-]{0,20}"
}

fn email_domain() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("gmail.com".to_owned()),
        Just("googlemail.com".to_owned()),
        Just("example.com".to_owned()),
        "[a-z]{1,10}\\.[a-z]{2,5}",
    ]
}

/// Randomly upper-cases characters of `s` according to `mask`.
fn recase(s: &str, mask: &[bool]) -> String {
    s.chars().zip(mask.iter().cycle()).map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c }).collect()
}

fn phone_separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" "), Just("-"), Just("."), Just("("), Just(")"), Just(" - "), Just("/")]
}

proptest! {
    #[test]
    fn email_case_and_surrounding_whitespace_never_change_the_hash(
        local in email_local(),
        domain in email_domain(),
        mask in proptest::collection::vec(any::<bool>(), 1..8),
        lead in "[ \t\n]{0,3}",
        trail in "[ \t\n]{0,3}",
    ) {
        let plain = format!("{local}@{domain}");
        let messy = format!("{lead}{}{trail}", recase(&plain, &mask));
        prop_assert_eq!(hash_email(&messy).unwrap(), hash_email(&plain).unwrap());
    }

    #[test]
    fn email_hash_of_normalised_input_is_its_plain_sha256(local in email_local(), domain in email_domain()) {
        let raw = format!("{local}@{domain}");
        let meta = normalise_email(&raw).unwrap();
        let google = google_email(&meta);
        // Normalising twice changes nothing.
        prop_assert_eq!(normalise_email(&meta).unwrap(), meta.clone());
        prop_assert_eq!(google_email(&google), google.clone());
        // Hashing normalised input gives exactly the SHA-256 of it, and the same as the raw input.
        let h = hash_email(&meta).unwrap();
        prop_assert_eq!(h.meta.as_str(), sha256_hex(meta.as_bytes()));
        prop_assert_eq!(h.google.as_str(), sha256_hex(google.as_bytes()));
        prop_assert_eq!(hash_email(&google).unwrap().google, h.google);
    }

    #[test]
    fn word_normalisation_is_idempotent(raw in "\\PC{0,40}") {
        let once = normalise_words(&raw);
        prop_assert_eq!(normalise_words(&once), once);
    }

    #[test]
    fn hashes_are_always_64_lowercase_hex(raw in "\\PC{0,80}") {
        for f in [hash_email, hash_phone, hash_name, hash_street] {
            if let Ok(h) = f(&raw) {
                prop_assert!(is_lower_hex_64(h.google.as_str()), "{:?}", h);
                prop_assert!(is_lower_hex_64(h.meta.as_str()), "{:?}", h);
            }
        }
    }

    #[test]
    fn gender_and_birth_date_hashes_are_64_lowercase_hex(raw in "\\PC{0,20}") {
        for h in [hash_gender(&raw), hash_date_of_birth(&raw, today())].into_iter().flatten() {
            prop_assert!(is_lower_hex_64(h.meta.as_str()), "{:?}", h);
            prop_assert_eq!(&h.google, &h.meta);
        }
    }

    #[test]
    fn every_date_since_1900_hashes_alike_in_both_shapes(days in 0_i64..(365 * 127)) {
        let date = day(1900, 1, 1) + chrono::Duration::days(days);
        prop_assume!(date <= today());
        let iso = hash_date_of_birth(&date.format("%Y-%m-%d").to_string(), today()).unwrap();
        let compact = hash_date_of_birth(&date.format("%Y%m%d").to_string(), today()).unwrap();
        prop_assert_eq!(&iso, &compact);
        prop_assert_eq!(iso.meta, Sha256Hex::of(&date.format("%Y%m%d").to_string()));
    }

    #[test]
    fn passthrough_hashes_are_64_lowercase_hex(hexish in "[0-9a-fA-F]{64}") {
        let h = hash_email(&hexish).unwrap();
        prop_assert!(is_lower_hex_64(h.google.as_str()));
        prop_assert_eq!(h.google.as_str(), hexish.to_ascii_lowercase());
    }

    #[test]
    fn phone_formatting_variants_hash_alike(
        digits in "[1-9][0-9]{6,14}",
        seps in proptest::collection::vec(phone_separator(), 15),
        prefix in prop_oneof![Just("+"), Just("00"), Just(""), Just(" +")],
    ) {
        let mut formatted = prefix.to_owned();
        for (i, d) in digits.chars().enumerate() {
            formatted.push(d);
            formatted.push_str(seps[i]);
        }
        let h = hash_phone(&formatted).unwrap();
        prop_assert_eq!(h.google, Sha256Hex::of(&format!("+{digits}")));
        prop_assert_eq!(h.meta, Sha256Hex::of(&digits));
    }
}

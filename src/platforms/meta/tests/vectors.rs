//! Hashing against the official SDK: `tests/vectors/meta/normalize.json` was produced by
//! `scripts/meta_vectors.py` with `facebook-business` (`Normalize.normalize_field`), never from
//! Surety's code. The adapter's own fields (`ct`, `st`, `zp`, `country`, `external_id`) must agree
//! exactly; the contact fields (`em`, `ph`, `fn`, `ln`) and gender and date of birth (`ge`,
//! `db`) are hashed at ingest by `core::pii`, and its `meta` scheme is checked here too.

use chrono::NaiveDate;
use serde::Deserialize;

use crate::core::pii::{
    hash_date_of_birth, hash_email, hash_gender, hash_name, hash_phone, normalise_date_of_birth, normalise_gender,
    Hashed, PiiError, Sha256Hex,
};
use crate::platforms::meta::{normalize_and_hash, normalize_field, Field, COUNTRY_CODES};

const VECTORS: &str = include_str!("../../../../tests/vectors/meta/normalize.json");

#[derive(Deserialize)]
struct File {
    sdk: String,
    vectors: Vec<Vector>,
    country_codes: Vec<String>,
}

#[derive(Deserialize)]
struct Vector {
    field: String,
    input: String,
    normalized: Option<String>,
    hashed: Option<String>,
    error: Option<String>,
    /// `ge` only: the SDK's `Gender` member the input is the value of, if any.
    #[serde(default)]
    gender_enum: Option<String>,
}

fn file() -> File {
    serde_json::from_str(VECTORS).expect("the vector file parses")
}

/// A `core::pii` hashing function.
type CoreHash = fn(&str) -> Result<Hashed, PiiError>;

fn core_hash(field: &str) -> Option<CoreHash> {
    match field {
        "em" => Some(hash_email),
        "ph" => Some(hash_phone),
        "fn" | "ln" => Some(hash_name),
        _ => None,
    }
}

#[test]
fn the_vector_file_covers_every_field() {
    let f = file();
    assert!(f.sdk.starts_with("facebook-business "), "{}", f.sdk);
    for field in ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"] {
        let n = f.vectors.iter().filter(|v| v.field == field && v.hashed.is_some()).count();
        assert!(n >= 4, "{field}: only {n} hashed vectors");
    }
    for v in &f.vectors {
        assert_eq!(v.hashed.is_some(), v.error.is_none(), "{} {:?}", v.field, v.input);
    }
}

/// `ct`, `st`, `zp`, `country`, `external_id`: the adapter's normalisation is the SDK's, except
/// where the SDK would send a useless value (an empty string's hash, an unknown country code,
/// which it raises on): those are left out.
#[test]
fn adapter_fields_match_the_sdk() {
    let mut checked = 0;
    for v in file().vectors {
        let Some(field) = Field::from_key(&v.field) else { continue };
        let ours = normalize_and_hash(field, &v.input);
        match (&v.normalized, &v.hashed) {
            (Some(n), Some(h)) if !n.is_empty() => {
                assert_eq!(normalize_field(field, &v.input).as_ref(), Some(n), "{} {:?}", v.field, v.input);
                assert_eq!(ours.as_ref(), Some(h), "{} {:?} (SDK normalises to {n:?})", v.field, v.input);
            }
            // The SDK hashes the empty string; nothing is sent instead.
            (Some(_), Some(_)) => assert_eq!(ours, None, "{} {:?}", v.field, v.input),
            // The SDK refuses it (an unknown country): nothing is sent.
            _ => assert_eq!(ours, None, "{} {:?}: the SDK refuses it ({:?})", v.field, v.input, v.error),
        }
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} adapter vectors");
}

#[test]
fn country_codes_are_the_sdks() {
    let f = file();
    let ours: Vec<&str> = COUNTRY_CODES.to_vec();
    let theirs: Vec<&str> = f.country_codes.iter().map(String::as_str).collect();
    assert_eq!(ours, theirs);
    assert!(ours.windows(2).all(|w| w[0] < w[1]), "sorted, for binary search");
}

/// Where `core::pii`'s `meta` hash and the SDK's differ for an input both accept.
fn hash_divergences() -> Vec<String> {
    let mut out = Vec::new();
    for v in file().vectors {
        let (Some(f), Some(expected)) = (core_hash(&v.field), &v.hashed) else { continue };
        if let Ok(h) = f(&v.input) {
            if h.meta.as_str() != expected {
                out.push(format!("{} {:?}: SDK hashes {:?}", v.field, v.input, v.normalized.unwrap_or_default()));
            }
        }
    }
    out
}

#[test]
fn core_meta_hashes_match_the_sdk() {
    assert_eq!(hash_divergences(), Vec::<String>::new());
}

/// Inputs the SDK and `core::pii` judge differently (one hashes, the other refuses). Not hash
/// bugs — no value is hashed differently — but documented: core refuses national numbers the
/// SDK would mangle (`015…` → `15…`) and a `+00` prefix; it accepts dots in a phone number and
/// refuses an MD5-looking email, unlike the SDK.
#[test]
fn core_and_the_sdk_refuse_different_inputs_only_where_documented() {
    let mut out = Vec::new();
    for v in file().vectors {
        let Some(f) = core_hash(&v.field) else { continue };
        let core_accepts = f(&v.input).is_ok();
        let sdk_accepts = v.hashed.is_some();
        if core_accepts != sdk_accepts {
            out.push(format!("{} {:?}: core {}", v.field, v.input, if core_accepts { "accepts" } else { "refuses" }));
        }
    }
    assert_eq!(
        out,
        vec![
            r#"em "900150983cd24fb0d6963f7d28e17f72": core refuses"#,
            r#"ph "015123456789": core refuses"#,
            r#"ph "+0049 151 2345678": core refuses"#,
            r#"ph "+49.151.2345678": core accepts"#,
        ]
    );
}

/// The day the `db` vectors are judged on (a date of birth must not lie after it).
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

fn hash_db(raw: &str) -> Result<Hashed, PiiError> {
    hash_date_of_birth(raw, today())
}

/// Meta's documented form of a `ge` or `db` input as `core::pii` makes it (`f`/`m`, `YYYYMMDD`).
fn documented_form(field: &str, raw: &str) -> Result<String, PiiError> {
    match field {
        "ge" => normalise_gender(raw).map(str::to_owned),
        "db" => normalise_date_of_birth(raw, today()),
        _ => unreachable!("{field}"),
    }
}

/// `ge` and `db`: the SDK's `normalize_field` checks neither — it lowercases, trims and hashes any
/// text, so it accepts every vector, `female` and `1990-02-30` included. What goes to Meta must
/// still be exactly what the SDK sends for Meta's documented form: for every input core accepts,
/// its hash is the SDK's hash of the vector whose input is that form (`f`, `m`, `YYYYMMDD`), and
/// the SDK leaves that form as it is. For `ge` that form is a value of the SDK's `Gender` enum,
/// the only thing its `UserData` takes.
#[test]
fn gender_and_date_of_birth_hash_as_the_sdk_hashes_metas_documented_form() {
    let f = file();
    let mut accepted = Vec::new();
    for v in f.vectors.iter().filter(|v| v.field == "ge" || v.field == "db") {
        assert!(v.hashed.is_some(), "the SDK validates no {} and hashes {:?} too", v.field, v.input);
        let core = if v.field == "ge" { hash_gender(&v.input) } else { hash_db(&v.input) };
        let Ok(h) = core else { continue };
        let sdk = if Sha256Hex::parse(&v.input).is_some() {
            // Already hashed: passed through, lowercased, by both.
            v.hashed.clone().unwrap()
        } else {
            let form = documented_form(&v.field, &v.input).unwrap();
            let w = f
                .vectors
                .iter()
                .find(|w| w.field == v.field && w.input == form)
                .unwrap_or_else(|| panic!("add {:?} to the {} inputs of scripts/meta_vectors.py", form, v.field));
            assert_eq!(w.normalized.as_deref(), Some(form.as_str()), "the SDK keeps Meta's form {form:?}");
            if v.field == "ge" {
                assert!(w.gender_enum.is_some(), "{form:?} is a value of the SDK's Gender enum");
            }
            w.hashed.clone().unwrap()
        };
        assert_eq!(h.meta.as_str(), sdk, "{} {:?}", v.field, v.input);
        assert_eq!(h.google, h.meta, "{} {:?}: one hash for both schemes", v.field, v.input);
        accepted.push(format!("{} {:?}", v.field, v.input));
    }
    assert_eq!(
        accepted,
        vec![
            r#"ge "f""#,
            r#"ge "m""#,
            r#"ge "F""#,
            r#"ge " m ""#,
            r#"ge "M\n""#,
            r#"ge "female""#,
            r#"ge "Female""#,
            r#"ge "MALE""#,
            r#"ge "Male""#,
            r#"ge "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD""#,
            r#"db "19900131""#,
            r#"db " 19900131 ""#,
            r#"db "20000229""#,
            r#"db "19700101""#,
            r#"db "1990-01-31""#,
            r#"db "2000-02-29""#,
            r#"db "1970-01-01""#,
            r#"db "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD""#,
        ]
    );
}

/// Where core departs from the SDK's `normalize_field` for `ge` and `db`, on purpose: the SDK
/// hashes a gender word (`female`) and an ISO date (`1990-01-31`) as they are — hashes Meta's
/// documented forms never produce, so they match nobody — and core sends the form instead
/// (checked above). Everything else the SDK would hash, core refuses: no other gender value,
/// no impossible date, no date in an order that leaves day and month ambiguous, none before
/// 1900 or in the future.
#[test]
fn gender_and_date_of_birth_depart_from_the_sdk_only_where_documented() {
    let mut hashed_otherwise = Vec::new();
    let mut refused = Vec::new();
    for v in file().vectors.into_iter().filter(|v| v.field == "ge" || v.field == "db") {
        let core = if v.field == "ge" { hash_gender(&v.input) } else { hash_db(&v.input) };
        match core {
            Ok(h) if Some(h.meta.as_str()) != v.hashed.as_deref() => {
                hashed_otherwise.push(format!("{} {:?}", v.field, v.input));
            }
            Ok(_) => {}
            Err(_) => refused.push(format!("{} {:?}", v.field, v.input)),
        }
    }
    assert_eq!(
        hashed_otherwise,
        vec![
            r#"ge "female""#,
            r#"ge "Female""#,
            r#"ge "MALE""#,
            r#"ge "Male""#,
            r#"db "1990-01-31""#,
            r#"db "2000-02-29""#,
            r#"db "1970-01-01""#,
        ]
    );
    assert_eq!(
        refused,
        vec![
            r#"ge "x""#,
            r#"ge "unknown""#,
            r#"ge "fem""#,
            r#"ge "mf""#,
            r#"ge "non-binary""#,
            r#"db "1990-02-30""#,
            r#"db "19900230""#,
            r#"db "1990-13-01""#,
            r#"db "2001-02-29""#,
            r#"db "1990-1-31""#,
            r#"db "1990/01/31""#,
            r#"db "31.01.1990""#,
            r#"db "01/31/1990""#,
            r#"db "Jan 31 1990""#,
            r#"db "1850-01-01""#,
            r#"db "2999-01-01""#,
        ]
    );
}

//! GA4's own cookie values as ids: `_ga` holds the client id, `_ga_<stream>` the session id.
//!
//! GA4 accepts raw cookie values as `client_id` / `session_id` since 2026-02-17, but still
//! recommends the plain forms (docs/platforms.md §GA4). Every source may hand either; Surety
//! stores and sends one form, the plain one gtag's `get` returns:
//! `GA1.1.1234567890.1700000000` → `1234567890.1700000000`, and `GS1.1.1700000000.3.1…` or
//! `GS2.1.s1700000000$o3$g1…` → `1700000000`. A value in neither cookie form is kept as given.

/// The client id inside a `_ga` cookie value (`GA1.<domain depth>.<random>.<first visit>`).
pub fn client_id(v: &str) -> String {
    let parts: Vec<&str> = v.split('.').collect();
    match parts.as_slice() {
        [ga, depth, a, b]
            if ga.starts_with("GA") && all_digits(&ga[2..]) && all_digits(depth) && all_digits(a) && all_digits(b) =>
        {
            format!("{a}.{b}")
        }
        _ => v.to_owned(),
    }
}

/// The session id inside a `_ga_<stream>` cookie value: `GS1.<depth>.<session id>.…` or
/// `GS2.<depth>.s<session id>$o…`; any other value is taken as the session id itself.
pub fn session_id(v: &str) -> String {
    session_from_cookie(v).unwrap_or_else(|| v.to_owned())
}

/// The session id if `v` is a `_ga_<stream>` cookie value.
pub fn session_from_cookie(v: &str) -> Option<String> {
    let third = v.split('.').nth(2)?;
    let id = if v.starts_with("GS1.") {
        third
    } else if v.starts_with("GS2.") {
        third.strip_prefix('s')?.split('$').next()?
    } else {
        return None;
    };
    all_digits(id).then(|| id.to_owned())
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_become_the_plain_ids() {
        assert_eq!(client_id("GA1.1.1234567890.1700000000"), "1234567890.1700000000");
        assert_eq!(client_id("GA1.2.1234567890.1700000000"), "1234567890.1700000000");
        assert_eq!(session_id("GS1.1.1700000000.3.1.1700000391.0.0.0"), "1700000000");
        assert_eq!(session_id("GS2.1.s1700000000$o3$g1$t1700000391$j60$l0$h0"), "1700000000");
    }

    #[test]
    fn other_values_are_kept() {
        for v in ["1234567890.1700000000", "c-1", "GA1.1.abc.def", "GA1.1.1.2.3", "GAX.1.1.2"] {
            assert_eq!(client_id(v), v);
        }
        for v in ["1700000000", "GS1.1", "GS2.1.x17$o3", "GS3.1.1700000000", "s-9"] {
            assert_eq!(session_id(v), v);
        }
    }
}

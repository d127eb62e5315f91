//! The HTTP plumbing every destination shares: one pooled client, a POST that records what it
//! did (timing, status, a bounded excerpt, the body hash), `Retry-After` parsing, and the
//! status classification that destinations refine (SPEC §4 step 5).
//!
//! Nothing here ever formats a URL into an error: platforms put credentials in query strings
//! (GA4's `api_secret`), and reqwest errors carry the URL unless told otherwise.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};

use crate::core::pii::sha256_hex;
use crate::core::RequestRecord;

/// Most bytes of an answer kept in the ledger.
pub const EXCERPT_BYTES: usize = 512;

/// Most bytes of an answer read at all: enough for any validation report, bounded against a
/// misbehaving peer.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The longest `Retry-After` honoured; a larger one is clamped so that one odd header cannot
/// park a delivery past its age limit unseen.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A pooled HTTPS client (rustls) for one destination.
///
/// Redirects are not followed: a redirected POST may come back as a GET whose 2xx would be
/// mistaken for a delivery. A 3xx is classified like any other unexpected answer.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(128)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("surety/", env!("CARGO_PKG_VERSION")))
        .build()
        // Fails only if the TLS backend cannot start, which no input can cause; reqwest's own
        // `Client::new` panics in the same case.
        .expect("the rustls HTTP client can be built")
}

/// The first bytes of an answer as text: at most [`EXCERPT_BYTES`] bytes, invalid UTF-8
/// replaced, never cut inside a character.
pub fn excerpt(bytes: &[u8]) -> String {
    // A few bytes more than needed, so a character straddling the limit decodes whole and is
    // then dropped whole rather than turned into a replacement character.
    let head = &bytes[..bytes.len().min(EXCERPT_BYTES + 4)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    if text.len() > EXCERPT_BYTES {
        let mut end = EXCERPT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The wait a `Retry-After` header asks for: delta-seconds or an HTTP-date (relative to `now`;
/// a date in the past means "now"). Clamped to [`MAX_RETRY_AFTER`]; `None` if absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits; only overflow can fail, and an overflowing wait is "very long".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// How a destination should treat an answer, before any platform-specific reading of its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx.
    Success,
    /// Network error, timeout, 408, 429, 5xx, or an unexpected 1xx/3xx: try again later.
    Retry { reason: String },
    /// Any other 4xx: the platform will refuse it again.
    Permanent { status: u16 },
}

/// What came back from one POST, with the record the ledger keeps of it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub record: RequestRecord,
    /// The answer's body, up to [`MAX_RESPONSE_BYTES`] (empty when no answer came).
    pub body: Vec<u8>,
    /// The wait the platform asked for, if it did.
    pub retry_after: Option<Duration>,
    /// The error was a timeout (as opposed to another network failure).
    pub timed_out: bool,
}

impl Exchange {
    pub fn status(&self) -> Option<u16> {
        self.record.status
    }

    /// The generic classification: see [`classify`].
    pub fn status_class(&self) -> StatusClass {
        classify(self.record.status, self.record.error.as_deref(), self.timed_out)
    }
}

/// Network error or timeout → retry; 2xx → success; 408, 429 and 5xx → retry; other 4xx →
/// permanent; anything else (1xx, 3xx) → retry, since it says nothing about the payload.
pub fn classify(status: Option<u16>, error: Option<&str>, timed_out: bool) -> StatusClass {
    match status {
        None if timed_out => StatusClass::Retry { reason: "timeout".into() },
        None => StatusClass::Retry { reason: format!("network error: {}", error.unwrap_or("no answer")) },
        Some(s) if (200..300).contains(&s) => StatusClass::Success,
        Some(s) if s == 408 || s == 429 || (500..600).contains(&s) => {
            StatusClass::Retry { reason: format!("HTTP {s}") }
        }
        Some(s) if (400..500).contains(&s) => StatusClass::Permanent { status: s },
        Some(s) => StatusClass::Retry { reason: format!("unexpected HTTP {s}") },
    }
}

/// POSTs a JSON body and records the exchange. Never fails: a network error or timeout is part
/// of the record. `url` may hold credentials; it appears nowhere in the result.
pub async fn post_json(client: &reqwest::Client, endpoint: &'static str, url: &str, body: Vec<u8>) -> Exchange {
    let body_sha256 = sha256_hex(&body);
    let kept = String::from_utf8(body.clone()).ok();
    let mut exchange =
        send(endpoint, client.post(url).header(CONTENT_TYPE, "application/json").body(body), body_sha256).await;
    exchange.record.body = kept;
    exchange
}

/// Sends any request (headers, form body, GET) and records what came back, as [`post_json`]
/// does. `body_sha256` is the hash of the body the request carries.
pub async fn send(endpoint: &'static str, request: reqwest::RequestBuilder, body_sha256: String) -> Exchange {
    let sent_at = Utc::now();
    let started = Instant::now();
    let mut exchange = Exchange {
        record: RequestRecord {
            endpoint,
            sent_at,
            duration: Duration::ZERO,
            status: None,
            error: None,
            response_excerpt: String::new(),
            body_sha256,
            body: None,
        },
        body: Vec::new(),
        retry_after: None,
        timed_out: false,
    };
    match request.send().await {
        Ok(mut response) => {
            exchange.record.status = Some(response.status().as_u16());
            exchange.retry_after = retry_after(response.headers(), Utc::now());
            if let Err(e) = read_bounded(&mut response, &mut exchange.body).await {
                // The status came; the body broke off. Keep both facts.
                exchange.timed_out = e.is_timeout();
                exchange.record.error = Some(describe(e));
            }
            exchange.record.response_excerpt = excerpt(&exchange.body);
        }
        Err(e) => {
            exchange.timed_out = e.is_timeout();
            exchange.record.error = Some(describe(e));
        }
    }
    exchange.record.duration = started.elapsed();
    exchange
}

async fn read_bounded(response: &mut reqwest::Response, into: &mut Vec<u8>) -> Result<(), reqwest::Error> {
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - into.len();
        into.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if into.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    Ok(())
}

/// An error and its causes on one line, without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn excerpt_is_bounded_and_whole_characters() {
        assert_eq!(excerpt(b"short"), "short");
        let long = "é".repeat(400); // 800 bytes, 2 per char
        let e = excerpt(long.as_bytes());
        assert!(e.len() <= EXCERPT_BYTES);
        assert_eq!(e, "é".repeat(256));
        let odd = format!("a{}", "é".repeat(400)); // the 512-byte cut falls inside a char
        let e = excerpt(odd.as_bytes());
        assert_eq!(e.len(), 511);
        assert!(!e.contains('\u{FFFD}'));
        assert_eq!(excerpt(&[0xff, b'o', b'k']), "\u{FFFD}ok");
        let invalid = vec![0xffu8; 2000];
        assert!(excerpt(&invalid).len() <= EXCERPT_BYTES);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(retry_after(&headers("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&headers(" 7 "), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("99999999999999999999999"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("-5"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn classification() {
        assert_eq!(classify(Some(204), None, false), StatusClass::Success);
        assert_eq!(classify(Some(200), None, false), StatusClass::Success);
        assert!(matches!(classify(Some(429), None, false), StatusClass::Retry { .. }));
        assert!(matches!(classify(Some(500), None, false), StatusClass::Retry { .. }));
        assert!(matches!(classify(Some(503), None, false), StatusClass::Retry { .. }));
        assert!(matches!(classify(Some(408), None, false), StatusClass::Retry { .. }));
        assert!(matches!(classify(Some(302), None, false), StatusClass::Retry { .. }));
        assert_eq!(classify(Some(400), None, false), StatusClass::Permanent { status: 400 });
        assert_eq!(classify(Some(403), None, false), StatusClass::Permanent { status: 403 });
        assert_eq!(classify(Some(413), None, false), StatusClass::Permanent { status: 413 });
        assert_eq!(classify(None, Some("x"), true), StatusClass::Retry { reason: "timeout".into() });
        assert_eq!(
            classify(None, Some("connection refused"), false),
            StatusClass::Retry { reason: "network error: connection refused".into() }
        );
    }

    #[tokio::test]
    async fn network_error_is_recorded_without_the_url() {
        // A port nothing listens on: bind, note the port, drop the listener.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/mp/collect?api_secret=TOPSECRET");
        let ex = post_json(&client(Duration::from_secs(2)), "collect", &url, b"{}".to_vec()).await;
        assert_eq!(ex.status(), None);
        let err = ex.record.error.clone().unwrap();
        assert!(!err.contains("TOPSECRET"), "{err}");
        assert!(!err.contains("api_secret"), "{err}");
        assert!(matches!(ex.status_class(), StatusClass::Retry { .. }));
        assert_eq!(ex.record.body_sha256, sha256_hex(b"{}"));
    }
}

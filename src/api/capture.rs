//! The browser side of the identity join: `GET /v1/capture.js`, the script a checkout page runs
//! to hand GA4's client and session ids (with consent) to `POST /v1/identities`, and what guards
//! that route against the untrusted browser: CORS for the configured origins only, and a rate
//! limit per client address for requests with a capture key. (What a browser capture may change
//! in the bridge is `store::rules::merge_capture`'s: it only adds.)

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::auth::Role;
use super::problem::Problem;
use crate::api::App;

/// The script, documented in its header and in the README ("Capture in the browser").
pub const SCRIPT: &str = include_str!("capture.js");

/// Client addresses remembered at most; past this, addresses idle long enough to have their
/// full allowance back are forgotten, and while the table is still full every browser capture
/// is refused. The limiter's memory is thus bounded whatever the traffic.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// Admits a `POST /v1/identities`: an ingest or admin token as always, or a capture key within
/// its address's allowance. Whether it came from a browser (with a capture key) is the answer.
pub(super) fn admit(app: &App, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<bool, Problem> {
    let from_browser = app.auth.is_capture_key(headers);
    app.auth.require(headers, if from_browser { Role::Capture } else { Role::Ingest })?;
    if from_browser {
        app.capture_limit.admit(peer)?;
    }
    Ok(from_browser)
}

/// `GET /v1/capture.js`: public, cacheable for a few minutes.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// CORS for `POST /v1/identities`: only the configured origins, only POST with a JSON body and
/// a bearer key, no cookies. Origins were validated with the configuration.
pub fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .max_age(Duration::from_secs(600))
}

/// Browser captures per client address and minute.
pub struct CaptureLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl CaptureLimiter {
    pub fn per_minute(n: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self { limiter: RateLimiter::hashmap(quota) }
    }

    /// Takes one capture from `peer`'s allowance, or refuses with `429 rate_limited`. Without a
    /// known address (a router served without connection info) all such requests share one.
    pub fn admit(&self, peer: Option<SocketAddr>) -> Result<(), Problem> {
        let key = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
        if self.limiter.len() >= MAX_TRACKED_ADDRESSES {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            if self.limiter.len() >= MAX_TRACKED_ADDRESSES {
                return Err(limited());
            }
        }
        self.limiter.check_key(&key).map_err(|_| limited())
    }
}

fn limited() -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many captures",
        "this address posted more identity captures than auth.capture_per_minute allows; try again later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_allowance() {
        let limiter = CaptureLimiter::per_minute(2);
        let a: SocketAddr = "203.0.113.7:5000".parse().unwrap();
        let b: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        assert!(limiter.admit(Some(a)).is_ok());
        assert!(limiter.admit(Some(a)).is_ok());
        let refused = limiter.admit(Some(a)).unwrap_err();
        assert_eq!(refused.code, "rate_limited");
        assert!(limiter.admit(Some(b)).is_ok(), "another address is not held back");
    }

    #[test]
    fn the_script_reads_ids_through_gtag_and_checks_consent() {
        assert!(SCRIPT.contains(r#"w.gtag("get", id, field"#));
        assert!(SCRIPT.contains(r#"consent.analytics_storage !== "granted""#));
        assert!(!SCRIPT.contains("document.cookie"), "the ids come from gtag, not from parsing cookies");
    }
}

//! The dashboard at `GET /`: one server-rendered page over the ledger (admin role) — the
//! per-destination health lines and deliveries-over-time charts, totals, the "adds up" table,
//! queues and circuits, the newest dead letters and refused receipts, and one event's timeline at `GET /?event=ID`. No assets, no framework: the template
//! (`dashboard.html`) is filled in one pass with values escaped here, so nothing from the ledger
//! is ever read as markup. Secrets are never rendered (the page reads only the ledger and the
//! destinations' names).

use std::fmt::{self, Write};
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};

use super::auth::Role;
use super::problem::Problem;
use crate::api::App;
use crate::store::{DeliveryFilter, DeliveryView, ReceiptFilter};

mod act;
mod chart;
mod find;
mod health;
mod ledger;
mod measure;
mod reconcile;
mod timeline;

pub use self::act::{replay, settle};

const TEMPLATE: &str = include_str!("dashboard.html");
/// How many dead letters and refused receipts the page lists.
const NEWEST: usize = 20;
/// Seconds between reloads of the overview (not of a timeline, and not while typing an id).
const REFRESH_SECS: u32 = 30;

pub async fn page(State(app): State<Arc<App>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let basic = basic_as_bearer(&headers);
    if let Err(p) = app.auth.require(basic.as_ref().unwrap_or(&headers), Role::Admin) {
        return challenge(p);
    }
    let param = |name: &str| {
        query.as_deref().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned())
        })
    };
    let event_id = param("event");
    let view = param("view").unwrap_or_default();
    let now = Utc::now();
    let mut body = String::new();
    measure::write_nav(&mut body, if event_id.as_deref().is_some_and(|id| !id.is_empty()) { "event" } else { &view })
        .ok();
    let window = (now - chrono::Duration::days(crate::reconcile::late::DEFAULT_DAYS), now);
    let (status, title, refresh) = match event_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => match app.store.event(id).await {
            Ok(Some(view)) => {
                let csrf = app.auth.csrf_token(basic.as_ref().unwrap_or(&headers), now);
                timeline::write_event_page(&mut body, &app, &view, &csrf).await.ok();
                (StatusCode::OK, format!("{} · Surety", Esc(id)), false)
            }
            Ok(None) => {
                write!(body, "<h2>Event</h2><p class=\"warn\">No event with id <code>{}</code>.</p>", Esc(id)).ok();
                (StatusCode::NOT_FOUND, "Not found · Surety".to_owned(), false)
            }
            Err(e) => return Problem::from(e).into_response(),
        },
        None if view == "late" => {
            let q = crate::reconcile::late::LateQuery {
                since: window.0,
                until: window.1,
                changed_since: None,
                kinds: Vec::new(),
            };
            match crate::reconcile::late::late_arrivals(app.store.as_ref(), &q).await {
                Ok(r) => measure::write_late(&mut body, &r).ok(),
                Err(e) => return Problem::from(e).into_response(),
            };
            (StatusCode::OK, "Late arrivals · Surety".to_owned(), false)
        }
        None if view == "reconcile" => {
            match crate::reconcile::latest(app.store.as_ref()).await {
                Ok(last) => reconcile::write_reconcile(&mut body, last.as_ref()).ok(),
                Err(e) => return Problem::from(e).into_response(),
            };
            (StatusCode::OK, "Reconcile · Surety".to_owned(), false)
        }
        None if view == "search" => match find::search(&app, &param("q").unwrap_or_default()).await {
            Ok(html) => {
                body.push_str(&html);
                (StatusCode::OK, "Find · Surety".to_owned(), false)
            }
            Err(e) => return Problem::from(e).into_response(),
        },
        None if view == "events" => match find::events(&app, &param).await {
            Ok(html) => {
                body.push_str(&html);
                (StatusCode::OK, "Events · Surety".to_owned(), false)
            }
            Err(e) => return Problem::from(e).into_response(),
        },
        None if view == "coverage" => {
            let q =
                crate::reconcile::coverage::CoverageQuery { since: window.0, until: window.1, by: Default::default() };
            match crate::reconcile::coverage::coverage(app.store.as_ref(), &q).await {
                Ok(r) => measure::write_coverage(&mut body, &r).ok(),
                Err(e) => return Problem::from(e).into_response(),
            };
            (StatusCode::OK, "Coverage · Surety".to_owned(), false)
        }
        None => match overview(&app, now).await {
            Ok(html) => {
                body.push_str(&html);
                (StatusCode::OK, "Surety".to_owned(), true)
            }
            Err(e) => return Problem::from(e).into_response(),
        },
    };
    let generated = format!("{}", now.format("%Y-%m-%d %H:%M:%S UTC"));
    let event_value = Esc(event_id.as_deref().unwrap_or("")).to_string();
    let q_value = Esc(param("q").as_deref().unwrap_or("")).to_string();
    let script = if refresh {
        format!(
            "<script>setInterval(function(){{if(!document.querySelector('input:focus'))location.reload()}},{});\
             </script>",
            REFRESH_SECS * 1000
        )
    } else {
        String::new()
    };
    let html = fill(
        TEMPLATE,
        &[
            ("title", &title),
            ("generated", &generated),
            ("event", &event_value),
            ("q", &q_value),
            ("body", &body),
            ("refresh", &script),
        ],
    );
    (status, html_headers(), html).into_response()
}

/// The headers of every console page: no caching, no framing, forms only to Surety itself.
fn html_headers() -> [(header::HeaderName, &'static str); 4] {
    [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    ]
}

/// Browsers send Basic auth, not bearer tokens: the password of `Authorization: Basic …` (any
/// user name) is taken as the bearer token, so the one constant-time check in `auth` decides.
fn basic_as_bearer(headers: &HeaderMap) -> Option<HeaderMap> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let mut bearer = HeaderMap::new();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok();
    let password = decoded.as_deref().and_then(|d| std::str::from_utf8(d).ok()).and_then(|s| s.split_once(':'));
    // Undecodable credentials leave no token at all: 401, as for a wrong one.
    if let Some(v) = password.and_then(|(_, p)| HeaderValue::from_str(&format!("Bearer {p}")).ok()) {
        bearer.insert(header::AUTHORIZATION, v);
    }
    Some(bearer)
}

/// A 401 asks the browser for credentials; other refusals go out as they are.
fn challenge(p: Problem) -> Response {
    let unauthorized = p.status == StatusCode::UNAUTHORIZED.as_u16();
    let mut response = p.into_response();
    if unauthorized {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"surety\""));
    }
    response
}

/// Fills `{{name}}` placeholders in one pass: inserted text is never searched again, so a value
/// that itself contains `{{body}}` stays text.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| values.iter().find(|(k, _)| *k == &after[..end]).map(|(_, v)| (end, v))) {
            Some((end, v)) => {
                out.push_str(v);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text escaped for HTML element content and quoted attribute values.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = 0;
        for (i, c) in self.0.char_indices() {
            let entity = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            f.write_str(&self.0[last..i])?;
            f.write_str(entity)?;
            last = i + c.len_utf8();
        }
        f.write_str(&self.0[last..])
    }
}

/// A link to an event's timeline (the id percent-encoded for the URL, then escaped for HTML).
struct EventLink<'a>(&'a str);

impl fmt::Display for EventLink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q: String = url::form_urlencoded::byte_serialize(self.0.as_bytes()).collect();
        write!(f, "<a href=\"/?event={}\">{}</a>", Esc(&q), Esc(self.0))
    }
}

fn opt(s: &Option<String>) -> Esc<'_> {
    Esc(s.as_deref().unwrap_or(""))
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

async fn overview(app: &App, now: DateTime<Utc>) -> Result<String, crate::store::StoreError> {
    // `counts` scans the whole ledger (events, conflicts, deliveries grouped): fine for a person
    // loading a page every half minute, not for anything polled by machines (that is /metrics).
    let counts = app.store.counts().await?;
    let stuck = needing_a_person(app).await?;
    let mut refused = Vec::new();
    for status in ["ignored", "invalid"] {
        let filter = ReceiptFilter { source: None, status: Some(status.to_owned()), limit: NEWEST };
        refused.extend(app.store.receipts(filter).await?);
    }
    refused.sort_by_key(|r| std::cmp::Reverse(r.last_at));
    refused.truncate(NEWEST);
    let mut out = String::new();
    let lines = health::lines(app, &counts, now).await?;
    health::write(&mut out, &lines, now).ok();
    let since = crate::store::over_time::since(now, chart::HOURS);
    let hourly = app.store.deliveries_over_time(since).await?;
    let names: Vec<&str> = lines.iter().map(|l| l.destination.as_str()).collect();
    chart::write(&mut out, &names, &hourly, since).ok();
    ledger::write_overview(&mut out, app, &counts, &stuck, &refused, now).ok();
    Ok(out)
}

/// The most recently changed deliveries that need a person: dead, rejected and in doubt.
async fn needing_a_person(app: &App) -> Result<Vec<DeliveryView>, crate::store::StoreError> {
    let filter = DeliveryFilter { needs_person: true, limit: Some(NEWEST as u32), recent: true, ..Default::default() };
    app.store.deliveries(filter).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            Esc("<script>alert('x') & \"y\"</script>").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(Esc("plain: ü").to_string(), "plain: ü");
    }

    #[test]
    fn fill_does_not_rescan_inserted_values() {
        let html = fill("<p>{{a}}|{{b}}|{{c}}</p>", &[("a", "{{b}}"), ("b", "B")]);
        assert_eq!(html, "<p>{{b}}|B|{{c}}</p>");
    }

    #[test]
    fn basic_password_becomes_the_bearer_token() {
        let mut h = HeaderMap::new();
        let creds = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret:with-colon");
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {creds}")).unwrap());
        let b = basic_as_bearer(&h).unwrap();
        assert_eq!(b.get(header::AUTHORIZATION).unwrap(), "Bearer s3cret:with-colon");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_as_bearer(&h).unwrap().get(header::AUTHORIZATION).is_none());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(basic_as_bearer(&h).is_none());
    }
}

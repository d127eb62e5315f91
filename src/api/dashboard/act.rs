//! The console's actions on one event's page (admin role): `POST /console/replay` and
//! `POST /console/settle`, HTML forms with a CSRF token (`Auth::csrf_token`, HMAC-SHA256 bound to
//! the admin credential). The same rules as `POST /v1/deliveries/replay` and `…/settle` and the
//! CLI: a delivered delivery is replayed only when forced, and a forced replay is recorded; only
//! dead, rejected and in_doubt deliveries are settled. Done: `303 See Other` back to the event's
//! timeline, which shows the replay or settlement. Refused by the ledger's rules: an HTML page
//! saying why. A form without a valid token: `403 csrf_refused`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use chrono::Utc;

use super::{basic_as_bearer, challenge, fill, Esc, EventLink, TEMPLATE};
use crate::api::auth::Role;
use crate::api::problem::Problem;
use crate::api::App;
use crate::core::delivery::reason;
use crate::store::{ReplaySelector, SettleOutcome, SettledAs, Settlement, MAX_SETTLEMENT_NOTE};

/// A console form, checked: the admin credential, the origin, the CSRF token, the fields.
struct Form {
    /// The request's headers with Basic credentials read as a bearer token.
    auth: HeaderMap,
    fields: Vec<(String, String)>,
    /// Who acts, for a replay's record: `console:<Basic user>`, or `console:<admin token #k>`
    /// when the form came with a bearer token.
    by: String,
}

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim())
    }

    fn required(&self, name: &'static str) -> Result<&str, Response> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| invalid(format!("{name}: required")))
    }

    fn delivery_id(&self) -> Result<i64, Response> {
        self.required("delivery_id")?
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| invalid("delivery_id: must be a positive whole number".into()))
    }
}

fn invalid(detail: String) -> Response {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_form", "Invalid form", detail).into_response()
}

/// Checks the credential before anything of the request is read, then the origin, the form's
/// content type and its CSRF token.
async fn read(app: &App, request: Request) -> Result<Form, Response> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let basic = basic_as_bearer(headers);
    let auth = basic.unwrap_or_else(|| headers.clone());
    app.auth.require(&auth, Role::Admin).map_err(challenge)?;
    let by = format!("console:{}", basic_user(headers).unwrap_or_else(|| app.auth.who(&auth)));
    // A browser says where a request comes from; another site's page is refused before its token
    // is even looked at.
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).unwrap_or("none");
    if !matches!(site, "same-origin" | "none") {
        return Err(csrf_refused(format!("a console form is accepted only from Surety's own pages, not {site}")));
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "send the console's form (application/x-www-form-urlencoded)",
        )
        .into_response());
    }
    let body: Bytes = axum::body::to_bytes(body, app.config.server.max_body_bytes).await.map_err(|e| {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large", e.to_string())
            .into_response()
    })?;
    let fields: Vec<(String, String)> =
        url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let form = Form { auth, fields, by };
    app.auth.check_csrf(&form.auth, form.get("csrf"), Utc::now()).map_err(|why| csrf_refused(why.as_str().into()))?;
    Ok(form)
}

/// The user name of `Authorization: Basic …` (any name is accepted; only the password is
/// checked), for the record of who acted from the console: at most 64 characters, control
/// characters dropped.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, _) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    let user: String = user.chars().filter(|c| !c.is_control()).take(64).collect();
    (!user.trim().is_empty()).then(|| user.trim().to_owned())
}

fn csrf_refused(detail: String) -> Response {
    Problem::new(StatusCode::FORBIDDEN, "csrf_refused", "Form refused", detail).into_response()
}

/// The delivery must belong to the event the form was on: the answer leads back to that page.
async fn check_event(app: &App, event_id: &str, delivery_id: i64) -> Result<(), Response> {
    match app.store.event(event_id).await {
        Ok(Some(view)) if view.deliveries.iter().any(|d| d.id == delivery_id) => Ok(()),
        Ok(_) => Err(page(
            StatusCode::NOT_FOUND,
            "Not found",
            event_id,
            &format!("Event <code>{}</code> has no delivery {delivery_id}.", Esc(event_id)),
        )),
        Err(e) => Err(Problem::from(e).into_response()),
    }
}

/// Back to the event's timeline (`303`: the browser follows with a `GET`).
fn back_to(event_id: &str) -> Response {
    let q: String = url::form_urlencoded::byte_serialize(event_id.as_bytes()).collect();
    let location = HeaderValue::from_str(&format!("/?event={q}")).unwrap_or(HeaderValue::from_static("/"));
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
    )
        .into_response()
}

/// An answer page: what happened (`message` is markup built from escaped values) and the way
/// back to the event.
fn page(status: StatusCode, title: &str, event_id: &str, message: &str) -> Response {
    let body = format!("<h2>{}</h2><p class=\"warn\">{message}</p><p>Back to {}.</p>", Esc(title), EventLink(event_id));
    let html = fill(
        TEMPLATE,
        &[
            ("title", &format!("{} · Surety", Esc(title))),
            ("generated", &Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            ("event", &Esc(event_id).to_string()),
            ("body", &body),
            ("refresh", ""),
        ],
    );
    (status, super::html_headers(), html).into_response()
}

pub async fn replay(State(app): State<Arc<App>>, request: Request) -> Response {
    let form = match read(&app, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let run = async {
        let id = form.delivery_id()?;
        let event_id = form.required("event")?.to_owned();
        let force = form.get("force").is_some_and(|v| matches!(v, "1" | "on" | "true"));
        check_event(&app, &event_id, id).await?;
        let selector = ReplaySelector {
            delivery_ids: vec![id],
            event_id: Some(event_id.clone()),
            by: Some(form.by.clone()),
            ..Default::default()
        };
        let report =
            app.store.replay(selector, force, Utc::now()).await.map_err(|e| Problem::from(e).into_response())?;
        if let Some(refusal) = report.refused.first() {
            let message = format!(
                "Delivery {id} was not replayed: it is {}, and {}.",
                refusal.state.as_str(),
                Esc(&refusal.reason)
            );
            return Err(page(StatusCode::CONFLICT, "Not replayed", &event_id, &message));
        }
        tracing::info!(delivery = id, forced = force, by = %form.by, source = "console", "deliveries replayed");
        app.wake_workers();
        Ok(back_to(&event_id))
    };
    run.await.unwrap_or_else(|r| r)
}

pub async fn settle(State(app): State<Arc<App>>, request: Request) -> Response {
    let form = match read(&app, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let run = async {
        let id = form.delivery_id()?;
        let event_id = form.required("event")?.to_owned();
        let settled_as: SettledAs = form.required("as")?.parse().map_err(|e: String| invalid(format!("as: {e}")))?;
        let note = form.get("note").filter(|n| !n.is_empty()).map(str::to_owned);
        if note.as_ref().is_some_and(|n| n.chars().count() > MAX_SETTLEMENT_NOTE) {
            return Err(invalid(format!("note: at most {MAX_SETTLEMENT_NOTE} characters")));
        }
        check_event(&app, &event_id, id).await?;
        let settlement = Settlement { delivery_id: id, settled_as, by: app.auth.who(&form.auth), note };
        match app.store.settle(settlement, Utc::now()).await.map_err(|e| Problem::from(e).into_response())? {
            SettleOutcome::Settled { destination, state, settlement } => {
                tracing::info!(delivery = id, settled_as = %settled_as, by = %settlement.by, source = "console",
                    "delivery settled");
                app.metrics.delivery(&destination, state.as_str(), Some(reason::SETTLED_BY_PERSON));
                Ok(back_to(&event_id))
            }
            SettleOutcome::NotFound => {
                Err(page(StatusCode::NOT_FOUND, "Not found", &event_id, &format!("There is no delivery {id}.")))
            }
            SettleOutcome::Refused { state, reason, why } => {
                let message = format!(
                    "Delivery {id} was not settled: it is {}{}, and {}.",
                    state.as_str(),
                    reason.map(|r| format!(":{}", Esc(&r))).unwrap_or_default(),
                    Esc(why)
                );
                Err(page(StatusCode::CONFLICT, "Not settled", &event_id, &message))
            }
        }
    };
    run.await.unwrap_or_else(|r| r)
}

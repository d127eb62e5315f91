//! The demo's HTTP client: it talks to Surety only through the public API, as a shop would, reads
//! ingest answers (event id, planned deliveries), and reads `GET /v1/events/{id}` back into the
//! ledger's own view type for its timeline text.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::core::event::PERSONAL_FIELDS;
use crate::core::{DeliveryState, Event};
use crate::store::{AttemptView, ConflictView, DeliveryView, EventView, ReplayView, Routing};

pub struct Api {
    client: reqwest::Client,
    pub base: String,
    pub ingest_token: String,
    pub admin_token: String,
}

/// An answer: status and JSON body (`Null` when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// `status` of a single-event answer, or the `code` of a problem.
    pub fn word(&self) -> String {
        let text = |k: &str| self.body.get(k).and_then(Value::as_str).map(str::to_owned);
        text("status").or_else(|| text("code")).unwrap_or_else(|| "?".to_owned())
    }
}

impl Api {
    pub fn new(base: String, ingest_token: String, admin_token: String) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { client, base, ingest_token, admin_token })
    }

    /// POSTs with the ingest token (events, identities).
    pub async fn ingest(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.post(path, body, &self.ingest_token).await
    }

    /// POSTs a Stripe webhook body signed as Stripe signs it (`Stripe-Signature: t=…,v1=…`).
    pub async fn stripe_webhook(&self, body: &str, secret: &str) -> anyhow::Result<Answer> {
        let signature = crate::sources::stripe::signature_header(secret, Utc::now().timestamp(), body.as_bytes());
        let r = self
            .client
            .post(format!("{}/v1/webhooks/stripe", self.base))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .context("POST /v1/webhooks/stripe failed")?;
        let status = r.status();
        let body = r.json().await.unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// POSTs with the admin token (replay).
    pub async fn admin_post(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.post(path, body, &self.admin_token).await
    }

    async fn post(&self, path: &str, body: &Value, token: &str) -> anyhow::Result<Answer> {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path} failed"))?;
        let status = r.status();
        let body = r.json().await.unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let r = self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.admin_token).send().await?;
        let r = r.error_for_status().with_context(|| format!("GET {path}"))?;
        Ok(r.text().await?)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let r = self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.admin_token).send().await?;
        let r = r.error_for_status().with_context(|| format!("GET {path}"))?;
        r.json().await.with_context(|| format!("GET {path}: unexpected answer"))
    }

    /// One event's timeline, as `GET /v1/events/{id}` returns it.
    pub async fn event(&self, id: &str) -> anyhow::Result<EventView> {
        let path = format!("/v1/events/{}", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
        let doc: EventDoc = self.get_json(&path).await?;
        Ok(doc.into())
    }

    /// Whether the ledger holds an event with this id.
    pub async fn exists(&self, id: &str) -> anyhow::Result<bool> {
        let path = format!("/v1/events/{}", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
        let r = self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.admin_token).send().await?;
        match r.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            s => anyhow::bail!("GET {path}: {s}"),
        }
    }

    /// Whether `GET /metrics` shows the destination's circuit open (or probing).
    pub async fn circuit_open(&self, destination: &str) -> anyhow::Result<bool> {
        let text = self.get_text("/metrics").await?;
        let label = format!("destination=\"{destination}\"");
        Ok(text.lines().any(|l| {
            l.starts_with("surety_circuit_open{")
                && l.contains(&label)
                && l.rsplit(' ').next().is_some_and(|v| v != "0")
        }))
    }

    /// A destination's deliveries in one state (`GET /v1/deliveries`; the tour's few fit one page).
    pub async fn deliveries(&self, destination: &str, state: &str) -> anyhow::Result<Vec<Value>> {
        self.get_json(&format!("/v1/deliveries?destination={destination}&state={state}&limit=1000")).await
    }

    /// Whether any delivery is still pending, claimed or sending.
    pub async fn busy(&self) -> anyhow::Result<bool> {
        for state in ["pending", "claimed", "sending"] {
            let rows: Vec<Value> = self.get_json(&format!("/v1/deliveries?state={state}&limit=1")).await?;
            if !rows.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Polls until no delivery is live, for at most `limit`; false if time ran out.
    pub async fn wait_idle(&self, limit: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + limit;
        // Give the workers a moment to claim what was just planned.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while Instant::now() < deadline {
            if !self.busy().await? {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(false)
    }
}

/// The event id the answer names, else the one the event carries or derives to.
pub fn event_id(event: &Value, a: &Answer) -> String {
    if let Some(id) = a.body.get("event_id").and_then(Value::as_str) {
        return id.to_owned();
    }
    if let Some(id) = event.get("event_id").and_then(Value::as_str) {
        return id.to_owned();
    }
    let s = |p: &str| event.pointer(p).and_then(Value::as_str).unwrap_or("?").to_owned();
    format!("{}:{}:{}", s("/subject/type"), s("/subject/id"), s("/kind"))
}

/// "planned: pending at d1, d2; skipped:no_identity at d3" or "routed nowhere", from
/// an ingest answer.
pub fn planned(body: &Value) -> String {
    let deliveries = body.get("deliveries").and_then(Value::as_array).cloned().unwrap_or_default();
    if deliveries.is_empty() {
        return "routed nowhere (not_routed)".to_owned();
    }
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for d in &deliveries {
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (state, reason) = (s("state"), s("reason"));
        let what = if state == DeliveryState::Pending.as_str() {
            "pending".to_owned()
        } else if reason.is_empty() {
            state
        } else {
            format!("{state}:{reason}")
        };
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, names)) => names.push(s("destination")),
            None => groups.push((what, vec![s("destination")])),
        }
    }
    let parts: Vec<String> = groups.iter().map(|(what, names)| format!("{what} at {}", names.join(", "))).collect();
    format!("planned: {}", parts.join("; "))
}

// `GET /v1/events/{id}`'s document, read back into the store's view types (which only serialise).

#[derive(Deserialize)]
struct EventDoc {
    event: Event,
    routing: String,
    content_hash: String,
    #[serde(default)]
    deliveries: Vec<DeliveryDoc>,
    #[serde(default)]
    attempts: Vec<AttemptDoc>,
    #[serde(default)]
    replays: Vec<ReplayDoc>,
    #[serde(default)]
    settlements: Vec<crate::store::SettlementView>,
    #[serde(default)]
    conflicts: Vec<ConflictDoc>,
}

#[derive(Deserialize)]
struct DeliveryDoc {
    id: i64,
    event_id: String,
    destination: String,
    destination_event: String,
    state: DeliveryState,
    reason: Option<String>,
    #[serde(default)]
    messages: Vec<String>,
    attempts: u32,
    #[serde(default)]
    personal_fields_stripped: bool,
    #[serde(default)]
    stripped_fields: Vec<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct AttemptDoc {
    delivery_id: i64,
    attempt: u32,
    at: DateTime<Utc>,
    outcome: String,
    detail: Option<String>,
    payload_sha256: Option<String>,
    #[serde(default)]
    forced: bool,
    endpoint: Option<String>,
    http_status: Option<u16>,
    duration_ms: Option<f64>,
    error: Option<String>,
    response_excerpt: Option<String>,
    request_sha256: Option<String>,
    #[serde(default)]
    request_body: Option<String>,
}

#[derive(Deserialize)]
struct ReplayDoc {
    delivery_id: i64,
    at: DateTime<Utc>,
    previous_state: String,
    previous_reason: Option<String>,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    by: Option<String>,
}

#[derive(Deserialize)]
struct ConflictDoc {
    received_at: DateTime<Utc>,
    content_hash: String,
    #[serde(default)]
    differs: Vec<String>,
}

impl From<EventDoc> for EventView {
    fn from(d: EventDoc) -> Self {
        EventView {
            event: d.event,
            routing: if d.routing == "routed" { Routing::Routed } else { Routing::NotRouted },
            content_hash: d.content_hash,
            deliveries: d
                .deliveries
                .into_iter()
                .map(|x| DeliveryView {
                    id: x.id,
                    event_id: x.event_id,
                    destination: x.destination,
                    destination_event: x.destination_event,
                    state: x.state,
                    reason: x.reason,
                    messages: x.messages,
                    attempts: x.attempts,
                    personal_fields_stripped: x.personal_fields_stripped,
                    // The view names fields by the static list of personal fields.
                    stripped_fields: PERSONAL_FIELDS
                        .iter()
                        .copied()
                        .filter(|f| x.stripped_fields.iter().any(|s| s == f))
                        .collect(),
                    next_attempt_at: x.next_attempt_at,
                    created_at: x.created_at,
                    updated_at: x.updated_at,
                })
                .collect(),
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptView {
                    delivery_id: a.delivery_id,
                    attempt: a.attempt,
                    at: a.at,
                    outcome: a.outcome,
                    detail: a.detail,
                    payload_sha256: a.payload_sha256,
                    forced: a.forced,
                    endpoint: a.endpoint,
                    http_status: a.http_status,
                    duration_ms: a.duration_ms,
                    error: a.error,
                    response_excerpt: a.response_excerpt,
                    request_sha256: a.request_sha256,
                    request_body: a.request_body,
                })
                .collect(),
            replays: d
                .replays
                .into_iter()
                .map(|r| ReplayView {
                    delivery_id: r.delivery_id,
                    at: r.at,
                    previous_state: r.previous_state,
                    previous_reason: r.previous_reason,
                    forced: r.forced,
                    by: r.by,
                })
                .collect(),
            settlements: d.settlements,
            conflicts: d
                .conflicts
                .into_iter()
                .map(|c| ConflictView { received_at: c.received_at, content_hash: c.content_hash, differs: c.differs })
                .collect(),
        }
    }
}

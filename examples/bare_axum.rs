//! The yardstick for `scripts/bench_http.sh`: the same web stack as Surety (tokio, hyper, axum)
//! with nothing behind it. Every request reads its body and answers 202 with a small JSON; so the
//! benchmark can compare Surety's ingest with what the stack alone does on the same machine.
//! It also stands in for a platform that accepts everything, as the delivery target.
//!
//!   cargo run --release --example bare_axum -- 127.0.0.1:9090
//!   cargo run --release --example bare_axum -- 127.0.0.1:9091 --count
//!
//! With `--count` (the stand-in platform, never the yardstick) it also reads each request as a
//! GA4 Measurement Protocol body and counts the purchases' `transaction_id`s, so a benchmark can
//! check that every event arrived exactly once: `GET /count` answers
//! `{"requests", "events", "distinct", "duplicates"}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

async fn accept(body: Bytes) -> (StatusCode, Json<Value>) {
    (StatusCode::ACCEPTED, Json(json!({"status": "accepted", "bytes": body.len()})))
}

/// Requests seen, and how often each transaction id came.
#[derive(Default)]
struct Seen {
    requests: u64,
    ids: HashMap<String, u32>,
}

type Counter = Arc<Mutex<Seen>>;

async fn accept_counting(State(seen): State<Counter>, body: Bytes) -> (StatusCode, Json<Value>) {
    let ids: Vec<String> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("events").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.pointer("/params/transaction_id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    {
        let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.requests += 1;
        for id in ids {
            *seen.ids.entry(id).or_default() += 1;
        }
    }
    accept(body).await
}

async fn count(State(seen): State<Counter>) -> Json<Value> {
    let seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let events: u64 = seen.ids.values().map(|&n| u64::from(n)).sum();
    let duplicates: u64 = seen.ids.values().map(|&n| u64::from(n.saturating_sub(1))).sum();
    Json(json!({"requests": seen.requests, "events": events, "distinct": seen.ids.len(), "duplicates": duplicates}))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9090".to_owned());
    let counting = args.any(|a| a == "--count");
    let app = if counting {
        Router::new().route("/count", get(count)).fallback(accept_counting).with_state(Counter::default())
    } else {
        Router::new().fallback(accept)
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare axum listening on {addr}{}", if counting { " (counting)" } else { "" });
    axum::serve(listener, app).await
}

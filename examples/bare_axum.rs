//! The yardstick for `scripts/bench_http.sh`: the same web stack as Surety (tokio, hyper, axum)
//! with nothing behind it. Every request reads its body and answers 202 with a small JSON; so the
//! benchmark can compare Surety's ingest with what the stack alone does on the same machine.
//! It also stands in for a platform that accepts everything, as the delivery target.
//!
//!   cargo run --release --example bare_axum -- 127.0.0.1:9090

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::{Json, Router};

async fn accept(body: Bytes) -> (StatusCode, Json<serde_json::Value>) {
    (StatusCode::ACCEPTED, Json(serde_json::json!({"status": "accepted", "bytes": body.len()})))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9090".to_owned());
    let app = Router::new().fallback(accept);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare axum listening on {addr}");
    axum::serve(listener, app).await
}

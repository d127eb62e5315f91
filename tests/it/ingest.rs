//! Ingest: durable acknowledgement, stable ids, duplicates and conflicts (G2), personal data
//! hashed (G7), bad input answered and never written (G8).

use serde_json::{json, Value};

use crate::support::{purchase, TestServer, ADMIN_TOKEN};

#[tokio::test]
async fn accepted_event_is_stored_with_derived_id_and_planned() {
    let s = TestServer::start().await;
    let r = s.post("/v1/events", &purchase("1042", 1)).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["event_id"], "order:1042:order_paid");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["deliveries"][0]["destination"], "ga4-web");

    let v = s.event("order:1042:order_paid").await;
    assert_eq!(v["routing"], "routed");
    assert_eq!(v["event"]["kind"], "order_paid");
    assert_eq!(v["event"]["subject"]["id"], "1042");
}

#[tokio::test]
async fn redelivery_is_a_duplicate_and_a_changed_restatement_a_conflict() {
    let s = TestServer::start().await;
    let mut e = purchase("7", 1);
    e["event_id"] = json!("evt_stripe_1");
    assert_eq!(s.post("/v1/events", &e).await.status(), 202);

    let again = s.post("/v1/events", &e).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");

    let mut changed = e.clone();
    changed["value"] = json!(10.0);
    let conflict = s.post("/v1/events", &changed).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(conflict.headers()["content-type"], "application/problem+json");
    assert_eq!(conflict.json::<Value>().await.unwrap()["code"], "event_conflict");

    let v = s.event("evt_stripe_1").await;
    assert_eq!(v["event"]["value"], 59.9, "the original stands");
    assert_eq!(v["conflicts"].as_array().unwrap().len(), 1, "the conflict is recorded");
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 1, "nothing new was planned");

    let c = s.counts().await;
    assert_eq!(c.events, 1);
    assert_eq!(c.conflicts, 1);
}

#[tokio::test]
async fn batch_answers_per_item_and_stores_only_the_valid() {
    let s = TestServer::start().await;
    let mut bad = purchase("2", 1);
    bad["currency"] = json!("EURO");
    let good = purchase("1", 1);
    let body = json!({"events": [good.clone(), bad, good, {"kind": "lead_qualified"}]});
    let r = s.post("/v1/events", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let statuses: Vec<&str> = v["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "invalid", "duplicate", "invalid"]);
    assert_eq!(v["results"][1]["errors"][0]["field"], "events[1].currency");
    assert_eq!(v["results"][3]["errors"][0]["code"], "required");
    assert_eq!((v["accepted"].as_u64(), v["invalid"].as_u64()), (Some(1), Some(2)));
    assert_eq!(s.counts().await.events, 1);
}

#[tokio::test]
async fn unrouted_kind_is_kept_as_not_routed() {
    let s = TestServer::start().await;
    let mut e = purchase("9", 1);
    e["kind"] = json!("fulfillment_failed");
    assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    let v = s.event("order:9:fulfillment_failed").await;
    assert_eq!(v["routing"], "not_routed");
    assert!(v["deliveries"].as_array().unwrap().is_empty());
    let c = s.counts().await;
    assert_eq!((c.events, c.routed, c.not_routed), (1, 0, 1));
}

#[tokio::test]
async fn personal_fields_are_hashed_and_never_written_raw() {
    let s = TestServer::start().await;
    let mut e = purchase("77", 1);
    e["identity"]["email"] = json!("Very.Secret.Person@Example.com");
    e["identity"]["phone"] = json!("+49 151 99887766");
    e["identity"]["first_name"] = json!("Wilhelmina");
    e["identity"]["date_of_birth"] = json!("1987-06-05");
    assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    let v = s.event("order:77:order_paid").await;
    let email = v["event"]["identity"]["email"]["google"].as_str().unwrap();
    assert_eq!(email.len(), 64, "a SHA-256 hex digest");
    if let Some(url) = s.postgres.clone() {
        // On PostgreSQL (SURETY_IT_LEDGER=postgres): every row of every table, as text.
        s.stop().await;
        assert_no_raw_in_postgres(&url).await;
        return;
    }
    // Search every file the ledger wrote (the WAL included) while it is open, then again after
    // the server stopped and SQLite checkpointed.
    assert_no_raw_on_disk(s.dir.path());
    let (dir, _) = s.stop().await;
    assert_no_raw_on_disk(dir.path());
}

const RAW: [&str; 5] = ["very.secret.person", "99887766", "wilhelmina", "1987-06-05", "19870605"];

async fn assert_no_raw_in_postgres(url: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "events"), "the ledger's tables were found: {tables:?}");
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t")).fetch_all(&pool).await.unwrap();
        let text = rows.join("\n").to_lowercase();
        for raw in RAW {
            assert!(!text.contains(raw), "raw personal data '{raw}' found in table {table}");
        }
    }
}

fn assert_no_raw_on_disk(dir: &std::path::Path) {
    let mut searched = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        // SQLite removes its -wal and -shm files when the last connection closes.
        let Ok(bytes) = std::fs::read(entry.unwrap().path()) else { continue };
        searched += bytes.len();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for raw in RAW {
            assert!(!text.contains(raw), "raw personal data '{raw}' found on disk");
        }
    }
    assert!(searched > 0, "the ledger's files were searched");
}

#[tokio::test]
async fn malformed_oversized_and_unauthorised_requests_get_4xx_and_write_nothing() {
    let s = TestServer::start().await;
    let url = s.url("/v1/events");
    let http = &s.http;

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (http.post(&url).json(&purchase("1", 1)), 401, "unauthorized"),
        (http.post(&url).bearer_auth("wrong").json(&purchase("1", 1)), 401, "unauthorized"),
        (
            http.post(&url)
                .bearer_auth(crate::support::INGEST_TOKEN)
                .header("content-type", "application/json")
                .body("{\"kind\": "),
            400,
            "malformed_json",
        ),
        (
            http.post(&url)
                .bearer_auth(crate::support::INGEST_TOKEN)
                .header("content-type", "text/plain")
                .body("hello"),
            415,
            "unsupported_media_type",
        ),
        (
            http.post(&url)
                .bearer_auth(crate::support::INGEST_TOKEN)
                .header("content-type", "application/json")
                .body(format!("{{\"events\": [\"{}\"]}}", "x".repeat(5 * 1024 * 1024))),
            413,
            "payload_too_large",
        ),
        (
            http.post(&url)
                .bearer_auth(crate::support::INGEST_TOKEN)
                .json(&json!({"events": vec![purchase("1", 1); 1001]})),
            413,
            "too_many_events",
        ),
    ];
    for (req, status, code) in cases {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{code}");
        assert_eq!(r.headers()["content-type"], "application/problem+json", "{code}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], code);
        assert_eq!(p["status"], status);
    }

    // Unknown fields are reported with their path, not silently dropped.
    let mut e = purchase("1", 1);
    e["identity"]["emial"] = json!("x@example.com");
    let r = s.post("/v1/events", &e).await;
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "invalid_event");
    assert_eq!(p["errors"][0]["code"], "unknown_field");
    assert_eq!(p["errors"][0]["field"], "identity.emial");

    // An ingest token cannot read the ledger.
    let r = s.http.get(s.url("/v1/deliveries")).bearer_auth(crate::support::INGEST_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let c = s.counts().await;
    assert_eq!((c.events, c.conflicts), (0, 0), "nothing was written");
    assert!(c.deliveries.is_empty());
}

#[tokio::test]
async fn identity_bridge_joins_later_events_and_records_what_was_joined() {
    let s = TestServer::start().await;
    let capture = json!({
        "subject": {"type": "order", "id": "5001"},
        "captured_at": chrono::Utc::now().to_rfc3339(),
        "identity": {"client_id": "1234567890.1700000000", "session_id": "1700000000", "email": "a@example.com"},
        "consent": {"analytics": "granted", "ad_user_data": "granted"}
    });
    assert_eq!(s.post("/v1/identities", &capture).await.status(), 202);

    // A bank transfer confirmed later, from a backend that knows nothing of the browser.
    let e = json!({
        "kind": "order_paid",
        "occurred_at": (chrono::Utc::now() - chrono::Duration::hours(30)).to_rfc3339(),
        "subject": {"type": "order", "id": "5001"},
        "value": 120.0, "currency": "EUR"
    });
    assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    let v = s.event("order:5001:order_paid").await;
    let joined: Vec<&str> = v["event"]["joined"].as_array().unwrap().iter().map(|j| j.as_str().unwrap()).collect();
    assert!(joined.contains(&"identity.client_id"), "{joined:?}");
    assert!(joined.contains(&"consent.analytics"), "{joined:?}");
    assert_eq!(s.settled("order:5001:order_paid").await, ["ga4-web:delivered:sent"]);
    let sent = s.ga4.events_named("purchase");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].client_id.as_deref(), Some("1234567890.1700000000"));
    assert_eq!(sent[0].params["session_id"], "1700000000");
}

#[tokio::test]
async fn open_api_without_tokens_is_refused_for_admin_when_tokens_exist() {
    let s = TestServer::start().await;
    let r = s.http.get(s.url("/v1/deliveries")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.http.get(s.url("/v1/deliveries")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

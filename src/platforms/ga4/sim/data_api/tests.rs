//! The simulated Data API answers from what `/mp/collect` took, as `runReport` documents.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use crate::platforms::ga4::sim;
use crate::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON;
use crate::platforms::google_auth::ServiceAccount;

/// Sends purchases (transaction id, day of November 2026, value) and a refund to `/mp/collect`.
async fn collect(base: &str, client: &reqwest::Client) {
    for (txn, day, value) in [("A", 20, 10.0), ("B", 20, 20.0), ("C", 21, 30.0), ("D", 22, 40.0)] {
        let at = Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap().timestamp_micros();
        let body = json!({"client_id": "1.2", "timestamp_micros": at, "events": [
            {"name": "purchase", "params": {"transaction_id": txn, "value": value, "currency": "EUR"}},
            {"name": "refund", "params": {"transaction_id": txn, "value": 1.0, "currency": "EUR"}}
        ]});
        let r = client
            .post(format!("{base}/mp/collect?measurement_id=G-TEST&api_secret=s3cret"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

async fn bearer(base: &str, client: &reqwest::Client) -> String {
    let account = ServiceAccount::from_json(TEST_SERVICE_ACCOUNT_JSON, super::SCOPE).unwrap();
    let assertion = account.assertion(&format!("{base}/token"), Utc::now()).unwrap();
    let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
    let r: Value = client.post(format!("{base}/token")).form(&form).send().await.unwrap().json().await.unwrap();
    r["access_token"].as_str().expect("a token").to_owned()
}

fn request(start: &str, end: &str, limit: Value, offset: Value, events: Option<&[&str]>) -> Value {
    let mut r = json!({
        "dateRanges": [{"startDate": start, "endDate": end}],
        "dimensions": [{"name": "date"}, {"name": "transactionId"}, {"name": "eventName"}],
        "metrics": [{"name": "eventCount"}, {"name": "purchaseRevenue"}],
        "limit": limit, "offset": offset,
    });
    if let Some(events) = events {
        r["dimensionFilter"] = json!({"filter": {"fieldName": "eventName", "inListFilter": {"values": events}}});
    }
    r
}

fn cells(row: &Value, key: &str) -> Vec<String> {
    row[key].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn run_report_needs_a_token_and_honours_dates_filter_and_pages() {
    let sim = sim::start().await.unwrap();
    let client = reqwest::Client::new();
    collect(&sim.base_url, &client).await;
    let url = format!("{}/v1beta/properties/123:runReport", sim.base_url);
    let body = request("2026-11-20", "2026-11-21", json!(2), json!(0), Some(&["purchase"]));

    let r = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["status"], "UNAUTHENTICATED");

    let token = bearer(&sim.base_url, &client).await;
    let page = |body: Value| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move { client.post(url).bearer_auth(token).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Two days, purchases only: A, B (20th) and C (21st); two a page, in the headers' order.
    let first = page(body.clone()).await;
    assert_eq!(first["rowCount"], 3, "{first:#}");
    assert_eq!(first["dimensionHeaders"][1]["name"], "transactionId");
    let rows = first["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(cells(&rows[0], "dimensionValues"), ["20261120", "A", "purchase"]);
    assert_eq!(cells(&rows[0], "metricValues"), ["1", "10"]);
    let second = page(request("2026-11-20", "2026-11-21", json!("2"), json!("2"), Some(&["purchase"]))).await;
    let rows = second["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(cells(&rows[0], "dimensionValues"), ["20261121", "C", "purchase"]);

    // No filter: refunds too. GA4 loses D and counts A twice.
    sim.drop_from_reports("D");
    sim.double_in_reports("A");
    let all = page(request("2026-11-01", "2026-11-30", json!(100), json!(0), None)).await;
    assert_eq!(all["rowCount"], 6, "{all:#}");
    let a = &all["rows"][0];
    assert_eq!(cells(a, "dimensionValues"), ["20261120", "A", "purchase"]);
    assert_eq!(cells(a, "metricValues"), ["2", "20"]);
    // Nothing in range: no rows, no rowCount.
    let none = page(request("2025-01-01", "2025-01-02", json!(10), json!(0), None)).await;
    assert!(none.get("rows").is_none() && none.get("rowCount").is_none(), "{none:#}");

    // Refusals: a bad date, an unknown dimension, a refused grant.
    let r = client
        .post(&url)
        .bearer_auth(&token)
        .json(&request("20261120", "2026-11-21", json!(1), json!(0), None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let mut odd = body.clone();
    odd["dimensions"] = json!([{"name": "city"}]);
    assert_eq!(client.post(&url).bearer_auth(&token).json(&odd).send().await.unwrap().status(), 400);
    sim.refuse_tokens(Some("invalid_grant"));
    let account = ServiceAccount::from_json(TEST_SERVICE_ACCOUNT_JSON, super::SCOPE).unwrap();
    let assertion = account.assertion(&format!("{}/token", sim.base_url), Utc::now()).unwrap();
    let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
    let r = client.post(format!("{}/token", sim.base_url)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    sim.shutdown().await;
}

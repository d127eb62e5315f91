//! What only a real process shows: SIGKILL mid-stream loses no acknowledged event (G1); a crash
//! between send and record leaves the delivery in doubt, re-sent only where GA4 dedupes (G4);
//! SIGTERM finishes in-flight sends before exiting.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use surety::sim::Fault;

use crate::support::process::{write_config, Process};
use crate::support::{eventually, purchase, urlencode, ADMIN_TOKEN, INGEST_TOKEN};

fn set_in_config(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "config has {from}");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

async fn get_event(http: &reqwest::Client, base: &str, id: &str) -> Option<Value> {
    let r = http.get(format!("{base}/v1/events/{}", urlencode(id))).bearer_auth(ADMIN_TOKEN).send().await.ok()?;
    if r.status() == 200 {
        r.json().await.ok()
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_event() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = write_config(dir.path(), &ga4.base_url, "");
    set_in_config(&config, "sqlite_synchronous = \"normal\"", "sqlite_synchronous = \"full\"");
    let server = Process::start(&config, &base).await;

    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut writers = Vec::new();
    for w in 0..8 {
        let (acked, http, base) = (acked.clone(), http.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                // Half single events, half small batches.
                let body = if i % 2 == 0 {
                    purchase(&format!("w{w}-{i}"), 1)
                } else {
                    json!({"events": (0..5).map(|j| purchase(&format!("w{w}-{i}-{j}"), 1)).collect::<Vec<_>>()})
                };
                let Ok(r) = http.post(format!("{base}/v1/events")).bearer_auth(INGEST_TOKEN).json(&body).send().await
                else {
                    return;
                };
                if !r.status().is_success() {
                    return;
                }
                let Ok(v) = r.json::<Value>().await else { return };
                let mut set = acked.lock().unwrap();
                match v.get("results") {
                    Some(results) => {
                        for r in results.as_array().unwrap() {
                            set.insert(r["event_id"].as_str().unwrap().to_owned());
                        }
                    }
                    None => {
                        set.insert(v["event_id"].as_str().unwrap().to_owned());
                    }
                }
            }
        }));
    }
    eventually("a few hundred events acknowledged", || async { acked.lock().unwrap().len() >= 600 }).await;
    server.kill();
    for w in writers {
        w.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().iter().cloned().collect();

    let server = Process::start(&config, &base).await;
    let mut missing = Vec::new();
    for id in &acked {
        if get_event(&http, &base, id).await.is_none() {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_while_sending_resends_only_what_ga4_dedupes() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = write_config(dir.path(), &ga4.base_url, "");
    set_in_config(&config, "timeout_ms = 2000", "timeout_ms = 60000");
    let server = Process::start(&config, &base).await;
    let http = reqwest::Client::new();

    // GA4 takes the requests but never answers before we die.
    ga4.set_fault(Some(Fault::Delay(Duration::from_secs(30))));
    // The refund is of another order: per subject, a later event waits for the earlier one's
    // delivery, so two deliveries of one order are never on the wire together.
    let mut refund = purchase("k2", 1);
    refund["kind"] = json!("refund_completed");
    // One batch, one transaction: the worker claims both together.
    let batch = json!({"events": [purchase("k1", 1), refund]});
    let r = http.post(format!("{base}/v1/events")).bearer_auth(INGEST_TOKEN).json(&batch).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let both_sending = || async {
        let mut n = 0;
        for id in ["order:k1:order_paid", "order:k2:refund_completed"] {
            if let Some(v) = get_event(&http, &base, id).await {
                n += usize::from(v["deliveries"][0]["state"] == "sending");
            }
        }
        n == 2
    };
    if tokio::time::timeout(Duration::from_secs(15), async {
        while !both_sending().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_err()
    {
        let mut states = Vec::new();
        for id in ["order:k1:order_paid", "order:k2:refund_completed"] {
            states.push(get_event(&http, &base, id).await.map(|v| v["deliveries"].clone()));
        }
        panic!("both deliveries were not on the wire: {states:?}");
    }
    server.kill();
    ga4.set_fault(None);

    let _server = Process::start(&config, &base).await;
    let settled = |id: &'static str, want: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            eventually(want, || async {
                get_event(&http, &base, id).await.is_some_and(|v| {
                    let d = &v["deliveries"][0];
                    format!("{}:{}", d["state"].as_str().unwrap_or(""), d["reason"].as_str().unwrap_or("")) == want
                })
            })
            .await;
        }
    };
    // The purchase carries its transaction id, which GA4 dedupes on: sent again.
    settled("order:k1:order_paid", "delivered:sent").await;
    // A refund is not deduplicated by GA4: left in doubt for a person.
    settled("order:k2:refund_completed", "in_doubt:crashed_while_sending").await;
    let v = get_event(&http, &base, "order:k2:refund_completed").await.unwrap();
    let last = v["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outcome"], "in_doubt");
    let refunds_sent = ga4.events_named("refund").len();
    assert_eq!(refunds_sent, 1, "the refund was not re-sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_sends_before_exiting() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = write_config(dir.path(), &ga4.base_url, "");
    set_in_config(&config, "timeout_ms = 2000", "timeout_ms = 60000");
    let server = Process::start(&config, &base).await;
    let http = reqwest::Client::new();
    ga4.set_fault(Some(Fault::Delay(Duration::from_secs(1))));
    let r =
        http.post(format!("{base}/v1/events")).bearer_auth(INGEST_TOKEN).json(&purchase("t1", 1)).send().await.unwrap();
    assert_eq!(r.status(), 202);
    eventually("the send is in flight", || async {
        get_event(&http, &base, "order:t1:order_paid").await.is_some_and(|v| v["deliveries"][0]["state"] == "sending")
    })
    .await;
    let status = server.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    ga4.set_fault(None);

    let _server = Process::start(&config, &base).await;
    let v = get_event(&http, &base, "order:t1:order_paid").await.unwrap();
    assert_eq!(v["deliveries"][0]["state"], "delivered", "the answer was recorded before exit");
    assert_eq!(ga4.events_named("purchase").len(), 1);
}

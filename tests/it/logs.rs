//! The log lines an SRE relies on, read from a real `surety serve` writing JSON logs: a delivery
//! that ends dead says so with the platform's error, and a destination whose platform keeps
//! failing says its circuit opened, with the error.

use serde_json::Value;
use surety::sim::Fault;

use crate::support::process::{write_config, Process};
use crate::support::{eventually, purchase, INGEST_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_delivery_and_the_circuit_are_logged_with_the_platforms_error() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = write_config(dir.path(), &ga4.base_url, "[log]\nformat = \"json\"\n");
    let log_path = dir.path().join("surety.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Process::start_logging(&config, &base, log).await;
    ga4.set_fault(Some(Fault::Status(500)));
    let http = reqwest::Client::new();
    for order in ["lg1", "lg2"] {
        let r = http.post(format!("{base}/v1/events")).bearer_auth(INGEST_TOKEN).json(&purchase(order, 1)).send().await;
        assert_eq!(r.unwrap().status(), 202);
    }
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    };
    let message = |v: &Value| v["fields"]["message"].as_str().unwrap_or("").to_owned();
    eventually("a line for each dead delivery", || async {
        lines().iter().filter(|l| message(l).starts_with("delivery ended dead")).count() >= 2
    })
    .await;
    let dead = lines().into_iter().find(|l| message(l).starts_with("delivery ended dead")).unwrap();
    assert_eq!(dead["level"], "WARN");
    assert_eq!(dead["fields"]["reason"], "attempts_exhausted", "{dead}");
    assert!(dead["fields"]["error"].as_str().unwrap().contains("500"), "{dead}");
    assert!(dead["fields"]["event_id"].as_str().unwrap().starts_with("order:lg"), "{dead}");
    assert_eq!(dead["fields"]["destination"], "ga4-web", "{dead}");

    // Five failed requests in a row open the circuit; the line says why.
    let open = lines().into_iter().find(|l| message(l).starts_with("circuit open"));
    let open = open.unwrap_or_else(|| panic!("no circuit line in {:#?}", lines()));
    assert!(open.to_string().contains("500"), "{open}");
    assert_eq!(open["fields"]["destination"], "ga4-web", "{open}");
    drop(server);
}

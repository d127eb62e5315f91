//! Kill cycles: `kill -9` again and again while events are being ingested and delivered, on a
//! SQLite ledger (one process, killed and restarted) and on a PostgreSQL ledger shared by three
//! processes (a random one killed and restarted each cycle). Afterwards: no acknowledged event
//! lost (G1), every event with its delivery, nothing counted twice by the platform where it does
//! not dedupe (G3/G4), and every `in_doubt` delivery accounted for: its event may not be re-sent
//! (GA4 does not dedupe it) and reached GA4 at most once.
//!
//! `SURETY_KILL_CYCLES` sets the number of cycles (default 3, the suite's short form);
//! `scripts/kill_cycles.sh` runs the long form (20) on both ledgers and prints the figures.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use surety::core::delivery::DeliveryState;
use surety::platforms::ga4::sim::Ga4Sim;
use surety::sim::Fault;
use surety::store::{Counts, Store};

use crate::support::process::{write_config, Process};
use crate::support::{eventually, ledger_counts, postgres_ledger, purchase, urlencode, ADMIN_TOKEN, INGEST_TOKEN};

fn cycles() -> usize {
    std::env::var("SURETY_KILL_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// The `n`th event a writer sends: purchases (GA4 dedupes a re-sent purchase on its transaction
/// id, so a crash mid-send re-sends it) and qualified leads (GA4 does not dedupe them, so a crash
/// mid-send leaves them `in_doubt`). `probe` carries the event id to the platform.
fn event(writer: usize, n: usize) -> (String, Value) {
    let order = format!("kc{writer}-{n}");
    let mut e = purchase(&order, 1);
    let id = if n.is_multiple_of(2) {
        format!("order:{order}:order_paid")
    } else {
        e["kind"] = json!("lead_qualified");
        e["subject"] = json!({"type": "lead", "id": order});
        for k in ["value", "currency", "items"] {
            e.as_object_mut().unwrap().remove(k);
        }
        format!("lead:{order}:lead_qualified")
    };
    e["attributes"] = json!({"probe": id});
    (id, e)
}

struct Cluster {
    configs: Vec<(std::path::PathBuf, String)>,
    processes: Vec<Option<Process>>,
    _dirs: Vec<tempfile::TempDir>,
    postgres: Option<String>,
    sqlite: Option<std::path::PathBuf>,
}

impl Cluster {
    async fn start(ga4: &Ga4Sim, n: usize, postgres: Option<String>) -> Self {
        let (mut configs, mut dirs, mut processes) = (Vec::new(), Vec::new(), Vec::new());
        let mut sqlite = None;
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let (path, base) = write_config(dir.path(), &ga4.base_url, "");
            let db = dir.path().join("surety.db");
            let mut text = std::fs::read_to_string(&path).unwrap();
            text = text.replace("sqlite_synchronous = \"normal\"", "sqlite_synchronous = \"full\"");
            match &postgres {
                // Short leases: a dead process's claims go back to the live ones quickly.
                Some(url) => {
                    text = text
                        .replace(&format!("url = \"sqlite://{}\"", db.display()), &format!("url = \"{url}\""))
                        .replace("lease_secs = 30", "lease_secs = 3");
                }
                None => sqlite = Some(db),
            }
            std::fs::write(&path, text).unwrap();
            processes.push(Some(Process::start(&path, &base).await));
            configs.push((path, base));
            dirs.push(dir);
        }
        Self { configs, processes, _dirs: dirs, postgres, sqlite }
    }

    fn bases(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.1.clone()).collect()
    }

    async fn counts(&self) -> Counts {
        match (&self.postgres, &self.sqlite) {
            (Some(url), _) => surety::store::postgres::PgStore::connect(url)
                .await
                .expect("connect to the PostgreSQL ledger")
                .counts()
                .await
                .expect("counts"),
            (None, Some(db)) => ledger_counts(db).await,
            (None, None) => unreachable!("a cluster has a ledger"),
        }
    }
}

/// What one run measured.
#[derive(Debug, Default)]
struct Figures {
    cycles: usize,
    acked: usize,
    events: u64,
    lost: usize,
    without_delivery: usize,
    delivered: usize,
    in_doubt: usize,
    in_doubt_arrived: usize,
    other_states: Vec<String>,
    doubles: Vec<(String, usize)>,
    purchases_resent: usize,
}

async fn get_event(http: &reqwest::Client, bases: &[String], id: &str) -> Option<Value> {
    for base in bases {
        let url = format!("{base}/v1/events/{}", urlencode(id));
        if let Ok(r) = http.get(url).bearer_auth(ADMIN_TOKEN).send().await {
            if r.status() == 200 {
                return r.json().await.ok();
            }
            if r.status() == 404 {
                return None;
            }
        }
    }
    None
}

/// Posts `body` to a random live process until one acknowledges it (as a client retries);
/// returns false when told to stop first.
async fn post_until_acked(http: &reqwest::Client, bases: &[String], body: &Value, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let base = &bases[rand::thread_rng().gen_range(0..bases.len())];
        let sent = http.post(format!("{base}/v1/events")).bearer_auth(INGEST_TOKEN).json(body).send().await;
        if let Ok(r) = sent {
            if r.status().is_success() {
                return true;
            }
            assert!(r.status().is_server_error(), "a valid event was refused: {}", r.status());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(processes: usize, postgres: Option<String>) -> Figures {
    let cycles = cycles();
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    // Each answer takes a moment, so every kill finds sends on the wire.
    ga4.set_fault(Some(Fault::Delay(Duration::from_millis(40))));
    let mut cluster = Cluster::start(&ga4, processes, postgres).await;
    let bases = cluster.bases();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..6 {
        let (acked, stop, http, bases) = (acked.clone(), stop.clone(), http.clone(), bases.clone());
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let (id, body) = event(w, n);
                if !post_until_acked(&http, &bases, &body, &stop).await {
                    return;
                }
                acked.lock().unwrap().insert(id);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }));
    }

    for cycle in 0..cycles {
        let before = acked.lock().unwrap().len();
        eventually("events acknowledged since the last kill", || async { acked.lock().unwrap().len() >= before + 60 })
            .await;
        // Somewhere in the middle of ingest and delivery, not at a fixed phase.
        let pause = rand::thread_rng().gen_range(0..200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let victim = rand::thread_rng().gen_range(0..processes);
        let so_far = acked.lock().unwrap().len();
        cluster.processes[victim].take().expect("running").kill();
        eprintln!("kill cycle {}: killed process {victim} with {so_far} events acknowledged", cycle + 1);
        let (config, base) = cluster.configs[victim].clone();
        cluster.processes[victim] = Some(Process::start(&config, &base).await);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    ga4.set_fault(None);

    // Everything settles: nothing left pending, claimed or sending anywhere in the ledger.
    eventually("every delivery settled", || async {
        cluster.counts().await.deliveries.iter().all(|(_, state, _, _)| {
            !matches!(state, DeliveryState::Pending | DeliveryState::Claimed | DeliveryState::Sending)
        })
    })
    .await;

    let acked: Vec<String> = acked.lock().unwrap().iter().cloned().collect();
    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for e in ga4.received_events() {
        if let Some(probe) = e.params.get("probe").and_then(Value::as_str) {
            *arrivals.entry(probe.to_owned()).or_default() += 1;
        }
    }
    let counts = cluster.counts().await;
    let mut f = Figures { cycles, acked: acked.len(), events: counts.events, ..Figures::default() };
    for id in &acked {
        let Some(v) = get_event(&http, &bases, id).await else {
            f.lost += 1;
            continue;
        };
        let deliveries = v["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.len() != 1 {
            f.without_delivery += 1;
            continue;
        }
        let d = &deliveries[0];
        let arrived = arrivals.get(id).copied().unwrap_or(0);
        match (d["state"].as_str().unwrap_or(""), d["reason"].as_str().unwrap_or("")) {
            ("delivered", _) if arrived == 0 => f.other_states.push(format!("{id}: delivered, never arrived")),
            ("delivered", _) => f.delivered += 1,
            ("in_doubt", "crashed_while_sending") if id.starts_with("lead:") => {
                f.in_doubt += 1;
                f.in_doubt_arrived += usize::from(arrived == 1);
            }
            (state, reason) => f.other_states.push(format!("{id}: {state}:{reason}")),
        }
        if id.starts_with("lead:") && arrived > 1 {
            f.doubles.push((id.clone(), arrived));
        }
        if id.starts_with("order:") && arrived > 1 {
            f.purchases_resent += 1;
        }
    }
    // Events committed but never acknowledged (the process died before answering) count too.
    let deliveries: u64 = counts.deliveries.iter().map(|d| d.3).sum();
    f.without_delivery += usize::try_from(counts.events.saturating_sub(deliveries)).unwrap_or(usize::MAX);
    for (probe, n) in &arrivals {
        if probe.starts_with("lead:") && *n > 1 && !f.doubles.iter().any(|(id, _)| id == probe) {
            f.doubles.push((probe.clone(), *n));
        }
    }
    eprintln!("kill cycles ({} process(es)): {f:?}", processes);
    f
}

fn assert_held(f: &Figures) {
    assert!(f.acked > 0 && f.cycles > 0, "the run did something: {f:?}");
    assert!(f.events >= f.acked as u64, "the ledger holds at least what was acknowledged: {f:?}");
    assert_eq!(f.lost, 0, "acknowledged events lost: {f:?}");
    assert_eq!(f.without_delivery, 0, "events without their delivery: {f:?}");
    assert!(f.doubles.is_empty(), "counted twice by a platform that does not dedupe: {f:?}");
    assert!(f.other_states.is_empty(), "deliveries neither delivered nor accounted in doubt: {f:?}");
    assert_eq!(f.delivered + f.in_doubt, f.acked, "every acknowledged event accounted for: {f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_cycles_on_sqlite_lose_nothing_and_count_nothing_twice() {
    let f = run(1, None).await;
    assert_held(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_cycles_on_a_three_process_postgres_ledger_lose_nothing_and_count_nothing_twice() {
    let url = postgres_ledger().await;
    let f = run(3, Some(url)).await;
    assert_held(&f);
}

//! The HTTP edge under attack and fault: slow and idle clients are cut off by the server's
//! deadlines while ingest keeps answering; every error is problem+json; readiness follows whether
//! the ledger can commit (a full disk) and comes back by itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::{self, TestServer, ADMIN_TOKEN, INGEST_TOKEN};

/// A server with `server` TOML added to its `[server]` table and its ledger at `db`.
struct Edge {
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    ga4: surety::platforms::ga4::sim::Ga4Sim,
}

impl Edge {
    async fn start(db: &Path, server: &str) -> Self {
        support::init_env();
        let ga4 = surety::platforms::ga4::sim::start().await.expect("start GA4 simulator");
        let text = support::config_toml(db, &ga4.base_url, "")
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:0\"\n{server}"));
        let config = surety::config::Config::from_toml(&text).expect("valid test config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(surety::run(config, listener, async move {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            ga4,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        self.http.post(url).bearer_auth(INGEST_TOKEN).json(body).send().await.expect("request")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).send().await.expect("request")
    }

    /// Stops gracefully; the server must shut down cleanly.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the server stops within 30 s")
                .expect("server task")
                .expect("server ran cleanly");
        }
    }
}

/// Reads until the server closes the connection (EOF or reset); `None` if it is still open
/// after `bound`.
async fn closed_by_server(stream: &mut TcpStream, bound: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok().map(|()| seen)
}

/// Lets this process open `want` descriptors, if the hard limit allows.
fn raise_fd_limit(want: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= want {
        return current;
    }
    let raised = limit.maximum.map_or(want, |m| m.min(want));
    limit.current = Some(raised);
    if setrlimit(Resource::Nofile, limit).is_ok() {
        raised
    } else {
        current
    }
}

/// A client trickling one header byte at a time: it never finishes its headers. It reports on
/// `held` once its connection is open and the first bytes are sent, then trickles until the
/// server closes the connection; returns whether that happened within `bound`, and records in
/// `closed` that it did.
async fn slow_header_client(
    addr: std::net::SocketAddr,
    bound: Duration,
    held: tokio::sync::mpsc::Sender<()>,
    closed: Arc<AtomicUsize>,
) -> bool {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connect failed: {e}");
            return false;
        }
    };
    let sent = stream.write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX: ").await.is_ok();
    let _ = held.send(()).await;
    if !sent {
        closed.fetch_add(1, Ordering::SeqCst);
        return true;
    }
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if stream.write_all(b"a").await.is_err() {
                return;
            }
            let mut buf = [0u8; 256];
            // A closed connection shows as EOF (or a reset) on read.
            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
                return;
            }
        }
    };
    let cut = tokio::time::timeout(bound, trickle).await.is_ok();
    if cut {
        closed.fetch_add(1, Ordering::SeqCst);
    }
    cut
}

/// Issue 9: 1,000 connections trickle their headers, all open at once, while ordinary requests
/// are answered; then the header deadline closes every one of them. Latencies are printed (with
/// and without the slow clients) as evidence, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_ingest_keeps_answering() {
    const SLOW: usize = 1000;
    let room = raise_fd_limit(4 * SLOW as u64 + 1024);
    assert!(room >= 2 * SLOW as u64 + 256, "the test needs {} descriptors; ulimit -n allows {room}", 2 * SLOW + 256);
    let dir = tempfile::tempdir().expect("temp dir");
    // Long enough that all 1,000 are surely still held while the ordinary requests are made.
    let s = Edge::start(&dir.path().join("surety.db"), "header_timeout_ms = 30000").await;

    let mut quiet = Vec::new();
    for i in 0..20 {
        let started = std::time::Instant::now();
        let r = s.post("/v1/events", &support::purchase(&format!("edge-quiet-{i}"), 1)).await;
        assert_eq!(r.status(), 202);
        quiet.push(started.elapsed());
    }

    let (held_tx, mut held_rx) = tokio::sync::mpsc::channel(SLOW);
    let closed = Arc::new(AtomicUsize::new(0));
    let slow: Vec<_> = (0..SLOW)
        .map(|_| tokio::spawn(slow_header_client(s.addr, Duration::from_secs(120), held_tx.clone(), closed.clone())))
        .collect();
    drop(held_tx);
    let mut connected = 0;
    while connected < SLOW {
        match tokio::time::timeout(Duration::from_secs(60), held_rx.recv()).await {
            Ok(Some(())) => connected += 1,
            _ => break,
        }
    }
    assert_eq!(connected, SLOW, "all slow clients connected and started their headers");

    // All 1,000 are open at once now; ordinary requests are answered meanwhile.
    let mut loaded = Vec::new();
    for i in 0..20 {
        let started = std::time::Instant::now();
        let r = s.post("/v1/events", &support::purchase(&format!("edge-{i}"), 1)).await;
        assert_eq!(r.status(), 202, "ingest answers while {SLOW} slow clients are connected");
        loaded.push(started.elapsed());
    }
    let r = s.get("/readyz").await;
    assert_eq!(r.status(), 200, "ready while the slow clients are held");
    assert_eq!(closed.load(Ordering::SeqCst), 0, "the slow connections were all still open while ingest answered");
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() - 1])
    };
    let ((q50, qmax), (l50, lmax)) = (median(&mut quiet), median(&mut loaded));
    eprintln!("ingest latency, median/max: {q50:?}/{qmax:?} alone, {l50:?}/{lmax:?} with {SLOW} slow connections open");

    let mut cut = 0;
    for h in slow {
        cut += usize::from(h.await.expect("slow client"));
    }
    assert_eq!(cut, SLOW, "every slow-header connection is closed by the server");
    let r = s.post("/v1/events", &support::purchase("edge-after", 1)).await;
    assert_eq!(r.status(), 202);
    s.stop().await;
}

/// Sends a whole `GET /healthz` on `stream` and reads the status line, if one comes within `bound`.
async fn healthz_on(stream: &mut TcpStream, bound: Duration) -> Option<String> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.ok()?;
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        while !seen.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok()?;
    let text = String::from_utf8_lossy(&seen).into_owned();
    text.lines().next().filter(|l| !l.is_empty()).map(str::to_owned)
}

/// `server.max_connections`: with the cap reached, a further connection is not served (it waits
/// in the listen backlog, nothing is read from it), and it is served as soon as a slot frees;
/// then service is back to normal.
#[tokio::test]
async fn the_connection_cap_holds_extra_connections_until_a_slot_frees() {
    const CAP: usize = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Edge::start(
        &dir.path().join("surety.db"),
        &format!("max_connections = {CAP}\nheader_timeout_ms = 60000\nidle_timeout_ms = 60000"),
    )
    .await;
    // The cap's slots, each held by a connection that never finishes its headers.
    let mut holders = Vec::new();
    for _ in 0..CAP {
        let mut h = TcpStream::connect(s.addr).await.expect("connect");
        h.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
        holders.push(h);
    }
    // One more: the kernel completes its handshake, but the server does not take it on.
    let mut extra = TcpStream::connect(s.addr).await.expect("connect");
    assert_eq!(healthz_on(&mut extra, Duration::from_secs(2)).await, None, "no answer while the cap is reached");

    // A slot frees: the waiting connection is taken and answered.
    drop(holders.pop());
    let mut line = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        while !line.windows(2).any(|w| w == b"\r\n") {
            match extra.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => line.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("answered once a slot is free");
    assert!(String::from_utf8_lossy(&line).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&line));

    // The other holders go too: service is normal again, for many connections in a row.
    drop(holders);
    for i in 0..3 * CAP {
        let mut c = TcpStream::connect(s.addr).await.expect("connect");
        let status = healthz_on(&mut c, Duration::from_secs(20)).await;
        assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"), "connection {i} after the holders left");
    }
    let r = s.post("/v1/events", &support::purchase("cap-after", 1)).await;
    assert_eq!(r.status(), 202);
    s.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Edge::start(&dir.path().join("surety.db"), "idle_timeout_ms = 300").await;
    let mut stream = TcpStream::connect(s.addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"ok") {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    // Kept alive after the answer, then closed once idle.
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(15)).await.is_some(),
        "an idle keep-alive connection stays open"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Edge::start(&dir.path().join("surety.db"), "body_timeout_ms = 500").await;
    let mut stream = TcpStream::connect(s.addr).await.expect("connect");
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let (mut rd, mut wr) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), rd.read_to_end(&mut answer)).await;
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok() || !answer.is_empty(), "a trickling body is never cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/problem+json"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    s.stop().await;
}

async fn problem(r: reqwest::Response, status: u16, code: &str) -> reqwest::header::HeaderMap {
    assert_eq!(r.status(), status, "{code}");
    let headers = r.headers().clone();
    assert_eq!(headers[reqwest::header::CONTENT_TYPE], "application/problem+json", "{code}");
    let body: Value = r.json().await.expect("problem+json");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    headers
}

#[tokio::test]
async fn every_error_is_problem_json_and_auth_comes_first() {
    let s = TestServer::start().await;
    let http = &s.http;
    // Auth before the path is parsed: no token, undecodable id → 401, with a Bearer challenge.
    let r = http.get(s.url("/v1/events/%FF")).send().await.expect("request");
    let h = problem(r, 401, "unauthorized").await;
    assert!(h[reqwest::header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"), "{h:?}");
    // With a token the bad path is a 400 problem.
    let r = http.get(s.url("/v1/events/%FF")).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    problem(r, 400, "bad_request").await;
    // An unknown method on a known path: 401 without a token (auth first), else 405 with Allow.
    let r = http.put(s.url("/v1/events")).send().await.expect("request");
    problem(r, 401, "unauthorized").await;
    let r = http.put(s.url("/v1/events")).bearer_auth(INGEST_TOKEN).send().await.expect("request");
    let h = problem(r, 405, "method_not_allowed").await;
    assert!(h[reqwest::header::ALLOW].to_str().unwrap().contains("POST"), "{h:?}");
    // No such path.
    let r = http.get(s.url("/v1/nothing")).send().await.expect("request");
    problem(r, 404, "not_found").await;
    // A query axum cannot parse.
    let r = http.get(s.url("/v1/deliveries?limit=lots")).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    assert_eq!(r.headers()[reqwest::header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(r.status(), 400);
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let r = http
        .post(s.url("/v1/events"))
        .header("Authorization", format!("BEARER {INGEST_TOKEN}"))
        .json(&support::purchase("upper-scheme", 1))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 202);
    // A wrong token: 401 with the challenge; the dashboard keeps its Basic one.
    let r = http.get(s.url("/v1/receipts")).bearer_auth("nope").send().await.expect("request");
    let h = problem(r, 401, "unauthorized").await;
    assert!(h.contains_key(reqwest::header::WWW_AUTHENTICATE));
    let r = http.get(s.url("/")).send().await.expect("request");
    assert_eq!(r.status(), 401);
    assert!(r.headers()[reqwest::header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Basic"));
}

/// A small tmpfs mounted at a temp folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then_some(Self { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).output();
    }
}

/// Writes until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x5a_u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let small = [0x5a_u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

fn batch(prefix: &str, n: usize) -> Value {
    json!({"events": (0..n).map(|i| support::purchase(&format!("{prefix}-{i}"), 1)).collect::<Vec<_>>()})
}

#[tokio::test]
async fn a_full_disk_makes_the_ledger_unready_and_it_recovers_without_restart() {
    let Some(fs) = Tmpfs::mount("16m") else {
        eprintln!("SKIPPED a_full_disk_…: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        return;
    };
    let db = fs.path().join("surety.db");
    let s = Edge::start(&db, "").await;
    assert_eq!(s.post("/v1/events", &support::purchase("before-full", 1)).await.status(), 202);
    assert_eq!(s.get("/readyz").await.status(), 200);

    let filler = fs.path().join("filler");
    fill(&filler);
    let r = s.post("/v1/events", &batch("while-full", 50)).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "storage_unavailable", "{body}");
    let r = s.get("/readyz").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()[reqwest::header::CONTENT_TYPE], "application/problem+json");
    let ready: Value = r.json().await.expect("json");
    assert_eq!(ready["code"], "not_ready", "{ready}");

    std::fs::remove_file(&filler).expect("free the space");
    let mut last = 0;
    for _ in 0..200 {
        last = s.get("/readyz").await.status().as_u16();
        if last == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, 200, "ready again once the disk has room");
    // Nothing of the refused batch was written: the same batch is new now.
    let r = s.post("/v1/events", &batch("while-full", 50)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    let statuses: Vec<&str> =
        body["results"].as_array().map(|a| a.iter().filter_map(|e| e["status"].as_str()).collect()).unwrap_or_default();
    assert_eq!(statuses.len(), 50, "{body}");
    assert!(statuses.iter().all(|s| *s == "accepted"), "{statuses:?}");
    s.stop().await;
    let counts = support::ledger_counts(&db).await;
    assert_eq!(counts.events, 51, "one before, the batch once: {counts:?}");
}

#[tokio::test]
async fn an_outcome_that_cannot_be_recorded_is_kept_and_recorded_later_not_resent() {
    let Some(fs) = Tmpfs::mount("16m") else {
        eprintln!("SKIPPED an_outcome_…: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        return;
    };
    let db = fs.path().join("surety.db");
    let s = Edge::start(&db, "").await;
    // GA4 takes the purchase at once and answers after a while: the disk fills in between.
    s.ga4.fail_next(1, surety::sim::Fault::Delay(Duration::from_millis(1500)));
    let r = s.post("/v1/events", &support::purchase("unrecorded", 1)).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.expect("json")["event_id"].as_str().expect("event_id").to_owned();
    support::eventually("GA4 received the purchase", || async { s.ga4.request_count() == 1 }).await;
    let filler = fs.path().join("filler");
    fill(&filler);
    // The answer comes while nothing can be committed; the worker keeps the outcome meanwhile
    // (a real wait: the disk is what is being waited on).
    tokio::time::sleep(Duration::from_secs(4)).await;
    std::fs::remove_file(&filler).expect("free the space");
    let url = format!("{}/v1/events/{}", s.base, support::urlencode(&id));
    let mut states = Vec::new();
    for _ in 0..200 {
        let v: Value = s.http.get(&url).bearer_auth(ADMIN_TOKEN).send().await.expect("get").json().await.expect("json");
        states = v["deliveries"].as_array().expect("deliveries").iter().map(|d| d["state"].clone()).collect();
        if states == [json!("delivered")] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(states, [json!("delivered")], "the outcome is recorded once the ledger can commit");
    assert_eq!(s.ga4.request_count(), 1, "the purchase was not sent again");
    s.stop().await;
}

//! Starting the real Surety (in-process or as the `surety` binary) and talking to it.

#![allow(dead_code)]

pub mod process;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use surety::config::Config;
use surety::platforms::ga4::sim::Ga4Sim;
use surety::store::sqlite::{SqliteStore, Synchronous};
use surety::store::{Counts, Store};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const INGEST_TOKEN: &str = "test-ingest-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Set once for the whole test binary; every test's config reads the same values.
pub const GA4_SECRET_ENV: &str = "SURETY_IT_GA4_SECRET";

/// The sources' secrets; Shopify's is the one tests/vectors/shopify was signed with.
pub const STRIPE_SECRET: &str = "whsec_surety_it_secret";
pub const SHOPIFY_SECRET: &str = "shpss_surety_test_0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a";
pub const SEGMENT_WRITE_KEY: &str = "wk_surety_it";
/// The three sources configured with the secrets above (extra configuration for `start_with`).
pub const SOURCES: &str = r#"
[sources.stripe]
signing_secret = "env:SURETY_IT_STRIPE_SECRET"

[sources.shopify]
signing_secret = "env:SURETY_IT_SHOPIFY_SECRET"

[sources.segment]
write_keys = ["env:SURETY_IT_SEGMENT_KEY"]
"#;

pub fn init_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Set before any thread reads the environment (tests start here).
        std::env::set_var("SURETY_IT_INGEST_TOKEN", INGEST_TOKEN);
        std::env::set_var("SURETY_IT_ADMIN_TOKEN", ADMIN_TOKEN);
        std::env::set_var(GA4_SECRET_ENV, "sim-secret");
        std::env::set_var("SURETY_IT_STRIPE_SECRET", STRIPE_SECRET);
        std::env::set_var("SURETY_IT_SHOPIFY_SECRET", SHOPIFY_SECRET);
        std::env::set_var("SURETY_IT_SEGMENT_KEY", SEGMENT_WRITE_KEY);
    });
}

/// Test settings: fast retries and polling, auth on, one GA4 destination at `ga4_base`.
pub fn config_toml(db: &std::path::Path, ga4_base: &str, extra: &str) -> String {
    config_toml_with(db, ga4_base, "", extra)
}

/// As [`config_toml`], with `dest_extra` added to the GA4 destination's table.
pub fn config_toml_with(db: &std::path::Path, ga4_base: &str, dest_extra: &str, extra: &str) -> String {
    format!(
        r#"
[storage]
url = "sqlite://{db}"
sqlite_synchronous = "normal"

[server]
listen = "127.0.0.1:0"

[auth]
ingest_tokens = ["env:SURETY_IT_INGEST_TOKEN"]
admin_tokens = ["env:SURETY_IT_ADMIN_TOKEN"]

[retry]
max_attempts = 4
max_age_secs = 3600
base_delay_ms = 20
max_delay_ms = 200

[worker]
lease_secs = 30
claim_batch = 200
poll_interval_ms = 50
breaker_threshold = 5
breaker_cooldown_ms = 100
breaker_max_cooldown_ms = 400

[[destinations]]
name = "ga4-web"
type = "ga4"
measurement_id = "G-TEST123"
api_secret = "env:{GA4_SECRET_ENV}"
base_url = "{ga4_base}"
timeout_ms = 2000
{dest_extra}
{wait}

[catalog.order_paid]
ga4-web = {{ event = "purchase" }}

[catalog.refund_completed]
ga4-web = {{ event = "refund" }}

[catalog.lead_qualified]
ga4-web = {{ event = "qualify_lead" }}

[catalog.checkout_seen]
ga4-web = {{ event = "purchase", browser_tracked = true }}
{extra}
"#,
        db = db.display(),
        // Tests see `skipped:no_identity` at once unless they set a wait for identity.
        wait = if dest_extra.contains("identity_wait_secs") { "" } else { "identity_wait_secs = 0" },
    )
}

/// A Surety running in this process, with its own GA4 simulator and temp folder.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub ga4: Ga4Sim,
    pub dir: TempDir,
    pub db: PathBuf,
    /// The PostgreSQL ledger's URL, when the server runs on one (else SQLite at `db`).
    pub postgres: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// `extra` is TOML appended to the test configuration (more catalog entries, …).
    pub async fn start_with(extra: &str) -> Self {
        let ga4 = surety::platforms::ga4::sim::start().await.expect("start GA4 simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, ga4, extra).await
    }

    pub async fn start_in(dir: TempDir, ga4: Ga4Sim, extra: &str) -> Self {
        Self::start_custom(dir, ga4, "", extra).await
    }

    /// `dest_extra` is TOML added to the GA4 destination's table.
    pub async fn start_custom(dir: TempDir, ga4: Ga4Sim, dest_extra: &str, extra: &str) -> Self {
        init_env();
        let db = dir.path().join("surety.db");
        let text = config_toml_with(&db, &ga4.base_url, dest_extra, extra);
        // SURETY_IT_LEDGER=postgres runs the in-process tests on a fresh PostgreSQL ledger each
        // (tests that open the SQLite file themselves still expect SQLite).
        if std::env::var("SURETY_IT_LEDGER").is_ok_and(|v| v == "postgres") {
            let url = postgres_ledger().await;
            let text = text.replace(&format!("url = \"sqlite://{}\"", db.display()), &format!("url = \"{url}\""));
            return Self::start_config(dir, ga4, &text, Some(url)).await;
        }
        Self::start_config(dir, ga4, &text, None).await
    }

    /// A server on the SQLite ledger already in `dir` (`surety.db`), whatever `SURETY_IT_LEDGER`
    /// says: for tests that prepare that ledger through the store before the server starts.
    pub async fn start_sqlite_in(dir: TempDir, ga4: Ga4Sim, extra: &str) -> Self {
        init_env();
        let text = config_toml(&dir.path().join("surety.db"), &ga4.base_url, extra);
        Self::start_config(dir, ga4, &text, None).await
    }

    /// As [`TestServer::start_with`] (PostgreSQL too under `SURETY_IT_LEDGER=postgres`), with `tune` editing the configuration's text
    /// (keys in the `[auth]` table, …).
    pub async fn start_tuned(extra: &str, tune: impl Fn(String) -> String) -> Self {
        init_env();
        let ga4 = surety::platforms::ga4::sim::start().await.expect("start GA4 simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("surety.db");
        let text = tune(config_toml(&db, &ga4.base_url, extra));
        if std::env::var("SURETY_IT_LEDGER").is_ok_and(|v| v == "postgres") {
            let url = postgres_ledger().await;
            let text = text.replace(&format!("url = \"sqlite://{}\"", db.display()), &format!("url = \"{url}\""));
            return Self::start_config(dir, ga4, &text, Some(url)).await;
        }
        Self::start_config(dir, ga4, &text, None).await
    }

    /// A server on the PostgreSQL ledger at `url` (see [`postgres_ledger`]), with `ga4` as its
    /// platform; `tune` edits the test configuration's text (shorter leases, …).
    pub async fn start_postgres(ga4: Ga4Sim, url: &str, extra: &str, tune: impl Fn(String) -> String) -> Self {
        init_env();
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("surety.db");
        let text = config_toml(&db, &ga4.base_url, extra)
            .replace(&format!("url = \"sqlite://{}\"", db.display()), &format!("url = \"{url}\""));
        Self::start_config(dir, ga4, &tune(text), Some(url.to_owned())).await
    }

    /// A server on the ledger a test prepared (see [`suite_ledger`]): PostgreSQL at `postgres`,
    /// else the SQLite file in `dir`.
    pub async fn start_on(dir: TempDir, ga4: Ga4Sim, postgres: Option<String>) -> Self {
        init_env();
        let db = dir.path().join("surety.db");
        let text = on_ledger(config_toml(&db, &ga4.base_url, ""), &db, postgres.as_deref());
        Self::start_config(dir, ga4, &text, postgres).await
    }

    async fn start_config(dir: TempDir, ga4: Ga4Sim, text: &str, postgres: Option<String>) -> Self {
        let db = dir.path().join("surety.db");
        let config = Config::from_toml(text).expect("valid test config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(surety::run(config, listener, async move {
            let _ = stopped.await;
        }));
        Self { base, http: reqwest::Client::new(), ga4, dir, db, postgres, stop: Some(stop), task: Some(task) }
    }

    /// Stops the server gracefully and waits for it; the folder and simulator stay.
    pub async fn stop(mut self) -> (TempDir, Ga4Sim) {
        self.shutdown().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        (dir, self.ga4.clone())
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(INGEST_TOKEN).json(body).send().await.expect("request")
    }

    pub async fn post_admin(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(ADMIN_TOKEN).json(body).send().await.expect("request")
    }

    pub async fn get_admin(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(ADMIN_TOKEN).send().await.expect("request")
    }

    /// `GET /v1/events/{id}` as JSON (panics unless 200).
    pub async fn event(&self, id: &str) -> Value {
        let r = self.get_admin(&format!("/v1/events/{}", urlencode(id))).await;
        assert_eq!(r.status(), 200, "GET event {id}");
        r.json().await.expect("json")
    }

    /// The states of an event's deliveries, as `destination:state[:reason]`.
    pub async fn delivery_states(&self, id: &str) -> Vec<String> {
        let v = self.event(id).await;
        v["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .map(|d| {
                let mut s =
                    format!("{}:{}", d["destination"].as_str().unwrap_or(""), d["state"].as_str().unwrap_or(""));
                if let Some(r) = d["reason"].as_str() {
                    s.push(':');
                    s.push_str(r);
                }
                s
            })
            .collect()
    }

    /// Polls until every delivery of the event has ended, then returns the states.
    pub async fn settled(&self, id: &str) -> Vec<String> {
        let mut last = Vec::new();
        for _ in 0..400 {
            last = self.delivery_states(id).await;
            if last.iter().all(|s| !(s.contains(":pending") || s.contains(":claimed") || s.contains(":sending"))) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("deliveries of {id} did not settle: {last:?}");
    }

    /// The ledger's counts, read through a second connection to the same ledger.
    pub async fn counts(&self) -> Counts {
        self.store().await.counts().await.expect("counts")
    }

    /// A second connection to the ledger this server runs on (PostgreSQL under
    /// `SURETY_IT_LEDGER=postgres`), for tests that act on the ledger as an operator's command would.
    pub async fn store(&self) -> Arc<dyn Store> {
        open_ledger(&self.db, self.postgres.as_deref()).await
    }

    /// The test configuration on this server's ledger, for the `surety` binary's commands.
    pub fn cli_config(&self, extra: &str) -> String {
        on_ledger(config_toml(&self.db, &self.ga4.base_url, extra), &self.db, self.postgres.as_deref())
    }
}

/// Where the suite keeps a ledger that a test prepares before a server starts: a fresh PostgreSQL
/// database under `SURETY_IT_LEDGER=postgres` (its URL), else the SQLite file (`None`).
pub async fn suite_ledger() -> Option<String> {
    if std::env::var("SURETY_IT_LEDGER").is_ok_and(|v| v == "postgres") {
        Some(postgres_ledger().await)
    } else {
        None
    }
}

/// A configuration text moved from the SQLite file `db` to the PostgreSQL ledger at `postgres`.
pub fn on_ledger(text: String, db: &std::path::Path, postgres: Option<&str>) -> String {
    match postgres {
        Some(url) => text.replace(&format!("url = \"sqlite://{}\"", db.display()), &format!("url = \"{url}\"")),
        None => text,
    }
}

/// Opens the ledger at `postgres`, else the SQLite file `db`.
pub async fn open_ledger(db: &std::path::Path, postgres: Option<&str>) -> Arc<dyn Store> {
    match postgres {
        Some(url) => {
            Arc::new(surety::store::postgres::PgStore::connect(url).await.expect("connect to the PostgreSQL ledger"))
        }
        None => Arc::new(SqliteStore::open(db, Synchronous::Normal).expect("open ledger")),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn ledger_counts(db: &std::path::Path) -> Counts {
    let store = Arc::new(SqliteStore::open(db, Synchronous::Normal).expect("open ledger"));
    store.counts().await.expect("counts")
}

/// A fresh, empty PostgreSQL database for one test on the local server (`SURETY_TEST_PG`, default
/// `postgres://root@127.0.0.1:5432/test`, trust auth; `.ci/run` starts the server): returns its URL.
pub async fn postgres_ledger() -> String {
    let admin = std::env::var("SURETY_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
    surety::store::postgres::create_database(&admin, "surety_it").await.unwrap_or_else(|e| {
        panic!("the PostgreSQL tests need the local server at {admin} (set SURETY_TEST_PG, or run scripts/test.sh, which starts a throwaway one): {e}")
    })
}

/// Waits (bounded) until `check` holds; panics with `what` if it never does.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// A canonical event `hours_ago` old, for an order with a known browser client.
pub fn purchase(order: &str, hours_ago: i64) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::hours(hours_ago);
    serde_json::json!({
        "kind": "order_paid",
        "occurred_at": at.to_rfc3339(),
        "subject": {"type": "order", "id": order},
        "value": 59.9, "currency": "EUR",
        "items": [{"id": "SKU-1", "name": "Linen shirt", "price": 59.9, "quantity": 1}],
        "identity": {"client_id": format!("555.{order}"), "session_id": "1700000000", "email": "Jane.Doe@example.com"},
        "consent": {"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "denied"}
    })
}

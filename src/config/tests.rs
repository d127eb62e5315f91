use std::io::Write;
use std::sync::Mutex;

use super::*;
use crate::core::plan::{ConsentPurpose, OnPersonalDataDenied};
use crate::platforms::ga4::config::Ga4Config;

/// Serialises the tests that call `Config::load`, which reads the process's `SURETY_…` variables:
/// while one of them has such a variable set, no other may load.
static PROCESS_ENV: Mutex<()> = Mutex::new(());

/// Removes an environment variable when dropped, even if the test panics.
struct EnvGuard(&'static str);

impl EnvGuard {
    fn set(name: &'static str, value: &str) -> Self {
        std::env::set_var(name, value);
        Self(name)
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        std::env::remove_var(self.0);
    }
}

/// A GA4 destination whose secret lives in `env_name` (names never start with `SURETY_`, so
/// `Config::load` in a parallel test cannot see them).
fn ga4(name: &str, env_name: &str) -> String {
    format!(
        r#"
[[destinations]]
name = "{name}"
type = "ga4"
measurement_id = "G-ABC123"
api_secret = "env:{env_name}"
"#
    )
}

fn problems_of(text: &str) -> Vec<String> {
    match Config::from_toml(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.problems,
    }
}

fn assert_problem(problems: &[String], needle: &str) {
    assert!(problems.iter().any(|p| p.contains(needle)), "no problem mentions {needle:?} in {problems:#?}");
}

// ---- a valid configuration ----

#[test]
fn a_ga4_destination_and_catalog_parse() {
    let _secret = EnvGuard::set("CFGTEST_VALID_GA4", "x-secret-value");
    let text = format!(
        r#"
[storage]
url = "sqlite://data/ledger.db"

{}
base_url = "http://127.0.0.1:9999"
batch_size = 10
window_hours = 48
[destinations.consent]
purpose = "ad_user_data"
on_personal_data_denied = "skip"
assume_granted = true

[catalog.order_paid]
ga4-web = {{ event = "purchase", browser_tracked = true }}

[catalog.refund_completed]
ga4-web = {{ event = "refund" }}
"#,
        ga4("ga4-web", "CFGTEST_VALID_GA4")
    );
    let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(config.sqlite_path(), Some("data/ledger.db"));
    assert_eq!(config.destinations.len(), 1);
    let Some(g) = config.destinations[0].section::<Ga4Config>() else { panic!("a GA4 destination") };
    assert_eq!(g.name, "ga4-web");
    assert_eq!(g.measurement_id, "G-ABC123");
    assert_eq!(g.base_url, "http://127.0.0.1:9999");
    assert_eq!(g.batch_size, 10);
    assert_eq!(g.window_hours, 48);
    assert_eq!(g.common.consent.purpose, ConsentPurpose::AdUserData);
    assert_eq!(g.common.consent.on_personal_data_denied, OnPersonalDataDenied::Skip);
    assert!(g.common.consent.assume_granted);
    assert_eq!(g.api_secret.resolve().unwrap().expose(), "x-secret-value");

    let routes = config.routes();
    assert_eq!(
        routes["order_paid"],
        vec![("ga4-web".to_owned(), Route { event: "purchase".into(), browser_tracked: true, ..Route::default() })]
    );
    assert_eq!(
        routes["refund_completed"],
        vec![("ga4-web".to_owned(), Route { event: "refund".into(), browser_tracked: false, ..Route::default() })]
    );
}

#[test]
fn destination_defaults_apply() {
    let _secret = EnvGuard::set("CFGTEST_DEFAULTS_GA4", "x-secret-value");
    let config = Config::from_toml(&ga4("g", "CFGTEST_DEFAULTS_GA4")).unwrap_or_else(|e| panic!("{e}"));
    let Some(g) = config.destinations[0].section::<Ga4Config>() else { panic!("a GA4 destination") };
    assert_eq!(g.base_url, "https://www.google-analytics.com");
    assert_eq!(g.batch_size, 25);
    assert_eq!(g.window_hours, 72);
    assert!(!g.validate_with_debug_endpoint);
    assert_eq!(g.common.concurrency, 8);
    assert_eq!(g.common.timeout_ms, 10_000);
    assert_eq!(g.common.consent.purpose, ConsentPurpose::Analytics);
    assert_eq!(g.common.consent.on_personal_data_denied, OnPersonalDataDenied::Strip);
    assert!(!g.common.consent.assume_granted);
}

#[test]
fn an_empty_file_gives_the_shipped_defaults() {
    let config = Config::from_toml("").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.storage.url, "sqlite://surety.db");
    assert_eq!(config.storage.sqlite_synchronous, "full");
    assert_eq!(config.server.listen, "127.0.0.1:8080");
    assert!(config.server.api && config.server.workers);
    assert_eq!(config.retry, RetryPolicy::default());
    assert!(config.destinations.is_empty());
    assert!(config.catalog.is_empty());
    assert!(config.auth.ingest_tokens.is_empty() && config.auth.admin_tokens.is_empty());
}

// ---- problems, all at once ----

#[test]
fn every_problem_is_listed() {
    let _secret = EnvGuard::set("CFGTEST_ALL_PROBLEMS_GA4", "x-secret-value");
    let text = format!(
        r#"
[storage]
url = "mysql://user@host/db"

{}
measurement_id = "UA-12345-1"
batch_size = 26
window_hours = 73

{}

{}

[catalog.order_paid]
ga4-web = {{ event = "purchase" }}
nowhere = {{ event = "purchase" }}
"#,
        // the first table's measurement_id/batch_size/window_hours lines follow its header
        ga4("ga4-web", "CFGTEST_ALL_PROBLEMS_GA4").replace("measurement_id = \"G-ABC123\"\n", ""),
        ga4("ga4-web", "CFGTEST_ALL_PROBLEMS_GA4"),
        ga4("unset", "CFGTEST_SURELY_NEVER_SET_4711"),
    );
    let problems = problems_of(&text);

    assert_problem(&problems, "storage.url");
    assert_problem(&problems, "destinations.ga4-web.measurement_id");
    assert_problem(&problems, "destinations.ga4-web.batch_size");
    assert_problem(&problems, "destinations.ga4-web.window_hours");
    assert_problem(&problems, "the name 'ga4-web' is used twice");
    assert_problem(&problems, "catalog.order_paid.nowhere");
    assert_problem(&problems, "CFGTEST_SURELY_NEVER_SET_4711 is not set");
    assert_problem(&problems, "destinations.unset.api_secret");
    assert_eq!(problems.len(), 7, "{problems:#?}");
}

#[test]
fn batch_size_and_window_bounds_are_inclusive() {
    let _secret = EnvGuard::set("CFGTEST_BOUNDS_GA4", "x-secret-value");
    let ok = format!("{}batch_size = 25\nwindow_hours = 72\n", ga4("g", "CFGTEST_BOUNDS_GA4"));
    assert!(Config::from_toml(&ok).is_ok());
    let low = format!("{}batch_size = 0\nwindow_hours = 0\n", ga4("g", "CFGTEST_BOUNDS_GA4"));
    let problems = problems_of(&low);
    assert_problem(&problems, "destinations.g.batch_size");
    assert_problem(&problems, "destinations.g.window_hours");
}

#[test]
fn a_bad_base_url_is_a_problem() {
    let _secret = EnvGuard::set("CFGTEST_BASE_URL_GA4", "x-secret-value");
    let text = format!("{}base_url = \"ftp://example.com\"\n", ga4("g", "CFGTEST_BASE_URL_GA4"));
    assert_problem(&problems_of(&text), "destinations.g.base_url");
}

#[test]
fn server_and_retry_problems_are_reported() {
    let problems = problems_of(
        r#"
[server]
listen = "localhost"
max_batch_events = 0
[retry]
max_attempts = 0
base_delay_ms = 10
max_delay_ms = 5
[log]
format = "xml"
[storage]
sqlite_synchronous = "off"
"#,
    );
    for needle in [
        "server.listen",
        "server.max_batch_events",
        "retry.max_attempts",
        "retry.base_delay_ms",
        "log.format",
        "storage.sqlite_synchronous",
    ] {
        assert_problem(&problems, needle);
    }
}

#[test]
fn a_catalog_kind_must_be_a_valid_kind() {
    let _secret = EnvGuard::set("CFGTEST_KIND_GA4", "x-secret-value");
    let text = format!("{}\n[catalog.Order-Paid]\ng = {{ event = \"purchase\" }}\n", ga4("g", "CFGTEST_KIND_GA4"));
    assert_problem(&problems_of(&text), "catalog.Order-Paid");
}

#[test]
fn an_unset_auth_token_is_reported_by_reference() {
    let problems = problems_of("[auth]\ningest_tokens = [\"env:CFGTEST_TOKEN_NEVER_SET_4712\"]\n");
    assert_problem(&problems, "env:CFGTEST_TOKEN_NEVER_SET_4712");
}

// ---- secrets ----

#[test]
fn an_inline_secret_is_refused_without_echoing_it() {
    let text = r#"
[[destinations]]
name = "g"
type = "ga4"
measurement_id = "G-ABC123"
api_secret = "hunter2-inline-value"
"#;
    let problems = problems_of(text);
    assert_problem(&problems, "never written inline");
    for p in &problems {
        assert!(!p.contains("hunter2-inline-value"), "the inline secret leaked: {p}");
    }
    let err = Config::from_toml("[auth]\nadmin_tokens = [\"plain-admin-token\"]\n").unwrap_err();
    assert!(err.to_string().contains("never written inline"), "{err}");
    assert!(!err.to_string().contains("plain-admin-token"), "the inline token leaked: {err}");
}

#[test]
fn secret_references_parse_only_as_env_or_file() {
    assert!(Secret::try_from("env:X".to_owned()).is_ok());
    assert!(Secret::try_from("file:/run/secrets/x".to_owned()).is_ok());
    assert!(Secret::try_from("X".to_owned()).is_err());
    assert!(Secret::try_from("ENV:X".to_owned()).is_err());
}

#[test]
fn secret_debug_and_config_debug_never_show_the_value() {
    let value = "s3cr3t-debug-value-9f1c";
    let _secret = EnvGuard::set("CFGTEST_DEBUG_GA4", value);
    let _token = EnvGuard::set("CFGTEST_DEBUG_TOKEN", value);
    let text = format!("[auth]\nadmin_tokens = [\"env:CFGTEST_DEBUG_TOKEN\"]\n{}", ga4("g", "CFGTEST_DEBUG_GA4"));
    let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));

    let secret = &config.auth.admin_tokens[0];
    assert_eq!(secret.resolve().unwrap().expose(), value);
    let debug = format!("{secret:?}");
    assert!(!debug.contains(value), "{debug}");
    assert!(debug.contains("env:CFGTEST_DEBUG_TOKEN"), "{debug}");

    let whole = format!("{config:?} {config:#?}");
    assert!(!whole.contains(value), "the Config's Debug shows a secret");
    let serialised = toml::to_string(&config).unwrap();
    assert!(!serialised.contains(value), "the serialised Config shows a secret");
    assert!(serialised.contains("env:CFGTEST_DEBUG_GA4"));
}

#[test]
fn a_file_secret_is_read_without_its_trailing_newline() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"file-secret-value\r\n").unwrap();
    let secret = Secret::try_from(format!("file:{}", file.path().display())).unwrap();
    assert_eq!(secret.resolve().unwrap().expose(), "file-secret-value");
}

#[test]
fn a_missing_secret_file_is_a_problem() {
    let text = r#"
[[destinations]]
name = "g"
type = "ga4"
measurement_id = "G-ABC123"
api_secret = "file:/nonexistent/surety/cfgtest/secret"
"#;
    assert_problem(&problems_of(text), "destinations.g.api_secret (file:/nonexistent/surety/cfgtest/secret)");
}

// ---- unknown keys ----

#[test]
fn an_unknown_top_level_key_is_an_error() {
    assert_problem(&problems_of("colour = \"blue\"\n"), "colour");
}

#[test]
fn an_unknown_key_in_server_is_an_error() {
    assert_problem(&problems_of("[server]\nlisten_on = \"127.0.0.1:1\"\n"), "listen_on");
}

#[test]
fn an_unknown_key_in_a_destination_is_an_error() {
    let _secret = EnvGuard::set("CFGTEST_UNKNOWN_DEST_GA4", "x-secret-value");
    // A typo of `window_hours` must not silently leave the default in place.
    let text = format!("{}windw_hours = 24\n", ga4("g", "CFGTEST_UNKNOWN_DEST_GA4"));
    assert_problem(&problems_of(&text), "windw_hours");
}

#[test]
fn an_unknown_key_in_destination_consent_is_an_error() {
    let _secret = EnvGuard::set("CFGTEST_UNKNOWN_CONSENT_GA4", "x-secret-value");
    let text = format!("{}[destinations.consent]\nasume_granted = true\n", ga4("g", "CFGTEST_UNKNOWN_CONSENT_GA4"));
    assert_problem(&problems_of(&text), "asume_granted");
}

#[test]
fn an_unknown_key_in_a_catalog_route_is_an_error() {
    let _secret = EnvGuard::set("CFGTEST_UNKNOWN_ROUTE_GA4", "x-secret-value");
    let text = format!(
        "{}\n[catalog.order_paid]\ng = {{ event = \"purchase\", browser_traked = true }}\n",
        ga4("g", "CFGTEST_UNKNOWN_ROUTE_GA4")
    );
    assert_problem(&problems_of(&text), "browser_traked");
}

#[test]
fn an_unknown_destination_type_is_an_error() {
    let text = r#"
[[destinations]]
name = "x"
type = "myspace"
"#;
    assert_problem(&problems_of(text), "myspace");
}

// ---- layering ----

#[test]
fn load_merges_environment_over_the_file() {
    let _lock = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[server]\nlisten = \"127.0.0.1:1111\"\nmax_batch_events = 7\n").unwrap();

    let from_file = Config::load(Some(file.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_file.server.listen, "127.0.0.1:1111");

    let _env = EnvGuard::set("SURETY_SERVER__LISTEN", "127.0.0.1:2222");
    let layered = Config::load(Some(file.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(layered.server.listen, "127.0.0.1:2222");
    // What the environment does not mention still comes from the file, then the defaults.
    assert_eq!(layered.server.max_batch_events, 7);
    assert_eq!(layered.storage.url, "sqlite://surety.db");
}

#[test]
fn load_of_a_missing_file_says_so() {
    let err = Config::load(Some(Path::new("/nonexistent/surety/cfgtest.toml"))).unwrap_err();
    assert_problem(&err.problems, "/nonexistent/surety/cfgtest.toml not found");
}

#[test]
/// SPEC §6 names secrets like SURETY_INGEST_TOKEN: they must not be read as configuration keys.
fn load_accepts_a_secret_named_like_the_spec_example() {
    let _lock = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[auth]\ningest_tokens = [\"env:SURETY_CFGTEST_INGEST_TOKEN\"]\n").unwrap();
    let _token = EnvGuard::set("SURETY_CFGTEST_INGEST_TOKEN", "t0ken-value");
    let config = Config::load(Some(file.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.auth.ingest_tokens[0].resolve().unwrap().expose(), "t0ken-value");
}

#[test]
/// SURETY_CONFIG is the --config flag's variable (cli.rs), not a configuration key.
fn load_ignores_the_config_path_variable() {
    let _lock = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[server]\nlisten = \"127.0.0.1:3333\"\n").unwrap();
    let path = file.path().display().to_string();
    let _env = EnvGuard::set("SURETY_CONFIG", &path);
    let config = Config::load(Some(file.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.listen, "127.0.0.1:3333");
}

#[test]
fn a_typo_in_a_section_variable_is_an_error() {
    let _lock = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
    let _env = EnvGuard::set("SURETY_SERVER__LISTN", "127.0.0.1:4444");
    let err = Config::load(None).unwrap_err();
    assert_problem(&err.problems, "listn");
}

#[test]
fn ad_platforms_default_to_ad_user_data_consent_and_ga4_to_analytics() {
    std::env::set_var("CFGTEST_PURPOSE_TOKEN", "purpose-token");
    let c = Config::from_toml(
        r#"
[[destinations]]
name = "meta"
type = "meta"
pixel_id = "123"
access_token = "env:CFGTEST_PURPOSE_TOKEN"

[[destinations]]
name = "meta-analytics"
type = "meta"
pixel_id = "456"
access_token = "env:CFGTEST_PURPOSE_TOKEN"
[destinations.consent]
purpose = "analytics"
"#,
    )
    .unwrap();
    assert_eq!(c.destinations[0].common().consent.purpose, ConsentPurpose::AdUserData);
    assert_eq!(c.destinations[1].common().consent.purpose, ConsentPurpose::Analytics, "written wins");
}

#[test]
fn retention_must_outlast_every_window() {
    std::env::set_var("RETENTION_TEST_GA4_SECRET", "x-secret-value");
    let text = |days: u32| {
        format!(
            "{}\n[[destinations]]\nname = \"li\"\ntype = \"linkedin\"\naccess_token = \"env:RETENTION_TEST_GA4_SECRET\"\n\
             [retention]\nkeep_days = {days}\n",
            ga4("web", "RETENTION_TEST_GA4_SECRET")
        )
    };
    // GA4's 72 h round up to 3 days; LinkedIn's default window is 90 days.
    assert_problem(&problems_of(&text(90)), "destination 'li''s 90-day window");
    assert!(Config::from_toml(&text(91)).is_ok());
    assert!(Config::from_toml(&text(0)).is_ok(), "0 keeps everything");
    let config = Config::from_toml(&text(91)).unwrap();
    let now = chrono::Utc::now();
    assert_eq!(config.retention.cutoff(now), Some(now - chrono::Duration::days(91)));
    assert_eq!(Config::from_toml(&text(0)).unwrap().retention.cutoff(now), None);
}

#[test]
fn a_postgres_ledger_is_accepted_and_its_password_never_printed() {
    let config = Config::from_toml("[storage]\nurl = \"postgres://relay:s3cret@db.internal:5432/surety\"\n").unwrap();
    assert!(config.is_postgres());
    assert_eq!(config.sqlite_path(), None);
    assert!(!config.storage.redacted_url().contains("s3cret"));
    assert!(config.storage.redacted_url().contains("db.internal:5432/surety"));
    let problems = problems_of("[storage]\nurl = \"mysql://relay:s3cret@db/surety\"\n");
    assert_problem(&problems, "storage.url");
    assert!(!problems.join(" ").contains("s3cret"), "{problems:?}");
}

#[test]
fn identity_wait_defaults_to_900_seconds_per_destination_and_must_end_before_the_age_limit() {
    let _secret = EnvGuard::set("CFGTEST_IDWAIT_GA4", "x-secret-value");
    let config = Config::from_toml(&ga4("g", "CFGTEST_IDWAIT_GA4")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.destinations[0].common().identity_wait_secs, 900);

    let text = format!("{}identity_wait_secs = 0\n", ga4("g", "CFGTEST_IDWAIT_GA4"));
    let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.destinations[0].common().identity_wait_secs, 0);

    let text = format!("[retry]\nmax_age_secs = 600\n{}identity_wait_secs = 600\n", ga4("g", "CFGTEST_IDWAIT_GA4"));
    assert_problem(&problems_of(&text), "destinations.g.identity_wait_secs: must be less than retry.max_age_secs");
}

// ---- every structural problem in one run ----

#[test]
fn every_structural_problem_is_reported_in_one_run_in_plain_words() {
    let _secret = EnvGuard::set("CFGTEST_STRUCTURE_GA4", "x-secret-value");
    let text = format!(
        r#"
[server]
listn = "127.0.0.1:8080"
max_connections = "many"

[auth]
admin_tokens = ["plain-inline-token"]

[storag]
url = "sqlite://x.db"

{}
batch_size = "ten"
consent = {{ purpose = "analytic" }}
timeout_msec = 5

[catalog.order_paid]
g = {{ event = "purchase", browser_trackd = true }}
"#,
        ga4("g", "CFGTEST_STRUCTURE_GA4")
    );
    let problems = Config::from_toml(&text).unwrap_err().problems;
    for needle in [
        "server.listn: unknown key; did you mean 'listen'?",
        "server.max_connections: expected a whole number, 0 or more, found the text \"many\"",
        "auth.admin_tokens[0]: secrets are never written inline",
        "storag: unknown key; did you mean 'storage'?",
        "destinations.g.batch_size: expected a whole number, 0 or more, found the text \"ten\"",
        "destinations.g.consent.purpose: \"analytic\" is not one of \"analytics\", \"ad_user_data\"; did you mean 'analytics'?",
        "destinations.g.timeout_msec: unknown key; did you mean 'timeout_ms'?",
        "catalog.order_paid.g.browser_trackd: unknown key; did you mean 'browser_tracked'?",
    ] {
        assert_problem(&problems, needle);
    }
    assert_eq!(problems.len(), 8, "{problems:#?}");
    let all = problems.join("\n");
    assert!(!all.contains("plain-inline-token"), "the inline secret is repeated: {all}");
    for internal in ["invalid type", "`", "u64", "usize", "sequence"] {
        assert!(!all.contains(internal), "parser wording {internal:?} in {all}");
    }
}

#[test]
fn semantic_problems_follow_the_structural_ones() {
    let problems = Config::from_toml("[log]\nformat = \"jsonl\"\nlevle = \"info\"\n").unwrap_err().problems;
    assert_eq!(
        problems,
        ["log.levle: unknown key; did you mean 'level'?", "log.format: must be \"text\" or \"json\""],
        "{problems:#?}"
    );
}

#[test]
fn a_wrongly_typed_secret_is_not_repeated() {
    let problems = Config::from_toml("[auth]\nadmin_tokens = \"plain-inline-token\"\n").unwrap_err().problems;
    assert_eq!(problems, ["auth.admin_tokens: expected a list [ … ], found text"], "{problems:#?}");
}

#[test]
fn a_destination_of_unknown_type_is_one_problem() {
    // Its catalog route is not a second problem: the destination exists, under a wrong type.
    let text = "[[destinations]]\nname = \"g\"\ntype = \"ga5\"\n[catalog.order_paid]\ng = { event = \"purchase\" }\n";
    let problems = Config::from_toml(text).unwrap_err().problems;
    assert_eq!(
        problems,
        ["destinations.g.type: \"ga5\" is not one of \"ga4\", \"meta\", \"google_ads\", \"linkedin\"; did you mean 'ga4'?"],
        "{problems:#?}"
    );
}

#[test]
fn a_short_secret_is_a_problem_naming_its_reference() {
    let _secret = EnvGuard::set("CFGTEST_SHORT_GA4", "a");
    let problems = Config::from_toml(&ga4("g", "CFGTEST_SHORT_GA4")).unwrap_err().problems;
    assert_problem(&problems, "env:CFGTEST_SHORT_GA4");
    assert_problem(&problems, "at least 8 characters");
}

#[test]
fn the_ledger_keeps_request_bodies_a_week_unless_told_otherwise() {
    let _secret = EnvGuard::set("CFGTEST_LEDGER_GA4", "x-secret-value");
    let base = ga4("web", "CFGTEST_LEDGER_GA4");
    let config = Config::from_toml(&base).unwrap();
    assert_eq!(config.ledger.keep_request_bodies_days, 7);
    let now = chrono::Utc::now();
    assert_eq!(config.ledger.bodies_cutoff(now), now - chrono::Duration::days(7));
    let config = Config::from_toml(&format!("{base}\n[ledger]\nkeep_request_bodies_days = 0\n")).unwrap();
    assert_eq!(config.ledger.bodies_cutoff(now), now, "0 keeps none");

    let problems = problems_of(&format!("{base}\n[ledger]\nkeep_request_bodies_days = 99999\n"));
    assert_problem(&problems, "ledger.keep_request_bodies_days: 99999 is more than 3650");
    let problems = problems_of(&format!("{base}\n[ledger]\nkeep_request_body_days = 3\n"));
    assert_problem(&problems, "ledger.keep_request_body_days: unknown key; did you mean 'keep_request_bodies_days'?");
    let problems = problems_of(&format!("{base}\n[ledger]\nkeep_request_bodies_days = \"week\"\n"));
    assert_problem(&problems, "ledger.keep_request_bodies_days: expected a whole number");
}

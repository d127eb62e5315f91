//! Integration tests: the real server on port 0 with SQLite in a temp folder, and platform
//! simulators standing in for the platforms. One test binary (one link step).

mod support;

mod alert_rules;
mod alerts;
mod architecture;
mod browser;
mod capture;
mod console;
mod crash;
mod dashboard;
mod delivery;
mod destinations;
mod edge;
mod find;
mod fuzz_corpus;
mod hostile_input;
mod identity_wait;
mod import;
mod ingest;
mod kill_cycles;
mod logs;
mod measure;
mod metrics;
mod openapi;
mod operate;
mod operator;
mod packaging;
mod postgres;
mod read_back;
mod reconcile;
mod reconcile_kept;
mod rollout;
mod settle;
mod sources;

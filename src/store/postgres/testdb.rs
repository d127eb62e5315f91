//! A fresh PostgreSQL database per test, on the local server (`SURETY_TEST_PG`, default
//! `postgres://root@127.0.0.1:5432/test`, trust auth). Databases are not dropped by the tests
//! (`.ci/run` drops those of earlier runs); their names are unique and say what made them.

use super::PgStore;

pub(crate) fn admin_url() -> String {
    std::env::var("SURETY_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// Creates `surety_unit_<random>` and connects a store to it (migrated).
pub(crate) async fn fresh() -> PgStore {
    let url = super::create_database(&admin_url(), "surety_unit").await.expect("create a test database");
    PgStore::connect(&url).await.expect("connect to the fresh test database")
}

//! A fresh PostgreSQL database per test, on the local server (`SURETY_TEST_PG`, default
//! `postgres://root@127.0.0.1:5432/test`, trust auth); dropped when the test's process ends is
//! not guaranteed, so names are unique and say what made them.

use super::PgStore;

pub(crate) fn admin_url() -> String {
    std::env::var("SURETY_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// Creates `surety_unit_<random>` and connects a store to it (migrated).
pub(crate) async fn fresh() -> PgStore {
    use sqlx::Connection;
    let admin = admin_url();
    let name = format!("surety_unit_{:016x}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create a test database");
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("SURETY_TEST_PG must end in /DATABASE"),
    };
    PgStore::connect(&url).await.expect("connect to the fresh test database")
}

//! `Store::lead` on PostgreSQL: a session-level advisory lock per task, taken with
//! `pg_try_advisory_lock` on a connection of its own (outside the pool) and held for as long as
//! that session lives. A process that dies or loses its connection loses the lock with it, and
//! the next process to ask takes it. Advisory locks are per database, so ledgers in different
//! databases of one server never contend.

use std::collections::HashMap;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;

use crate::store::StoreError;

#[derive(Default)]
pub(super) struct Leads {
    held: Mutex<HashMap<&'static str, PgConnection>>,
}

impl Leads {
    pub(super) async fn lead(&self, pool: &PgPool, task: &'static str) -> Result<bool, StoreError> {
        let mut held = self.held.lock().await;
        if let Some(conn) = held.get_mut(task) {
            if conn.ping().await.is_ok() {
                return Ok(true);
            }
            // The session is gone, and the lock with it: ask again like anyone else.
            held.remove(task);
        }
        let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
        let key = format!("surety:lead:{task}");
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(&key)
            .fetch_one(&mut conn)
            .await?;
        if got {
            held.insert(task, conn);
        } else {
            // Another process leads; this session ends here and asks again next round.
            let _ = conn.close().await;
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn one_process_leads_and_the_lead_passes_on_when_it_goes() {
        let url = super::super::create_database(&super::super::testdb::admin_url(), "surety_unit")
            .await
            .expect("a test database");
        let a = super::super::PgStore::connect(&url).await.unwrap();
        let b = super::super::PgStore::connect(&url).await.unwrap();
        assert!(a.lead("alerts").await.unwrap());
        assert!(a.lead("alerts").await.unwrap(), "the leader keeps the lead");
        assert!(!b.lead("alerts").await.unwrap(), "one leader at a time");
        assert!(b.lead("other-task").await.unwrap(), "each task has its own lead");
        drop(a);
        // The dropped store's session closes; the lock goes with it.
        let mut led = false;
        for _ in 0..50 {
            if b.lead("alerts").await.unwrap() {
                led = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(led, "the lead passed on");
    }
}

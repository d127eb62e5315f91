//! `Store::lead` on PostgreSQL: a session-level advisory lock per task, taken with
//! `pg_try_advisory_lock` on a connection of its own (outside the pool) and held for as long as
//! that session lives. A process that dies or loses its connection loses the lock with it, and
//! the next process to ask takes it. Advisory locks are per database, so ledgers in different
//! databases of one server never contend.
//!
//! A follower keeps its session too and asks again on it every round: no connection is opened
//! and closed per round; a new one is made only when the kept one is gone.

use std::collections::HashMap;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;

use crate::store::StoreError;

/// One task's session, and whether it holds the task's lock.
struct Session {
    conn: PgConnection,
    leads: bool,
}

#[derive(Default)]
pub(super) struct Leads {
    sessions: Mutex<HashMap<&'static str, Session>>,
}

impl Leads {
    pub(super) async fn lead(&self, pool: &PgPool, task: &'static str) -> Result<bool, StoreError> {
        let mut sessions = self.sessions.lock().await;
        if let Some(session) = sessions.get_mut(task) {
            let asked =
                if session.leads { session.conn.ping().await.map(|()| true) } else { try_lock(session, task).await };
            match asked {
                Ok(leads) => return Ok(leads),
                // The session is gone (and a lock it held with it): ask again on a new one.
                Err(_) => {
                    sessions.remove(task);
                }
            }
        }
        let conn = PgConnection::connect_with(&pool.connect_options()).await?;
        let mut session = Session { conn, leads: false };
        let leads = try_lock(&mut session, task).await?;
        sessions.insert(task, session);
        Ok(leads)
    }

    /// The backend process of `task`'s kept session (to tell one session from another).
    #[cfg(test)]
    async fn backend(&self, task: &'static str) -> Option<i32> {
        let mut sessions = self.sessions.lock().await;
        let session = sessions.get_mut(task)?;
        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut session.conn).await.ok()
    }
}

/// Asks for `task`'s lock on the session; a session-level lock, once had, stays until it ends.
async fn try_lock(session: &mut Session, task: &'static str) -> Result<bool, sqlx::Error> {
    let key = format!("surety:lead:{task}");
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(&key)
        .fetch_one(&mut session.conn)
        .await?;
    session.leads = got;
    Ok(got)
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
        // The follower keeps its session between rounds: it asks again on the same one.
        let follower = b.leads.backend("alerts").await.expect("the follower keeps a session");
        assert!(!b.lead("alerts").await.unwrap());
        assert_eq!(b.leads.backend("alerts").await, Some(follower), "no new session per round");
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
        assert_eq!(b.leads.backend("alerts").await, Some(follower), "taken on the follower's kept session");
        let holder: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objid = (hashtextextended('surety:lead:alerts', 0) & 4294967295)::oid",
        )
        .fetch_optional(b.pool())
        .await
        .unwrap();
        assert_eq!(holder, Some(follower), "the lock is held by that session");
    }
}

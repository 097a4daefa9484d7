//! The health watcher's database check, on a connection of its own. Through the pool, a
//! check waits for a free connection: under load (every connection busy with group-commit
//! batches) it timed out and the service declared the database down while it was merely
//! busy (the cross-service test lost every outbox delivery of one stream that way). Its
//! own connection answers "can PostgreSQL be reached" and nothing else.

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Connect and query each get this long; a down server refuses the connect at once.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Probe {
    options: Arc<PgConnectOptions>,
    conn: Arc<Mutex<Option<PgConnection>>>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Probe {
    /// A probe of the database `pool` connects to.
    pub fn new(pool: &PgPool) -> Self {
        Self {
            options: pool.connect_options(),
            conn: Arc::default(),
        }
    }

    /// True when PostgreSQL answers `SELECT 1` within a second. A failed or timed-out
    /// check drops the connection; the next one connects afresh.
    pub async fn check(&self) -> bool {
        let mut slot = self.conn.lock().await;
        if slot.is_none() {
            match tokio::time::timeout(CHECK_TIMEOUT, PgConnection::connect_with(&self.options))
                .await
            {
                Ok(Ok(conn)) => *slot = Some(conn),
                _ => return false,
            }
        }
        let Some(conn) = slot.as_mut() else {
            return false;
        };
        let ok = matches!(
            tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&mut *conn)).await,
            Ok(Ok(_))
        );
        if !ok {
            *slot = None;
        }
        ok
    }
}

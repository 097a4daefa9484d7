//! The health watcher's database check, on a connection of its own. Through the pool, a
//! check waits for a free connection: under load (every connection busy with group-commit
//! batches) it timed out and the service declared the database down while it was merely
//! busy (the cross-service test lost every outbox delivery of one stream that way). Its
//! own connection answers "can PostgreSQL be reached, and is the schema migrated".
//!
//! Migrated means: every migration this binary embeds is applied. On Kubernetes the
//! migration Job runs before the rollout, and a pod that starts before it finishes (or
//! against a schema nobody migrated) must stay out of the endpoints instead of answering
//! "relation does not exist" as INTERNAL. A schema AHEAD of the binary (an old pod beside a
//! new one during a rolling upgrade) is fine: migrations only expand until the old release
//! is gone.

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
    /// Versions that must be applied; cleared once they all were (a schema is never
    /// un-migrated under a running service).
    required: Arc<std::sync::Mutex<Vec<i64>>>,
    /// What the last check found missing, so a change is logged once, not every 2 s.
    last_missing: Arc<std::sync::Mutex<Option<Vec<i64>>>>,
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
            required: Arc::default(),
            last_missing: Arc::default(),
        }
    }

    /// Also requires these migration versions to be applied (successfully) before the
    /// database counts as ready.
    pub fn requiring(self, versions: impl IntoIterator<Item = i64>) -> Self {
        *self.required.lock().expect("probe lock") = versions.into_iter().collect();
        self
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
        let required = self.required.lock().expect("probe lock").clone();
        if required.is_empty() {
            let ok = matches!(
                tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&mut *conn))
                    .await,
                Ok(Ok(_))
            );
            if !ok {
                *slot = None;
            }
            return ok;
        }
        match tokio::time::timeout(CHECK_TIMEOUT, applied_versions(conn)).await {
            Ok(Ok(applied)) => {
                let missing: Vec<i64> = required
                    .into_iter()
                    .filter(|v| !applied.contains(v))
                    .collect();
                self.report_missing(&missing);
                if missing.is_empty() {
                    self.required.lock().expect("probe lock").clear();
                }
                missing.is_empty()
            }
            Ok(Err(e)) if is_schema_error(&e) => {
                // The database answered: it is the schema that is not there (yet), or the
                // service's role may not read the history (a DML-only role needs SELECT
                // on _sqlx_migrations).
                let missing = required;
                if self.report_missing(&missing) {
                    tracing::warn!(error = %e, "cannot read the migration history");
                }
                false
            }
            _ => {
                *slot = None;
                false
            }
        }
    }

    /// Logs a change in what is missing; true when it changed.
    fn report_missing(&self, missing: &[i64]) -> bool {
        let mut last = self.last_missing.lock().expect("probe lock");
        if last.as_deref() == Some(missing) {
            return false;
        }
        if missing.is_empty() {
            tracing::info!("database schema migrated");
        } else {
            tracing::warn!(
                missing = ?missing,
                "database schema not migrated: NOT_SERVING until `<service> migrate` has run"
            );
        }
        *last = Some(missing.to_vec());
        true
    }
}

/// Versions recorded as successfully applied in the service's migration history (the table
/// lives in the service's schema, first on the search_path).
async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(conn)
        .await
}

/// Undefined table (no history yet) or insufficient privilege: the server is up.
fn is_schema_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("42P01" | "42501")))
}

//! The database side every service shares: a pool bound to the service's own schema (its
//! `search_path`), embedded migrations whose history table lives in that schema too, and
//! the bootstrap SQL an operator (or the local runner and tests) uses to create a
//! service's role and schema.

use guestloop_config::DatabaseSettings;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, migrate::Migrator};
use std::str::FromStr;

pub mod batch;
pub mod feed;
pub mod group;
pub mod guest_directory;
pub mod page;
mod probe;
pub mod retention;
mod untraced;

#[cfg(test)]
mod fuzz_tests;

pub use probe::Probe;
pub use untraced::untraced;

pub use sqlx;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database.url is not a valid Postgres URL")]
    Url(#[source] sqlx::Error),
    #[error("cannot reach the database")]
    Connect(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// A pool whose connections see only `settings.schema` (plus pg_catalog). Connects lazily,
/// so a service can start, report NOT_SERVING, and recover when the database comes back.
///
/// A connection taken from the pool is tested (a round trip) only when it sat idle for
/// `database.ping_idle_after` or longer: one that was just in use answered moments ago,
/// and testing every checkout cost a round trip per batch on the hot paths. One that broke
/// meanwhile fails its statement, and the pool closes it when it comes back.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(&settings.url)
        .map_err(DbError::Url)?
        .options([("search_path", settings.schema.as_str())])
        .application_name("guestloop");
    let ping_idle_after = settings.ping_idle_after.as_duration();
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout.as_duration())
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_idle_after {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// Applies the embedded migrations of the service and of the shared libraries it uses (the
/// outbox), as one ordered history. The history table is created unqualified, so it lands
/// in the service's schema (first on the search_path).
pub async fn migrate(pool: &PgPool, migrators: &[&Migrator]) -> Result<(), DbError> {
    let mut all: Vec<_> = migrators.iter().flat_map(|m| m.iter().cloned()).collect();
    all.sort_by_key(|m| m.version);
    let migrations = all.len();
    let mut migrator = Migrator::with_migrations(all);
    // A schema ahead of this binary is the normal state during a rolling upgrade (and after
    // a rollback): migrations only expand until the old release is gone, so the history
    // may hold versions this binary does not know. Checksums of the ones it knows are
    // still checked.
    migrator.set_ignore_missing(true);
    // Said before, not only after: the migrator waits for the database and for an advisory
    // lock another migrating replica may hold, and a start that hangs there must show where.
    tracing::info!(migrations, "migrating the database");
    migrator.run(pool).await.map_err(DbError::Migrate)?;
    tracing::info!(migrations, "database migrated");
    Ok(())
}

/// SQL, run as a superuser in the service's database, that creates the service's login role
/// and its schema owned by that role, with no rights anywhere else. Idempotent.
/// `role` and `schema` must be lower-case identifiers (checked by config validation).
pub fn bootstrap_sql(schema: &str, role: &str, password: Option<&str>) -> Vec<String> {
    let password = password
        .map(|p| format!(" PASSWORD '{}'", p.replace('\'', "''")))
        .unwrap_or_default();
    vec![
        format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') \
             THEN CREATE ROLE {role} LOGIN{password}; END IF; END $$"
        ),
        format!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}"),
        format!("ALTER ROLE {role} SET search_path = {schema}"),
        "REVOKE ALL ON SCHEMA public FROM PUBLIC".to_string(),
    ]
}

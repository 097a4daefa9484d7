//! The retention job every service with personal data runs (issue 11): every
//! `retention.interval` it walks each kind of data (a [`Task`]) property by property, in
//! record-time order from where the last round stopped (table `retention_marks`, from
//! [`MIGRATOR`]), and anonymises or deletes what is older than the property's period
//! (guestloop_config::RetentionSettings: chain default, region override). Each batch is one
//! short transaction that also moves the mark, so a crash loses nothing and repeats
//! nothing; the mark row is taken FOR UPDATE SKIP LOCKED, so replicas share the work
//! without doing it twice. `guestloop_retention_records_total{data}` counts what was done.
//!
//! A record inserted later with a record time already behind the mark (a historical
//! import) is not visited by later rounds; docs/personal-data.md says so.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use guestloop_config::{ChainDirectory, RetentionPeriods, RetentionSettings, Seconds};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;

/// The marks' table, applied in the schema of every service that runs the job: pass it to
/// [`crate::migrate`] beside the service's own migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./retention_migrations");

/// The scope of chain-wide data (not per property).
pub const CHAIN_WIDE: &str = "*";

/// One batch's instructions to a task.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// A property id, or [`CHAIN_WIDE`].
    pub scope: String,
    /// Records older than this go.
    pub cutoff: DateTime<Utc>,
    /// The (time, key) of the last record handled before; `None` from the start.
    pub after: Option<(DateTime<Utc>, String)>,
    pub batch: i64,
}

impl Sweep {
    /// The mark as (time, UUID) for a sweep keyed by a UUID; a key that is not one (never
    /// written by such a sweep) counts as the start.
    pub fn after_uuid(&self) -> (Option<DateTime<Utc>>, Option<uuid::Uuid>) {
        match &self.after {
            Some((t, key)) => (Some(*t), uuid::Uuid::parse_str(key).ok()),
            None => (None, None),
        }
    }
}

/// What a batch did: the (time, key) of the last record it looked at (the new mark), and
/// how many it changed. `None` when nothing was left.
pub type Swept = Option<((DateTime<Utc>, String), u64)>;

pub type SweepFn =
    for<'c> fn(&'c mut PgConnection, &'c Sweep) -> BoxFuture<'c, Result<Swept, sqlx::Error>>;

/// One kind of personal data a service ages out.
#[derive(Clone, Copy)]
pub struct Task {
    /// The metric's `data` label and the mark's key, e.g. "feedback_text".
    pub name: &'static str,
    pub period: fn(&RetentionPeriods) -> Seconds,
    /// Per property (the region's period), or once for the chain (the default period).
    pub per_property: bool,
    pub sweep: SweepFn,
}

pub struct Job {
    pub pool: PgPool,
    pub chain: Arc<ChainDirectory>,
    pub settings: RetentionSettings,
    pub tasks: Vec<Task>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("per_property", &self.per_property)
            .finish_non_exhaustive()
    }
}

impl Job {
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        metrics::describe_counter!(
            "guestloop_retention_records_total",
            "Records whose personal data the retention job anonymised or deleted, by kind"
        );
        metrics::describe_gauge!(
            "guestloop_retention_last_round_timestamp_seconds",
            "When the retention job last finished a round without error"
        );
        for t in &self.tasks {
            metrics::counter!("guestloop_retention_records_total", "data" => t.name).increment(0);
        }
        loop {
            match self.round().await {
                Ok(_) => metrics::gauge!("guestloop_retention_last_round_timestamp_seconds")
                    .set(Utc::now().timestamp() as f64),
                Err(e) => {
                    tracing::warn!(error = %e, "retention round failed; the next round goes on from its marks")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.interval.as_duration()) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Every task over every scope, at most `max_batches_per_round` batches each.
    pub async fn round(&self) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        for task in &self.tasks {
            let scopes: Vec<(String, Seconds)> = if task.per_property {
                self.chain
                    .properties
                    .iter()
                    .map(|p| {
                        let periods = self.settings.for_property(&self.chain, &p.id);
                        (p.id.clone(), (task.period)(&periods))
                    })
                    .collect()
            } else {
                vec![(
                    CHAIN_WIDE.to_string(),
                    (task.period)(&self.settings.default),
                )]
            };
            for (scope, period) in scopes {
                let cutoff = Utc::now()
                    - chrono::Duration::from_std(period.as_duration())
                        .unwrap_or(chrono::Duration::MAX);
                let done = self.sweep_scope(task, scope, cutoff).await?;
                if done > 0 {
                    metrics::counter!("guestloop_retention_records_total", "data" => task.name)
                        .increment(done);
                    total += done;
                }
            }
        }
        Ok(total)
    }

    async fn sweep_scope(
        &self,
        task: &Task,
        scope: String,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        sqlx::query(
            "INSERT INTO retention_marks (task, scope) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(task.name)
        .bind(&scope)
        .execute(&self.pool)
        .await?;
        let batch = i64::from(self.settings.batch);
        let mut done = 0;
        for _ in 0..self.settings.max_batches_per_round {
            let mut tx = self.pool.begin().await?;
            let mark: Option<(Option<DateTime<Utc>>, String)> = sqlx::query_as(
                "SELECT last_time, last_key FROM retention_marks
                  WHERE task = $1 AND scope = $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(task.name)
            .bind(&scope)
            .fetch_optional(&mut *tx)
            .await?;
            // Another replica is sweeping this scope.
            let Some((last_time, last_key)) = mark else {
                break;
            };
            let sweep = Sweep {
                scope: scope.clone(),
                cutoff,
                after: last_time.map(|t| (t, last_key)),
                batch,
            };
            let Some(((time, key), changed)) = (task.sweep)(&mut tx, &sweep).await? else {
                break;
            };
            sqlx::query(
                "UPDATE retention_marks SET last_time = $3, last_key = $4, update_time = now()
                  WHERE task = $1 AND scope = $2",
            )
            .bind(task.name)
            .bind(&scope)
            .bind(time)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            done += changed;
        }
        Ok(done)
    }
}

//! The access log of contact-data reads, written by group commit. A read answers only
//! after its log row is committed, so no read that answered OK is missing from the log
//! after a crash; concurrent reads share one multi-row INSERT and one commit instead of
//! paying a WAL flush each. Writes that change a guest log inside their own transaction
//! (`store::privacy::log_access`) and do not come here.

use guestloop_db::batch::{BatchSettings, Batcher, GroupError};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

struct Entry {
    guest_ids: Vec<Uuid>,
    accessor: String,
    role: &'static str,
    rpc: String,
    done: oneshot::Sender<Result<(), GroupError>>,
}

#[derive(Debug, Clone)]
pub struct AccessLog {
    batcher: Batcher<Entry>,
}

impl AccessLog {
    pub fn start(pool: PgPool, settings: BatchSettings) -> Self {
        Self {
            batcher: Batcher::start(settings, move |batch| write(pool.clone(), batch)),
        }
    }

    /// Records that `accessor` read these guests' contact data; returns once committed.
    pub async fn record(
        &self,
        guest_ids: &[Uuid],
        accessor: &str,
        role: &'static str,
        rpc: String,
    ) -> Result<(), GroupError> {
        if guest_ids.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        self.batcher.submit(Entry {
            guest_ids: guest_ids.to_vec(),
            accessor: accessor.to_string(),
            role,
            rpc,
            done,
        })?;
        committed.await.unwrap_or(Err(GroupError::Closed))
    }
}

/// One INSERT (one statement, so one commit) for every entry of the batch.
async fn write(pool: PgPool, batch: Vec<Entry>) {
    let rows: usize = batch.iter().map(|e| e.guest_ids.len()).sum();
    let (mut ids, mut accessors, mut roles, mut rpcs) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    for e in &batch {
        for id in &e.guest_ids {
            ids.push(*id);
            accessors.push(e.accessor.as_str());
            roles.push(e.role);
            rpcs.push(e.rpc.as_str());
        }
    }
    let result = sqlx::query(
        "INSERT INTO access_log (guest_id, accessor, accessor_role, rpc)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[])",
    )
    .bind(&ids)
    .bind(&accessors)
    .bind(&roles)
    .bind(&rpcs)
    .execute(&pool)
    .await
    .map(|_| ())
    .map_err(|e| GroupError::Commit(e.to_string()));
    for e in batch {
        let _ = e.done.send(result.clone());
    }
}

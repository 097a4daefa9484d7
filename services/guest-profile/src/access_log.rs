//! The access log of contact-data reads, written by group commit. A read answers only
//! after its log row is committed, so no read that answered OK is missing from the log
//! after a crash; concurrent reads share one statement and one commit instead of paying a
//! WAL flush each. GetGuest, the hot read, goes further: its row is read and its log row
//! written by the same statement for the whole batch (`store::guests::read_and_log`).
//! Writes that change a guest log inside their own transaction
//! (`store::privacy::log_access`) and do not come here.

use crate::store::GuestRecord;
use crate::store::guests::{LoggedRead, read_and_log};
use guestloop_db::batch::{BatchSettings, Batcher, GroupError, Lease};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Who read, for the log row.
struct Reader {
    accessor: String,
    role: &'static str,
    rpc: String,
}

/// Reads already answered from the database: log them.
struct Record {
    guest_ids: Vec<Uuid>,
    reader: Reader,
    done: oneshot::Sender<Result<(), GroupError>>,
}

/// Read this guest and log the read, if the caller may see it.
struct Read {
    guest_id: Uuid,
    reader: Reader,
    visible: Option<Vec<String>>,
    done: oneshot::Sender<Result<Option<GuestRecord>, GroupError>>,
}

enum Entry {
    Record(Record),
    Read(Read),
}

#[derive(Debug, Clone)]
pub struct AccessLog {
    batcher: Batcher<Entry>,
}

impl AccessLog {
    pub fn start(pool: PgPool, settings: BatchSettings) -> Self {
        Self {
            batcher: Batcher::start("access_log", pool, settings, |batch, lease| {
                Box::pin(write(batch, lease))
            }),
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
        self.batcher.submit(Entry::Record(Record {
            guest_ids: guest_ids.to_vec(),
            reader: Reader {
                accessor: accessor.to_string(),
                role,
                rpc,
            },
            done,
        }))?;
        committed.await.unwrap_or(Err(GroupError::Closed))
    }

    /// The guest's own row, when it exists, was not merged away and is visible through
    /// `visible`; its read is logged and committed before this returns. `None` otherwise
    /// (nothing logged): the caller resolves merges and scope itself.
    pub async fn read(
        &self,
        guest_id: Uuid,
        visible: Option<Vec<String>>,
        accessor: &str,
        role: &'static str,
        rpc: String,
    ) -> Result<Option<GuestRecord>, GroupError> {
        let (done, answered) = oneshot::channel();
        self.batcher.submit(Entry::Read(Read {
            guest_id,
            reader: Reader {
                accessor: accessor.to_string(),
                role,
                rpc,
            },
            visible,
            done,
        }))?;
        answered.await.unwrap_or(Err(GroupError::Closed))
    }
}

/// A batch is at most two statements, each its own commit: the GetGuest reads with their
/// log rows, and one INSERT for every other read.
async fn write(batch: Vec<Entry>, lease: &mut Lease) {
    let (mut records, mut reads) = (Vec::new(), Vec::new());
    for entry in batch {
        match entry {
            Entry::Record(r) => records.push(r),
            Entry::Read(r) => reads.push(r),
        }
    }
    if !reads.is_empty() {
        let rows: Vec<LoggedRead<'_>> = reads
            .iter()
            .map(|r| LoggedRead {
                guest_id: r.guest_id,
                accessor: &r.reader.accessor,
                role: r.reader.role,
                rpc: &r.reader.rpc,
                visible: r.visible.as_deref(),
            })
            .collect();
        let found = match lease.conn().await {
            Ok(conn) => read_and_log(conn, &rows).await,
            Err(e) => Err(e),
        };
        match found {
            Ok(found) => {
                for (read, guest) in reads.into_iter().zip(found) {
                    let _ = read.done.send(Ok(guest));
                }
            }
            Err(e) => {
                lease.release();
                let error = GroupError::Commit(e.to_string());
                for read in reads {
                    let _ = read.done.send(Err(error.clone()));
                }
            }
        }
    }
    if !records.is_empty() {
        let result = match lease.conn().await {
            Ok(conn) => insert(conn, &records).await,
            Err(e) => Err(GroupError::Commit(e.to_string())),
        };
        if result.is_err() {
            lease.release();
        }
        for record in records {
            let _ = record.done.send(result.clone());
        }
    }
}

/// One INSERT (one statement, so one commit) for every recorded read.
async fn insert(conn: &mut sqlx::PgConnection, records: &[Record]) -> Result<(), GroupError> {
    let rows: usize = records.iter().map(|r| r.guest_ids.len()).sum();
    let (mut ids, mut accessors, mut roles, mut rpcs) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    for record in records {
        for id in &record.guest_ids {
            ids.push(*id);
            accessors.push(record.reader.accessor.as_str());
            roles.push(record.reader.role);
            rpcs.push(record.reader.rpc.as_str());
        }
    }
    sqlx::query(
        "INSERT INTO access_log (guest_id, accessor, accessor_role, rpc)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[])",
    )
    .bind(&ids)
    .bind(&accessors)
    .bind(&roles)
    .bind(&rpcs)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(|e| GroupError::Commit(e.to_string()))
}

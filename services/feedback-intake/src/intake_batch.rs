//! The fast path of intake: feedback that opens no case (most of it — comment cards,
//! reviews, good surveys) is written by group commit. Each batch is one statement, which
//! commits by itself: it inserts every row (ON CONFLICT DO NOTHING) and, in the same
//! statement, the events of the rows it inserted; then a replay look-up answers the rows
//! that were already there (or came twice in the batch). Only then is each caller
//! answered. Per call that is a share of one round trip and one commit (it was four round
//! trips a batch: BEGIN, the rows, the events, COMMIT). A batch that fails is retried item
//! by item, so one bad row fails alone. A row of a guest merged away or erased before it
//! is written (rare) is left out of the statement and written in a transaction of its own,
//! which settles the guest (directory.rs) before it commits.

use crate::error::{FeedbackError, Result};
use crate::intake::{Outcome, ReplayKey, replay};
use crate::store::feedback::{self as store, NewFeedback};
use guestloop_db::batch::{BatchSettings, Batcher, GroupError, Lease};
use guestloop_outbox::PreparedEvent;
use sqlx::PgPool;
use std::collections::HashMap;
use tokio::sync::oneshot;

struct Pending {
    row: NewFeedback,
    events: Vec<PreparedEvent>,
    key: ReplayKey,
    done: oneshot::Sender<Result<Outcome>>,
}

#[derive(Debug, Clone)]
pub struct IntakeBatch {
    batcher: Batcher<Pending>,
}

impl IntakeBatch {
    /// `name` labels its batches on /metrics.
    pub fn start(name: &'static str, pool: PgPool, settings: BatchSettings) -> Self {
        Self {
            batcher: Batcher::start(name, pool, settings, |batch, lease| {
                Box::pin(write(batch, lease))
            }),
        }
    }

    /// Writes `row` with its (already built) events; returns once committed, or the
    /// earlier item it repeats.
    pub async fn submit(
        &self,
        row: NewFeedback,
        events: Vec<PreparedEvent>,
        key: ReplayKey,
    ) -> Result<Outcome> {
        let (done, answer) = oneshot::channel();
        self.batcher.submit(Pending {
            row,
            events,
            key,
            done,
        })?;
        answer
            .await
            .unwrap_or(Err(FeedbackError::GroupCommit(GroupError::Closed)))
    }
}

async fn write(batch: Vec<Pending>, lease: &mut Lease) {
    let outcome = write_on(lease, &batch).await;
    match outcome {
        Ok(outcomes) => {
            for (p, o) in batch.into_iter().zip(outcomes) {
                let _ = p.done.send(Ok(o));
            }
        }
        Err(_) if batch.len() > 1 => {
            for p in batch {
                let one = write_on(lease, std::slice::from_ref(&p)).await;
                let _ = p.done.send(one.map(|mut o| o.remove(0)));
            }
        }
        Err(e) => {
            if let Some(p) = batch.into_iter().next() {
                let _ = p.done.send(Err(e));
            }
        }
    }
}

/// [`write_all`] on the worker's connection; a failure gives the connection back (it may be
/// the connection that failed).
async fn write_on(lease: &mut Lease, batch: &[Pending]) -> Result<Vec<Outcome>> {
    let outcome = match lease.conn().await {
        Ok(conn) => write_all(conn, batch).await,
        Err(e) => Err(e.into()),
    };
    if outcome.is_err() {
        lease.release();
    }
    outcome
}

/// One statement for the whole batch (its rows and their events, committed by itself);
/// the outcomes in the batch's order.
async fn write_all(conn: &mut sqlx::PgConnection, batch: &[Pending]) -> Result<Vec<Outcome>> {
    let rows: Vec<&NewFeedback> = batch.iter().map(|p| &p.row).collect();
    let events: Vec<(&PreparedEvent, uuid::Uuid)> = batch
        .iter()
        .flat_map(|p| p.events.iter().map(|e| (e, p.row.id)))
        .collect();
    let mut inserted: HashMap<uuid::Uuid, _> =
        store::insert_many_with_events(&mut *conn, &rows, &events)
            .await?
            .into_iter()
            .collect();
    let mut out = Vec::with_capacity(batch.len());
    for p in batch {
        out.push(match inserted.remove(&p.row.id) {
            // The answer is the row as sent, with the time it was stored at.
            Some(at) => Outcome {
                feedback: store::FeedbackRow::inserted(&p.row, at),
                case: None,
                created: true,
            },
            // Skipped: the same item committed first, or came earlier in this batch (and
            // is committed now, with the statement); or its guest must be settled.
            None => match (replay(&mut *conn, &p.key).await?, p.row.guest_id) {
                (Some(earlier), _) => earlier,
                (None, Some(guest)) => write_settled(&mut *conn, p, guest).await?,
                (None, None) => return Err(FeedbackError::NotFound("feedback")),
            },
        });
    }
    Ok(out)
}

/// One row of a guest the directory knows, with its events, in a transaction that settles
/// the guest (moves the row to the survivor, or erases its words, and its events' excerpt)
/// before it commits: the words of an erased guest are never committed.
async fn write_settled(
    conn: &mut sqlx::PgConnection,
    p: &Pending,
    guest: uuid::Uuid,
) -> Result<Outcome> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let settle = crate::directory::must_settle(&mut tx, Some(guest)).await?;
    let Some(feedback) = store::insert(&mut tx, &p.row).await? else {
        // The same item, committed meanwhile.
        drop(tx);
        return replay(conn, &p.key)
            .await?
            .ok_or(FeedbackError::NotFound("feedback"));
    };
    guestloop_outbox::write_prepared(&mut tx, &p.events).await?;
    let outcome = Outcome {
        feedback,
        case: None,
        created: true,
    };
    let outcome = if settle {
        crate::intake::settled(&mut tx, guest, outcome).await?
    } else {
        outcome
    };
    tx.commit().await?;
    Ok(outcome)
}

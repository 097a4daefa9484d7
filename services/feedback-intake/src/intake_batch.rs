//! The fast path of intake: feedback that opens no case (most of it — comment cards,
//! reviews, good surveys) is written by group commit in multi-row statements. Each batch is
//! one transaction: one INSERT of every row (ON CONFLICT DO NOTHING), one INSERT of their
//! events into the outbox, a replay look-up for the rows that were already there (or came
//! twice in the batch), one commit; only then is each caller answered. Per call that is a
//! share of four round trips instead of five, and a share of one commit. A batch that
//! fails is retried item by item, so one bad row fails alone.

use crate::error::{FeedbackError, Result};
use crate::intake::{Outcome, ReplayKey, replay};
use crate::store::feedback::{self as store, NewFeedback};
use guestloop_db::batch::{BatchSettings, Batcher, GroupError};
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
    pub fn start(pool: PgPool, settings: BatchSettings) -> Self {
        Self {
            batcher: Batcher::start(settings, move |batch| write(pool.clone(), batch)),
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

async fn write(pool: PgPool, batch: Vec<Pending>) {
    let outcome = write_all(&pool, &batch).await;
    match outcome {
        Ok(outcomes) => {
            for (p, o) in batch.into_iter().zip(outcomes) {
                let _ = p.done.send(Ok(o));
            }
        }
        Err(_) if batch.len() > 1 => {
            for p in batch {
                let one = write_all(&pool, std::slice::from_ref(&p)).await;
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

/// One transaction for the whole batch; the outcomes in the batch's order.
async fn write_all(pool: &PgPool, batch: &[Pending]) -> Result<Vec<Outcome>> {
    let mut tx = pool.begin().await?;
    let rows: Vec<&NewFeedback> = batch.iter().map(|p| &p.row).collect();
    let mut inserted: HashMap<uuid::Uuid, store::FeedbackRow> = store::insert_many(&mut tx, &rows)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let events: Vec<PreparedEvent> = batch
        .iter()
        .filter(|p| inserted.contains_key(&p.row.id))
        .flat_map(|p| p.events.iter().cloned())
        .collect();
    guestloop_outbox::write_prepared(&mut tx, &events).await?;
    let mut out = Vec::with_capacity(batch.len());
    for p in batch {
        out.push(match inserted.remove(&p.row.id) {
            Some(feedback) => Outcome {
                feedback,
                case: None,
                created: true,
            },
            // Skipped: the same item committed first, or came earlier in this batch.
            None => replay(&mut tx, &p.key)
                .await?
                .ok_or(FeedbackError::NotFound("feedback"))?,
        });
    }
    tx.commit().await?;
    Ok(out)
}

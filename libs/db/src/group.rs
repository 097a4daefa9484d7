//! Group commit: many concurrent calls share one transaction and so one WAL flush, and each
//! call is answered only after that commit, so an acknowledged call is committed.
//!
//! Calls queue their work; a few workers each take what has queued (up to `max_batch`)
//! and run it on one connection: `BEGIN`, then each call's work behind its own
//! `SAVEPOINT` (a call that fails is rolled back alone and told its own error), then one
//! `COMMIT`. No timer holds a call back: at low load a batch is one call, and batches grow
//! by themselves while a commit is under way — the classic group commit. The queue is
//! bounded; a full queue answers at once instead of growing without limit.

use futures::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use tokio::sync::oneshot;

pub use crate::batch::{BatchSettings, Batcher, GroupError, Lease};

trait Job: Send {
    /// Runs the call's work; `true` when it succeeded (so its savepoint stays).
    fn run<'c>(&'c mut self, conn: &'c mut PgConnection) -> BoxFuture<'c, bool>;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, outcome: Result<(), GroupError>);
}

struct Call<T, E, F> {
    work: Option<F>,
    /// The caller's span: the work runs in it, so what it writes (an outbox event's
    /// traceparent) and logs belongs to the caller's trace, not the worker's.
    span: tracing::Span,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Job for Call<T, E, F>
where
    T: Send + 'static,
    E: From<GroupError> + Send + 'static,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut PgConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return false;
            };
            let result = tracing::Instrument::instrument(work(conn), self.span.clone()).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, outcome: Result<(), GroupError>) {
        let answer = match (self.result, outcome) {
            // The call's own failure is its answer whatever became of the batch.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(e)) => Err(E::from(e)),
            (None, Ok(())) => Err(E::from(GroupError::Closed)),
        };
        let _ = self.reply.send(answer);
    }
}

/// A handle to submit work to; cheap to clone.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    batcher: Batcher<Box<dyn Job>>,
}

impl GroupCommit {
    /// Starts the workers on the current runtime; they stop when every handle is dropped.
    /// `name` labels its batches on /metrics ([`crate::batch`]).
    pub fn start(name: &'static str, pool: PgPool, settings: BatchSettings) -> Self {
        Self {
            batcher: Batcher::start(name, pool, settings, |batch, lease| {
                Box::pin(run_batch(batch, lease))
            }),
        }
    }

    /// Runs `work` inside a shared transaction and answers once that transaction has
    /// committed (or with `work`'s own error, which rolls back `work` alone). `work` must
    /// not commit, and should not wait on anything but the database: the calls after it
    /// in the batch wait for it.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<GroupError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Call {
            work: Some(work),
            span: tracing::Span::current(),
            result: None,
            reply,
        });
        self.batcher.submit(job).map_err(E::from)?;
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(GroupError::Closed)))
    }
}

async fn run_batch(mut batch: Vec<Box<dyn Job>>, lease: &mut Lease) {
    let outcome = match lease.conn().await {
        Ok(conn) => run_calls(&mut batch, conn).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => batch.into_iter().for_each(|job| job.finish(Ok(()))),
        Err(e) => {
            // The connection may be what failed: the pool tests it on return.
            lease.release();
            for job in batch {
                job.finish(Err(GroupError::Commit(e.to_string())));
            }
        }
    }
}

/// BEGIN, each call behind its own savepoint, COMMIT.
async fn run_calls(batch: &mut [Box<dyn Job>], conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // A sqlx transaction, so that a panic or an early return rolls back before the
    // connection serves anyone else.
    let mut tx = sqlx::Connection::begin(conn).await?;
    let mut broken = None;
    for job in batch.iter_mut() {
        if let Err(e) = sqlx::raw_sql("SAVEPOINT call").execute(&mut *tx).await {
            broken = Some(e);
            break;
        }
        if !job.run(&mut tx).await
            && let Err(e) = sqlx::raw_sql("ROLLBACK TO SAVEPOINT call")
                .execute(&mut *tx)
                .await
        {
            broken = Some(e);
            break;
        }
    }
    match broken {
        Some(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
        None => tx.commit().await,
    }
}

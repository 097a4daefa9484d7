//! Micro-batching: calls queue items, a few workers each take what has queued (up to
//! `max_batch`; half of it when more than `split_above` wait) and handle it as one batch.
//! No timer holds an item back: at low load a batch is one item, and batches grow by
//! themselves while the previous one is being written. The queue is bounded; a full queue
//! refuses at once rather than grow. [`crate::group`] builds group commit on it; services
//! batch their own inserts with it.
//!
//! A steady set of callers splits in two: the calls that queued while a batch was written
//! make the next batch, and the callers just answered come back while that one is written
//! (SubmitFeedback at 8 in flight: 4.2 items a batch; GetGuest at 64: 33). Merging the
//! halves with a short wait was measured and is slower: the two halves are a pipeline —
//! the service answers and decodes one half while PostgreSQL writes the other — and one
//! batch leaves each idle in turn (docs/benchmarks/README.md, round of 2026-12-07,
//! afternoon). The pipeline gains from more stages, not fewer: with `split_above`, a worker
//! that finds more than that many waiting takes half of them (never fewer than
//! `split_above`), so there is always a batch queued behind the one being written.
//! SubmitFeedback at 32 in flight: batches of 10 instead of 17, 93 → 118 % of pgbench. A
//! fixed cap would do the same at 32 and hold a burst to one small batch per statement; a
//! half grows with the queue (round of 2026-12-07, evening).
//!
//! Each worker keeps its database connection ([`Lease`]) from one batch to the next while
//! work keeps coming, and gives it back after `hold_connection` without any. A pool
//! checkout cost two round trips besides the batch's own (sqlx pings a connection when it
//! goes back to the pool, and the pool tested it on the way out): 8 % of guest-profile's
//! CPU under P1, and P2 and P4 gained 7–11 points without them (docs/benchmarks/README.md).
//!
//! Every batcher has a name and reports, per batch, how many items it held
//! (`guestloop_batch_items`) and how long its statement(s) and commit took
//! (`guestloop_batch_seconds`): how full group commit runs under the load of the hour, and
//! whether the database is what callers wait on.

use futures::FutureExt;
use futures::future::BoxFuture;
use guestloop_config::Seconds;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};

/// How a batcher runs.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchSettings {
    /// Batches in flight at once (each on its own database connection).
    pub workers: usize,
    /// Items in one batch at most. In a group commit ([`crate::group`]) each is a
    /// subtransaction; PostgreSQL keeps 64 per backend in shared memory before it spills,
    /// so stay at or under that there. A multi-row write has no such limit.
    pub max_batch: usize,
    /// When more than this many items wait, a batch takes half of them (at least this
    /// many) and leaves the rest to the next, so that one statement is being written
    /// while the callers of the last are answered and come back; 0 takes everything
    /// waiting, up to `max_batch`.
    pub split_above: usize,
    /// Items waiting beyond this are refused with [`GroupError::Overloaded`].
    pub queue: usize,
    /// How long a worker with nothing to do keeps its database connection before it goes
    /// back to the pool; 0 gives it back after every batch.
    pub hold_connection: Seconds,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            workers: 2,
            max_batch: 64,
            split_above: 0,
            queue: 4096,
            hold_connection: Seconds(Duration::from_millis(100)),
        }
    }
}

/// Why an item's batch did not commit, when the item's own work did not fail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    #[error("the database did not commit the batch: {0}")]
    Commit(String),
    #[error("too many calls are waiting to commit")]
    Overloaded,
    #[error("the batch writer has stopped")]
    Closed,
}

/// The queue side; cheap to clone. Workers stop when every handle is dropped.
pub struct Batcher<I> {
    queue: mpsc::Sender<I>,
}

impl<I> Clone for Batcher<I> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I> std::fmt::Debug for Batcher<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field(
                "waiting",
                &(self.queue.max_capacity() - self.queue.capacity()),
            )
            .finish()
    }
}

/// A worker's database connection: taken from the pool when a batch first needs it, kept
/// while batches keep coming, given back when the worker has been idle `hold_connection`.
/// Other loops that run batch after batch (the scheduler's firing worker) hold one too.
pub struct Lease {
    pool: PgPool,
    conn: Option<PoolConnection<Postgres>>,
}

impl Lease {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, conn: None }
    }

    /// The worker's connection, taken from the pool if it has none.
    pub async fn conn(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.acquire().await?);
        }
        Ok(self.conn.as_deref_mut().expect("just acquired"))
    }

    /// Gives the connection back to the pool. After a failed batch this is the way to
    /// drop a connection that may be broken: the pool tests it on return and closes it if
    /// it does not answer, and the next batch takes another.
    pub fn release(&mut self) {
        self.conn = None;
    }

    /// Closes the connection instead: a batch panicked and its state is unknown.
    fn discard(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
    }

    fn held(&self) -> bool {
        self.conn.is_some()
    }
}

impl<I: Send + 'static> Batcher<I> {
    /// Starts `settings.workers` workers on the current runtime, each handing batches to
    /// `handle` with its [`Lease`] on `pool`; `handle` answers every item's caller itself.
    /// `name` labels the batcher's series on /metrics.
    pub fn start<F>(name: &'static str, pool: PgPool, settings: BatchSettings, handle: F) -> Self
    where
        F: for<'l> Fn(Vec<I>, &'l mut Lease) -> BoxFuture<'l, ()> + Send + Sync + 'static,
    {
        let observe = BatchMetrics::new(name);
        let (queue, receiver) = mpsc::channel::<I>(settings.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let handle = Arc::new(handle);
        let sizing = Sizing {
            max_batch: settings.max_batch.max(1),
            split_above: settings.split_above,
        };
        let hold = settings.hold_connection.as_duration();
        for _ in 0..settings.workers.max(1) {
            let (receiver, handle, observe) = (receiver.clone(), handle.clone(), observe.clone());
            let mut lease = Lease::new(pool.clone());
            tokio::spawn(async move {
                loop {
                    let next = take(&receiver, sizing);
                    let batch = if lease.held() {
                        match tokio::time::timeout(hold, next).await {
                            Ok(batch) => batch,
                            Err(_) => {
                                lease.release();
                                take(&receiver, sizing).await
                            }
                        }
                    } else {
                        next.await
                    };
                    let Some(batch) = batch else { return };
                    observe.items.record(batch.len() as f64);
                    let started = Instant::now();
                    // A panic in one batch must not take the worker with it; that
                    // batch's callers see `Closed` as their reply channels drop, and the
                    // connection, in whatever state the batch left it, goes back.
                    let run = AssertUnwindSafe(handle(batch, &mut lease)).catch_unwind();
                    let panicked = run.await.is_err();
                    observe.seconds.record(started.elapsed());
                    if panicked {
                        lease.discard();
                    } else if hold.is_zero() {
                        lease.release();
                    }
                }
            });
        }
        Self { queue }
    }

    /// Queues `item`, or refuses at once when the queue is full or the workers stopped.
    pub fn submit(&self, item: I) -> Result<(), GroupError> {
        self.queue.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => GroupError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => GroupError::Closed,
        })
    }
}

/// A batcher's two histograms, registered once so that a batch records without building
/// their keys again.
#[derive(Clone)]
struct BatchMetrics {
    items: metrics::Histogram,
    seconds: metrics::Histogram,
}

impl BatchMetrics {
    fn new(name: &'static str) -> Self {
        static DESCRIBED: Once = Once::new();
        DESCRIBED.call_once(|| {
            metrics::describe_histogram!(
                "guestloop_batch_items",
                "Items (calls, rows) per batch a batcher wrote, by batcher: how many calls share a statement and a commit"
            );
            metrics::describe_histogram!(
                "guestloop_batch_seconds",
                metrics::Unit::Seconds,
                "Time a batcher's worker spent writing one batch (statements, commit, answers), by batcher"
            );
        });
        Self {
            items: metrics::histogram!("guestloop_batch_items", "batcher" => name),
            seconds: metrics::histogram!("guestloop_batch_seconds", "batcher" => name),
        }
    }
}

/// How many of the items waiting one batch takes.
#[derive(Debug, Clone, Copy)]
struct Sizing {
    max_batch: usize,
    split_above: usize,
}

impl Sizing {
    fn batch_of(self, waiting: usize) -> usize {
        let share = if self.split_above > 0 && waiting > self.split_above {
            waiting.div_ceil(2).max(self.split_above)
        } else {
            waiting
        };
        share.clamp(1, self.max_batch)
    }
}

/// Waits for an item, then takes what else has queued, as much as `sizing` says; `None`
/// once every handle is dropped. Cancel-safe: nothing is awaited after the first item
/// arrives.
async fn take<I>(receiver: &Mutex<mpsc::Receiver<I>>, sizing: Sizing) -> Option<Vec<I>> {
    let mut rx = receiver.lock().await;
    let first = rx.recv().await?;
    let size = sizing.batch_of(rx.len() + 1);
    let mut batch = Vec::with_capacity(size);
    batch.push(first);
    while batch.len() < size {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::Sizing;

    #[test]
    fn a_batch_takes_half_of_what_waits_above_the_split() {
        let split = |split_above| Sizing {
            max_batch: 256,
            split_above,
        };
        // (split_above, waiting, batch)
        let cases = [
            (0, 1, 1),
            (0, 17, 17),
            (0, 300, 256),
            (8, 1, 1),
            (8, 8, 8),
            (8, 9, 8),
            (8, 16, 8),
            (8, 17, 9),
            (8, 33, 17),
            (8, 64, 32),
            (8, 1000, 256),
        ];
        for (split_above, waiting, batch) in cases {
            assert_eq!(
                split(split_above).batch_of(waiting),
                batch,
                "split_above {split_above}, {waiting} waiting"
            );
        }
        let small = Sizing {
            max_batch: 4,
            split_above: 8,
        };
        assert_eq!(small.batch_of(20), 4, "max_batch still caps a share");
    }

    #[tokio::test]
    async fn queued_items_leave_in_shares_and_in_order() {
        let (queue, receiver) = tokio::sync::mpsc::channel(64);
        for item in 0..20 {
            queue.try_send(item).unwrap();
        }
        let receiver = tokio::sync::Mutex::new(receiver);
        let sizing = Sizing {
            max_batch: 256,
            split_above: 8,
        };
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let batch = super::take(&receiver, sizing).await.unwrap();
            sizes.push(batch.len());
            seen.extend(batch);
        }
        assert_eq!(sizes, [10, 8, 2]);
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        drop(queue);
        assert!(super::take(&receiver, sizing).await.is_none());
    }
}

//! Micro-batching: calls queue items, a few workers each take whatever has queued (up to
//! `max_batch`) and handle it as one batch. No timer holds an item back: at low load a
//! batch is one item, and batches grow by themselves while the previous one is being
//! written. The queue is bounded; a full queue refuses at once rather than grow.
//! [`crate::group`] builds group commit on it; services batch their own inserts with it.

use std::future::Future;
use std::sync::Arc;
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
    /// Items waiting beyond this are refused with [`GroupError::Overloaded`].
    pub queue: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            workers: 2,
            max_batch: 64,
            queue: 4096,
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

impl<I: Send + 'static> Batcher<I> {
    /// Starts `settings.workers` workers on the current runtime, each handing batches to
    /// `handle`, which answers every item's caller itself.
    pub fn start<F, Fut>(settings: BatchSettings, handle: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, receiver) = mpsc::channel::<I>(settings.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let handle = Arc::new(handle);
        let max_batch = settings.max_batch.max(1);
        for _ in 0..settings.workers.max(1) {
            let (receiver, handle) = (receiver.clone(), handle.clone());
            tokio::spawn(async move {
                loop {
                    let mut batch = Vec::with_capacity(max_batch);
                    {
                        let mut rx = receiver.lock().await;
                        match rx.recv().await {
                            Some(item) => batch.push(item),
                            None => return,
                        }
                        while batch.len() < max_batch {
                            match rx.try_recv() {
                                Ok(item) => batch.push(item),
                                Err(_) => break,
                            }
                        }
                    }
                    // A panic in one batch must not take the worker with it; that
                    // batch's callers see `Closed` as their reply channels drop.
                    let _ = tokio::spawn(handle(batch)).await;
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

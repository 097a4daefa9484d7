//! A process-wide feed of change notifications (Postgres LISTEN/NOTIFY) for live watches:
//! ONE listening connection per channel and process, fanned out to every watch. A listener
//! per watch would hold a connection of the service's pool for as long as the watch is open
//! (front desks keep theirs open all day), and a handful of watches would leave no
//! connection for any other call. Writers send `pg_notify(channel, payload)` inside the
//! transaction that makes the change, so a watch only ever hears committed changes.

use std::sync::Arc;
use tokio::sync::broadcast;

/// Changes buffered per subscriber; a watch further behind than this is told to re-watch.
const FEED_BUFFER: usize = 4096;

#[derive(Debug)]
pub struct ChangeFeed {
    channel: &'static str,
    /// The running feed; its only strong sender lives in the listening task, so when that
    /// task ends (connection lost) every subscriber sees the channel close.
    sender: tokio::sync::Mutex<Option<broadcast::WeakSender<Arc<str>>>>,
}

impl ChangeFeed {
    pub fn new(channel: &'static str) -> Self {
        Self {
            channel,
            sender: Default::default(),
        }
    }

    /// A receiver of every payload committed from now on. Starts the feed (one connection
    /// with `pool`'s options, outside `pool`) if it is not running.
    pub async fn subscribe(
        &self,
        pool: &sqlx::PgPool,
    ) -> Result<broadcast::Receiver<Arc<str>>, sqlx::Error> {
        let mut running = self.sender.lock().await;
        if let Some(tx) = running.as_ref().and_then(|w| w.upgrade()) {
            return Ok(tx.subscribe());
        }
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with((*pool.connect_options()).clone());
        let mut listener = sqlx::postgres::PgListener::connect_with(&own).await?;
        listener.listen(self.channel).await?;
        let (tx, rx) = broadcast::channel(FEED_BUFFER);
        *running = Some(tx.downgrade());
        let channel = self.channel;
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        // No subscriber right now is fine: the feed stays up for the next.
                        let _ = tx.send(Arc::from(n.payload()));
                    }
                    // Notifications sent while the connection was down are gone: end the
                    // feed so every watch ends too and its client re-watches (a fresh
                    // snapshot) instead of silently missing changes.
                    Ok(None) => {
                        tracing::warn!(channel, "change feed lost its connection; watches end");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(channel, error = %e, "change feed failed; watches end");
                        break;
                    }
                }
            }
            drop(tx);
            drop(listener);
            own.close().await;
        });
        Ok(rx)
    }
}

/// Sends each payload to the watches of `channel` when the surrounding transaction commits,
/// in one statement (a batch's notices without a round trip each).
pub async fn notify_many(
    conn: &mut sqlx::PgConnection,
    channel: &str,
    payloads: &[String],
) -> Result<(), sqlx::Error> {
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS x(p, o) ORDER BY o",
    )
    .bind(channel)
    .bind(payloads)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sends `payload` to the watches of `channel` when the surrounding transaction commits.
pub async fn notify(
    conn: &mut sqlx::PgConnection,
    channel: &str,
    payload: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

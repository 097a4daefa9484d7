//! Delivers the outbox to each subscriber. One loop per subscriber leases that subscriber's
//! cursor row (`FOR UPDATE SKIP LOCKED`), so with several replicas exactly one delivers a
//! given stream at a time and a replica that dies releases its lease with its connection.
//! A batch is sent in commit order (the `position` the sequencer gives committed events,
//! migrations/3: a cursor on the insert-time id would step over a transaction that took a
//! smaller id but committed later); the cursor advances past the acknowledged prefix only.

use guestloop_client::EventIngestClient;
use guestloop_proto::events::v1::{DeliverEventsRequest, EventEnvelope};
use prost::Message;
use rand::Rng;
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;

/// A service that receives this outbox's events.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// Stable name, the cursor's key (e.g. "follow_up_scheduler").
    pub name: String,
    pub client: EventIngestClient,
}

#[derive(Debug, Clone)]
pub struct Relay {
    pub pool: PgPool,
    pub subscribers: Vec<Subscriber>,
    pub poll_interval: Duration,
    pub batch_size: u32,
    pub max_backoff: Duration,
}

enum Outcome {
    Delivered(usize),
    Idle,
    Failed(String),
}

fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "outbox_delivered_total",
        "Outbox events acknowledged by a subscriber"
    );
    describe_counter!(
        "outbox_delivery_failures_total",
        "Outbox deliveries to a subscriber that failed (retried with backoff)"
    );
    describe_gauge!(
        "outbox_pending_events",
        "Outbox events not yet acknowledged by a subscriber"
    );
    describe_gauge!(
        "outbox_oldest_pending_age_seconds",
        "Age of the oldest outbox event a subscriber has not acknowledged; 0 when none"
    );
}

impl Relay {
    /// Runs one delivery loop per subscriber until `shutdown` resolves.
    pub fn spawn(
        self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        describe_metrics();
        for sub in &self.subscribers {
            // At zero from the start: the first failure must count in rate()/increase().
            for name in ["outbox_delivered_total", "outbox_delivery_failures_total"] {
                metrics::counter!(name, "subscriber" => sub.name.clone()).increment(0);
            }
        }
        self.subscribers
            .iter()
            .cloned()
            .map(|sub| {
                let relay = self.clone();
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let mut failures: u32 = 0;
                    loop {
                        if *shutdown.borrow() {
                            return;
                        }
                        let wait = match relay.deliver_once(&sub).await {
                            Outcome::Delivered(n) => {
                                failures = 0;
                                metrics::counter!("outbox_delivered_total", "subscriber" => sub.name.clone())
                                    .increment(n as u64);
                                Duration::ZERO
                            }
                            Outcome::Idle => {
                                failures = 0;
                                relay.poll_interval
                            }
                            Outcome::Failed(error) => {
                                failures += 1;
                                metrics::counter!("outbox_delivery_failures_total", "subscriber" => sub.name.clone())
                                    .increment(1);
                                let wait = relay.backoff(failures);
                                tracing::warn!(subscriber = %sub.name, failures, retry_in_ms = wait.as_millis() as u64, %error, "event delivery failed");
                                wait
                            }
                        };
                        if let Ok(b) = crate::backlog(&relay.pool, &sub.name).await {
                            metrics::gauge!("outbox_pending_events", "subscriber" => sub.name.clone())
                                .set(b.events as f64);
                            metrics::gauge!("outbox_oldest_pending_age_seconds", "subscriber" => sub.name.clone())
                                .set(b.oldest_age_seconds);
                        }
                        if !wait.is_zero() {
                            tokio::select! {
                                () = tokio::time::sleep(wait) => {}
                                _ = shutdown.changed() => return,
                            }
                        }
                    }
                })
            })
            .collect()
    }

    fn backoff(&self, failures: u32) -> Duration {
        let cap = Duration::from_millis(200)
            .saturating_mul(1 << failures.min(16))
            .min(self.max_backoff);
        Duration::from_millis(
            rand::rng().random_range(cap.as_millis() as u64 / 2..=cap.as_millis() as u64),
        )
    }

    /// Leases the subscriber's cursor, sends the next batch, advances past what was
    /// acknowledged.
    async fn deliver_once(&self, sub: &Subscriber) -> Outcome {
        match self.try_deliver(sub).await {
            Ok(Some(0)) | Ok(None) => Outcome::Idle,
            Ok(Some(n)) => Outcome::Delivered(n),
            Err(e) => Outcome::Failed(e),
        }
    }

    async fn try_deliver(&self, sub: &Subscriber) -> Result<Option<usize>, String> {
        let db = |e: sqlx::Error| format!("database: {e}");
        sqlx::query("INSERT INTO outbox_cursor (subscriber) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(&sub.name)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        crate::sequencer::sequence(&self.pool).await.map_err(db)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let Some(last): Option<i64> = sqlx::query_scalar(
            "SELECT last_delivered_id FROM outbox_cursor WHERE subscriber = $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(&sub.name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        else {
            // Another replica holds this stream.
            return Ok(None);
        };
        let rows: Vec<(i64, Vec<u8>)> =
            // In commit order (position, see migrations/3): nothing committed later can land
            // behind the cursor.
            sqlx::query_as(
                "SELECT position, envelope FROM outbox WHERE position > $1 ORDER BY position
                 LIMIT $2",
            )
                .bind(last)
                .bind(i64::from(self.batch_size))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        if rows.is_empty() {
            return Ok(Some(0));
        }
        let envelopes: Vec<EventEnvelope> = rows
            .iter()
            .map(|(_, bytes)| EventEnvelope::decode(bytes.as_slice()))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("corrupt envelope: {e}"))?;
        let mut request = tonic::Request::new(DeliverEventsRequest {
            events: envelopes.clone(),
        });
        request.set_timeout(Duration::from_secs(10));
        let result = sub.client.clone().deliver_events(request).await;
        let acked: HashSet<String> = match result {
            Ok(r) => r.into_inner().acknowledged_event_ids.into_iter().collect(),
            Err(status) => {
                let error = format!("{}: {}", status.code(), status.message());
                sqlx::query("UPDATE outbox_cursor SET failures = failures + 1, last_error = $2, update_time = now() WHERE subscriber = $1")
                    .bind(&sub.name)
                    .bind(&error)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                return Err(error);
            }
        };
        // Only the acknowledged prefix counts: order per aggregate must hold.
        let delivered = envelopes
            .iter()
            .take_while(|e| acked.contains(&e.event_id))
            .count();
        if delivered > 0 {
            let new_last = rows[delivered - 1].0;
            sqlx::query("UPDATE outbox_cursor SET last_delivered_id = $2, failures = 0, last_error = NULL, update_time = now() WHERE subscriber = $1")
                .bind(&sub.name)
                .bind(new_last)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        if delivered < envelopes.len() {
            return Err(format!(
                "subscriber acknowledged {delivered} of {} events",
                envelopes.len()
            ));
        }
        Ok(Some(delivered))
    }
}

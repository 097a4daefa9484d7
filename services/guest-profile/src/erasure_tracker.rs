//! Follows every erasure until each service that received its GuestErased events has
//! confirmed it (issue 11). Every `erasure.check_interval` one replica (a transaction-scoped
//! advisory lock) asks each of this outbox's subscribers which of the open erasures' guests
//! it has erased (EventIngestService.GetGuestErasures, answered from the record each
//! consumer writes in the erasure's own transaction), marks those parts done, turns parts
//! silent past `erasure.confirm_within` failed (the `guestloop_erasure_parts{state="failed"}`
//! gauge fires the chart's GuestloopErasureOverdue alert), and completes erasures whose
//! every part is done. Failed parts are still asked, so a late confirmation completes them.

use crate::data_services::DataService;
use crate::store::erasures as store;
use guestloop_proto::events::v1::GetGuestErasuresRequest;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// Erasures asked about per service and round; the ids they name stay under the consumer's
/// per-call maximum.
const ROUND: i64 = 200;
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Tracker {
    pub pool: PgPool,
    pub confirmers: Vec<DataService>,
    pub settings: crate::settings::ErasureSettings,
}

impl Tracker {
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        metrics::describe_gauge!(
            "guestloop_erasure_parts",
            "Services' parts of erasures not yet done, by service and state (pending, failed)"
        );
        metrics::describe_counter!(
            "guestloop_erasures_failed_total",
            "Services' parts of erasures that stayed unconfirmed past erasure.confirm_within"
        );
        metrics::describe_counter!(
            "guestloop_erasures_completed_total",
            "Erasures every service has confirmed"
        );
        for c in &self.confirmers {
            metrics::counter!("guestloop_erasures_failed_total", "service" => c.service.clone())
                .increment(0);
        }
        metrics::counter!("guestloop_erasures_completed_total").increment(0);
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "erasure tracking round failed; retried next round");
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.check_interval.as_duration()) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One round: ask, fail the overdue, complete the confirmed, publish the gauges.
    async fn round(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let ours: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtextextended('guestloop.erasure_tracker:' || current_schema(), 0))",
        )
        .fetch_one(&mut *tx)
        .await?;
        if ours {
            self.ask_all(&mut tx).await?;
        }
        // Every replica publishes the counts, so none keeps a stale value for the alert.
        let counts = store::open_counts(&mut *tx).await?;
        tx.commit().await?;
        for c in &self.confirmers {
            for (state, code) in [("pending", store::PENDING), ("failed", store::FAILED)] {
                let n = counts
                    .iter()
                    .find(|(s, st, _)| *s == c.service && *st == code)
                    .map_or(0, |(_, _, n)| *n);
                metrics::gauge!("guestloop_erasure_parts", "service" => c.service.clone(), "state" => state)
                    .set(n as f64);
            }
        }
        Ok(())
    }

    /// The round's work, by the one replica holding the lock.
    async fn ask_all(&self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        for confirmer in &self.confirmers {
            let open = store::open_for(&mut *tx, &confirmer.service, ROUND).await?;
            if open.is_empty() {
                continue;
            }
            let answer = ask(confirmer, &open).await;
            for (erasure_id, guests) in &open {
                let outcome = match &answer {
                    Ok(erased) => guests
                        .iter()
                        .map(|g| erased.get(g).copied())
                        .collect::<Option<Vec<_>>>()
                        .and_then(|times| times.into_iter().max())
                        .ok_or("has not applied the erasure yet"),
                    Err(why) => Err(why.as_str()),
                };
                store::record_check(&mut *tx, *erasure_id, &confirmer.service, outcome).await?;
            }
        }
        for (erasure_id, service) in
            store::fail_overdue(&mut *tx, self.settings.confirm_within.as_duration()).await?
        {
            tracing::error!(%erasure_id, %service, confirm_within_s = self.settings.confirm_within.as_duration().as_secs(),
                "erasure not confirmed in time: the service may still hold the guest's data");
            metrics::counter!("guestloop_erasures_failed_total", "service" => service).increment(1);
        }
        for erasure_id in store::complete_confirmed(&mut *tx).await? {
            tracing::info!(%erasure_id, "erasure confirmed by every service");
            metrics::counter!("guestloop_erasures_completed_total").increment(1);
        }
        Ok(())
    }
}

/// Which of the open erasures' guests the service has erased, with when; or why it could
/// not say.
async fn ask(
    confirmer: &DataService,
    open: &[(Uuid, Vec<Uuid>)],
) -> Result<HashMap<Uuid, chrono::DateTime<chrono::Utc>>, String> {
    let mut ids: Vec<String> = open
        .iter()
        .flat_map(|(_, guests)| guests.iter().map(Uuid::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    ids.truncate(guestloop_outbox::consume::MAX_GUEST_IDS);
    let mut request = tonic::Request::new(GetGuestErasuresRequest { guest_ids: ids });
    request.set_timeout(CALL_TIMEOUT);
    let response = confirmer
        .client
        .clone()
        .get_guest_erasures(request)
        .await
        .map_err(|s| {
            format!(
                "asking {}: {}: {}",
                confirmer.service,
                s.code(),
                s.message()
            )
        })?;
    Ok(response
        .into_inner()
        .erased
        .into_iter()
        .filter_map(|e| {
            let id = Uuid::parse_str(&e.guest_id).ok()?;
            let at = guestloop_proto::time::instant(&e.erase_time)?;
            Some((id, at))
        })
        .collect())
}

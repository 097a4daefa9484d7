//! The events feedback-intake consumes (served by guestloop_outbox::consume::IngestService,
//! which admits service callers only and keeps the order): guest-profile's GuestErased and
//! GuestMerged (issue 11). Each is applied in ONE transaction with its inbox row: the change
//! is remembered (so feedback arriving later is settled the same way, directory.rs) and the
//! guest's records are settled. A redelivery finds its inbox row and changes nothing. Every
//! other event is acknowledged and ignored, without an inbox row (nothing to repeat).

use crate::directory;
use crate::domain::directory::DirectoryChange;
use crate::error::Result;
use crate::state::State;
use crate::store::directory as store;
use guestloop_proto::events::v1::EventEnvelope;
use std::sync::Arc;
use uuid::Uuid;

/// feedback-intake's event consumer.
pub struct Ingest {
    pub state: Arc<State>,
}

#[tonic::async_trait]
impl guestloop_outbox::consume::Consumer for Ingest {
    async fn apply(&self, event_id: Uuid, event: &EventEnvelope) -> Result<(), String> {
        apply(&self.state, event_id, event)
            .await
            .map_err(|e| e.describe())
    }

    async fn erased(
        &self,
        guest_ids: Vec<String>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String> {
        // Ids here are UUIDs; one that is not cannot have been erased here.
        let ids: Vec<Uuid> = guest_ids
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect();
        let erased = guestloop_db::guest_directory::erased_among(&self.state.pool, ids)
            .await
            .map_err(|e| format!("database: {e}"))?;
        Ok(erased
            .into_iter()
            .map(|(id, at)| (id.to_string(), at))
            .collect())
    }

    async fn export(
        &self,
        guest_ids: Vec<String>,
        visible: Option<Vec<String>>,
    ) -> Result<guestloop_proto::events::v1::ExportGuestDataResponse, String> {
        crate::export::export(&self.state, &guest_ids, visible.as_deref())
            .await
            .map_err(|e| format!("database: {e}"))
    }
}

async fn apply(state: &State, event_id: Uuid, event: &EventEnvelope) -> Result<()> {
    let change = match DirectoryChange::of(event) {
        None => return Ok(()),
        Some(Ok(change)) => change,
        Some(Err(v)) => {
            // It could never apply: acknowledged, so it does not hold up the stream.
            tracing::warn!(source = %event.source, violations = ?v, "guest event without usable ids dropped");
            return Ok(());
        }
    };
    let mut tx = state.pool.begin().await?;
    // First, before any row lock: see store::directory::lock_exclusive.
    store::lock_exclusive(&mut tx).await?;
    if !guestloop_outbox::inbox::mark_applied(&mut tx, event_id, &event.source).await? {
        return Ok(()); // applied before; the transaction rolls back
    }
    let kind = match change {
        DirectoryChange::Erased { guest_id } => {
            store::record_erasure(&mut tx, guest_id).await?;
            "guest_erased"
        }
        DirectoryChange::Merged {
            survivor,
            duplicate,
        } => {
            store::record_merge(&mut tx, survivor, duplicate).await?;
            "guest_merged"
        }
    };
    let settled = directory::settle(&mut tx, change.guest()).await?;
    tx.commit().await?;
    tracing::info!(
        kind,
        feedback_moved = settled.feedback_moved,
        cases_moved = settled.cases_moved,
        feedback_erased = settled.feedback_erased,
        cases_erased = settled.cases_erased,
        "guest event applied"
    );
    Ok(())
}

//! The events notification consumes, from the producers' outbox relays (service callers
//! only). feedback-intake's FeedbackReceived with channel WECHAT and
//! a known guest moves that guest's last WeChat interaction forward (the free-form window,
//! window.rs); guest-profile's GuestErased drops it; GuestMerged moves the duplicate's
//! messages and interaction to the survivor (guest_merge.rs). Each applied event goes into the inbox
//! in the same transaction as its effect, so a redelivery is acknowledged without being
//! applied twice. Every other event is acknowledged and ignored (ARCHITECTURE: a consumer
//! acknowledges what it does not subscribe to).

use crate::domain::timestamp;
use crate::guest_merge::{self, Merge};
use crate::state::State;
use crate::store::interactions;
use chrono::{DateTime, Utc};
use guestloop_proto::events::v1::EventEnvelope;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::feedback::v1::FeedbackChannel;
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

/// notification's event consumer (served by guestloop_outbox::consume::IngestService,
/// which checks the caller is a service and keeps the order).
pub struct Ingest {
    pub state: Arc<State>,
}

#[tonic::async_trait]
impl guestloop_outbox::consume::Consumer for Ingest {
    async fn apply(&self, event_id: Uuid, event: &EventEnvelope) -> Result<(), String> {
        apply(&self.state.pool, event_id, event)
            .await
            .map_err(|e| format!("database: {e}"))
    }

    async fn erased(
        &self,
        guest_ids: Vec<String>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String> {
        guestloop_db::guest_directory::erased_among(&self.state.pool, guest_ids)
            .await
            .map_err(|e| format!("database: {e}"))
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

/// What an event changes here, if anything.
pub(crate) enum Effect<'e> {
    Interaction {
        guest_id: &'e str,
        at: DateTime<Utc>,
    },
    Erase {
        guest_id: &'e str,
    },
    Merge(Merge),
}

pub(crate) fn effect(e: &EventEnvelope) -> Option<Effect<'_>> {
    match e.payload.as_ref()? {
        Payload::FeedbackReceived(f)
            if f.channel == FeedbackChannel::Wechat as i32 && !f.guest_id.is_empty() =>
        {
            let at = f
                .receive_time
                .as_ref()
                .or(e.occur_time.as_ref())
                // Years 1 to 9999 only: before the year 1 PostgreSQL cannot store it, and the
                // event would fail at every redelivery, holding up the stream behind it (R8).
                .and_then(|t| timestamp(t).ok())?;
            // An interaction cannot lie in the future; a fast clock must not stretch the
            // window.
            Some(Effect::Interaction {
                guest_id: &f.guest_id,
                at: at.min(Utc::now()),
            })
        }
        Payload::GuestErased(g) if !g.guest_id.is_empty() => Some(Effect::Erase {
            guest_id: &g.guest_id,
        }),
        Payload::GuestMerged(m) => match Merge::try_from(m) {
            Ok(m) => Some(Effect::Merge(m)),
            Err(v) => {
                // It could never apply: acknowledged, so it does not hold up the stream.
                tracing::warn!(source = %e.source, violations = ?v, "guest merge without usable ids dropped");
                None
            }
        },
        _ => None,
    }
}

/// Applies one event at most once. Ok: acknowledge it (applied now, before, or ignored).
async fn apply(pool: &PgPool, event_id: Uuid, event: &EventEnvelope) -> Result<(), sqlx::Error> {
    let Some(effect) = effect(event) else {
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    if matches!(effect, Effect::Merge(_)) {
        // First, before any row lock: see guestloop_db::guest_directory::lock_exclusive.
        guestloop_db::guest_directory::lock_exclusive(&mut tx).await?;
    }
    if guestloop_outbox::inbox::mark_applied(&mut tx, event_id, &event.source).await? {
        match effect {
            Effect::Interaction { guest_id, at } => {
                interactions::record(&mut tx, guest_id, at).await?;
            }
            Effect::Erase { guest_id } => {
                // Erasing a merged-away id erases the profile it lives on in (guest-profile
                // erases a survivor together with what was merged into it).
                let survivor = guestloop_db::guest_directory::survivor(&mut tx, guest_id).await?;
                for id in [guest_id, survivor.as_str()] {
                    interactions::erase(&mut tx, id).await?;
                    // The words sent (task titles, resolutions) go; who, when, how and
                    // the status stay for the counts.
                    let messages = crate::store::messages::ids_of_guest(&mut tx, id).await?;
                    crate::store::messages::blank_variables(&mut tx, &messages).await?;
                }
            }
            Effect::Merge(m) => {
                let moved = guest_merge::apply(&mut tx, &m).await?;
                tracing::info!(
                    messages = moved.messages,
                    interactions = moved.interactions,
                    "guest merge applied"
                );
            }
        }
    }
    tx.commit().await
}

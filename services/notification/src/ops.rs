//! Status changes, each written with its MessageStatusChanged event in one transaction.

use crate::SERVICE_NAME;
use crate::convert;
use crate::store::messages::{self, MessageRow};
use guestloop_outbox::NewEvent;
use guestloop_proto::common::v1::ContactChannel;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::notification::v1::DeliveryStatus;
use sqlx::PgConnection;

/// Saves `row` (already moved to its new status) and, if the status changed from
/// `previous`, enqueues the event. `owner`: the worker's lease that must still hold.
/// Returns false (and writes nothing) when the lease was lost.
pub async fn save(
    conn: &mut PgConnection,
    row: &mut MessageRow,
    previous: DeliveryStatus,
    owner: Option<&str>,
) -> Result<bool, sqlx::Error> {
    row.update_time = chrono::Utc::now();
    if !messages::save(&mut *conn, row, owner).await? {
        return Ok(false);
    }
    if row.status() != previous {
        guestloop_outbox::enqueue(
            conn,
            SERVICE_NAME,
            NewEvent {
                aggregate_type: "message",
                aggregate_id: row.id.to_string(),
                property_id: row.property_id.clone(),
                payload: Payload::MessageStatusChanged(convert::status_changed(row, previous)),
            },
        )
        .await?;
        metrics::counter!(
            "notification_status_changes_total",
            "status" => row.status().as_str_name(),
            "channel" => channel_name(row.channel)
        )
        .increment(1);
        tracing::info!(
            message_id = %row.id,
            property_id = %row.property_id,
            from = previous.as_str_name(),
            to = row.status().as_str_name(),
            "message status changed"
        );
    }
    Ok(true)
}

/// The event for a newly queued message (from nothing to QUEUED or DEFERRED).
pub async fn created(conn: &mut PgConnection, row: &MessageRow) -> Result<(), sqlx::Error> {
    guestloop_outbox::enqueue(
        conn,
        SERVICE_NAME,
        NewEvent {
            aggregate_type: "message",
            aggregate_id: row.id.to_string(),
            property_id: row.property_id.clone(),
            payload: Payload::MessageStatusChanged(convert::status_changed(
                row,
                DeliveryStatus::Unspecified,
            )),
        },
    )
    .await?;
    Ok(())
}

/// The channel label of a message's series (UNSPECIFIED before one is chosen, e.g. a
/// message suppressed for want of consent).
pub fn channel_name(channel: i16) -> &'static str {
    ContactChannel::try_from(i32::from(channel))
        .unwrap_or(ContactChannel::Unspecified)
        .as_str_name()
}

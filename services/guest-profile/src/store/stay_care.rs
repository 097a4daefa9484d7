//! The copies of a guest's care facts (preferences, special needs) that StayBooked events
//! carry in this service's outbox: blanked when the guest is erased, so an event not yet
//! delivered, or delivered again, no longer holds them. The rest of each event (ids, dates,
//! tier, earlier stays) stays as it was, as in every other event of the erased guest.

use guestloop_proto::events::v1::{EventEnvelope, event_envelope::Payload};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

/// Blanks the care facts of every StayBooked of these guests' stays; returns how many
/// events changed.
pub async fn erase(conn: &mut PgConnection, guest_ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT o.id, o.envelope FROM outbox o
          WHERE o.aggregate_type = 'stay' AND o.event_type = 'stay_booked'
            AND o.aggregate_id IN (SELECT s.id::text FROM stays s WHERE s.guest_id = ANY($1))",
    )
    .bind(guest_ids)
    .fetch_all(&mut *conn)
    .await?;
    guestloop_outbox::rewrite_envelopes(conn, &rows, without_care).await
}

/// The envelope with its StayBooked's care facts removed; `None` when there is nothing to
/// remove (another payload, or already blank).
fn without_care(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut envelope = EventEnvelope::decode(bytes).ok()?;
    let Some(Payload::StayBooked(booked)) = envelope.payload.as_mut() else {
        return None;
    };
    booked.care.take()?;
    Some(envelope.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestloop_proto::events::v1::{StayBooked, StayCare};

    #[test]
    fn only_the_care_facts_go() {
        let envelope = EventEnvelope {
            event_id: "e".into(),
            payload: Some(Payload::StayBooked(StayBooked {
                stay_id: "s".into(),
                guest_id: "g".into(),
                previous_stays: 3,
                care: Some(StayCare {
                    pillow: "buckwheat".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let scrubbed = without_care(&envelope.encode_to_vec()).expect("changed");
        let back = EventEnvelope::decode(scrubbed.as_slice()).unwrap();
        let Some(Payload::StayBooked(b)) = back.payload else {
            panic!("still a booking")
        };
        assert_eq!((b.stay_id.as_str(), b.previous_stays), ("s", 3));
        assert!(b.care.is_none());
        // Nothing left to remove: unchanged.
        assert!(without_care(&scrubbed).is_none());
    }
}

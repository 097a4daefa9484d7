//! The service's tables, one module per aggregate.

pub mod care;
pub mod clocks;
pub mod guests;
pub mod tasks;
pub mod timers;

/// The channel WatchDeadlines listens on; payload "<property_id> <clock|task|timer> <id>".
pub const DEADLINE_CHANNEL: &str = "followup_deadlines";

/// Tells the deadline watches of `property_id` (at commit) that a clock, task or timer
/// changed.
pub async fn deadline_changed(
    conn: &mut sqlx::PgConnection,
    property_id: &str,
    what: &str,
    id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    guestloop_db::feed::notify(conn, DEADLINE_CHANNEL, &payload(property_id, what, id)).await
}

/// The watches' payload: "<property_id> <clock|task|timer> <id>".
fn payload(property_id: &str, what: &str, id: uuid::Uuid) -> String {
    format!("{property_id} {what} {id}")
}

/// [`deadline_changed`] for many timers in one statement.
pub async fn timers_changed(
    conn: &mut sqlx::PgConnection,
    timers: &[(&str, uuid::Uuid)],
) -> Result<(), sqlx::Error> {
    let payloads: Vec<String> = timers
        .iter()
        .map(|(property_id, id)| payload(property_id, "timer", *id))
        .collect();
    guestloop_db::feed::notify_many(conn, DEADLINE_CHANNEL, &payloads).await
}

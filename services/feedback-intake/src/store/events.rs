//! The append-only case history. Each event is kept as the CaseEvent message it answers with.

use guestloop_proto::feedback::v1::CaseEvent;
use prost::Message;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

pub async fn append(
    conn: &mut PgConnection,
    event: &CaseEvent,
    idempotency_key: Option<&str>,
) -> Result<(), sqlx::Error> {
    let time = event
        .event_time
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_else(chrono::Utc::now);
    sqlx::query(
        "INSERT INTO case_events (id, case_id, sequence, kind, event_time, idempotency_key, note, event)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::parse_str(&event.case_event_id).unwrap_or_else(|_| Uuid::now_v7()))
    .bind(Uuid::parse_str(&event.case_id).unwrap_or_default())
    .bind(event.sequence)
    .bind(event.kind as i16)
    .bind(time)
    .bind(idempotency_key)
    .bind(&event.note)
    .bind(event.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// The event an earlier call with this key appended, if any.
pub async fn by_idempotency<'e>(
    exec: impl PgExecutor<'e>,
    case_id: Uuid,
    key: &str,
) -> Result<Option<CaseEvent>, sqlx::Error> {
    let bytes: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT event FROM case_events WHERE case_id = $1 AND idempotency_key = $2",
    )
    .bind(case_id)
    .bind(key)
    .fetch_optional(exec)
    .await?;
    Ok(bytes.and_then(|b| CaseEvent::decode(b.as_slice()).ok()))
}

/// Events after `after_sequence`, oldest first.
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    case_id: Uuid,
    after_sequence: i64,
    limit: i64,
) -> Result<Vec<CaseEvent>, sqlx::Error> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT event FROM case_events WHERE case_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
    )
    .bind(case_id)
    .bind(after_sequence)
    .bind(limit)
    .fetch_all(exec)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|b| CaseEvent::decode(b.as_slice()).ok())
        .collect())
}

/// The whole history of these cases, each case's in order: a subject-access export's
/// share (export.rs).
pub async fn of_cases<'e>(
    exec: impl PgExecutor<'e>,
    case_ids: &[Uuid],
) -> Result<Vec<CaseEvent>, sqlx::Error> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT event FROM case_events WHERE case_id = ANY($1) ORDER BY case_id, sequence",
    )
    .bind(case_ids)
    .fetch_all(exec)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|b| CaseEvent::decode(b.as_slice()).ok())
        .collect())
}

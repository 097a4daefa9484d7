//! Consent history, the access log, merge records and erasure.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRecord {
    pub channel: i16,
    pub purpose: i16,
    pub granted: bool,
    pub source: String,
    pub record_time: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MergeRecord {
    pub id: Uuid,
    pub survivor_guest_id: Uuid,
    pub duplicate_guest_id: Uuid,
    pub reason: String,
    pub merged_by: String,
    pub merge_time: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccessRecord {
    pub id: i64,
    pub guest_id: Uuid,
    pub accessor: String,
    pub accessor_role: String,
    pub rpc: String,
    pub access_time: DateTime<Utc>,
}

pub async fn insert_consent(
    conn: &mut PgConnection,
    guest_id: Uuid,
    c: &crate::domain::ConsentInput,
) -> Result<ConsentRecord, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO consents (guest_id, channel, purpose, granted, source, record_time)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING channel, purpose, granted, source, record_time",
    )
    .bind(guest_id)
    .bind(c.channel as i16)
    .bind(c.purpose as i16)
    .bind(c.granted)
    .bind(&c.source)
    .bind(c.record_time)
    .fetch_one(conn)
    .await
}

/// The latest decision per channel and purpose.
pub async fn current_consents<'e>(
    exec: impl PgExecutor<'e>,
    guest_id: Uuid,
) -> Result<Vec<ConsentRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (channel, purpose) channel, purpose, granted, source, record_time
         FROM consents WHERE guest_id = $1
         ORDER BY channel, purpose, record_time DESC, id DESC",
    )
    .bind(guest_id)
    .fetch_all(exec)
    .await
}

pub async fn consent_history<'e>(
    exec: impl PgExecutor<'e>,
    guest_id: Uuid,
) -> Result<Vec<ConsentRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT channel, purpose, granted, source, record_time FROM consents
         WHERE guest_id = $1 ORDER BY record_time, id",
    )
    .bind(guest_id)
    .fetch_all(exec)
    .await
}

/// Copies the duplicate's consent history to the survivor (merge); later decisions still win.
pub async fn copy_consents(
    conn: &mut PgConnection,
    from: Uuid,
    to: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consents (guest_id, channel, purpose, granted, source, record_time)
         SELECT $2, channel, purpose, granted, source, record_time FROM consents WHERE guest_id = $1",
    )
    .bind(from)
    .bind(to)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes one access-log row per guest whose contact data a call returns.
pub async fn log_access<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[Uuid],
    accessor: &str,
    role: &str,
    rpc: &str,
) -> Result<(), sqlx::Error> {
    if guest_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO access_log (guest_id, accessor, accessor_role, rpc)
         SELECT g, $2, $3, $4 FROM UNNEST($1::uuid[]) AS g",
    )
    .bind(guest_ids)
    .bind(accessor)
    .bind(role)
    .bind(rpc)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn access_log<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[Uuid],
    after_id: i64,
    limit: i64,
) -> Result<Vec<AccessRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, guest_id, accessor, accessor_role, rpc, access_time FROM access_log
         WHERE guest_id = ANY($1) AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(guest_ids)
    .bind(after_id)
    .bind(limit)
    .fetch_all(exec)
    .await
}

pub async fn insert_merge(
    conn: &mut PgConnection,
    survivor: Uuid,
    duplicate: Uuid,
    reason: &str,
    merged_by: &str,
) -> Result<MergeRecord, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO merges (id, survivor_guest_id, duplicate_guest_id, reason, merged_by)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, survivor_guest_id, duplicate_guest_id, reason, merged_by, merge_time",
    )
    .bind(Uuid::now_v7())
    .bind(survivor)
    .bind(duplicate)
    .bind(reason)
    .bind(merged_by)
    .fetch_one(conn)
    .await
}

pub async fn mark_merged(
    conn: &mut PgConnection,
    duplicate: Uuid,
    survivor: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE guests SET merged_into = $2, update_time = now() WHERE id = $1")
        .bind(duplicate)
        .bind(survivor)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every merge the guest took part in, as survivor or duplicate.
pub async fn merges_of<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[Uuid],
) -> Result<Vec<MergeRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, survivor_guest_id, duplicate_guest_id, reason, merged_by, merge_time FROM merges
         WHERE survivor_guest_id = ANY($1) OR duplicate_guest_id = ANY($1) ORDER BY merge_time, id",
    )
    .bind(guest_ids)
    .fetch_all(exec)
    .await
}

/// Ids merged into `survivor`, directly or through earlier merges.
pub async fn merged_ids<'e>(
    exec: impl PgExecutor<'e>,
    survivor: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE m(id) AS (SELECT $1::uuid UNION SELECT g.id FROM guests g JOIN m ON g.merged_into = m.id)
         SELECT id FROM m",
    )
    .bind(survivor)
    .fetch_all(exec)
    .await
}

/// Removes everything personal from the profiles (the survivor and any merged into it),
/// their consent history and merge reasons. Stays remain, pointing at the anonymous profile.
pub async fn erase(conn: &mut PgConnection, ids: &[Uuid]) -> Result<DateTime<Utc>, sqlx::Error> {
    let now: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE guests SET given_name = NULL, family_name = NULL, email = NULL, phone = NULL,
            wechat_id = NULL, birthday = NULL, anniversary = NULL, loyalty_number = NULL, preferences = '{}',
            special_needs = '[]', notes = NULL, completeness_score = 0, complete = FALSE,
            erased = TRUE, erase_time = now(), update_time = now()
         WHERE id = ANY($1) RETURNING erase_time",
    )
    .bind(ids)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM consents WHERE guest_id = ANY($1)")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM guest_idempotency WHERE guest_id = ANY($1)")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE merges SET reason = '[erased]' WHERE survivor_guest_id = ANY($1) OR duplicate_guest_id = ANY($1)")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    Ok(now)
}

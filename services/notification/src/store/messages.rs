//! Messages and their delivery attempts. A message row keeps the MessageSpec it arrived as;
//! delivery changes the columns beside it. Workers claim due messages with
//! `FOR UPDATE SKIP LOCKED` and a lease, so replicas never send one message twice at once.

use crate::domain::NewMessage;
use chrono::{DateTime, Utc};
use guestloop_db::page::Cursor;
use guestloop_proto::notification::v1::DeliveryStatus;
use prost::Message;
use sqlx::{PgConnection, PgExecutor, QueryBuilder};
use uuid::Uuid;

const COLUMNS: &str =
    "id, idempotency_key, property_id, recipient_kind, guest_id, case_id, stay_id,
    kind, urgency, status, spec, suppression_reason, channel, fallback_used, language,
    template_version, provider, provider_message_id, attempt_count, budget_start,
    next_attempt_time, last_error, create_time, send_time, deliver_time, update_time";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub idempotency_key: String,
    pub property_id: String,
    pub recipient_kind: i16,
    pub guest_id: String,
    pub case_id: String,
    pub stay_id: String,
    pub kind: i16,
    pub urgency: i16,
    pub status: i16,
    pub spec: Vec<u8>,
    pub suppression_reason: i16,
    pub channel: i16,
    pub fallback_used: bool,
    pub language: String,
    pub template_version: i32,
    pub provider: String,
    pub provider_message_id: String,
    pub attempt_count: i32,
    pub budget_start: i32,
    pub next_attempt_time: Option<DateTime<Utc>>,
    pub last_error: String,
    pub create_time: DateTime<Utc>,
    pub send_time: Option<DateTime<Utc>>,
    pub deliver_time: Option<DateTime<Utc>>,
    pub update_time: DateTime<Utc>,
}

impl MessageRow {
    pub fn status(&self) -> DeliveryStatus {
        DeliveryStatus::try_from(i32::from(self.status)).unwrap_or(DeliveryStatus::Unspecified)
    }

    pub fn spec(&self) -> guestloop_proto::notification::v1::MessageSpec {
        Message::decode(self.spec.as_slice()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i32,
    pub channel: i16,
    pub provider: String,
    pub attempt_time: DateTime<Utc>,
    pub outcome: i16,
    pub error: String,
    pub latency_ms: i64,
}

/// Inserts the message unless its key was seen; returns the row and whether it is new.
pub async fn insert_or_get(
    conn: &mut PgConnection,
    m: &NewMessage,
) -> Result<(MessageRow, bool), sqlx::Error> {
    let now = Utc::now();
    let (status, next) = match m.not_before {
        Some(t) if t > now => (DeliveryStatus::Deferred, t),
        _ => (DeliveryStatus::Queued, now),
    };
    let sql = format!(
        "INSERT INTO messages (id, idempotency_key, property_id, recipient_kind, guest_id, case_id,
            stay_id, kind, urgency, status, spec, language, next_attempt_time, create_time, update_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    );
    let inserted: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(&m.idempotency_key)
        .bind(&m.spec.property_id)
        .bind(m.recipient_kind as i16)
        .bind(&m.guest_id)
        .bind(&m.spec.case_id)
        .bind(&m.spec.stay_id)
        .bind(m.kind as i16)
        .bind(m.urgency as i16)
        .bind(status as i16)
        .bind(m.spec.encode_to_vec())
        .bind(&m.spec.language)
        .bind(next)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    match inserted {
        Some(row) => Ok((row, true)),
        None => {
            let row = by_key(&mut *conn, &m.idempotency_key)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            Ok((row, false))
        }
    }
}

pub async fn by_id<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await
}

pub async fn by_key<'e>(
    exec: impl PgExecutor<'e>,
    key: &str,
) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages WHERE idempotency_key = $1"
    )))
    .bind(key)
    .fetch_optional(exec)
    .await
}

/// The row, locked for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Whether a worker holds an unexpired lease on the message.
pub async fn leased(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(lease_until > now(), false) FROM messages WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// Writes the delivery columns of `row`. With `owner`, only while that worker still holds
/// the message (returns false when the lease was lost); the lease is released either way.
pub async fn save(
    conn: &mut PgConnection,
    row: &MessageRow,
    owner: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE messages SET status = $2, suppression_reason = $3, channel = $4,
            fallback_used = $5, language = $6, template_version = $7, provider = $8,
            provider_message_id = $9, attempt_count = $10, budget_start = $11,
            next_attempt_time = $12, last_error = $13, send_time = $14, deliver_time = $15,
            update_time = $16, spec = $17, lease_owner = NULL, lease_until = NULL,
            worked_by = COALESCE($18, worked_by)
         WHERE id = $1 AND ($18::text IS NULL OR lease_owner = $18)",
    )
    .bind(row.id)
    .bind(row.status)
    .bind(row.suppression_reason)
    .bind(row.channel)
    .bind(row.fallback_used)
    .bind(&row.language)
    .bind(row.template_version)
    .bind(&row.provider)
    .bind(&row.provider_message_id)
    .bind(row.attempt_count)
    .bind(row.budget_start)
    .bind(row.next_attempt_time)
    .bind(&row.last_error)
    .bind(row.send_time)
    .bind(row.deliver_time)
    .bind(row.update_time)
    .bind(&row.spec)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Releases a claim without changing anything else, to be picked up at `next`.
pub async fn release<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
    owner: &str,
    next: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET lease_owner = NULL, lease_until = NULL, next_attempt_time = $3
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(next)
    .execute(exec)
    .await?;
    Ok(())
}

/// Claims up to `limit` due messages for `owner` until the lease runs out.
pub async fn claim_due<'e>(
    exec: impl PgExecutor<'e>,
    owner: &str,
    lease_seconds: f64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE messages SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
         WHERE id IN (
             SELECT id FROM messages
             WHERE status IN (1, 2, 5) AND next_attempt_time <= now()
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY next_attempt_time
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    )))
    .bind(owner)
    .bind(lease_seconds)
    .bind(limit)
    .fetch_all(exec)
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_attempt(
    conn: &mut PgConnection,
    message_id: Uuid,
    attempt: i32,
    channel: i16,
    provider: &str,
    time: DateTime<Utc>,
    outcome: i16,
    error: &str,
    latency_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO delivery_attempts
            (message_id, attempt, channel, provider, attempt_time, outcome, error, latency_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(message_id)
    .bind(attempt)
    .bind(channel)
    .bind(provider)
    .bind(time)
    .bind(outcome)
    .bind(error)
    .bind(latency_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Attempts after `budget_start` that count against the budget (rate-limited ones do not).
pub async fn budget_used<'e>(
    exec: impl PgExecutor<'e>,
    message_id: Uuid,
    budget_start: i32,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM delivery_attempts
         WHERE message_id = $1 AND attempt > $2 AND outcome <> 5",
    )
    .bind(message_id)
    .bind(budget_start)
    .fetch_one(exec)
    .await
}

pub async fn attempts<'e>(
    exec: impl PgExecutor<'e>,
    message_id: Uuid,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT attempt, channel, provider, attempt_time, outcome, error, latency_ms
         FROM delivery_attempts WHERE message_id = $1 ORDER BY attempt",
    )
    .bind(message_id)
    .fetch_all(exec)
    .await
}

/// The message a provider knows by its id.
pub async fn by_provider_ref(
    conn: &mut PgConnection,
    provider: &str,
    provider_message_id: &str,
) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages WHERE provider = $1 AND provider_message_id = $2 FOR UPDATE"
    )))
    .bind(provider)
    .bind(provider_message_id)
    .fetch_optional(conn)
    .await
}

/// ListMessages' filter, already narrowed to the caller's scope.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub guest_id: Option<String>,
    pub case_id: Option<String>,
    pub stay_id: Option<String>,
    pub property_id: Option<String>,
    /// `None`: the whole chain.
    pub visible: Option<Vec<String>>,
    pub statuses: Vec<i16>,
    pub kinds: Vec<i16>,
    pub recipient_kind: Option<i16>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_until: Option<DateTime<Utc>>,
}

/// Newest first, keyset-paged on (create_time, id).
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    f: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM messages WHERE true"));
    if let Some(g) = &f.guest_id {
        q.push(" AND guest_id = ").push_bind(g.clone());
    }
    if let Some(c) = &f.case_id {
        q.push(" AND case_id = ").push_bind(c.clone());
    }
    if let Some(s) = &f.stay_id {
        q.push(" AND stay_id = ").push_bind(s.clone());
    }
    if let Some(p) = &f.property_id {
        q.push(" AND property_id = ").push_bind(p.clone());
    }
    if let Some(v) = &f.visible {
        q.push(" AND property_id = ANY(")
            .push_bind(v.clone())
            .push(")");
    }
    if !f.statuses.is_empty() {
        q.push(" AND status = ANY(")
            .push_bind(f.statuses.clone())
            .push(")");
    }
    if !f.kinds.is_empty() {
        q.push(" AND kind = ANY(")
            .push_bind(f.kinds.clone())
            .push(")");
    }
    if let Some(r) = f.recipient_kind {
        q.push(" AND recipient_kind = ").push_bind(r);
    }
    if let Some(t) = f.created_from {
        q.push(" AND create_time >= ").push_bind(t);
    }
    if let Some(t) = f.created_until {
        q.push(" AND create_time < ").push_bind(t);
    }
    if let Some(c) = after {
        q.push(" AND (create_time, id) < (")
            .push_bind(c.t)
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }
    q.push(" ORDER BY create_time DESC, id DESC LIMIT ")
        .push_bind(limit);
    q.build_query_as().fetch_all(exec).await
}

/// Every message of `from` now names `to` (GuestMerged). The spec keeps the id it was
/// asked with: it is the request as it arrived.
pub async fn move_guest(conn: &mut PgConnection, from: &str, to: &str) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE messages SET guest_id = $2, update_time = now() WHERE guest_id = $1")
            .bind(from)
            .bind(to)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Every message to or about these guests in `properties` (`None`: all), oldest first: a
/// subject-access export's share (export.rs).
pub async fn of_guests<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[String],
    properties: Option<&[String]>,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages
          WHERE guest_id = ANY($1) AND ($2::text[] IS NULL OR property_id = ANY($2))
          ORDER BY create_time, id"
    )))
    .bind(guest_ids)
    .bind(properties)
    .fetch_all(exec)
    .await
}

/// The spec without its template variables: what a message keeps once its words go (an
/// erasure of its guest, or retention). Everything else — recipient id, kind, channel,
/// property, links — stays. A spec that does not decode is dropped to an empty one.
fn without_variables(bytes: &[u8]) -> Vec<u8> {
    use prost::Message;
    let mut spec =
        guestloop_proto::notification::v1::MessageSpec::decode(bytes).unwrap_or_default();
    spec.variables.clear();
    spec.encode_to_vec()
}

/// Drops the template variables of these messages; returns how many changed.
pub async fn blank_variables(conn: &mut PgConnection, ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    let rows: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT id, spec FROM messages WHERE id = ANY($1) FOR UPDATE")
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
    let (ids, specs): (Vec<Uuid>, Vec<Vec<u8>>) = rows
        .iter()
        .map(|(id, spec)| (*id, without_variables(spec)))
        .unzip();
    Ok(sqlx::query(
        "UPDATE messages m SET spec = u.spec, update_time = now()
           FROM UNNEST($1::uuid[], $2::bytea[]) AS u(id, spec) WHERE m.id = u.id",
    )
    .bind(&ids)
    .bind(&specs)
    .execute(conn)
    .await?
    .rows_affected())
}

/// The ids of every message to or about `guest_id` (an erasure's work).
pub async fn ids_of_guest(
    conn: &mut PgConnection,
    guest_id: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM messages WHERE guest_id = $1")
        .bind(guest_id)
        .fetch_all(conn)
        .await
}

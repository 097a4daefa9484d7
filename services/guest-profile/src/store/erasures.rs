//! Erasures and each service's confirmation of them (migrations/1001_erasures.sql): what
//! EraseGuest writes, what GetErasure and ListErasures read, and the tracker's updates.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// guest-profile's own part, confirmed in the erasure's transaction.
pub const OWN_SERVICE: &str = "guest-profile";

pub const PENDING: i16 = 1;
pub const DONE: i16 = 2;
pub const FAILED: i16 = 3;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ErasureRow {
    pub id: Uuid,
    pub guest_id: Uuid,
    pub erased_guest_ids: Vec<Uuid>,
    pub reason: String,
    pub requested_by: String,
    pub requested_by_role: String,
    pub request_time: DateTime<Utc>,
    pub complete_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceRow {
    pub erasure_id: Uuid,
    pub service: String,
    pub state: i16,
    pub erase_time: Option<DateTime<Utc>>,
    pub last_check_time: Option<DateTime<Utc>>,
    pub detail: String,
}

/// An erasure with its services' parts.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub row: ErasureRow,
    pub services: Vec<ServiceRow>,
}

/// What EraseGuest asks for.
pub struct NewErasure<'a> {
    pub guest_id: Uuid,
    pub erased_guest_ids: &'a [Uuid],
    pub reason: &'a str,
    pub requested_by: &'a str,
    pub requested_by_role: &'a str,
    /// When guest-profile erased its own part (the same transaction).
    pub erase_time: DateTime<Utc>,
    /// The services that must confirm besides guest-profile.
    pub services: &'a [String],
}

const ERASURE_COLUMNS: &str = "id, guest_id, erased_guest_ids, reason, requested_by, \
     requested_by_role, request_time, complete_time";
const SERVICE_COLUMNS: &str = "erasure_id, service, state, erase_time, last_check_time, detail";

/// Writes the erasure, guest-profile's part as done and every other service's as pending.
/// Complete at once when no other service must confirm.
pub async fn create(conn: &mut PgConnection, e: &NewErasure<'_>) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO erasures (id, guest_id, erased_guest_ids, reason, requested_by,
                               requested_by_role, request_time, complete_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN $7 END)",
    )
    .bind(id)
    .bind(e.guest_id)
    .bind(e.erased_guest_ids)
    .bind(e.reason)
    .bind(e.requested_by)
    .bind(e.requested_by_role)
    .bind(e.erase_time)
    .bind(e.services.is_empty())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO erasure_services (erasure_id, service, state, erase_time, last_check_time)
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id)
    .bind(OWN_SERVICE)
    .bind(DONE)
    .bind(e.erase_time)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO erasure_services (erasure_id, service, state)
         SELECT $1, s, $3 FROM UNNEST($2::text[]) AS s",
    )
    .bind(id)
    .bind(e.services)
    .bind(PENDING)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// The newest erasure that erased any of `guest_ids`.
pub async fn latest_of<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[Uuid],
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM erasures WHERE guest_id = ANY($1) OR erased_guest_ids && $1
         ORDER BY request_time DESC, id DESC LIMIT 1",
    )
    .bind(guest_ids)
    .fetch_optional(exec)
    .await
}

/// The erasures with these ids, in the order given, each with its services' parts.
pub async fn get_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Erasure>, sqlx::Error> {
    let rows: Vec<ErasureRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ERASURE_COLUMNS} FROM erasures WHERE id = ANY($1)"
    )))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut services: Vec<ServiceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SERVICE_COLUMNS} FROM erasure_services WHERE erasure_id = ANY($1)
         ORDER BY service = '{OWN_SERVICE}' DESC, service"
    )))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_id: std::collections::HashMap<Uuid, Erasure> = rows
        .into_iter()
        .map(|row| {
            (
                row.id,
                Erasure {
                    row,
                    services: Vec::new(),
                },
            )
        })
        .collect();
    for s in services.drain(..) {
        if let Some(e) = by_id.get_mut(&s.erasure_id) {
            e.services.push(s);
        }
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// A page of erasures, newest first, after the (request_time, id) key; with `state`, only
/// those whose overall state it is (failed: any part failed; pending: none failed, some
/// pending; done: complete).
pub async fn list(
    conn: &mut PgConnection,
    state: Option<i16>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Erasure>, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT e.id FROM erasures e
          WHERE ($2::timestamptz IS NULL OR (e.request_time, e.id) < ($2, $3))
            AND CASE $1::smallint
                  WHEN 2 THEN e.complete_time IS NOT NULL
                  WHEN 3 THEN EXISTS (SELECT 1 FROM erasure_services s
                                       WHERE s.erasure_id = e.id AND s.state = 3)
                  WHEN 1 THEN e.complete_time IS NULL
                          AND NOT EXISTS (SELECT 1 FROM erasure_services s
                                           WHERE s.erasure_id = e.id AND s.state = 3)
                  ELSE TRUE END
          ORDER BY e.request_time DESC, e.id DESC LIMIT $4",
    )
    .bind(state)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    get_many(conn, &ids).await
}

/// The tracker's work for one service: erasures it has not confirmed, oldest first, with
/// the guest ids each erased.
pub async fn open_for(
    conn: &mut PgConnection,
    service: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<Uuid>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.id, e.erased_guest_ids FROM erasure_services s
           JOIN erasures e ON e.id = s.erasure_id
          WHERE s.service = $1 AND s.state <> 2
          ORDER BY e.request_time, e.id LIMIT $2",
    )
    .bind(service)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One service's answer for one erasure: done at `erase_time`, or still waiting (`detail`
/// says why).
pub async fn record_check(
    conn: &mut PgConnection,
    erasure_id: Uuid,
    service: &str,
    outcome: Result<DateTime<Utc>, &str>,
) -> Result<(), sqlx::Error> {
    let (done_at, detail) = match outcome {
        Ok(at) => (Some(at), ""),
        Err(why) => (None, why),
    };
    sqlx::query(
        "UPDATE erasure_services
            SET state = CASE WHEN $3::timestamptz IS NULL THEN state ELSE 2 END,
                erase_time = COALESCE($3, erase_time), detail = $4, last_check_time = now()
          WHERE erasure_id = $1 AND service = $2 AND state <> 2",
    )
    .bind(erasure_id)
    .bind(service)
    .bind(done_at)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending parts older than `deadline` turn failed; returns them (erasure, service).
pub async fn fail_overdue(
    conn: &mut PgConnection,
    deadline: std::time::Duration,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE erasure_services s SET state = 3, fail_time = now()
           FROM erasures e
          WHERE e.id = s.erasure_id AND s.state = 1
            AND e.request_time < now() - make_interval(secs => $1)
         RETURNING s.erasure_id, s.service",
    )
    .bind(deadline.as_secs_f64())
    .fetch_all(conn)
    .await
}

/// Erasures whose every part is done get their complete time (the last confirmation);
/// returns them.
pub async fn complete_confirmed(conn: &mut PgConnection) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE erasures e
            SET complete_time = (SELECT MAX(COALESCE(s.last_check_time, s.erase_time))
                                   FROM erasure_services s WHERE s.erasure_id = e.id)
          WHERE e.complete_time IS NULL
            AND NOT EXISTS (SELECT 1 FROM erasure_services s
                             WHERE s.erasure_id = e.id AND s.state <> 2)
         RETURNING e.id",
    )
    .fetch_all(conn)
    .await
}

/// Parts not done, per service and state: the tracker's gauges.
pub async fn open_counts<'e>(
    exec: impl PgExecutor<'e>,
) -> Result<Vec<(String, i16, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT service, state, COUNT(*) FROM erasure_services WHERE state <> 2
          GROUP BY service, state",
    )
    .fetch_all(exec)
    .await
}

//! The incidents table: one cause, many cases.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IncidentRow {
    pub id: Uuid,
    pub property_id: String,
    pub title: String,
    pub description: String,
    pub category: i16,
    pub department: i16,
    pub start_time: Option<DateTime<Utc>>,
    pub resolve_time: Option<DateTime<Utc>>,
    pub created_by: String,
    pub create_time: DateTime<Utc>,
    pub case_count: i64,
}

const SELECT: &str = "SELECT i.id, i.property_id, i.title, i.description, i.category, i.department, i.start_time, \
    i.resolve_time, i.created_by, i.create_time, (SELECT COUNT(*) FROM cases c WHERE c.incident_id = i.id) AS case_count \
    FROM incidents i";

pub async fn insert(
    conn: &mut PgConnection,
    i: &IncidentRow,
    idempotency_key: Option<&str>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO incidents (id, property_id, title, description, category, department, start_time, resolve_time,
            idempotency_key, created_by)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(i.id)
    .bind(&i.property_id)
    .bind(&i.title)
    .bind(&i.description)
    .bind(i.category)
    .bind(i.department)
    .bind(i.start_time)
    .bind(i.resolve_time)
    .bind(idempotency_key)
    .bind(&i.created_by)
    .fetch_optional(conn)
    .await
}

pub async fn by_idempotency<'e>(
    exec: impl PgExecutor<'e>,
    property_id: &str,
    key: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM incidents WHERE property_id = $1 AND idempotency_key = $2")
        .bind(property_id)
        .bind(key)
        .fetch_optional(exec)
        .await
}

pub async fn get<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<IncidentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE i.id = $1")))
        .bind(id)
        .fetch_optional(exec)
        .await
}

pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    properties: Option<&[String]>,
    open_only: bool,
    page: guestloop_db::page::Page,
) -> Result<Vec<IncidentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::text[] IS NULL OR i.property_id = ANY($1)) AND (NOT $2 OR i.resolve_time IS NULL)
           AND ($3::timestamptz IS NULL OR (i.create_time, i.id) < ($3, $4))
         ORDER BY i.create_time DESC, i.id DESC LIMIT $5"
    )))
    .bind(properties)
    .bind(open_only)
    .bind(page.after.map(|a| a.t))
    .bind(page.after.map(|a| a.id))
    .bind(page.size)
    .fetch_all(exec)
    .await
}

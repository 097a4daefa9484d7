//! The cases table. A case row is read, changed in memory by the handler, and written back
//! whole with its version raised, inside the transaction that appends its case event.

use chrono::{DateTime, Datelike, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub reference: String,
    pub property_id: String,
    pub origin_feedback_id: Uuid,
    pub guest_id: Option<Uuid>,
    pub stay_id: Option<Uuid>,
    pub channel: i16,
    pub title: String,
    pub description: String,
    pub category: i16,
    pub risk_grade: i16,
    pub grade_overridden: bool,
    pub grade_reason: String,
    pub urgency: i16,
    pub department: i16,
    pub assignee_id: Option<String>,
    pub status: i16,
    pub escalation_tier: i16,
    pub open_reason: i16,
    pub repeat: bool,
    pub repeat_of: Vec<Uuid>,
    pub incident_id: Option<Uuid>,
    pub guest_tier: i16,
    pub open_time: DateTime<Utc>,
    pub first_response_due: DateTime<Utc>,
    pub resolution_due: DateTime<Utc>,
    pub paused_since: Option<DateTime<Utc>>,
    pub acknowledge_time: Option<DateTime<Utc>>,
    pub resolve_time: Option<DateTime<Utc>>,
    pub close_time: Option<DateTime<Utc>>,
    pub reopen_count: i32,
    pub compensation: Json<BTreeMap<String, i64>>,
    pub version: i64,
    pub update_time: DateTime<Utc>,
}

const COLUMNS: &str = "id, reference, property_id, origin_feedback_id, guest_id, stay_id, channel, title, \
    description, category, risk_grade, grade_overridden, grade_reason, urgency, department, assignee_id, \
    status, escalation_tier, open_reason, repeat, repeat_of, incident_id, guest_tier, open_time, \
    first_response_due, resolution_due, paused_since, acknowledge_time, resolve_time, close_time, \
    reopen_count, compensation, version, update_time";

/// The next human reference at a property: "SH-BUND-2026-000042".
pub async fn next_reference(
    conn: &mut PgConnection,
    property_id: &str,
    at: DateTime<Utc>,
) -> Result<String, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "INSERT INTO case_reference_counters (property_id, year, last_value) VALUES ($1, $2, 1)
         ON CONFLICT (property_id, year) DO UPDATE SET last_value = case_reference_counters.last_value + 1
         RETURNING last_value",
    )
    .bind(property_id)
    .bind(at.year())
    .fetch_one(conn)
    .await?;
    Ok(format!(
        "{}-{}-{n:06}",
        property_id.to_uppercase(),
        at.year()
    ))
}

pub async fn insert(conn: &mut PgConnection, c: &CaseRow) -> Result<CaseRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO cases (id, reference, property_id, origin_feedback_id, guest_id, stay_id, channel, title,
            description, category, risk_grade, grade_overridden, grade_reason, urgency, department, assignee_id,
            status, escalation_tier, open_reason, repeat, repeat_of, incident_id, guest_tier, open_time,
            first_response_due, resolution_due, paused_since, acknowledge_time, resolve_time, close_time,
            reopen_count, compensation, version)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,
                 $26,$27,$28,$29,$30,$31,$32,$33)
         RETURNING {COLUMNS}"
    )))
    .bind(c.id)
    .bind(&c.reference)
    .bind(&c.property_id)
    .bind(c.origin_feedback_id)
    .bind(c.guest_id)
    .bind(c.stay_id)
    .bind(c.channel)
    .bind(&c.title)
    .bind(&c.description)
    .bind(c.category)
    .bind(c.risk_grade)
    .bind(c.grade_overridden)
    .bind(&c.grade_reason)
    .bind(c.urgency)
    .bind(c.department)
    .bind(&c.assignee_id)
    .bind(c.status)
    .bind(c.escalation_tier)
    .bind(c.open_reason)
    .bind(c.repeat)
    .bind(&c.repeat_of)
    .bind(c.incident_id)
    .bind(c.guest_tier)
    .bind(c.open_time)
    .bind(c.first_response_due)
    .bind(c.resolution_due)
    .bind(c.paused_since)
    .bind(c.acknowledge_time)
    .bind(c.resolve_time)
    .bind(c.close_time)
    .bind(c.reopen_count)
    .bind(&c.compensation)
    .bind(c.version)
    .fetch_one(conn)
    .await
}

/// Writes every mutable column of `c` (its version already raised by the caller).
pub async fn update(conn: &mut PgConnection, c: &CaseRow) -> Result<CaseRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE cases SET title=$2, description=$3, category=$4, risk_grade=$5, grade_overridden=$6,
            grade_reason=$7, urgency=$8, department=$9, assignee_id=$10, status=$11, escalation_tier=$12,
            repeat=$13, repeat_of=$14, incident_id=$15, first_response_due=$16, resolution_due=$17,
            paused_since=$18, acknowledge_time=$19, resolve_time=$20, close_time=$21, reopen_count=$22,
            compensation=$23, version=$24, update_time=now()
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(c.id)
    .bind(&c.title)
    .bind(&c.description)
    .bind(c.category)
    .bind(c.risk_grade)
    .bind(c.grade_overridden)
    .bind(&c.grade_reason)
    .bind(c.urgency)
    .bind(c.department)
    .bind(&c.assignee_id)
    .bind(c.status)
    .bind(c.escalation_tier)
    .bind(c.repeat)
    .bind(&c.repeat_of)
    .bind(c.incident_id)
    .bind(c.first_response_due)
    .bind(c.resolution_due)
    .bind(c.paused_since)
    .bind(c.acknowledge_time)
    .bind(c.resolve_time)
    .bind(c.close_time)
    .bind(c.reopen_count)
    .bind(&c.compensation)
    .bind(c.version)
    .fetch_one(conn)
    .await
}

/// A case by id or by its human reference.
pub async fn get<'e>(
    exec: impl PgExecutor<'e>,
    id_or_reference: &str,
    for_update: bool,
) -> Result<Option<CaseRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let id = Uuid::parse_str(id_or_reference).ok();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cases WHERE ($1::uuid IS NOT NULL AND id = $1) OR reference = $2{lock}"
    )))
    .bind(id)
    .bind(id_or_reference)
    .fetch_optional(exec)
    .await
}

/// Earlier cases of the same guest and category opened in `since..=until`, anywhere in
/// the chain, newest first. `until` is the new case's open time: a complaint keyed in late
/// (a comment card) does not repeat cases the guest opened after it.
pub async fn earlier_of_guest<'e>(
    exec: impl PgExecutor<'e>,
    guest_id: Uuid,
    category: i16,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM cases WHERE guest_id = $1 AND category = $2 AND open_time >= $3 AND open_time <= $4
         ORDER BY open_time DESC, id DESC LIMIT 20",
    )
    .bind(guest_id)
    .bind(category)
    .bind(since)
    .bind(until)
    .fetch_all(exec)
    .await
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub properties: Option<Vec<String>>,
    pub statuses: Vec<i16>,
    pub categories: Vec<i16>,
    pub channels: Vec<i16>,
    pub grades: Vec<i16>,
    pub urgencies: Vec<i16>,
    pub departments: Vec<i16>,
    pub tiers: Vec<i16>,
    pub assignee_id: Option<String>,
    pub unassigned: bool,
    pub overdue: Option<bool>,
    pub repeat: Option<bool>,
    pub incident_id: Option<Uuid>,
    pub guest_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub query: Option<String>,
}

/// The SQL that says whether a case is overdue now: a due time passed before what it asks.
pub const OVERDUE_SQL: &str = "((acknowledge_time IS NULL AND first_response_due < now()) \
     OR (status NOT IN (5, 6) AND paused_since IS NULL AND resolution_due < now()))";

/// How a listing is ordered; each ends on the id so pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OpenTimeDesc,
    OpenTimeAsc,
    /// The nearest due time first: the work queue.
    DueTimeAsc,
    UpdateTimeDesc,
    /// High grade first, then urgency, then due time.
    Priority,
    /// Best text match first (search).
    Relevance,
}

impl Order {
    fn sql(self) -> &'static str {
        match self {
            Order::OpenTimeDesc => "open_time DESC, id DESC",
            Order::OpenTimeAsc => "open_time ASC, id ASC",
            Order::DueTimeAsc => {
                "LEAST(CASE WHEN acknowledge_time IS NULL THEN first_response_due END, resolution_due) ASC, id ASC"
            }
            Order::UpdateTimeDesc => "update_time DESC, id DESC",
            Order::Priority => "risk_grade DESC, urgency DESC, resolution_due ASC, id ASC",
            Order::Relevance => {
                "ts_rank(search, plainto_tsquery('simple', $17)) DESC, open_time DESC, id DESC"
            }
        }
    }
}

/// One page in the requested order.
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    f: &Filter,
    order: Order,
    limit: i64,
    offset: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let order = order.sql();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cases
         WHERE ($1::text[] IS NULL OR property_id = ANY($1))
           AND (cardinality($2::smallint[]) = 0 OR status = ANY($2))
           AND (cardinality($3::smallint[]) = 0 OR category = ANY($3))
           AND (cardinality($4::smallint[]) = 0 OR channel = ANY($4))
           AND (cardinality($5::smallint[]) = 0 OR risk_grade = ANY($5))
           AND (cardinality($6::smallint[]) = 0 OR urgency = ANY($6))
           AND (cardinality($7::smallint[]) = 0 OR department = ANY($7))
           AND (cardinality($8::smallint[]) = 0 OR escalation_tier = ANY($8))
           AND ($9::text IS NULL OR assignee_id = $9)
           AND (NOT $10 OR assignee_id IS NULL)
           AND ($11::bool IS NULL OR {OVERDUE_SQL} = $11)
           AND ($12::bool IS NULL OR repeat = $12)
           AND ($13::uuid IS NULL OR incident_id = $13)
           AND ($14::uuid IS NULL OR guest_id = $14)
           AND ($15::timestamptz IS NULL OR open_time >= $15)
           AND ($16::timestamptz IS NULL OR open_time < $16)
           AND ($17::text IS NULL OR search @@ plainto_tsquery('simple', $17) OR title ILIKE '%' || replace(replace(replace($17, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'
                OR description ILIKE '%' || replace(replace(replace($17, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')
         ORDER BY {order}
         LIMIT $18 OFFSET $19"
    )))
    .bind(&f.properties)
    .bind(&f.statuses)
    .bind(&f.categories)
    .bind(&f.channels)
    .bind(&f.grades)
    .bind(&f.urgencies)
    .bind(&f.departments)
    .bind(&f.tiers)
    .bind(&f.assignee_id)
    .bind(f.unassigned)
    .bind(f.overdue)
    .bind(f.repeat)
    .bind(f.incident_id)
    .bind(f.guest_id)
    .bind(f.from)
    .bind(f.to)
    .bind(&f.query)
    .bind(limit)
    .bind(offset)
    .fetch_all(exec)
    .await
}

/// The notification channel of case changes; payload "<property_id> <case_id>".
const CASE_QUEUE_CHANNEL: &str = "case_queue";

/// Tells watchers of the property's queue that a case changed (delivered at commit).
pub async fn notify_change(
    conn: &mut PgConnection,
    property_id: &str,
    case_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CASE_QUEUE_CHANNEL)
        .bind(format!("{property_id} {case_id}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// The case feed every queue watch of this process shares (one listening connection).
pub fn case_feed() -> guestloop_db::feed::ChangeFeed {
    guestloop_db::feed::ChangeFeed::new(CASE_QUEUE_CHANNEL)
}

/// Every case of these guests in `properties` (`None`: all), oldest first: a
/// subject-access export's share (export.rs).
pub async fn of_guests<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[Uuid],
    properties: Option<&[String]>,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cases
          WHERE guest_id = ANY($1) AND ($2::text[] IS NULL OR property_id = ANY($2))
          ORDER BY open_time, id"
    )))
    .bind(guest_ids)
    .bind(properties)
    .fetch_all(exec)
    .await
}

//! Follow-up tasks for staff: one row each, idempotent by key, with the timer that turns an
//! open task MISSED (`task/<id>/due`).

use chrono::{DateTime, Utc};
use guestloop_db::page::Cursor;
use sqlx::{PgConnection, PgExecutor, QueryBuilder};
use uuid::Uuid;

// followup.v1.TaskStatus.
pub const OPEN: i16 = 1;
pub const COMPLETED: i16 = 2;
pub const MISSED: i16 = 3;
pub const CANCELLED: i16 = 4;

const COLUMNS: &str = "id, kind, property_id, guest_id, stay_id, case_id, title, instructions,
    department, assignee_id, urgency, due_time, status, outcome, outcome_note, contact_channel,
    complete_time, completed_by, miss_time, late, timer_id, created_by, create_time,
    update_time";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: Uuid,
    pub kind: i16,
    pub property_id: String,
    pub guest_id: String,
    pub stay_id: String,
    pub case_id: String,
    pub title: String,
    pub instructions: String,
    pub department: i16,
    pub assignee_id: String,
    pub urgency: i16,
    pub due_time: DateTime<Utc>,
    pub status: i16,
    pub outcome: i16,
    pub outcome_note: String,
    pub contact_channel: i16,
    pub complete_time: Option<DateTime<Utc>>,
    pub completed_by: String,
    pub miss_time: Option<DateTime<Utc>>,
    pub late: bool,
    pub timer_id: Option<Uuid>,
    pub created_by: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl TaskRow {
    /// A new open task made by `created_by` at `now`, not yet worked on: the caller sets
    /// what it is (kind, whose, what to do, when) over it.
    pub fn open(created_by: String, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: 0,
            property_id: String::new(),
            guest_id: String::new(),
            stay_id: String::new(),
            case_id: String::new(),
            title: String::new(),
            instructions: String::new(),
            department: 0,
            assignee_id: String::new(),
            urgency: 0,
            due_time: now,
            status: OPEN,
            outcome: 0,
            outcome_note: String::new(),
            contact_channel: 0,
            complete_time: None,
            completed_by: String::new(),
            miss_time: None,
            late: false,
            timer_id: None,
            created_by,
            create_time: now,
            update_time: now,
        }
    }
}

/// Inserts the task unless its idempotency key exists; `None` when it does.
pub async fn insert(
    conn: &mut PgConnection,
    t: &TaskRow,
    idempotency_key: Option<&str>,
) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tasks (id, idempotency_key, kind, property_id, guest_id, stay_id, case_id,
            title, instructions, department, assignee_id, urgency, due_time, status, timer_id,
            created_by, create_time, update_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $15, now(),
            now())
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(t.id)
    .bind(idempotency_key)
    .bind(t.kind)
    .bind(&t.property_id)
    .bind(&t.guest_id)
    .bind(&t.stay_id)
    .bind(&t.case_id)
    .bind(&t.title)
    .bind(&t.instructions)
    .bind(t.department)
    .bind(&t.assignee_id)
    .bind(t.urgency)
    .bind(t.due_time)
    .bind(t.timer_id)
    .bind(&t.created_by)
    .fetch_optional(conn)
    .await
}

pub async fn by_key<'e>(
    exec: impl PgExecutor<'e>,
    key: &str,
) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE idempotency_key = $1"
    )))
    .bind(key)
    .fetch_optional(exec)
    .await
}

pub async fn get<'e>(exec: impl PgExecutor<'e>, id: Uuid) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await
}

pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The guest's open tasks, locked, oldest first.
pub async fn lock_open_of_guest(
    conn: &mut PgConnection,
    guest_id: &str,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE guest_id = $1 AND status = $2 ORDER BY id FOR UPDATE"
    )))
    .bind(guest_id)
    .bind(OPEN)
    .fetch_all(conn)
    .await
}

/// The open pre-arrival care tasks of a stay (keys `care:<stay>:…`) with their keys,
/// locked, oldest first.
/// The keys of the stay's care tasks that were completed or missed (done with: a re-plan
/// does not ask for them again).
pub async fn done_care_keys_of_stay(
    conn: &mut PgConnection,
    stay_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT idempotency_key FROM tasks
          WHERE stay_id = $1 AND status IN ($2, $3) AND starts_with(idempotency_key, $4)",
    )
    .bind(stay_id)
    .bind(COMPLETED)
    .bind(MISSED)
    .bind(format!("care:{stay_id}:"))
    .fetch_all(conn)
    .await
}

pub async fn lock_open_care_of_stay(
    conn: &mut PgConnection,
    stay_id: &str,
) -> Result<Vec<(String, TaskRow)>, sqlx::Error> {
    use sqlx::{FromRow, Row};
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT idempotency_key, {COLUMNS} FROM tasks
          WHERE stay_id = $1 AND status = $2 AND starts_with(idempotency_key, $3)
          ORDER BY id FOR UPDATE"
    )))
    .bind(stay_id)
    .bind(OPEN)
    .bind(format!("care:{stay_id}:"))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("idempotency_key")?, TaskRow::from_row(r)?)))
        .collect()
}

/// Replaces what staff wrote about the guest on any of their tasks (title, instructions,
/// outcome note); kind, times, status and outcome stay for the counts.
pub async fn erase_text_of_guest(
    conn: &mut PgConnection,
    guest_id: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE tasks SET title = '[erased]', instructions = '', outcome_note = '',
            update_time = now()
         WHERE guest_id = $1",
    )
    .bind(guest_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Replaces what staff wrote on these tasks (retention); returns how many changed.
pub async fn erase_text(conn: &mut PgConnection, ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE tasks SET title = '[erased]', instructions = '', outcome_note = '',
            update_time = now()
         WHERE id = ANY($1)",
    )
    .bind(ids)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Writes the task's mutable fields back.
pub async fn save(conn: &mut PgConnection, t: &TaskRow) -> Result<TaskRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET department = $2, assignee_id = $3, status = $4, outcome = $5,
            outcome_note = $6, contact_channel = $7, complete_time = $8, completed_by = $9,
            miss_time = $10, late = $11, update_time = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(t.id)
    .bind(t.department)
    .bind(&t.assignee_id)
    .bind(t.status)
    .bind(t.outcome)
    .bind(&t.outcome_note)
    .bind(t.contact_channel)
    .bind(t.complete_time)
    .bind(&t.completed_by)
    .bind(t.miss_time)
    .bind(t.late)
    .fetch_one(conn)
    .await
}

/// ListTasks' filter, already narrowed to the caller's scope.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub property_id: Option<String>,
    pub visible: Option<Vec<String>>,
    pub assignee_id: Option<String>,
    pub statuses: Vec<i16>,
    pub kinds: Vec<i16>,
    pub case_id: Option<String>,
    pub stay_id: Option<String>,
    pub guest_id: Option<String>,
    pub due_from: Option<DateTime<Utc>>,
    pub due_until: Option<DateTime<Utc>>,
    pub overdue_only: bool,
}

/// Soonest due first, keyset-paged on (due_time, id).
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    f: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM tasks WHERE true"));
    let text = [
        (" AND property_id = ", &f.property_id),
        (" AND assignee_id = ", &f.assignee_id),
        (" AND case_id = ", &f.case_id),
        (" AND stay_id = ", &f.stay_id),
        (" AND guest_id = ", &f.guest_id),
    ];
    for (sql, value) in text {
        if let Some(v) = value {
            q.push(sql).push_bind(v.clone());
        }
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
    if let Some(t) = f.due_from {
        q.push(" AND due_time >= ").push_bind(t);
    }
    if let Some(t) = f.due_until {
        q.push(" AND due_time < ").push_bind(t);
    }
    if f.overdue_only {
        q.push(" AND status IN (1, 3) AND due_time < now()");
    }
    if let Some(c) = after {
        q.push(" AND (due_time, id) > (")
            .push_bind(c.t)
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }
    q.push(" ORDER BY due_time, id LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(exec).await
}

/// Open tasks of a property due before `until`, soonest first (the deadline watch).
pub async fn open_due_within<'e>(
    exec: impl PgExecutor<'e>,
    property_id: &str,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE property_id = $1 AND status = 1 AND due_time < $2
         ORDER BY due_time, id LIMIT $3"
    )))
    .bind(property_id)
    .bind(until)
    .bind(limit)
    .fetch_all(exec)
    .await
}

/// Every task about these guests in `properties` (`None`: all), oldest first: a
/// subject-access export's share (api/export.rs).
pub async fn of_guests<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[String],
    properties: Option<&[String]>,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks
          WHERE guest_id = ANY($1) AND ($2::text[] IS NULL OR property_id = ANY($2))
          ORDER BY create_time, id"
    )))
    .bind(guest_ids)
    .bind(properties)
    .fetch_all(exec)
    .await
}

//! Durable timers, one row per key. Workers claim due timers with `FOR UPDATE SKIP LOCKED`
//! and a lease; a RUNNING timer whose lease ran out (its replica died) is claimable again.
//! Every write a worker makes is guarded by its lease, so a worker that lost its lease
//! changes nothing.

use crate::domain::NewTimer;
use chrono::{DateTime, Utc};
use guestloop_db::page::Cursor;
use sqlx::{PgConnection, PgExecutor, QueryBuilder};
use uuid::Uuid;

pub const PENDING: i16 = 1;
pub const RUNNING: i16 = 2;
pub const FIRED: i16 = 3;
pub const SKIPPED: i16 = 4;
pub const CANCELLED: i16 = 5;
pub const FAILED: i16 = 6;

const COLUMNS: &str = "id, key, purpose, property_id, guest_id, stay_id, case_id, due_time,
    state, late_policy, late_threshold_ms, action, generation, attempt_count, last_error,
    fire_time, late, skip_reason, message_id, create_time, update_time, clock_id, task_id";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimerRow {
    pub id: Uuid,
    pub key: String,
    pub purpose: i16,
    pub property_id: String,
    pub guest_id: String,
    pub stay_id: String,
    pub case_id: String,
    pub due_time: DateTime<Utc>,
    pub state: i16,
    pub late_policy: i16,
    pub late_threshold_ms: i64,
    pub action: Option<Vec<u8>>,
    pub generation: i64,
    pub attempt_count: i32,
    pub last_error: String,
    pub fire_time: Option<DateTime<Utc>>,
    pub late: bool,
    pub skip_reason: String,
    pub message_id: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub clock_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
}

impl TimerRow {
    /// Whether the stored timer already is `t` (ScheduleTimer answers UNCHANGED).
    pub fn same_as(&self, t: &NewTimer) -> bool {
        self.purpose == t.purpose as i16
            && self.guest_id == t.guest_id
            && self.stay_id == t.stay_id
            && self.case_id == t.case_id
            && self.due_time == t.due_time
            && self.late_policy == t.late_policy as i16
            && self.late_threshold_ms == t.late_threshold_ms
            && self.action == t.action
            && self.clock_id == t.clock_id
            && self.task_id == t.task_id
    }

    /// The idempotency key of this generation's action.
    pub fn idempotency_key(&self) -> String {
        format!("timer:{}:{}", self.id, self.generation)
    }
}

/// Inserts the timer unless its key exists; `None` when it does.
pub async fn insert(
    conn: &mut PgConnection,
    t: &NewTimer,
) -> Result<Option<TimerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO timers (id, key, purpose, property_id, guest_id, stay_id, case_id, due_time,
            state, late_policy, late_threshold_ms, action, clock_id, task_id, create_time,
            update_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11, $12, $13, now(), now())
         ON CONFLICT (key) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(&t.key)
    .bind(t.purpose as i16)
    .bind(&t.property_id)
    .bind(&t.guest_id)
    .bind(&t.stay_id)
    .bind(&t.case_id)
    .bind(t.due_time)
    .bind(t.late_policy as i16)
    .bind(t.late_threshold_ms)
    .bind(&t.action)
    .bind(t.clock_id)
    .bind(t.task_id)
    .fetch_optional(conn)
    .await
}

/// Replaces a pending (or revives a cancelled) timer: new fields, PENDING, generation + 1,
/// the outcome of earlier generations cleared.
pub async fn replace(
    conn: &mut PgConnection,
    id: Uuid,
    t: &NewTimer,
) -> Result<TimerRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE timers SET purpose = $2, guest_id = $3, stay_id = $4, case_id = $5,
            due_time = $6, late_policy = $7, late_threshold_ms = $8, action = $9, state = 1,
            generation = generation + 1, attempt_count = 0, last_error = '', fire_time = NULL,
            late = false, late_decision = '', skip_reason = '', message_id = '',
            lease_owner = NULL, lease_until = NULL, clock_id = $10, task_id = $11,
            property_id = $12, update_time = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(t.purpose as i16)
    .bind(&t.guest_id)
    .bind(&t.stay_id)
    .bind(&t.case_id)
    .bind(t.due_time)
    .bind(t.late_policy as i16)
    .bind(t.late_threshold_ms)
    .bind(&t.action)
    .bind(t.clock_id)
    .bind(t.task_id)
    .bind(&t.property_id)
    .fetch_one(conn)
    .await
}

/// What scheduling a timer by key came to.
#[derive(Debug)]
pub enum Upsert {
    Created(TimerRow),
    /// A pending timer with other fields: replaced, generation + 1.
    Replaced(TimerRow),
    Unchanged(TimerRow),
    /// Fired, skipped or failed: left alone.
    Done(TimerRow),
    /// Firing right now: left alone.
    Running,
    /// The key belongs to a timer of another property, and moving was not allowed.
    OtherProperty(TimerRow),
}

/// Creates the timer with `t.key`, or replaces it while pending (a cancelled one is
/// scheduled anew). The scheduler's own plans and clocks use this directly; ScheduleTimer
/// adds the caller's checks around it.
/// `may_move`: a pending timer of another property may move to `t.property_id` (a
/// birthday greeting follows the guest's latest stay); callers from outside may not.
pub async fn upsert(
    conn: &mut PgConnection,
    t: &NewTimer,
    may_move: bool,
) -> Result<Upsert, sqlx::Error> {
    if let Some(row) = insert(conn, t).await? {
        return Ok(Upsert::Created(row));
    }
    let existing = lock_by_key(conn, &t.key)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    if existing.property_id != t.property_id && !may_move {
        return Ok(Upsert::OtherProperty(existing));
    }
    // A request naming a merged-away guest asks for the timer stored under its survivor
    // (the triggers of migrations/1005 re-point the row): a retry stays UNCHANGED.
    let resolved;
    let t = if !t.guest_id.is_empty() && existing.guest_id != t.guest_id {
        resolved = NewTimer {
            guest_id: super::guests::survivor(conn, &t.guest_id).await?,
            ..t.clone()
        };
        &resolved
    } else {
        t
    };
    Ok(match existing.state {
        FIRED | SKIPPED | FAILED => Upsert::Done(existing),
        RUNNING => Upsert::Running,
        PENDING if existing.same_as(t) && existing.property_id == t.property_id => {
            Upsert::Unchanged(existing)
        }
        PENDING => Upsert::Replaced(replace(conn, existing.id, t).await?),
        _ => Upsert::Created(replace(conn, existing.id, t).await?),
    })
}

/// Cancels every pending timer whose key starts with `prefix` (a cancelled stay, a stopped
/// clock); returns how many.
pub async fn cancel_prefix(conn: &mut PgConnection, prefix: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE timers SET state = 5, update_time = now()
         WHERE starts_with(key, $1) AND state = 1",
    )
    .bind(prefix)
    .execute(conn)
    .await?
    .rows_affected())
}

/// An erased guest is contacted no more: every pending timer about them is cancelled.
pub async fn cancel_guest(conn: &mut PgConnection, guest_id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE timers SET state = 5, skip_reason = 'erased', update_time = now()
         WHERE guest_id = $1 AND state = 1",
    )
    .bind(guest_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// What staff wrote about an erased guest in the actions of their timers (a task's title
/// and instructions, a message's template variables) is replaced, in every state; the kind,
/// times and state stay. Returns how many changed.
pub async fn erase_actions_of_guest(
    conn: &mut PgConnection,
    guest_id: &str,
) -> Result<u64, sqlx::Error> {
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT id, action FROM timers WHERE guest_id = $1 AND action IS NOT NULL FOR UPDATE",
    )
    .bind(guest_id)
    .fetch_all(&mut *conn)
    .await?;
    let (ids, actions): (Vec<Uuid>, Vec<Vec<u8>>) = rows
        .iter()
        .map(|(id, bytes)| (*id, action_without_words(bytes)))
        .unzip();
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "UPDATE timers t SET action = u.action, update_time = now()
           FROM UNNEST($1::uuid[], $2::bytea[]) AS u(id, action) WHERE t.id = u.id",
    )
    .bind(&ids)
    .bind(&actions)
    .execute(conn)
    .await?
    .rows_affected())
}

/// A timer's action without free text: a task's title becomes "[erased]" and its
/// instructions go; a message loses its template variables. One that does not decode
/// becomes an empty action (it may hold the words).
fn action_without_words(bytes: &[u8]) -> Vec<u8> {
    use guestloop_proto::followup::v1::{TimerAction, timer_action::Action};
    use prost::Message;
    let mut action = TimerAction::decode(bytes).unwrap_or_default();
    match action.action.as_mut() {
        Some(Action::CreateTask(t)) => {
            t.title = "[erased]".into();
            t.instructions.clear();
        }
        Some(Action::SendMessage(m)) => {
            if let Some(spec) = m.message.as_mut() {
                spec.variables.clear();
            }
        }
        Some(Action::EscalateCase(_)) | None => {}
    }
    action.encode_to_vec()
}

/// Cancels the pending timer with this key, if any.
pub async fn cancel_key(conn: &mut PgConnection, key: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query(
            "UPDATE timers SET state = 5, update_time = now() WHERE key = $1 AND state = 1",
        )
        .bind(key)
        .execute(conn)
        .await?
        .rows_affected()
            == 1,
    )
}

/// The timer with this key, locked for the rest of the transaction.
pub async fn lock_by_key(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<TimerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM timers WHERE key = $1 FOR UPDATE"
    )))
    .bind(key)
    .fetch_optional(conn)
    .await
}

pub async fn by_key<'e>(
    exec: impl PgExecutor<'e>,
    key: &str,
) -> Result<Option<TimerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM timers WHERE key = $1"
    )))
    .bind(key)
    .fetch_optional(exec)
    .await
}

pub async fn by_id<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<TimerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM timers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await
}

/// Cancels the timer if it is pending; returns it as it is now.
pub async fn cancel(conn: &mut PgConnection, id: Uuid) -> Result<TimerRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE timers SET state = $2, update_time = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(CANCELLED)
    .fetch_one(conn)
    .await
}

/// Claims up to `limit` due timers for `owner` until the lease runs out: pending timers
/// past their due time, and running ones whose lease expired (their replica died).
pub async fn claim_due<'e>(
    exec: impl PgExecutor<'e>,
    owner: &str,
    lease_seconds: f64,
    limit: i64,
) -> Result<Vec<TimerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE timers SET state = 2, lease_owner = $1,
            lease_until = now() + make_interval(secs => $2),
            attempt_count = attempt_count + 1, update_time = now()
         WHERE id IN (
             SELECT id FROM timers
             WHERE (state = 1 AND due_time <= now())
                OR (state = 2 AND lease_until < now())
             ORDER BY due_time
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

/// How a worker finishes a claimed timer.
#[derive(Debug, Clone)]
pub struct Finish {
    pub state: i16,
    pub fire_time: DateTime<Utc>,
    pub late: bool,
    pub late_decision: &'static str,
    pub skip_reason: &'static str,
    pub last_error: String,
    pub message_id: String,
}

/// Writes the outcomes of claimed timers, in one statement, where `owner` still holds the
/// lease of the generation it claimed; returns the ids whose lease `owner`
/// still held (the others were written by nobody here and are left alone).
pub async fn finish_many(
    conn: &mut PgConnection,
    owner: &str,
    done: &[(&TimerRow, &Finish)],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let col = |f: &dyn Fn(&TimerRow, &Finish) -> String| -> Vec<String> {
        done.iter().map(|(r, x)| f(r, x)).collect()
    };
    sqlx::query_scalar(
        "UPDATE timers t SET state = f.state, fire_time = f.fire_time, late = f.late,
            late_decision = f.late_decision, skip_reason = f.skip_reason,
            last_error = f.last_error, message_id = f.message_id, worked_by = $1,
            lease_owner = NULL, lease_until = NULL, update_time = now()
         FROM unnest($2::uuid[], $3::bigint[], $4::smallint[], $5::timestamptz[],
                     $6::boolean[], $7::text[], $8::text[], $9::text[], $10::text[])
              AS f(id, generation, state, fire_time, late, late_decision, skip_reason,
                   last_error, message_id)
         WHERE t.id = f.id AND t.generation = f.generation AND t.state = 2
           AND t.lease_owner = $1
         RETURNING t.id",
    )
    .bind(owner)
    .bind(done.iter().map(|(r, _)| r.id).collect::<Vec<_>>())
    .bind(done.iter().map(|(r, _)| r.generation).collect::<Vec<_>>())
    .bind(done.iter().map(|(_, f)| f.state).collect::<Vec<_>>())
    .bind(done.iter().map(|(_, f)| f.fire_time).collect::<Vec<_>>())
    .bind(done.iter().map(|(_, f)| f.late).collect::<Vec<_>>())
    .bind(col(&|_, f| f.late_decision.to_string()))
    .bind(col(&|_, f| f.skip_reason.to_string()))
    .bind(col(&|_, f| f.last_error.clone()))
    .bind(col(&|_, f| f.message_id.clone()))
    .fetch_all(conn)
    .await
}

/// A failed attempt: stays RUNNING without an owner until `retry_at`, when any worker may
/// claim it again.
pub async fn retry_later<'e>(
    exec: impl PgExecutor<'e>,
    row: &TimerRow,
    owner: &str,
    retry_at: DateTime<Utc>,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE timers SET lease_owner = NULL, lease_until = $4, last_error = $5,
            update_time = now()
         WHERE id = $1 AND generation = $2 AND state = 2 AND lease_owner = $3",
    )
    .bind(row.id)
    .bind(row.generation)
    .bind(owner)
    .bind(retry_at)
    .bind(error)
    .execute(exec)
    .await?;
    Ok(())
}

/// Records executions of timers' actions (in the transaction that finishes them), one
/// statement for many: (timer, action kind, fire time).
pub async fn record_firings(
    conn: &mut PgConnection,
    fired: &[(&TimerRow, &str, DateTime<Utc>)],
    worker: &str,
) -> Result<(), sqlx::Error> {
    if fired.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO timer_firings (timer_id, generation, idempotency_key, action_kind, worker,
            fire_time)
         SELECT id, generation, idempotency_key, action_kind, $5, fire_time
         FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $6::timestamptz[])
              AS f(id, generation, idempotency_key, action_kind, fire_time)",
    )
    .bind(fired.iter().map(|(r, _, _)| r.id).collect::<Vec<_>>())
    .bind(
        fired
            .iter()
            .map(|(r, _, _)| r.generation)
            .collect::<Vec<_>>(),
    )
    .bind(
        fired
            .iter()
            .map(|(r, _, _)| r.idempotency_key())
            .collect::<Vec<_>>(),
    )
    .bind(
        fired
            .iter()
            .map(|(_, k, _)| k.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(worker)
    .bind(fired.iter().map(|(_, _, t)| *t).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// The earliest due time of a pending timer: the worker sleeps until then (or its poll
/// interval, whichever is sooner) instead of polling past it.
pub async fn next_due<'e>(exec: impl PgExecutor<'e>) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(due_time) FROM timers WHERE state = 1")
        .fetch_one(exec)
        .await
}

/// Timers due and not yet fired, skipped or failed: how many, and how long ago the oldest
/// came due (0 when none) — in one pass over the same rows.
pub async fn backlog<'e>(exec: impl PgExecutor<'e>) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), COALESCE(EXTRACT(EPOCH FROM now() - MIN(due_time))::float8, 0)
         FROM timers WHERE state IN (1, 2) AND due_time <= now()",
    )
    .fetch_one(exec)
    .await
}

/// ListTimers' filter, already narrowed to the caller's scope.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub property_id: Option<String>,
    /// `None`: the whole chain.
    pub visible: Option<Vec<String>>,
    pub states: Vec<i16>,
    pub purposes: Vec<i16>,
    pub case_id: Option<String>,
    pub stay_id: Option<String>,
    pub guest_id: Option<String>,
    pub key_prefix: Option<String>,
    pub due_from: Option<DateTime<Utc>>,
    pub due_until: Option<DateTime<Utc>>,
    pub late_only: bool,
}

/// Soonest due first, keyset-paged on (due_time, id).
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    f: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<TimerRow>, sqlx::Error> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM timers WHERE true"));
    if let Some(p) = &f.property_id {
        q.push(" AND property_id = ").push_bind(p.clone());
    }
    if let Some(v) = &f.visible {
        q.push(" AND property_id = ANY(")
            .push_bind(v.clone())
            .push(")");
    }
    if !f.states.is_empty() {
        q.push(" AND state = ANY(")
            .push_bind(f.states.clone())
            .push(")");
    }
    if !f.purposes.is_empty() {
        q.push(" AND purpose = ANY(")
            .push_bind(f.purposes.clone())
            .push(")");
    }
    if let Some(c) = &f.case_id {
        q.push(" AND case_id = ").push_bind(c.clone());
    }
    if let Some(s) = &f.stay_id {
        q.push(" AND stay_id = ").push_bind(s.clone());
    }
    if let Some(g) = &f.guest_id {
        q.push(" AND guest_id = ").push_bind(g.clone());
    }
    if let Some(k) = &f.key_prefix {
        q.push(" AND starts_with(key, ")
            .push_bind(k.clone())
            .push(")");
    }
    if let Some(t) = f.due_from {
        q.push(" AND due_time >= ").push_bind(t);
    }
    if let Some(t) = f.due_until {
        q.push(" AND due_time < ").push_bind(t);
    }
    if f.late_only {
        q.push(" AND (late OR (state IN (1, 2) AND due_time < now()))");
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

/// Every timer about these guests in `properties` (`None`: all), by due time: the contacts
/// planned for them, for a subject-access export (api/export.rs).
pub async fn of_guests<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[String],
    properties: Option<&[String]>,
) -> Result<Vec<TimerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM timers
          WHERE guest_id = ANY($1) AND ($2::text[] IS NULL OR property_id = ANY($2))
          ORDER BY due_time, id"
    )))
    .bind(guest_ids)
    .bind(properties)
    .fetch_all(exec)
    .await
}

//! The rows behind SLA clocks: what the scheduler knows of each case (`cases`, newest
//! version wins), its clocks (`case_clocks`) and the ladder hops it made
//! (`escalation_hops`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

// followup.v1.ClockState.
pub const RUNNING: i16 = 1;
pub const PAUSED: i16 = 2;
pub const MET: i16 = 3;
pub const BREACHED: i16 = 4;
pub const CANCELLED: i16 = 7;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub case_id: String,
    pub property_id: String,
    pub reference: String,
    pub guest_id: String,
    pub stay_id: String,
    pub status: i16,
    pub tier: i16,
    pub urgency: i16,
    pub department: i16,
    pub assignee_id: String,
    pub version: i64,
}

/// Stores the facts if they are newer than what is known; `None` for a stale event.
pub async fn upsert_case(
    conn: &mut PgConnection,
    c: &CaseRow,
) -> Result<Option<CaseRow>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO cases (case_id, property_id, reference, guest_id, stay_id, status, tier,
            urgency, department, assignee_id, version, update_time)
         VALUES ($1, $2, $3,
            -- A case event written before the guest's erasure reached feedback-intake
            -- (another outbox, so any order) must not bring the erased id back.
            CASE WHEN EXISTS (SELECT 1 FROM erased_guests WHERE guest_id = $4) THEN '' ELSE $4 END,
            $5, $6, $7, $8, $9, $10, $11, now())
         ON CONFLICT (case_id) DO UPDATE SET property_id = EXCLUDED.property_id,
            reference = EXCLUDED.reference, guest_id = EXCLUDED.guest_id,
            stay_id = EXCLUDED.stay_id, status = EXCLUDED.status,
            tier = GREATEST(cases.tier, EXCLUDED.tier), urgency = EXCLUDED.urgency,
            department = EXCLUDED.department, assignee_id = EXCLUDED.assignee_id,
            version = EXCLUDED.version, update_time = now()
         WHERE cases.version < EXCLUDED.version
         RETURNING case_id, property_id, reference, guest_id, stay_id, status, tier, urgency,
            department, assignee_id, version",
    )
    .bind(&c.case_id)
    .bind(&c.property_id)
    .bind(&c.reference)
    .bind(&c.guest_id)
    .bind(&c.stay_id)
    .bind(c.status)
    .bind(c.tier)
    .bind(c.urgency)
    .bind(c.department)
    .bind(&c.assignee_id)
    .bind(c.version)
    .fetch_optional(conn)
    .await
}

pub async fn case<'e>(
    exec: impl PgExecutor<'e>,
    case_id: &str,
) -> Result<Option<CaseRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT case_id, property_id, reference, guest_id, stay_id, status, tier, urgency,
            department, assignee_id, version FROM cases WHERE case_id = $1",
    )
    .bind(case_id)
    .fetch_optional(exec)
    .await
}

/// The case's tier after the scheduler's own escalation (feedback-intake's event follows).
pub async fn raise_tier(
    conn: &mut PgConnection,
    case_id: &str,
    tier: i16,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cases SET tier = GREATEST(tier, $2), update_time = now() WHERE case_id = $1",
    )
    .bind(case_id)
    .bind(tier)
    .execute(conn)
    .await?;
    Ok(())
}

const CLOCK_COLUMNS: &str = "id, case_id, kind, tier, property_id, urgency, state, start_time,
    due_time, target_ms, warn_time, warned, stop_time, breach_time, paused_since, paused_ms";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClockRow {
    pub id: Uuid,
    pub case_id: String,
    pub kind: i16,
    pub tier: i16,
    pub property_id: String,
    pub urgency: i16,
    pub state: i16,
    pub start_time: DateTime<Utc>,
    pub due_time: DateTime<Utc>,
    pub target_ms: i64,
    pub warn_time: Option<DateTime<Utc>>,
    pub warned: bool,
    pub stop_time: Option<DateTime<Utc>>,
    pub breach_time: Option<DateTime<Utc>>,
    pub paused_since: Option<DateTime<Utc>>,
    pub paused_ms: i64,
}

impl ClockRow {
    pub fn running(&self) -> bool {
        self.state == RUNNING
    }
    /// Still counting or paused: not stopped.
    pub fn open(&self) -> bool {
        matches!(self.state, RUNNING | PAUSED)
            || (self.state == BREACHED && self.stop_time.is_none())
    }
}

/// Inserts the clock unless the case already has one of this kind and tier; returns the
/// case's clock either way, locked.
pub async fn insert_or_get(conn: &mut PgConnection, c: &ClockRow) -> Result<ClockRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_clocks (id, case_id, kind, tier, property_id, urgency, state,
            start_time, due_time, target_ms, warn_time, update_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
         ON CONFLICT (case_id, kind, tier) DO NOTHING",
    )
    .bind(c.id)
    .bind(&c.case_id)
    .bind(c.kind)
    .bind(c.tier)
    .bind(&c.property_id)
    .bind(c.urgency)
    .bind(c.state)
    .bind(c.start_time)
    .bind(c.due_time)
    .bind(c.target_ms)
    .bind(c.warn_time)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM case_clocks WHERE case_id = $1 AND kind = $2 AND tier = $3
         FOR UPDATE"
    )))
    .bind(&c.case_id)
    .bind(c.kind)
    .bind(c.tier)
    .fetch_one(conn)
    .await
}

pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<ClockRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM case_clocks WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn by_id<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<ClockRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM case_clocks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await
}

/// The open clocks of a case, locked.
pub async fn lock_open_of_case(
    conn: &mut PgConnection,
    case_id: &str,
) -> Result<Vec<ClockRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM case_clocks WHERE case_id = $1
         ORDER BY kind, tier FOR UPDATE"
    )))
    .bind(case_id)
    .fetch_all(conn)
    .await
}

pub async fn of_case<'e>(
    exec: impl PgExecutor<'e>,
    case_id: &str,
) -> Result<Vec<ClockRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM case_clocks WHERE case_id = $1 ORDER BY kind, tier"
    )))
    .bind(case_id)
    .fetch_all(exec)
    .await
}

/// Open clocks of a property due before `until`, soonest first.
pub async fn due_within<'e>(
    exec: impl PgExecutor<'e>,
    property_id: &str,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ClockRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLOCK_COLUMNS} FROM case_clocks
         WHERE property_id = $1 AND state IN (1, 2) AND due_time < $2
         ORDER BY due_time, id LIMIT $3"
    )))
    .bind(property_id)
    .bind(until)
    .bind(limit)
    .fetch_all(exec)
    .await
}

/// Writes the clock's mutable fields back.
pub async fn save(conn: &mut PgConnection, c: &ClockRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE case_clocks SET state = $2, due_time = $3, warn_time = $4, warned = $5,
            stop_time = $6, breach_time = $7, paused_since = $8, paused_ms = $9,
            update_time = now()
         WHERE id = $1",
    )
    .bind(c.id)
    .bind(c.state)
    .bind(c.due_time)
    .bind(c.warn_time)
    .bind(c.warned)
    .bind(c.stop_time)
    .bind(c.breach_time)
    .bind(c.paused_since)
    .bind(c.paused_ms)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HopRow {
    pub idempotency_key: String,
    pub case_id: String,
    pub property_id: String,
    pub from_tier: i16,
    pub to_tier: i16,
    pub clock_id: Uuid,
    pub hop_time: DateTime<Utc>,
    pub confirmed: bool,
    pub message_id: String,
}

/// Records a hop once per idempotency key; false when it was already recorded.
pub async fn insert_hop(conn: &mut PgConnection, h: &HopRow) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO escalation_hops (idempotency_key, case_id, property_id, from_tier, to_tier,
            clock_id, hop_time, confirmed, message_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&h.idempotency_key)
    .bind(&h.case_id)
    .bind(&h.property_id)
    .bind(h.from_tier)
    .bind(h.to_tier)
    .bind(h.clock_id)
    .bind(h.hop_time)
    .bind(h.confirmed)
    .bind(&h.message_id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

pub async fn hops<'e>(
    exec: impl PgExecutor<'e>,
    case_id: &str,
) -> Result<Vec<HopRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT idempotency_key, case_id, property_id, from_tier, to_tier, clock_id, hop_time,
            confirmed, message_id
         FROM escalation_hops WHERE case_id = $1 ORDER BY hop_time",
    )
    .bind(case_id)
    .fetch_all(exec)
    .await
}

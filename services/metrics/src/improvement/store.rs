//! The board's tables: items, the steps they took, the cases linked to them.

use super::NewItem;
use chrono::{DateTime, NaiveDate, Utc};
use guestloop_db::page::{Cursor, Page};
use guestloop_proto::metrics::v1 as pb;
use prost::Message;
use sqlx::{PgConnection, PgExecutor, QueryBuilder};
use std::collections::HashMap;
use uuid::Uuid;

pub const COLUMNS: &str = "id, state, scope_level, scope_id, category, department, tag, title,
    owner_staff_id, plan, due_time, open_day, baseline, target_rate, do_day, check_day,
    verdict, verdict_value, proposal_reason, create_time, update_time";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub id: Uuid,
    pub state: i16,
    pub scope_level: i16,
    pub scope_id: String,
    pub category: i16,
    pub department: i16,
    pub tag: String,
    pub title: String,
    pub owner_staff_id: String,
    pub plan: String,
    pub due_time: Option<DateTime<Utc>>,
    pub open_day: NaiveDate,
    pub baseline: Vec<u8>,
    pub target_rate: f64,
    pub do_day: Option<NaiveDate>,
    pub check_day: Option<NaiveDate>,
    pub verdict: i16,
    pub verdict_value: Option<Vec<u8>>,
    pub proposal_reason: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepRow {
    pub item_id: Uuid,
    pub step_time: DateTime<Utc>,
    pub from_state: i16,
    pub to_state: i16,
    pub note: String,
    pub actor: String,
}

pub enum Inserted {
    New(ItemRow),
    /// The same idempotency key answered before.
    Repeat(ItemRow),
    /// Another item is open for the scope and category.
    OpenExists,
}

/// Inserts an item (and its first step) unless the key was used or one is open already.
pub async fn insert(
    conn: &mut PgConnection,
    n: &NewItem,
    open_day: NaiveDate,
    baseline: &pb::KpiValue,
    target_rate: f64,
) -> Result<Inserted, sqlx::Error> {
    if let Some(key) = &n.idempotency_key {
        let found: Option<ItemRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM improvement_items
             WHERE scope_level = $1 AND scope_id = $2 AND idempotency_key = $3"
        )))
        .bind(n.scope_level as i16)
        .bind(&n.scope_id)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = found {
            return Ok(Inserted::Repeat(row));
        }
    }
    let now = Utc::now();
    let row: Option<ItemRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO improvement_items (id, state, scope_level, scope_id, category, department,
            tag, title, owner_staff_id, plan, due_time, open_day, baseline, target_rate,
            proposal_reason, idempotency_key, create_time, update_time, timer_synced)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            $17, $18)
         ON CONFLICT DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(n.state as i16)
    .bind(n.scope_level as i16)
    .bind(&n.scope_id)
    .bind(n.category as i16)
    .bind(n.department as i16)
    .bind(&n.tag)
    .bind(&n.title)
    .bind(&n.owner_staff_id)
    .bind(&n.plan)
    .bind(n.due_time)
    .bind(open_day)
    .bind(baseline.encode_to_vec())
    .bind(target_rate)
    .bind(&n.proposal_reason)
    .bind(&n.idempotency_key)
    .bind(now)
    // Nothing to tell the scheduler until the item is worked with a due time.
    .bind(!(super::watched(n.state) && n.due_time.is_some()))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(Inserted::OpenExists);
    };
    step(conn, row.id, now, 0, n.state as i16, "", &n.actor).await?;
    Ok(Inserted::New(row))
}

pub async fn step(
    conn: &mut PgConnection,
    item: Uuid,
    at: DateTime<Utc>,
    from: i16,
    to: i16,
    note: &str,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO improvement_steps (item_id, step_time, from_state, to_state, note, actor)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(item)
    .bind(at)
    .bind(from)
    .bind(to)
    .bind(note)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get<'e>(exec: impl PgExecutor<'e>, id: Uuid) -> Result<Option<ItemRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM improvement_items WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await
}

/// The item, locked for a change.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<ItemRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM improvement_items WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Writes a changed item back; the overdue timer must follow when `retime`.
pub async fn update(conn: &mut PgConnection, r: &ItemRow, retime: bool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE improvement_items SET state = $2, owner_staff_id = $3, plan = $4, due_time = $5,
            target_rate = $6, do_day = $7, check_day = $8, verdict = $9, verdict_value = $10,
            update_time = $11, timer_synced = timer_synced AND NOT $12, baseline = $13,
            open_day = $14
         WHERE id = $1",
    )
    .bind(r.id)
    .bind(r.state)
    .bind(&r.owner_staff_id)
    .bind(&r.plan)
    .bind(r.due_time)
    .bind(r.target_rate)
    .bind(r.do_day)
    .bind(r.check_day)
    .bind(r.verdict)
    .bind(&r.verdict_value)
    .bind(r.update_time)
    .bind(retime)
    .bind(&r.baseline)
    .bind(r.open_day)
    .execute(conn)
    .await?;
    Ok(())
}

/// The steps of each of the items, in order (one query for a page of items).
pub async fn steps<'e>(
    exec: impl PgExecutor<'e>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<StepRow>>, sqlx::Error> {
    let rows: Vec<StepRow> = sqlx::query_as(
        "SELECT item_id, step_time, from_state, to_state, note, actor FROM improvement_steps
         WHERE item_id = ANY($1) ORDER BY item_id, step_time, to_state",
    )
    .bind(ids)
    .fetch_all(exec)
    .await?;
    let mut out: HashMap<Uuid, Vec<StepRow>> = HashMap::new();
    for r in rows {
        out.entry(r.item_id).or_default().push(r);
    }
    Ok(out)
}

/// The cases linked to each of the items, by id (one query for a page of items).
pub async fn cases<'e>(
    exec: impl PgExecutor<'e>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<String>>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT item_id, case_id FROM improvement_cases
         WHERE item_id = ANY($1) ORDER BY item_id, case_id",
    )
    .bind(ids)
    .fetch_all(exec)
    .await?;
    let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (item, case) in rows {
        out.entry(item).or_default().push(case);
    }
    Ok(out)
}

/// A case as the board checks it before linking it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KnownCase {
    pub case_id: String,
    pub property_id: String,
    /// The latest the case events told (a regraded case may have changed category).
    pub category: i16,
}

/// Of `ids`, the cases metrics knows the facts of. A case seen only through an SLA clock
/// (its facts not arrived yet) is not known: its category is not.
pub async fn known_cases<'e>(
    exec: impl PgExecutor<'e>,
    ids: &[String],
) -> Result<Vec<KnownCase>, sqlx::Error> {
    sqlx::query_as(
        "SELECT case_id, property_id, category FROM case_state
         WHERE case_id = ANY($1) AND opened_counted",
    )
    .bind(ids)
    .fetch_all(exec)
    .await
}

pub async fn link(conn: &mut PgConnection, id: Uuid, cases: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO improvement_cases (item_id, case_id, link_time)
         SELECT $1, c, now() FROM UNNEST($2::text[]) AS c ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(cases)
    .execute(conn)
    .await?;
    Ok(())
}

/// Items of the properties' scopes (and of the regions given), newest first, one page.
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    regions: &[String],
    states: &[i16],
    page: &Page,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    let mut q = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM improvement_items WHERE ((scope_level = 1 AND scope_id = ANY("
    ));
    q.push_bind(properties.to_vec())
        .push(")) OR (scope_level = 2 AND scope_id = ANY(")
        .push_bind(regions.to_vec())
        .push(")))");
    if !states.is_empty() {
        q.push(" AND state = ANY(")
            .push_bind(states.to_vec())
            .push(")");
    }
    if let Some(Cursor { t, id }) = page.after {
        q.push(" AND (create_time, id) < (")
            .push_bind(t)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY create_time DESC, id DESC LIMIT ")
        .push_bind(page.size);
    q.build_query_as().fetch_all(exec).await
}

//! The guests table: create, read (following merges), update, list and search.

use super::{GUEST_COLUMNS, GuestRecord, GuestRow, visible_through, visible_through_param};
use crate::domain::Profile;
use guestloop_db::page::Page;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, PgConnection, PgExecutor, Row};
use uuid::Uuid;

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    home_property_id: &str,
    p: &Profile,
    score: i32,
    complete: bool,
) -> Result<GuestRecord, sqlx::Error> {
    let sql = format!(
        "INSERT INTO guests AS g (id, home_property_id, given_name, family_name, email, phone, wechat_id,
            language, birthday, segment, tier, loyalty_number, preferences, special_needs, notes,
            completeness_score, complete, anniversary)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)
         RETURNING {GUEST_COLUMNS}"
    );
    let row: GuestRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .bind(home_property_id)
        .bind(&p.given_name)
        .bind(&p.family_name)
        .bind(&p.email)
        .bind(&p.phone)
        .bind(&p.wechat_id)
        .bind(&p.language)
        .bind(p.birthday)
        .bind(p.segment as i16)
        .bind(p.tier as i16)
        .bind(&p.loyalty_number)
        .bind(Json(&p.preferences))
        .bind(Json(&p.special_needs))
        .bind(&p.notes)
        .bind(score as i16)
        .bind(complete)
        .bind(p.anniversary)
        .fetch_one(conn)
        .await?;
    Ok(row.into())
}

pub async fn update_profile(
    conn: &mut PgConnection,
    id: Uuid,
    p: &Profile,
    score: i32,
    complete: bool,
) -> Result<GuestRecord, sqlx::Error> {
    let sql = format!(
        "UPDATE guests AS g SET given_name=$2, family_name=$3, email=$4, phone=$5, wechat_id=$6,
            language=$7, birthday=$8, segment=$9, tier=$10, loyalty_number=$11, preferences=$12,
            special_needs=$13, notes=$14, completeness_score=$15, complete=$16, anniversary=$17,
            update_time=now()
         WHERE id = $1 RETURNING {GUEST_COLUMNS}"
    );
    let row: GuestRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .bind(&p.given_name)
        .bind(&p.family_name)
        .bind(&p.email)
        .bind(&p.phone)
        .bind(&p.wechat_id)
        .bind(&p.language)
        .bind(p.birthday)
        .bind(p.segment as i16)
        .bind(p.tier as i16)
        .bind(&p.loyalty_number)
        .bind(Json(&p.preferences))
        .bind(Json(&p.special_needs))
        .bind(&p.notes)
        .bind(score as i16)
        .bind(complete)
        .bind(p.anniversary)
        .fetch_one(conn)
        .await?;
    Ok(row.into())
}

/// The guest row itself, merged or not. `for_update` locks it for the transaction.
pub async fn get<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
    for_update: bool,
) -> Result<Option<GuestRecord>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {GUEST_COLUMNS} FROM guests g WHERE g.id = $1{lock}");
    let row: Option<GuestRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(exec)
        .await?;
    Ok(row.map(Into::into))
}

/// Follows merges to the surviving profile: (survivor, the id asked for if it was merged).
pub async fn resolve(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> Result<Option<(GuestRecord, Option<Uuid>)>, sqlx::Error> {
    let mut current = id;
    for _ in 0..16 {
        let Some(g) = get(&mut *conn, current, for_update).await? else {
            return Ok(None);
        };
        match g.merged_into {
            Some(next) => current = next,
            None => return Ok(Some((g, (current != id).then_some(id)))),
        }
    }
    Ok(None)
}

/// The properties a guest is tied to: home property and every stay's property.
pub async fn properties<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT home_property_id FROM guests WHERE id = $1
         UNION SELECT property_id FROM stays WHERE guest_id = $1",
    )
    .bind(id)
    .fetch_all(exec)
    .await
}

/// What SearchGuests may match on; `None` fields do not filter.
#[derive(Debug, Default)]
pub struct Criteria {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub loyalty_number: Option<String>,
    pub property_id: Option<String>,
}

/// Active (not merged-away) guests visible to `visible`, matching `c`, one page.
pub async fn search<'e>(
    exec: impl PgExecutor<'e>,
    visible: Option<&[String]>,
    c: &Criteria,
    page: Page,
) -> Result<Vec<GuestRecord>, sqlx::Error> {
    let visible_sql = visible_through_param();
    let sql = format!(
        "SELECT {GUEST_COLUMNS} FROM guests g
         WHERE g.merged_into IS NULL AND {visible_sql}
           AND ($2::text IS NULL OR lower(g.email) = lower($2))
           AND ($3::text IS NULL OR g.phone = $3)
           AND ($4::text IS NULL OR lower(g.given_name) LIKE $4 || '%' OR lower(g.family_name) LIKE $4 || '%'
                OR lower(coalesce(g.given_name,'') || ' ' || coalesce(g.family_name,'')) LIKE $4 || '%'
                OR lower(coalesce(g.family_name,'') || coalesce(g.given_name,'')) LIKE $4 || '%')
           AND ($5::text IS NULL OR g.loyalty_number = $5)
           AND ($6::text IS NULL OR g.home_property_id = $6
                OR EXISTS (SELECT 1 FROM stays s2 WHERE s2.guest_id = g.id AND s2.property_id = $6))
           AND ($7::timestamptz IS NULL OR (g.create_time, g.id) > ($7, $8))
         ORDER BY g.create_time, g.id
         LIMIT $9"
    );
    let name = c.name.as_ref().map(|n| {
        n.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    });
    let rows: Vec<GuestRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(visible)
        .bind(&c.email)
        .bind(&c.phone)
        .bind(name)
        .bind(&c.loyalty_number)
        .bind(&c.property_id)
        .bind(page.after.map(|a| a.t))
        .bind(page.after.map(|a| a.id))
        .bind(page.size)
        .fetch_all(exec)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Other active guests sharing an email or phone, or a family name (for name similarity).
pub async fn duplicate_candidates<'e>(
    exec: impl PgExecutor<'e>,
    visible: Option<&[String]>,
    g: &GuestRecord,
) -> Result<Vec<GuestRecord>, sqlx::Error> {
    let visible_sql = visible_through_param();
    let sql = format!(
        "SELECT {GUEST_COLUMNS} FROM guests g
         WHERE g.merged_into IS NULL AND NOT g.erased AND g.id <> $2 AND {visible_sql}
           AND (($3::text IS NOT NULL AND lower(g.email) = lower($3))
             OR ($4::text IS NOT NULL AND g.phone = $4)
             OR ($5::text IS NOT NULL AND lower(g.family_name) = lower($5))
             OR ($6::text IS NOT NULL AND lower(g.given_name) = lower($6) AND g.family_name IS NULL))
         ORDER BY g.create_time, g.id
         LIMIT 200"
    );
    let rows: Vec<GuestRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(visible)
        .bind(g.id)
        .bind(&g.profile.email)
        .bind(&g.profile.phone)
        .bind(&g.profile.family_name)
        .bind(&g.profile.given_name)
        .fetch_all(exec)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn find_idempotent<'e>(
    exec: impl PgExecutor<'e>,
    property_id: &str,
    key: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT guest_id FROM guest_idempotency WHERE property_id = $1 AND idempotency_key = $2",
    )
    .bind(property_id)
    .bind(key)
    .fetch_optional(exec)
    .await
}

/// Records the key; false if a concurrent call recorded it first.
pub async fn save_idempotency(
    conn: &mut PgConnection,
    property_id: &str,
    key: &str,
    guest_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO guest_idempotency (property_id, idempotency_key, guest_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(property_id)
    .bind(key)
    .bind(guest_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Counts of guests tied to a property, and how many of them are complete.
pub async fn property_completeness<'e>(
    exec: impl PgExecutor<'e>,
    property_id: &str,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE g.complete) FROM guests g
         WHERE g.merged_into IS NULL AND NOT g.erased
           AND (g.home_property_id = $1 OR EXISTS (SELECT 1 FROM stays s WHERE s.guest_id = g.id AND s.property_id = $1))",
    )
    .bind(property_id)
    .fetch_one(exec)
    .await
}

/// One GetGuest read that is answered straight from its row, logged in the same statement.
pub struct LoggedRead<'a> {
    pub guest_id: Uuid,
    pub accessor: &'a str,
    pub role: &'a str,
    pub rpc: &'a str,
    /// The caller's visible properties, `None` for the whole chain.
    pub visible: Option<&'a [String]>,
}

/// Property ids never hold this character (it is a control code), so a caller's visible
/// properties travel as one text per read and split back in SQL.
const VISIBLE_SEPARATOR: char = '\u{1f}';

/// Reads a batch of guests and writes the access log of the reads that answer, in ONE
/// statement (so one commit): only rows that exist, were not merged away and are visible to
/// their caller are returned, and exactly those are logged. The rest (misses, merges,
/// other properties' guests) get `None` and take the slow path, which logs as it answers.
pub async fn read_and_log<'e>(
    exec: impl PgExecutor<'e>,
    reads: &[LoggedRead<'_>],
) -> Result<Vec<Option<GuestRecord>>, sqlx::Error> {
    let ids: Vec<Uuid> = reads.iter().map(|r| r.guest_id).collect();
    let accessors: Vec<&str> = reads.iter().map(|r| r.accessor).collect();
    let roles: Vec<&str> = reads.iter().map(|r| r.role).collect();
    let rpcs: Vec<&str> = reads.iter().map(|r| r.rpc).collect();
    let sep = VISIBLE_SEPARATOR.to_string();
    let visible: Vec<Option<String>> = reads
        .iter()
        .map(|r| r.visible.map(|v| v.join(&sep)))
        .collect();
    let visible_to_caller = visible_through("r.visible");
    let sql = format!(
        "WITH r AS (
             SELECT guest_id, accessor, accessor_role, rpc,
                    string_to_array(visible, $6) AS visible, n
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                 WITH ORDINALITY AS u(guest_id, accessor, accessor_role, rpc, visible, n)
         ), hit AS (
             SELECT r.* FROM r JOIN guests g ON g.id = r.guest_id
             WHERE g.merged_into IS NULL AND {visible_to_caller}
         ), logged AS (
             INSERT INTO access_log (guest_id, accessor, accessor_role, rpc)
             SELECT guest_id, accessor, accessor_role, rpc FROM hit
         )
         SELECT hit.n, {GUEST_COLUMNS} FROM hit JOIN guests g ON g.id = hit.guest_id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(&ids)
        .bind(&accessors)
        .bind(&roles)
        .bind(&rpcs)
        .bind(&visible)
        .bind(&sep)
        .fetch_all(exec)
        .await?;
    let mut out = vec![None; reads.len()];
    for row in rows {
        let n: i64 = row.try_get("n")?;
        let guest = GuestRow::from_row(&row)?;
        if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| out.get_mut(i)) {
            *slot = Some(guest.into());
        }
    }
    Ok(out)
}

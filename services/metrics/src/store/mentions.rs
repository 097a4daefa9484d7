//! Staff mentions per property and local day: praise and complaint counts.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgExecutor};

#[allow(clippy::too_many_arguments)]
pub async fn add(
    conn: &mut PgConnection,
    property_id: &str,
    day: NaiveDate,
    staff_id: &str,
    staff_name: &str,
    department: i16,
    praise: bool,
    complaint: bool,
) -> Result<(), sqlx::Error> {
    let key = if staff_id.is_empty() {
        format!("name:{}", staff_name.trim().to_lowercase())
    } else {
        format!("id:{staff_id}")
    };
    sqlx::query(
        "INSERT INTO staff_mentions (property_id, day, staff_key, staff_id, staff_name,
            department, praise, complaint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (property_id, staff_key, day) DO UPDATE SET
            praise = staff_mentions.praise + EXCLUDED.praise,
            complaint = staff_mentions.complaint + EXCLUDED.complaint,
            staff_name = CASE WHEN staff_mentions.staff_name = '' THEN EXCLUDED.staff_name
                              ELSE staff_mentions.staff_name END",
    )
    .bind(property_id)
    .bind(day)
    .bind(key)
    .bind(staff_id)
    .bind(staff_name.trim())
    .bind(department)
    .bind(i64::from(praise))
    .bind(i64::from(complaint))
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MentionRow {
    pub property_id: String,
    pub staff_id: String,
    pub staff_name: String,
    pub department: i16,
    pub praise: i64,
    pub complaint: i64,
}

/// Summed over the days, most praise first.
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    from: NaiveDate,
    to: NaiveDate,
    limit: i64,
    offset: i64,
) -> Result<Vec<MentionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT property_id, MAX(staff_id) AS staff_id, MAX(staff_name) AS staff_name,
            MAX(department) AS department, SUM(praise)::bigint AS praise,
            SUM(complaint)::bigint AS complaint
         FROM staff_mentions
         WHERE property_id = ANY($1) AND day BETWEEN $2 AND $3
         GROUP BY property_id, staff_key
         ORDER BY praise DESC, complaint ASC, property_id, staff_key
         LIMIT $4 OFFSET $5",
    )
    .bind(properties)
    .bind(from)
    .bind(to)
    .bind(limit)
    .bind(offset)
    .fetch_all(exec)
    .await
}

//! The rollups table: additions per property, local day, measure and breakdown, and sums
//! over ranges of days for the KPI queries. Each addition is also queued for the property's
//! region and the chain (store/scopes.rs), so those are read from their own few rows
//! instead of summing every property's. The range sums return many rows and are read
//! without entering the caller's span per row (guestloop_db::untraced).

use chrono::NaiveDate;
use guestloop_db::untraced;
use sqlx::{PgConnection, PgExecutor};

/// What one event adds to one rollup row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Add {
    pub n: i64,
    pub num: i64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Add {
    pub fn count() -> Self {
        Self {
            n: 1,
            ..Default::default()
        }
    }
    /// One case of a rate: in the denominator, and in the numerator when `hit`.
    pub fn rate(hit: bool) -> Self {
        Self {
            n: 1,
            num: i64::from(hit),
            ..Default::default()
        }
    }
    /// A numerator only (the denominator was counted by an earlier event).
    pub fn hit() -> Self {
        Self {
            num: 1,
            ..Default::default()
        }
    }
    pub fn score(x: f64) -> Self {
        Self {
            n: 1,
            num: 0,
            sum: x,
            sum_sq: x * x,
        }
    }
}

pub async fn add(
    conn: &mut PgConnection,
    property_id: &str,
    day: NaiveDate,
    measure: &str,
    breakdown: &str,
    a: Add,
) -> Result<(), sqlx::Error> {
    // One statement, one round trip: the property's row, and the same addition queued for
    // its region and the chain (store/scopes.rs). A property outside the configured chain
    // (scope_members) adds to no scope, as it belongs to none.
    sqlx::query(
        "WITH property AS (
            INSERT INTO rollups (property_id, day, measure, breakdown, n, num, sum, sum_sq)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (property_id, measure, breakdown, day) DO UPDATE SET
               n = rollups.n + EXCLUDED.n, num = rollups.num + EXCLUDED.num,
               sum = rollups.sum + EXCLUDED.sum, sum_sq = rollups.sum_sq + EXCLUDED.sum_sq)
         INSERT INTO scope_deltas (region_id, day, measure, breakdown, n, num, sum, sum_sq)
         SELECT m.region_id, $2, $3, $4, $5, $6, $7, $8
         FROM scope_members m WHERE m.property_id = $1",
    )
    .bind(property_id)
    .bind(day)
    .bind(measure)
    .bind(breakdown)
    .bind(a.n)
    .bind(a.num)
    .bind(a.sum)
    .bind(a.sum_sq)
    .execute(conn)
    .await?;
    Ok(())
}

/// One summed row: a measure and breakdown over some properties and days.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct Sum {
    pub measure: String,
    pub breakdown: String,
    pub day: NaiveDate,
    pub n: i64,
    pub num: i64,
    pub sum: f64,
    pub sum_sq: f64,
}

/// Every rollup of `properties` between the two days (inclusive), summed over the
/// properties, per measure, breakdown and day.
pub async fn sums<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Sum>, sqlx::Error> {
    untraced(
        sqlx::query_as(
            "SELECT measure, breakdown, day, SUM(n)::bigint AS n, SUM(num)::bigint AS num,
            SUM(sum) AS sum, SUM(sum_sq) AS sum_sq
         FROM rollups WHERE property_id = ANY($1) AND day BETWEEN $2 AND $3
         GROUP BY measure, breakdown, day",
        )
        .bind(properties)
        .bind(from)
        .bind(to)
        .fetch_all(exec),
    )
    .await
}

/// Like `sums`, per property (the league table), without the day.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct PropertySum {
    pub property_id: String,
    pub measure: String,
    pub breakdown: String,
    pub n: i64,
    pub num: i64,
    pub sum: f64,
    pub sum_sq: f64,
}

pub async fn sums_by_property<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PropertySum>, sqlx::Error> {
    untraced(
        sqlx::query_as(
            "SELECT property_id, measure, breakdown, SUM(n)::bigint AS n, SUM(num)::bigint AS num,
            SUM(sum) AS sum, SUM(sum_sq) AS sum_sq
         FROM rollups WHERE property_id = ANY($1) AND day BETWEEN $2 AND $3
            AND breakdown = ''
         GROUP BY property_id, measure, breakdown",
        )
        .bind(properties)
        .bind(from)
        .bind(to)
        .fetch_all(exec),
    )
    .await
}

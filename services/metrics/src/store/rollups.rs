//! The rollups table: additions per property, local day, measure and breakdown, and sums
//! over ranges of days for the KPI queries. Each addition also goes to the scope rows
//! (`scope_rollups`: the chain and the property's region, per day and per month), so a
//! region or the chain is read from its own few rows instead of summing every property's.

use chrono::NaiveDate;
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
    // One statement, one round trip: the property's row, then the chain's and its region's
    // day and month rows. A property outside the configured chain (scope_members) adds to
    // no scope, as it was never part of one when scopes were summed at read time.
    sqlx::query(
        "WITH property AS (
            INSERT INTO rollups (property_id, day, measure, breakdown, n, num, sum, sum_sq)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (property_id, measure, breakdown, day) DO UPDATE SET
               n = rollups.n + EXCLUDED.n, num = rollups.num + EXCLUDED.num,
               sum = rollups.sum + EXCLUDED.sum, sum_sq = rollups.sum_sq + EXCLUDED.sum_sq)
         INSERT INTO scope_rollups (scope, grain, day, measure, breakdown, n, num, sum, sum_sq)
         SELECT s.scope, g.grain, g.day, $3, $4, $5, $6, $7, $8
         FROM scope_members m
         CROSS JOIN LATERAL (VALUES ('chain'), ('region:' || m.region_id)) AS s(scope)
         CROSS JOIN (VALUES ('d'::\"char\", $2::date),
                            ('m'::\"char\", date_trunc('month', $2::date)::date)) AS g(grain, day)
         WHERE m.property_id = $1
         ON CONFLICT (scope, grain, day, measure, breakdown) DO UPDATE SET
            n = scope_rollups.n + EXCLUDED.n, num = scope_rollups.num + EXCLUDED.num,
            sum = scope_rollups.sum + EXCLUDED.sum,
            sum_sq = scope_rollups.sum_sq + EXCLUDED.sum_sq",
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
    sqlx::query_as(
        "SELECT measure, breakdown, day, SUM(n)::bigint AS n, SUM(num)::bigint AS num,
            SUM(sum) AS sum, SUM(sum_sq) AS sum_sq
         FROM rollups WHERE property_id = ANY($1) AND day BETWEEN $2 AND $3
         GROUP BY measure, breakdown, day",
    )
    .bind(properties)
    .bind(from)
    .bind(to)
    .fetch_all(exec)
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
    .fetch_all(exec)
    .await
}

/// A scope's sums between two days (inclusive), per measure, breakdown and day, from its
/// own rows. With `months`, each calendar month wholly inside the range is one row dated
/// its first day (callers group by period, and a month period holds its first day); the
/// days of a partial month at either end are read per day.
pub async fn scope_sums<'e>(
    exec: impl PgExecutor<'e>,
    scope: &str,
    from: NaiveDate,
    to: NaiveDate,
    months: bool,
) -> Result<Vec<Sum>, sqlx::Error> {
    use chrono::Datelike;
    // Whole months [m_from, m_to) by their first days; none when not asked or none fit.
    let first_whole = if from.day() == 1 {
        from
    } else {
        next_month(from)
    };
    let end_whole = next_month(to).pred_opt().expect("a day before") == to;
    let after_whole = if end_whole {
        next_month(to)
    } else {
        to.with_day(1).expect("day 1")
    };
    let (m_from, m_to) = if months && first_whole < after_whole {
        (first_whole, after_whole)
    } else {
        (
            to + chrono::Duration::days(1),
            to + chrono::Duration::days(1),
        )
    };
    sqlx::query_as(
        "SELECT measure, breakdown, day, n, num, sum, sum_sq FROM scope_rollups
         WHERE scope = $1 AND (
            (grain = 'm' AND day >= $4 AND day < $5)
            OR (grain = 'd' AND day BETWEEN $2 AND $3 AND NOT (day >= $4 AND day < $5)))",
    )
    .bind(scope)
    .bind(from)
    .bind(to)
    .bind(m_from)
    .bind(m_to)
    .fetch_all(exec)
    .await
}

/// The first day of the month after `d`'s.
fn next_month(d: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).expect("valid")
}

/// Brings the scope rows in line with the configured chain (`members`: property, region):
/// when the properties or their regions differ from those the rows were summed for (the
/// first start, a property added or moved), every scope row is summed again from the
/// rollups. Rollups are locked against writers meanwhile, so nothing added concurrently is
/// missed or counted twice; replicas starting together do it once.
pub async fn sync_scopes(
    pool: &sqlx::PgPool,
    members: &[(String, String)],
) -> Result<bool, sqlx::Error> {
    let mut want: Vec<(String, String)> = members.to_vec();
    want.sort();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('metrics.scope_rollups'))")
        .execute(&mut *tx)
        .await?;
    let have: Vec<(String, String)> = sqlx::query_as(
        "SELECT property_id, region_id FROM scope_members ORDER BY property_id, region_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    if have == want {
        tx.commit().await?;
        return Ok(false);
    }
    let (ids, regions): (Vec<String>, Vec<String>) = want.into_iter().unzip();
    sqlx::query("LOCK TABLE rollups IN SHARE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM scope_members")
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO scope_members SELECT * FROM unnest($1::text[], $2::text[])")
        .bind(&ids)
        .bind(&regions)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM scope_rollups")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO scope_rollups (scope, grain, day, measure, breakdown, n, num, sum, sum_sq)
         SELECT s.scope, g.grain, g.day, r.measure, r.breakdown,
            SUM(r.n), SUM(r.num), SUM(r.sum), SUM(r.sum_sq)
         FROM rollups r JOIN scope_members m USING (property_id)
         CROSS JOIN LATERAL (VALUES ('chain'), ('region:' || m.region_id)) AS s(scope)
         CROSS JOIN LATERAL (VALUES ('d'::\"char\", r.day),
                                    ('m'::\"char\", date_trunc('month', r.day)::date))
            AS g(grain, day)
         GROUP BY 1, 2, 3, 4, 5",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_month_wraps_the_year() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(super::next_month(d("2026-12-15")), d("2027-01-01"));
        assert_eq!(super::next_month(d("2026-01-31")), d("2026-02-01"));
    }
}

//! The chain's and regions' own sums (migrations/1005), so GetKpis for a region or the chain
//! reads a few thousand rows instead of every property's (a year of a 300-property chain is
//! ~11M property rows). Every rollup addition appends a delta (`scope_deltas`, an INSERT
//! that waits on no other writer); [`fold`] moves the deltas into `scope_rollups` (per day
//! and per month) in one statement; [`sums`] reads the scope's rows and the deltas not yet
//! folded in the same statement, so it is exact whether or not the fold has run.

use crate::store::rollups::Sum;
use chrono::{Datelike, Duration, NaiveDate};
use guestloop_db::untraced;
use sqlx::{PgExecutor, PgPool};

/// Folds and rebuilds take this lock, so one replica at a time does either.
const LOCK: &str = "SELECT pg_try_advisory_xact_lock(hashtext('metrics.scope_rollups'))";
const LOCK_WAIT: &str = "SELECT pg_advisory_xact_lock(hashtext('metrics.scope_rollups'))::text";

/// At most this many deltas are folded per call, so one fold stays short after a burst.
const FOLD_AT_MOST: i64 = 100_000;

/// A scope of GetKpis that has its own sums.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Chain,
    Region(&'a str),
}

/// A scope's sums between two days (inclusive), per measure, breakdown and day. With
/// `months`, each calendar month wholly inside the range comes as one row dated its first
/// day (callers group rows by the period holding their day, and a month holds its first
/// day); other days come per day.
pub async fn sums<'e>(
    exec: impl PgExecutor<'e>,
    scope: Scope<'_>,
    from: NaiveDate,
    to: NaiveDate,
    months: bool,
) -> Result<Vec<Sum>, sqlx::Error> {
    let (key, region) = match scope {
        Scope::Chain => ("chain".to_string(), None),
        Scope::Region(r) => (format!("region:{r}"), Some(r)),
    };
    // Whole months [m_from, m_to) by their first days; an empty range when none.
    let (m_from, m_to) = whole_months(from, to)
        .filter(|_| months)
        .unwrap_or((to + Duration::days(1), to + Duration::days(1)));
    // Three index range scans (months; days before them; days after them) and the deltas;
    // thousands of rows for a chain's year, read without entering the caller's span per row.
    untraced(
        sqlx::query_as(
            "SELECT measure, breakdown, day, n, num, sum, sum_sq FROM scope_rollups
          WHERE scope = $1 AND grain = 'm' AND day >= $4 AND day < $5
         UNION ALL
         SELECT measure, breakdown, day, n, num, sum, sum_sq FROM scope_rollups
          WHERE scope = $1 AND grain = 'd' AND day >= $2 AND day < LEAST($4, $3 + 1)
         UNION ALL
         SELECT measure, breakdown, day, n, num, sum, sum_sq FROM scope_rollups
          WHERE scope = $1 AND grain = 'd' AND day >= GREATEST($5, $2) AND day <= $3
         UNION ALL
         SELECT measure, breakdown, day, n, num, sum, sum_sq FROM scope_deltas
          WHERE ($6::text IS NULL OR region_id = $6) AND day BETWEEN $2 AND $3",
        )
        .bind(key)
        .bind(from)
        .bind(to)
        .bind(m_from)
        .bind(m_to)
        .bind(region)
        .fetch_all(exec),
    )
    .await
}

/// The first days of the first whole month in [from, to] and of the month after the last;
/// `None` when no month lies wholly inside.
fn whole_months(from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let first = if from.day() == 1 {
        from
    } else {
        next_month(from)
    };
    let after = if next_month(to) - Duration::days(1) == to {
        next_month(to)
    } else {
        to.with_day(1).expect("day 1")
    };
    (first < after).then_some((first, after))
}

/// The first day of the month after `d`'s.
fn next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).expect("valid")
}

/// Moves the queued deltas into the scope rows (the chain's and the region's, per day and
/// per month); returns how many it moved, 0 when another replica is folding.
pub async fn fold(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ours: bool = sqlx::query_scalar(LOCK).fetch_one(&mut *tx).await?;
    if !ours {
        return Ok(0);
    }
    let moved: i64 = sqlx::query_scalar(
        "WITH moved AS (
            DELETE FROM scope_deltas WHERE id IN (
                SELECT id FROM scope_deltas ORDER BY id LIMIT $1)
            RETURNING *),
         added AS (
            INSERT INTO scope_rollups (scope, grain, day, measure, breakdown, n, num, sum, sum_sq)
            SELECT s.scope, g.grain, g.day, d.measure, d.breakdown,
                SUM(d.n), SUM(d.num), SUM(d.sum), SUM(d.sum_sq)
            FROM moved d
            CROSS JOIN LATERAL (VALUES ('chain'), ('region:' || d.region_id)) AS s(scope)
            CROSS JOIN LATERAL (VALUES ('d'::\"char\", d.day),
                                       ('m'::\"char\", date_trunc('month', d.day)::date))
                AS g(grain, day)
            GROUP BY 1, 2, 3, 4, 5
            ON CONFLICT (scope, grain, day, measure, breakdown) DO UPDATE SET
               n = scope_rollups.n + EXCLUDED.n, num = scope_rollups.num + EXCLUDED.num,
               sum = scope_rollups.sum + EXCLUDED.sum,
               sum_sq = scope_rollups.sum_sq + EXCLUDED.sum_sq)
         SELECT count(*) FROM moved",
    )
    .bind(FOLD_AT_MOST)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(moved as u64)
}

/// Brings the scope rows in line with the configured chain (`members`: property, region):
/// when the properties or their regions differ from those the rows were summed for (the
/// first start, a property added or moved), every scope row is summed again from the
/// rollups, and the queued deltas (already in the rollups) are dropped. Rollups are locked
/// against writers meanwhile, so nothing is missed or counted twice; replicas starting
/// together do it once. Returns whether it rebuilt.
pub async fn sync(pool: &PgPool, members: &[(String, String)]) -> Result<bool, sqlx::Error> {
    let mut want: Vec<(String, String)> = members.to_vec();
    want.sort();
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK_WAIT).execute(&mut *tx).await?;
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
    for statement in [
        "LOCK TABLE rollups IN SHARE MODE",
        "DELETE FROM scope_members",
        "DELETE FROM scope_deltas",
        "DELETE FROM scope_rollups",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    sqlx::query("INSERT INTO scope_members SELECT * FROM unnest($1::text[], $2::text[])")
        .bind(&ids)
        .bind(&regions)
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
    // Fresh statistics, or the planner may take the rebuilt table for empty and scan it.
    sqlx::query("ANALYZE scope_rollups").execute(pool).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::{next_month, whole_months};
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn next_month_wraps_the_year() {
        assert_eq!(next_month(d("2026-12-15")), d("2027-01-01"));
        assert_eq!(next_month(d("2026-01-31")), d("2026-02-01"));
    }

    #[test]
    fn whole_months_are_those_inside_the_range() {
        let table = [
            (
                "2025-01-01",
                "2025-12-31",
                Some(("2025-01-01", "2026-01-01")),
            ),
            (
                "2025-01-15",
                "2025-03-31",
                Some(("2025-02-01", "2025-04-01")),
            ),
            (
                "2025-01-01",
                "2025-03-30",
                Some(("2025-01-01", "2025-03-01")),
            ),
            ("2025-01-02", "2025-02-27", None),
            (
                "2025-02-01",
                "2025-02-28",
                Some(("2025-02-01", "2025-03-01")),
            ),
            ("2024-02-01", "2024-02-28", None),
        ];
        for (from, to, want) in table {
            assert_eq!(
                whole_months(d(from), d(to)),
                want.map(|(a, b)| (d(a), d(b))),
                "{from}..{to}"
            );
        }
    }
}

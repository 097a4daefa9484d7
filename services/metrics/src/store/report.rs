//! What the voice-of-customer report reads besides the rollups: cases open at the end of a
//! day per department, the late ones, and example quotes.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DepartmentRow {
    pub department: i16,
    pub open_count: i64,
    pub late_count: i64,
    pub high_grade_open_count: i64,
    pub escalated_open_count: i64,
}

/// Cases open at the end of a day (`end` is the first instant of the next day: opened before
/// it, not resolved or closed before it) per department.
pub async fn open_by_department<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    end: DateTime<Utc>,
) -> Result<Vec<DepartmentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT department,
            COUNT(*) AS open_count,
            COUNT(*) FILTER (WHERE (fr_due < $2 AND (ack_time IS NULL OR ack_time >= $2))
                              OR res_due < $2) AS late_count,
            COUNT(*) FILTER (WHERE risk_grade = 3) AS high_grade_open_count,
            COUNT(*) FILTER (WHERE tier > 1) AS escalated_open_count
         FROM case_state
         WHERE property_id = ANY($1) AND opened_counted AND open_time < $2
           AND (done_time IS NULL OR done_time >= $2)
         GROUP BY department ORDER BY department",
    )
    .bind(properties)
    .bind(end)
    .fetch_all(exec)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LateRow {
    pub case_id: String,
    pub reference: String,
    pub property_id: String,
    pub category: i16,
    pub department: i16,
    pub risk_grade: i16,
    pub status: i16,
    pub tier: i16,
    pub open_time: DateTime<Utc>,
    pub missed: DateTime<Utc>,
}

/// Open cases past a due time at `end`, most overdue first.
pub async fn late_cases<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    end: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<LateRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT case_id, reference, property_id, category, department, risk_grade, status, tier,
            open_time,
            CASE WHEN fr_due < $2 AND (ack_time IS NULL OR ack_time >= $2) THEN fr_due
                 ELSE res_due END AS missed
         FROM case_state
         WHERE property_id = ANY($1) AND opened_counted AND open_time < $2
           AND (done_time IS NULL OR done_time >= $2)
           AND ((fr_due < $2 AND (ack_time IS NULL OR ack_time >= $2)) OR res_due < $2)
         ORDER BY missed, case_id LIMIT $3",
    )
    .bind(properties)
    .bind(end)
    .bind(limit)
    .fetch_all(exec)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuoteRow {
    pub feedback_id: String,
    pub property_id: String,
    pub channel: i16,
    pub category: i16,
    pub sentiment: i16,
    pub language: String,
    pub excerpt: String,
    pub receive_time: DateTime<Utc>,
}

/// Up to `per` most recent quotes of each category on the day; the same words twice are
/// quoted once.
pub async fn quotes<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    day: NaiveDate,
    per: i64,
) -> Result<Vec<QuoteRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT feedback_id, property_id, channel, category, sentiment, language, excerpt,
            receive_time
         FROM (SELECT *, row_number() OVER (PARTITION BY category ORDER BY receive_time DESC,
                 feedback_id) AS k
               FROM (SELECT DISTINCT ON (category, excerpt) * FROM quotes
                     WHERE property_id = ANY($1) AND day = $2 AND sentiment IN (3, 4)
                     ORDER BY category, excerpt, receive_time DESC) d) q
         WHERE k <= $3 ORDER BY category, receive_time DESC",
    )
    .bind(properties)
    .bind(day)
    .bind(per)
    .fetch_all(exec)
    .await
}

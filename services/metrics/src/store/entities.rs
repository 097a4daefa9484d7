//! The per-entity state that makes each thing count once whatever order its events arrive
//! in: a feedback's response, a case's opening, resolution and SLA clocks, a stay's
//! satisfaction contact. Each function answers whether the caller should count now.

use chrono::{DateTime, NaiveDate, Utc};
use guestloop_proto::followup::v1::ClockKind;
use sqlx::PgConnection;

/// The feedback arrived. True when its response was already seen (count it answered now).
/// Feedback that needs no response (a survey answer) is settled at once: a reply to it,
/// earlier or later, counts nothing.
pub async fn feedback_received(
    conn: &mut PgConnection,
    feedback_id: &str,
    property_id: &str,
    day: NaiveDate,
    channel: i32,
    needs_response: bool,
) -> Result<bool, sqlx::Error> {
    let (responded, counted): (bool, bool) = sqlx::query_as(
        "INSERT INTO feedback_state (feedback_id, property_id, receive_day, channel, received,
            counted)
         VALUES ($1, $2, $3, $4, true, NOT $5)
         ON CONFLICT (feedback_id) DO UPDATE SET property_id = EXCLUDED.property_id,
            receive_day = EXCLUDED.receive_day, channel = EXCLUDED.channel, received = true,
            counted = feedback_state.counted OR NOT $5
         RETURNING responded, counted",
    )
    .bind(feedback_id)
    .bind(property_id)
    .bind(day)
    .bind(channel as i16)
    .bind(needs_response)
    .fetch_one(&mut *conn)
    .await?;
    if responded && !counted {
        sqlx::query("UPDATE feedback_state SET counted = true WHERE feedback_id = $1")
            .bind(feedback_id)
            .execute(conn)
            .await?;
        return Ok(true);
    }
    Ok(false)
}

/// The feedback was answered. Its (property, receipt day, channel) when it should be counted
/// now: received already and not counted before.
pub async fn feedback_responded(
    conn: &mut PgConnection,
    feedback_id: &str,
) -> Result<Option<(String, NaiveDate, i32)>, sqlx::Error> {
    // Two statements: in one (a data-modifying WITH) the outer UPDATE cannot update the row
    // the upsert just changed, so a response after the receipt was never counted.
    sqlx::query(
        "INSERT INTO feedback_state (feedback_id, responded) VALUES ($1, true)
         ON CONFLICT (feedback_id) DO UPDATE SET responded = true",
    )
    .bind(feedback_id)
    .execute(&mut *conn)
    .await?;
    let row: Option<(String, NaiveDate, i16)> = sqlx::query_as(
        "UPDATE feedback_state SET counted = true
         WHERE feedback_id = $1 AND received AND NOT counted
         RETURNING property_id, receive_day, channel",
    )
    .bind(feedback_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(p, d, c)| (p, d, i32::from(c))))
}

/// True the first time a case is seen with its facts (count its opening now).
pub async fn case_opened(
    conn: &mut PgConnection,
    case_id: &str,
    property_id: &str,
    day: NaiveDate,
    open: DateTime<Utc>,
    channel: i32,
) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "INSERT INTO case_state (case_id, property_id, open_day, open_time, channel,
            opened_counted)
         VALUES ($1, $2, $3, $4, $5, true)
         ON CONFLICT (case_id) DO UPDATE SET property_id = EXCLUDED.property_id,
            open_day = EXCLUDED.open_day, open_time = EXCLUDED.open_time,
            channel = EXCLUDED.channel, opened_counted = true
         WHERE NOT case_state.opened_counted
         RETURNING case_id",
    )
    .bind(case_id)
    .bind(property_id)
    .bind(day)
    .bind(open)
    .bind(channel as i16)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// True the first time the case is seen resolved or closed.
pub async fn mark_case_resolved(
    conn: &mut PgConnection,
    case_id: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE case_state SET resolved_counted = true WHERE case_id = $1 AND NOT resolved_counted",
    )
    .bind(case_id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// What counting a stopped clock needs to know.
#[derive(Debug)]
pub struct FirstStop {
    /// The case's channel, when its facts arrived already (0 otherwise).
    pub channel: i32,
    /// Both clocks are now known for the first time: were both within their SLA?
    pub compliance: Option<bool>,
}

/// A case clock stopped. `None` when this clock was counted before (a reopened case's
/// second stop counts nothing).
pub async fn clock_stopped(
    conn: &mut PgConnection,
    case_id: &str,
    property_id: &str,
    day: NaiveDate,
    start: DateTime<Utc>,
    kind: ClockKind,
    within: bool,
) -> Result<Option<FirstStop>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_state (case_id, property_id, open_day, open_time)
         VALUES ($1, $2, $3, $4) ON CONFLICT (case_id) DO NOTHING",
    )
    .bind(case_id)
    .bind(property_id)
    .bind(day)
    .bind(start)
    .execute(&mut *conn)
    .await?;
    let (channel, fr, res, counted): (i16, Option<bool>, Option<bool>, bool) = sqlx::query_as(
        "SELECT channel, fr_within, res_within, compliance_counted FROM case_state
         WHERE case_id = $1 FOR UPDATE",
    )
    .bind(case_id)
    .fetch_one(&mut *conn)
    .await?;
    let (fr, res) = match kind {
        ClockKind::FirstResponse if fr.is_none() => (Some(within), res),
        ClockKind::Resolution if res.is_none() => (fr, Some(within)),
        _ => return Ok(None),
    };
    let compliance = match (fr, res, counted) {
        (Some(a), Some(b), false) => Some(a && b),
        _ => None,
    };
    sqlx::query(
        "UPDATE case_state SET fr_within = $2, res_within = $3,
            compliance_counted = compliance_counted OR $4
         WHERE case_id = $1",
    )
    .bind(case_id)
    .bind(fr)
    .bind(res)
    .bind(compliance.is_some())
    .execute(conn)
    .await?;
    Ok(Some(FirstStop {
        channel: i32::from(channel),
        compliance,
    }))
}

/// Whether the guest checked out of another stay within the year before `t`.
pub async fn stayed_before(
    conn: &mut PgConnection,
    guest_id: &str,
    stay_id: &str,
    t: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        // A merged-away id's stays are its survivor's (migrations/1007).
        "SELECT EXISTS (SELECT 1 FROM stay_state WHERE guest_id = guest_survivor($1) AND stay_id <> $2
            AND checkout_time < $3 AND checkout_time >= $3 - interval '365 days')",
    )
    .bind(guest_id)
    .bind(stay_id)
    .bind(t)
    .fetch_one(conn)
    .await
}

/// What a check-out event means for the stay's counts.
#[derive(Debug)]
pub struct CheckedOut {
    /// The stay's first check-out seen (a check-out undone and redone counts once).
    pub first: bool,
    /// The survey's send time, when it was seen first and not counted yet.
    pub contact: Option<DateTime<Utc>>,
}

/// The stay checked out. The first check-out time seen is kept.
pub async fn stay_checked_out(
    conn: &mut PgConnection,
    stay_id: &str,
    property_id: &str,
    guest_id: &str,
    t: DateTime<Utc>,
) -> Result<CheckedOut, sqlx::Error> {
    let before: Option<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT checkout_time FROM stay_state WHERE stay_id = $1 FOR UPDATE")
            .bind(stay_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (contact, counted): (Option<DateTime<Utc>>, bool) = sqlx::query_as(
        "INSERT INTO stay_state (stay_id, property_id, guest_id, checkout_time)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (stay_id) DO UPDATE SET property_id = EXCLUDED.property_id,
            guest_id = EXCLUDED.guest_id,
            checkout_time = COALESCE(stay_state.checkout_time, EXCLUDED.checkout_time)
         RETURNING contact_time, counted",
    )
    .bind(stay_id)
    .bind(property_id)
    .bind(guest_id)
    .bind(t)
    .fetch_one(conn)
    .await?;
    Ok(CheckedOut {
        first: before.flatten().is_none(),
        contact: contact.filter(|_| !counted),
    })
}

/// The stay's survey went out at `sent`. Its (property, check-out) when the check-out is
/// known and the contact not counted yet.
pub async fn stay_contacted(
    conn: &mut PgConnection,
    stay_id: &str,
    sent: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>)>, sqlx::Error> {
    let (property, checkout, counted): (String, Option<DateTime<Utc>>, bool) = sqlx::query_as(
        "INSERT INTO stay_state (stay_id, contact_time) VALUES ($1, $2)
         ON CONFLICT (stay_id) DO UPDATE SET
            contact_time = LEAST(COALESCE(stay_state.contact_time, EXCLUDED.contact_time),
                                 EXCLUDED.contact_time)
         RETURNING property_id, checkout_time, counted",
    )
    .bind(stay_id)
    .bind(sent)
    .fetch_one(conn)
    .await?;
    Ok(checkout.filter(|_| !counted).map(|c| (property, c)))
}

pub async fn mark_stay_counted(
    conn: &mut PgConnection,
    stay_id: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE stay_state SET counted = true WHERE stay_id = $1 AND NOT counted")
            .bind(stay_id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// The latest facts of a case for the report (only a newer version replaces them).
#[derive(Debug, Clone)]
pub struct CaseFactsRow {
    pub case_id: String,
    pub version: i64,
    pub reference: String,
    pub category: i16,
    pub department: i16,
    pub risk_grade: i16,
    pub status: i16,
    pub tier: i16,
    pub fr_due: Option<DateTime<Utc>>,
    pub res_due: Option<DateTime<Utc>>,
    pub ack_time: Option<DateTime<Utc>>,
    pub done_time: Option<DateTime<Utc>>,
}

pub async fn case_facts(conn: &mut PgConnection, f: &CaseFactsRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE case_state SET version = $2, reference = $3, category = $4, department = $5,
            risk_grade = $6, status = $7, tier = $8, fr_due = $9, res_due = $10,
            ack_time = $11, done_time = $12
         WHERE case_id = $1 AND version < $2",
    )
    .bind(&f.case_id)
    .bind(f.version)
    .bind(&f.reference)
    .bind(f.category)
    .bind(f.department)
    .bind(f.risk_grade)
    .bind(f.status)
    .bind(f.tier)
    .bind(f.fr_due)
    .bind(f.res_due)
    .bind(f.ack_time)
    .bind(f.done_time)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct QuoteRow {
    pub feedback_id: String,
    pub property_id: String,
    pub guest_id: String,
    pub day: NaiveDate,
    pub receive_time: DateTime<Utc>,
    pub channel: i16,
    pub category: i16,
    pub sentiment: i16,
    pub language: String,
    pub excerpt: String,
}

/// Keeps the quote unless its guest was erased (itself, or the survivor it was merged into).
pub async fn quote(conn: &mut PgConnection, q: &QuoteRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quotes (feedback_id, property_id, guest_id, day, receive_time, channel,
            category, sentiment, language, excerpt)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
         WHERE $3 = '' OR NOT EXISTS (SELECT 1 FROM erased_guests
                                       WHERE guest_id IN ($3, guest_survivor($3)))
         ON CONFLICT (feedback_id) DO NOTHING",
    )
    .bind(&q.feedback_id)
    .bind(&q.property_id)
    .bind(&q.guest_id)
    .bind(q.day)
    .bind(q.receive_time)
    .bind(q.channel)
    .bind(q.category)
    .bind(q.sentiment)
    .bind(&q.language)
    .bind(&q.excerpt)
    .execute(conn)
    .await?;
    Ok(())
}

/// An erased guest's words leave the report.
pub async fn erase_guest(conn: &mut PgConnection, guest_id: &str) -> Result<(), sqlx::Error> {
    if guest_id.is_empty() {
        return Ok(());
    }
    sqlx::query("INSERT INTO erased_guests (guest_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(guest_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM quotes WHERE guest_id = $1")
        .bind(guest_id)
        .execute(conn)
        .await?;
    Ok(())
}

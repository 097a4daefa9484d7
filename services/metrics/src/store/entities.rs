//! The per-entity state that makes each thing count once whatever order its events arrive
//! in: a feedback's response, a case's opening, resolution and SLA clocks, a stay's
//! satisfaction contact. Each function answers whether the caller should count now.

use chrono::{DateTime, NaiveDate, Utc};
use guestloop_proto::followup::v1::ClockKind;
use sqlx::PgConnection;

/// The feedback arrived. True when its response was already seen (count it answered now).
pub async fn feedback_received(
    conn: &mut PgConnection,
    feedback_id: &str,
    property_id: &str,
    day: NaiveDate,
    channel: i32,
) -> Result<bool, sqlx::Error> {
    let (responded, counted): (bool, bool) = sqlx::query_as(
        "INSERT INTO feedback_state (feedback_id, property_id, receive_day, channel, received)
         VALUES ($1, $2, $3, $4, true)
         ON CONFLICT (feedback_id) DO UPDATE SET property_id = EXCLUDED.property_id,
            receive_day = EXCLUDED.receive_day, channel = EXCLUDED.channel, received = true
         RETURNING responded, counted",
    )
    .bind(feedback_id)
    .bind(property_id)
    .bind(day)
    .bind(channel as i16)
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
    let row: Option<(String, NaiveDate, i16)> = sqlx::query_as(
        "WITH up AS (
            INSERT INTO feedback_state (feedback_id, responded) VALUES ($1, true)
            ON CONFLICT (feedback_id) DO UPDATE SET responded = true
            RETURNING feedback_id, received, counted)
         UPDATE feedback_state f SET counted = true FROM up
         WHERE f.feedback_id = up.feedback_id AND up.received AND NOT up.counted
         RETURNING f.property_id, f.receive_day, f.channel",
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
        "SELECT EXISTS (SELECT 1 FROM stay_state WHERE guest_id = $1 AND stay_id <> $2
            AND checkout_time < $3 AND checkout_time >= $3 - interval '365 days')",
    )
    .bind(guest_id)
    .bind(stay_id)
    .bind(t)
    .fetch_one(conn)
    .await
}

/// The stay checked out. The survey's send time when it was seen first and not counted.
pub async fn stay_checked_out(
    conn: &mut PgConnection,
    stay_id: &str,
    property_id: &str,
    guest_id: &str,
    t: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let (contact, counted): (Option<DateTime<Utc>>, bool) = sqlx::query_as(
        "INSERT INTO stay_state (stay_id, property_id, guest_id, checkout_time)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (stay_id) DO UPDATE SET property_id = EXCLUDED.property_id,
            guest_id = EXCLUDED.guest_id, checkout_time = EXCLUDED.checkout_time
         RETURNING contact_time, counted",
    )
    .bind(stay_id)
    .bind(property_id)
    .bind(guest_id)
    .bind(t)
    .fetch_one(conn)
    .await?;
    Ok(contact.filter(|_| !counted))
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

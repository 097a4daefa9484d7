//! The after-stay plan (issue 4, part 2): from guest-profile's stay events, the timers that
//! contact a guest after check-out: the satisfaction survey within the standard's 48 h, its
//! reminder, the 7-day follow-up, each at a sensible local hour outside quiet hours (slot.rs),
//! and the birthday and anniversary greetings; a VIP's contacts are the duty manager's calls
//! instead (calls.rs). Keys name the stay, so a changed check-out re-anchors the
//! pending timers (a fired one stays fired: never a second survey) and a cancelled stay
//! cancels them. Consent and the one-survey-per-N-days cap are checked when a timer fires
//! (precheck.rs), since both can change in the meantime.

pub mod calls;
pub mod precheck;
pub mod slot;

use crate::domain::{NewTimer, micros};
use crate::settings::PlanSettings;
use crate::store::timers as store;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use guestloop_config::{ChainDirectory, Standards};
use guestloop_proto::common::v1::ConsentPurpose;
use guestloop_proto::followup::v1::{self as pb, LatePolicy, TimerPurpose, timer_action};
use guestloop_proto::notification::v1 as notify;
use prost::Message;
use sqlx::PgConnection;

/// A stay that checked out, as the plan needs it.
#[derive(Debug, Clone)]
pub struct CheckOut {
    pub stay_id: String,
    pub guest_id: String,
    pub property_id: String,
    pub checked_out: DateTime<Utc>,
    /// "2026-11-20 – 2026-11-23", for the follow-up's text.
    pub stay_dates: String,
    /// The guest's tier at check-out (guestprofile.v1.Tier; unspecified when not told).
    pub tier: i32,
    /// A VIP whose contacts are the duty manager's calls (`[care]`), not messages.
    pub by_duty_manager: bool,
}

pub fn key(stay_id: &str, what: &str) -> String {
    format!("stay/{stay_id}/{what}")
}

pub const SATISFACTION: &str = "satisfaction_contact";
pub const REMINDER: &str = "survey_reminder";
pub const FOLLOW_UP: &str = "post_stay_follow_up";

fn dur(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

fn message_action(
    c: &CheckOut,
    kind: notify::MessageKind,
    purpose: ConsentPurpose,
    expire: Option<DateTime<Utc>>,
    variables: &[(&str, String)],
) -> Vec<u8> {
    pb::TimerAction {
        action: Some(timer_action::Action::SendMessage(pb::SendMessageAction {
            message: Some(notify::MessageSpec {
                recipient: Some(notify::Recipient {
                    kind: Some(notify::recipient::Kind::Guest(notify::GuestRecipient {
                        guest_id: c.guest_id.clone(),
                    })),
                }),
                kind: kind as i32,
                variables: variables
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                purpose: purpose as i32,
                property_id: c.property_id.clone(),
                stay_id: c.stay_id.clone(),
                expire_time: expire.map(crate::domain::to_timestamp),
                ..Default::default()
            }),
        })),
    }
    .encode_to_vec()
}

/// The three stay timers for a check-out (pure: what is due when, and why it may be late).
pub fn stay_timers(
    c: &CheckOut,
    chain: &ChainDirectory,
    standards: &Standards,
    plan: &PlanSettings,
) -> Vec<NewTimer> {
    let Some(property) = chain.property(&c.property_id) else {
        return Vec::new();
    };
    let tz: Tz = property.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let s = standards.for_property(chain, &c.property_id);
    let slot = |t: DateTime<Utc>| {
        micros(slot::next_contact_time(
            t,
            tz,
            &plan.contact_hours,
            &property.quiet_hours,
        ))
    };
    let deadline = c.checked_out + dur(s.satisfaction_contact_within.as_duration());
    let earliest = c.checked_out + dur(plan.satisfaction_delay.as_duration());
    let mut survey_due = slot(earliest);
    if survey_due > deadline {
        // The hours leave no room inside the standard: the standard wins.
        survey_due = micros(earliest.min(deadline));
    }
    let reminder_due = slot(survey_due + dur(plan.reminder_after.as_duration()));
    let follow_up_due = slot(c.checked_out + dur(s.follow_up_after.as_duration()));
    if c.by_duty_manager {
        return duty_manager_timers(c, survey_due, deadline, follow_up_due);
    }
    let link = [(
        "survey_link",
        plan.survey_url.replace("{stay_id}", &c.stay_id),
    )];
    let timer = |what: &str, purpose, due, late_ms: i64, action| NewTimer {
        key: key(&c.stay_id, what),
        purpose,
        property_id: c.property_id.clone(),
        guest_id: c.guest_id.clone(),
        stay_id: c.stay_id.clone(),
        case_id: String::new(),
        due_time: due,
        // A contact past its window is worse than none: a survey after 48 h is skipped.
        late_policy: LatePolicy::Skip,
        late_threshold_ms: late_ms.max(1000),
        action: Some(action),
        clock_id: None,
        task_id: None,
    };
    vec![
        timer(
            SATISFACTION,
            TimerPurpose::SatisfactionContact,
            survey_due,
            (deadline - survey_due).num_milliseconds(),
            message_action(
                c,
                notify::MessageKind::SatisfactionSurvey,
                ConsentPurpose::ServiceFollowUp,
                Some(deadline),
                &link,
            ),
        ),
        timer(
            REMINDER,
            TimerPurpose::SurveyReminder,
            reminder_due,
            Duration::hours(12).num_milliseconds(),
            message_action(
                c,
                notify::MessageKind::SurveyReminder,
                ConsentPurpose::ServiceFollowUp,
                None,
                &link,
            ),
        ),
        timer(
            FOLLOW_UP,
            TimerPurpose::PostStayFollowUp,
            follow_up_due,
            Duration::hours(24).num_milliseconds(),
            message_action(
                c,
                notify::MessageKind::PostStayFollowUp,
                ConsentPurpose::ServiceFollowUp,
                None,
                &[("stay_dates", c.stay_dates.clone())],
            ),
        ),
    ]
}

/// A VIP's contacts (calls.rs): the satisfaction call, due by the standard's deadline, and
/// the 7-day follow-up call, each a task created at the time the message would have gone.
/// A task late is still a task: they fire late rather than not at all.
fn duty_manager_timers(
    c: &CheckOut,
    survey_due: DateTime<Utc>,
    deadline: DateTime<Utc>,
    follow_up_due: DateTime<Utc>,
) -> Vec<NewTimer> {
    let timer = |what: &str, purpose, due, action| NewTimer {
        key: key(&c.stay_id, what),
        purpose,
        property_id: c.property_id.clone(),
        guest_id: c.guest_id.clone(),
        stay_id: c.stay_id.clone(),
        case_id: String::new(),
        due_time: due,
        late_policy: LatePolicy::Fire,
        late_threshold_ms: Duration::hours(1).num_milliseconds(),
        action: Some(action),
        clock_id: None,
        task_id: None,
    };
    vec![
        timer(
            SATISFACTION,
            TimerPurpose::SatisfactionContact,
            survey_due,
            calls::action(c, pb::TaskKind::SatisfactionCall, deadline - survey_due),
        ),
        timer(
            FOLLOW_UP,
            TimerPurpose::PostStayFollowUp,
            follow_up_due,
            calls::action(c, pb::TaskKind::PostStayFollowUp, Duration::hours(24)),
        ),
    ]
}

/// The birthday greeting after this stay: at the plan's local time at the property of the
/// guest's latest stay. One key per guest and year, so a second stay moves it rather than
/// adding one.
pub fn birthday_timer(
    c: &CheckOut,
    month: u32,
    day: u32,
    now: DateTime<Utc>,
    chain: &ChainDirectory,
    plan: &PlanSettings,
) -> Option<NewTimer> {
    let tz = zone_of(chain, &c.property_id)?;
    let due = slot::next_birthday(now, tz, month, day, plan.birthday_time)?;
    Some(greeting(
        c,
        "birthday",
        tz,
        due,
        TimerPurpose::BirthdayCare,
        notify::MessageKind::BirthdayGreeting,
        &[],
    ))
}

/// The anniversary greeting after this stay, like the birthday's: at the plan's local time
/// at the property of the guest's latest stay, one key per guest and year, with the years
/// it marks for the template.
pub fn anniversary_timer(
    c: &CheckOut,
    date: NaiveDate,
    now: DateTime<Utc>,
    chain: &ChainDirectory,
    plan: &PlanSettings,
) -> Option<NewTimer> {
    let tz = zone_of(chain, &c.property_id)?;
    let (due, years) = slot::next_anniversary(now, tz, date, plan.anniversary_time)?;
    Some(greeting(
        c,
        "anniversary",
        tz,
        due,
        TimerPurpose::AnniversaryCare,
        notify::MessageKind::AnniversaryGreeting,
        &[("years", years.to_string())],
    ))
}

/// The property's time zone (UTC if its name does not parse); `None` for an unknown one.
fn zone_of(chain: &ChainDirectory, property_id: &str) -> Option<Tz> {
    let property = chain.property(property_id)?;
    Some(property.time_zone.parse().unwrap_or(chrono_tz::UTC))
}

/// A yearly greeting (marketing consent) due `due`, keyed `guest/<id>/<what>/<local year>`.
fn greeting(
    c: &CheckOut,
    what: &str,
    tz: Tz,
    due: DateTime<Utc>,
    purpose: TimerPurpose,
    kind: notify::MessageKind,
    variables: &[(&str, String)],
) -> NewTimer {
    let year = due.with_timezone(&tz).year();
    NewTimer {
        key: format!("guest/{}/{what}/{year}", c.guest_id),
        purpose,
        property_id: c.property_id.clone(),
        guest_id: c.guest_id.clone(),
        stay_id: String::new(),
        case_id: String::new(),
        due_time: micros(due),
        // A greeting a day late is worse than none.
        late_policy: LatePolicy::Skip,
        late_threshold_ms: Duration::hours(6).num_milliseconds(),
        action: Some(message_action(
            &CheckOut {
                stay_id: String::new(),
                ..c.clone()
            },
            kind,
            ConsentPurpose::Marketing,
            None,
            variables,
        )),
        clock_id: None,
        task_id: None,
    }
}

/// Schedules (or re-anchors) the plan of a checked-out stay. The reminder is left out when
/// the survey was already answered (the answer can arrive before the check-out event).
pub async fn schedule(conn: &mut PgConnection, timers: Vec<NewTimer>) -> Result<(), sqlx::Error> {
    for t in timers {
        if t.purpose == TimerPurpose::SurveyReminder && answered(&mut *conn, &t.stay_id).await? {
            continue;
        }
        // The deadline watches hear of a new or moved contact.
        match store::upsert(&mut *conn, &t, true).await? {
            store::Upsert::Created(row) | store::Upsert::Replaced(row) => {
                crate::store::deadline_changed(conn, &row.property_id, "timer", row.id).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A cancelled stay: its pending plan goes.
pub async fn cancel_stay(conn: &mut PgConnection, stay_id: &str) -> Result<u64, sqlx::Error> {
    // Cancelled and, at commit, told to the deadline watches of the stay's property.
    let cancelled: Vec<(String, uuid::Uuid)> = sqlx::query_as(
        "UPDATE timers SET state = 5, update_time = now()
         WHERE starts_with(key, $1) AND state = 1
         RETURNING property_id, id",
    )
    .bind(format!("stay/{stay_id}/"))
    .fetch_all(&mut *conn)
    .await?;
    for (property, id) in &cancelled {
        crate::store::deadline_changed(conn, property, "timer", *id).await?;
    }
    Ok(cancelled.len() as u64)
}

/// An answered survey: remembered, and its reminder cancelled.
pub async fn survey_answered(
    conn: &mut PgConnection,
    stay_id: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO answered_stays (stay_id, answer_time) VALUES ($1, $2)
         ON CONFLICT (stay_id) DO NOTHING",
    )
    .bind(stay_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    store::cancel_key(conn, &key(stay_id, REMINDER)).await?;
    Ok(())
}

pub async fn answered(conn: &mut PgConnection, stay_id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM answered_stays WHERE stay_id = $1)")
        .bind(stay_id)
        .fetch_one(conn)
        .await
}

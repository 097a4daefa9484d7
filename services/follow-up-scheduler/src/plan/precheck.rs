//! What is checked when a plan timer fires rather than when it is planned, because it can
//! change in between: the guest's consent (asked of guest-profile, as notification does at
//! send time, so the timer itself says "no_consent" instead of firing into a suppression),
//! the one-survey-per-N-days cap, and whether a reminder still has anything to remind of.
//! A VIP's call by the duty manager (plan/calls.rs) needs the same consent, on any channel
//! or the phone; the survey cap is not for calls.

use crate::state::State;
use crate::store::timers::{self as store, TimerRow};
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel};
use guestloop_proto::followup::v1::TimerPurpose;
use guestloop_proto::guestprofile::v1 as gp;
use tonic::Code;

/// Go ahead, skip with a reason, or try again later (guest-profile unreachable).
#[derive(Debug, PartialEq, Eq)]
pub enum Precheck {
    Go,
    Skip(&'static str),
    Retry(String),
}

const CHANNELS: [ContactChannel; 4] = [
    ContactChannel::Email,
    ContactChannel::Sms,
    ContactChannel::Wechat,
    ContactChannel::AppPush,
];

pub async fn check(state: &State, row: &TimerRow, purpose: ConsentPurpose) -> Precheck {
    let timer_purpose = TimerPurpose::try_from(i32::from(row.purpose)).unwrap_or_default();
    let checked = match timer_purpose {
        TimerPurpose::SatisfactionContact => survey_cap(state, row).await,
        TimerPurpose::SurveyReminder => reminder_applies(state, row).await,
        TimerPurpose::PostStayFollowUp
        | TimerPurpose::BirthdayCare
        | TimerPurpose::AnniversaryCare => Ok(None),
        _ => return Precheck::Go,
    };
    match checked {
        Err(e) => return Precheck::Retry(format!("database: {e}")),
        Ok(Some(reason)) => return Precheck::Skip(reason),
        Ok(None) => {}
    }
    if row.guest_id.is_empty() {
        return Precheck::Go;
    }
    consent(state, &row.guest_id, purpose).await
}

/// Before a plan timer creates a call for the duty manager: the guest's consent to be
/// followed up, on any channel or by phone.
pub async fn call(state: &State, row: &TimerRow) -> Precheck {
    if row.guest_id.is_empty() {
        return Precheck::Go;
    }
    let mut channels = CHANNELS.to_vec();
    channels.push(ContactChannel::PhoneCall);
    consent_on(
        state,
        &row.guest_id,
        ConsentPurpose::ServiceFollowUp,
        &channels,
    )
    .await
}

/// One survey per guest per `survey_min_interval`: skipped when another satisfaction contact
/// of the guest fired within it, or is firing now and was due first (two replicas firing two
/// stays of one guest at once send one survey).
async fn survey_cap(state: &State, row: &TimerRow) -> Result<Option<&'static str>, sqlx::Error> {
    if row.guest_id.is_empty() {
        return Ok(None);
    }
    let s = state.standards.for_property(&state.chain, &row.property_id);
    let within = s.survey_min_interval.as_duration().as_secs_f64();
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM timers
            WHERE guest_id = $1 AND purpose = 1 AND id <> $2
              AND ((state = 3 AND fire_time > now() - make_interval(secs => $3))
                OR (state = 2 AND (due_time, id) < ($4, $2))))",
    )
    .bind(&row.guest_id)
    .bind(row.id)
    .bind(within)
    .bind(row.due_time)
    .fetch_one(&state.pool)
    .await?;
    Ok(taken.then_some("survey_cap"))
}

/// A reminder only follows a survey that went out and was not answered.
async fn reminder_applies(
    state: &State,
    row: &TimerRow,
) -> Result<Option<&'static str>, sqlx::Error> {
    let mut conn = state.pool.acquire().await?;
    if crate::plan::answered(&mut conn, &row.stay_id).await? {
        return Ok(Some("survey_answered"));
    }
    let survey = store::by_key(
        &mut *conn,
        &crate::plan::key(&row.stay_id, crate::plan::SATISFACTION),
    )
    .await?;
    Ok(match survey {
        Some(s) if s.state == store::FIRED => None,
        _ => Some("no_survey_sent"),
    })
}

/// Whether any channel may carry a message of `purpose` to the guest.
async fn consent(state: &State, guest_id: &str, purpose: ConsentPurpose) -> Precheck {
    consent_on(state, guest_id, purpose, &CHANNELS).await
}

async fn consent_on(
    state: &State,
    guest_id: &str,
    purpose: ConsentPurpose,
    channels: &[ContactChannel],
) -> Precheck {
    let Some(client) = &state.peers.guest_profile else {
        // Without guest-profile the check is notification's, at send time.
        return Precheck::Go;
    };
    for &channel in channels {
        let mut c = client.clone();
        let answer = c
            .get_contact_permission(gp::GetContactPermissionRequest {
                guest_id: guest_id.to_string(),
                channel: channel as i32,
                purpose: purpose as i32,
            })
            .await;
        match answer {
            Ok(r) if r.get_ref().allowed => return Precheck::Go,
            Ok(r) if r.get_ref().denial_reason == "erased" => return Precheck::Skip("erased"),
            Ok(_) => {}
            Err(s) if s.code() == Code::NotFound => return Precheck::Skip("unknown_guest"),
            Err(s) => return Precheck::Retry(format!("guest-profile: {:?}", s.code())),
        }
    }
    Precheck::Skip("no_consent")
}

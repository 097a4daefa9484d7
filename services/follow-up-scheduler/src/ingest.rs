//! The event consumer: guest-profile's stay events drive the after-stay plan and the
//! pre-arrival care of VIP and frequent guests (care/), feedback-intake's case events the
//! SLA clocks, its OTA reviews and their replies the reply reminders (reviews.rs);
//! answered surveys cancel reminders, erased guests lose their pending contacts, a merged
//! duplicate's rows move to the survivor (guest_merge.rs). Each event is applied in one
//! transaction with its inbox row, so a redelivered event is acknowledged without being
//! applied twice. Events are applied in the order given; the first that cannot be applied
//! (a peer or the database unreachable) stops the batch, and the relay sends it again later.

use crate::care::{Booking, plans as care};
use crate::clocks::{self, Facts};
use crate::guest_merge::{self, Merge};
use crate::plan::{self, CheckOut};
use crate::state::State;
use crate::store::guests;
use chrono::{DateTime, Utc};
use guestloop_proto::common::v1::Date;
use guestloop_proto::events::v1::{EventEnvelope, event_envelope::Payload};
use guestloop_proto::guestprofile::v1::{self as gp, StayStatus};
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

/// What must be looked up before the transaction (calls to other services never run inside
/// one).
#[derive(Debug, Default)]
struct Lookups {
    /// (month, day) of the guest's birthday.
    birthday: Option<(u32, u32)>,
    /// The date the guest's anniversary counts from.
    anniversary: Option<chrono::NaiveDate>,
}

/// The scheduler's event consumer (served by guestloop_outbox::consume::IngestService).
pub struct Ingest {
    pub state: Arc<State>,
}

#[tonic::async_trait]
impl guestloop_outbox::consume::Consumer for Ingest {
    async fn apply(&self, id: Uuid, env: &EventEnvelope) -> Result<(), String> {
        apply_one(&self.state, id, env).await
    }

    async fn erased(
        &self,
        guest_ids: Vec<String>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String> {
        guestloop_db::guest_directory::erased_among(&self.state.pool, guest_ids)
            .await
            .map_err(|e| format!("database: {e}"))
    }

    async fn export(
        &self,
        guest_ids: Vec<String>,
        visible: Option<Vec<String>>,
    ) -> Result<guestloop_proto::events::v1::ExportGuestDataResponse, String> {
        crate::api::export::export(&self.state, &guest_ids, visible.as_deref())
            .await
            .map_err(|e| format!("database: {e}"))
    }
}

async fn apply_one(state: &State, id: Uuid, env: &EventEnvelope) -> Result<(), String> {
    let db = |e: sqlx::Error| format!("database: {e}");
    if let Some(Payload::GuestMerged(m)) = &env.payload {
        let merge = match Merge::try_from(m) {
            Ok(merge) => merge,
            Err(v) => {
                // It could never apply: acknowledged, so it does not hold up the stream.
                tracing::warn!(source = %env.source, violations = ?v, "guest merge without usable ids dropped");
                return Ok(());
            }
        };
        let mut tx = state.pool.begin().await.map_err(db)?;
        // First, before any row lock: see store::guests::lock_exclusive.
        guests::lock_exclusive(&mut tx).await.map_err(db)?;
        if !guestloop_outbox::inbox::mark_applied(&mut tx, id, &env.source)
            .await
            .map_err(db)?
        {
            return Ok(()); // applied before
        }
        let moved = guest_merge::apply(&mut tx, &merge).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(
            timers = moved.timers,
            tasks = moved.tasks,
            cases = moved.cases,
            "guest merge applied"
        );
        return Ok(());
    }
    let lookups = lookups(state, env).await?;
    let mut tx = state.pool.begin().await.map_err(db)?;
    if !guestloop_outbox::inbox::mark_applied(&mut tx, id, &env.source)
        .await
        .map_err(db)?
    {
        return Ok(()); // applied before
    }
    let at = env
        .occur_time
        .as_ref()
        .and_then(|t| crate::domain::timestamp(t).ok())
        .unwrap_or_else(Utc::now);
    apply(&mut tx, state, env, lookups, at).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

pub(crate) fn checked_out(env: &EventEnvelope) -> Option<CheckOut> {
    let (stay_id, guest_id, property_id, time, arrival, departure, tier) =
        match env.payload.as_ref()? {
            Payload::StayCheckedOut(s) => (
                &s.stay_id,
                &s.guest_id,
                &s.property_id,
                &s.checked_out_time,
                &s.arrival_date,
                &s.departure_date,
                s.tier,
            ),
            Payload::StayChanged(s) if s.status == StayStatus::CheckedOut as i32 => (
                &s.stay_id,
                &s.guest_id,
                &s.property_id,
                &s.checked_out_time,
                &s.arrival_date,
                &s.departure_date,
                s.tier,
            ),
            _ => return None,
        };
    let checked_out = time
        .as_ref()
        .and_then(|t| crate::domain::timestamp(t).ok())
        .map(crate::domain::micros)?;
    let date = |d: &Option<Date>| {
        d.as_ref()
            .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
            .unwrap_or_default()
    };
    Some(CheckOut {
        stay_id: stay_id.clone(),
        guest_id: guest_id.clone(),
        property_id: property_id.clone(),
        checked_out,
        stay_dates: format!("{} – {}", date(arrival), date(departure)),
        tier,
        by_duty_manager: false,
    })
}

async fn lookups(state: &State, env: &EventEnvelope) -> Result<Lookups, String> {
    let mut out = Lookups::default();
    let Some(c) = checked_out(env) else {
        return Ok(out);
    };
    let greetings = state.plan.birthday_care || state.plan.anniversary_care;
    if !state.plan.enabled || !greetings || c.guest_id.is_empty() {
        return Ok(out);
    }
    let Some(client) = &state.peers.guest_profile else {
        return Ok(out);
    };
    let mut client = client.clone();
    match client
        .get_guest(gp::GetGuestRequest {
            guest_id: c.guest_id.clone(),
        })
        .await
    {
        Ok(r) => {
            let guest = r.into_inner().guest.unwrap_or_default();
            out.birthday = guest
                .birthday
                .filter(|b| b.month > 0 && b.day > 0 && state.plan.birthday_care)
                .map(|b| (b.month as u32, b.day as u32));
            out.anniversary = guest
                .anniversary
                .filter(|_| state.plan.anniversary_care)
                .and_then(|d| crate::domain::date(&d));
        }
        Err(s) if s.code() == tonic::Code::NotFound => {}
        Err(s) => return Err(format!("guest-profile: {:?}", s.code())),
    }
    Ok(out)
}

async fn apply(
    conn: &mut PgConnection,
    state: &State,
    env: &EventEnvelope,
    lookups: Lookups,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if let Some(mut c) = checked_out(env) {
        if !state.plan.enabled {
            return Ok(());
        }
        // A stay of a merged-away profile plans the survivor's contacts, birthday key
        // included (the triggers would re-point the rows, not the key).
        c.guest_id = guests::survivor(conn, &c.guest_id).await?;
        // A VIP's contacts are the duty manager's calls (plan/calls.rs): no survey, so no
        // reminder either (one planned before the guest became a VIP goes).
        c.by_duty_manager = state.care.vip_contact_by_duty_manager && state.chain.is_vip(c.tier);
        let timers = plan::stay_timers(&c, &state.chain, &state.standards, &state.plan);
        plan::schedule(conn, timers).await?;
        if c.by_duty_manager {
            crate::store::timers::cancel_key(conn, &plan::key(&c.stay_id, plan::REMINDER)).await?;
        }
        if let Some((month, day)) = lookups.birthday
            && let Some(t) =
                plan::birthday_timer(&c, month, day, Utc::now(), &state.chain, &state.plan)
        {
            crate::store::timers::upsert(conn, &t, true).await?;
            guests::dedupe_birthdays(conn, &c.guest_id).await?;
        }
        if let Some(date) = lookups.anniversary
            && let Some(t) =
                plan::anniversary_timer(&c, date, Utc::now(), &state.chain, &state.plan)
        {
            crate::store::timers::upsert(conn, &t, true).await?;
            guests::dedupe_anniversaries(conn, &c.guest_id).await?;
        }
        return Ok(());
    }
    let Some(payload) = &env.payload else {
        return Ok(());
    };
    let facts = match payload {
        Payload::StayBooked(b) => {
            match Booking::try_from(b) {
                Ok(booking) => {
                    care::booked(conn, state, booking, env.sequence, Utc::now()).await?;
                }
                // It could never apply: acknowledged, so it does not hold up the stream.
                Err(fields) => tracing::warn!(source = %env.source, ?fields,
                    "stay booking without usable facts dropped"),
            }
            return Ok(());
        }
        Payload::StayCancelled(s) => {
            plan::cancel_stay(conn, &s.stay_id).await?;
            care::cancelled(conn, &s.stay_id, env.sequence).await?;
            return Ok(());
        }
        Payload::StayChanged(s) if s.status == StayStatus::Cancelled as i32 => {
            plan::cancel_stay(conn, &s.stay_id).await?;
            care::cancelled(conn, &s.stay_id, env.sequence).await?;
            return Ok(());
        }
        Payload::StayChanged(s) if s.status == StayStatus::Booked as i32 => {
            // Still to come: a moved arrival re-times the care before it. (Once the guest
            // is in, their pre-arrival tasks stay as they are.)
            if let Some(d) = s.arrival_date.as_ref().and_then(crate::domain::date) {
                care::changed(conn, state, &s.stay_id, d, env.sequence, Utc::now()).await?;
            }
            return Ok(());
        }
        Payload::SurveyAnswered(s) if !s.stay_id.is_empty() => {
            let when = s
                .answer_time
                .as_ref()
                .and_then(|t| crate::domain::timestamp(t).ok())
                .unwrap_or(at);
            plan::survey_answered(conn, &s.stay_id, when).await?;
            return Ok(());
        }
        Payload::GuestErased(g) if !g.guest_id.is_empty() => {
            // Erasing a merged-away id erases the profile it lives on in (guest-profile
            // erases a survivor together with what was merged into it).
            let guest = guests::survivor(conn, &g.guest_id).await?;
            for id in [g.guest_id.as_str(), guest.as_str()] {
                crate::store::timers::cancel_guest(conn, id).await?;
                crate::store::timers::erase_actions_of_guest(conn, id).await?;
                care::erased(conn, id).await?;
                crate::tasks::erase_guest(conn, id).await?;
                crate::store::guests::record_erased(conn, id).await?;
            }
            return Ok(());
        }
        Payload::FeedbackReceived(f) => {
            crate::reviews::received(conn, state, f, Utc::now()).await?;
            return Ok(());
        }
        Payload::FeedbackReplied(r) => {
            crate::reviews::replied(conn, r).await?;
            return Ok(());
        }
        Payload::CaseOpened(e) => &e.case,
        Payload::CaseStatusChanged(e) => &e.case,
        Payload::CaseEscalated(e) => &e.case,
        Payload::CaseAssigned(e) => &e.case,
        Payload::CaseRegraded(e) => &e.case,
        Payload::CaseActionRecorded(e) => &e.case,
        Payload::CaseLinkedToIncident(e) => &e.case,
        _ => return Ok(()),
    };
    let Some(facts) = facts.as_ref().and_then(Facts::parse) else {
        tracing::warn!(source = %env.source, "case event without usable facts ignored");
        return Ok(());
    };
    clocks::apply(conn, state, &facts, at).await
}

//! The event consumer: every event the other services deliver adds to the rollups of its
//! property and local day (the property's time zone decides the day). Each event is applied
//! in one transaction with its inbox row, so a redelivery changes nothing. Order does not
//! matter: every measure is counted on a day the event itself names (a reply on its
//! feedback's receipt day, a clock on its case's opening day), and what must be counted
//! once per feedback, case or stay is guarded by a small state row (store/entities.rs)
//! whichever of its events comes first. GuestMerged moves per-guest state to the
//! survivor and changes no KPI (guest_merge.rs).

use crate::guest_merge::{self, Merge};
use crate::state::State;
use crate::store::entities as ent;
use crate::store::rollups::{Add, add};
use chrono::{DateTime, NaiveDate, Utc};
use guestloop_proto::common::v1::Urgency;
use guestloop_proto::events::v1::{CaseFacts, EventEnvelope, event_envelope::Payload};
use guestloop_proto::feedback::v1::{CaseStatus, Sentiment};
use guestloop_proto::followup::v1::{ClockKind, TaskKind, TaskOutcome};
use guestloop_proto::notification::v1::{DeliveryStatus, MessageKind};
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

/// Upper bounds (seconds) of the first-response time histogram.
pub const RESPONSE_BUCKETS: [i64; 12] = [
    60,
    300,
    900,
    1800,
    3600,
    7200,
    14_400,
    28_800,
    86_400,
    172_800,
    604_800,
    i64::MAX,
];

/// metrics' event consumer (served by guestloop_outbox::consume::IngestService).
pub struct Ingest {
    pub state: Arc<State>,
}

#[tonic::async_trait]
impl guestloop_outbox::consume::Consumer for Ingest {
    async fn apply(&self, id: Uuid, env: &EventEnvelope) -> Result<(), String> {
        apply_one(&self.state, id, env)
            .await
            .map_err(|e| format!("database: {e}"))
    }

    async fn erased(
        &self,
        guest_ids: Vec<String>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String> {
        guestloop_db::guest_directory::erased_among(&self.state.pool, guest_ids)
            .await
            .map_err(|e| format!("database: {e}"))
    }
}

async fn apply_one(state: &State, id: Uuid, env: &EventEnvelope) -> Result<(), sqlx::Error> {
    if let Some(Payload::GuestMerged(m)) = &env.payload {
        return apply_merge(state, id, env, m).await;
    }
    let mut tx = state.pool.begin().await?;
    if guestloop_outbox::inbox::mark_applied(&mut tx, id, &env.source).await? {
        apply(&mut tx, state, env).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn apply_merge(
    state: &State,
    id: Uuid,
    env: &EventEnvelope,
    m: &guestloop_proto::events::v1::GuestMerged,
) -> Result<(), sqlx::Error> {
    let merge = match Merge::try_from(m) {
        Ok(merge) => merge,
        Err(v) => {
            // It could never apply: acknowledged, so it does not hold up the stream.
            tracing::warn!(source = %env.source, violations = ?v, "guest merge without usable ids dropped");
            return Ok(());
        }
    };
    let mut tx = state.pool.begin().await?;
    // First, before any row lock: see guestloop_db::guest_directory::lock_exclusive.
    guestloop_db::guest_directory::lock_exclusive(&mut tx).await?;
    if guestloop_outbox::inbox::mark_applied(&mut tx, id, &env.source).await? {
        let moved = guest_merge::apply(&mut tx, &merge).await?;
        tracing::info!(
            stays = moved.stays,
            quotes = moved.quotes,
            "guest merge applied"
        );
    }
    tx.commit().await
}

/// The local day of `t` at the property.
pub fn day(state: &State, property_id: &str, t: DateTime<Utc>) -> NaiveDate {
    local_day(&state.chain, property_id, t)
}

/// The local day of `t` at the property of `chain`.
pub fn local_day(
    chain: &guestloop_config::ChainDirectory,
    property_id: &str,
    t: DateTime<Utc>,
) -> NaiveDate {
    let tz: chrono_tz::Tz = chain
        .property(property_id)
        .and_then(|p| p.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz).date_naive()
}

/// An instant an event carries; `None` when unset, invalid or outside years 1 to 9999.
pub use guestloop_proto::time::instant as time;

fn bd(kind: &str, v: i32) -> String {
    format!("{kind}:{v}")
}

async fn apply(
    conn: &mut PgConnection,
    state: &State,
    env: &EventEnvelope,
) -> Result<(), sqlx::Error> {
    let Some(payload) = &env.payload else {
        return Ok(());
    };
    let occur = time(&env.occur_time).unwrap_or_else(Utc::now);
    match payload {
        Payload::FeedbackReceived(f) => {
            crate::ota_replies::received(conn, state, f).await?;
            let t = time(&f.receive_time).unwrap_or(occur);
            let d = day(state, &f.property_id, t);
            for b in [
                "".to_string(),
                bd("channel", f.channel),
                bd("category", f.category),
            ] {
                add(conn, &f.property_id, d, "feedback", &b, Add::count()).await?;
            }
            let responded = ent::feedback_received(
                conn,
                &f.feedback_id,
                &f.property_id,
                d,
                f.channel,
                !f.has_survey,
            )
            .await?;
            for m in &f.staff_mentions {
                let sentiment = Sentiment::try_from(m.sentiment).unwrap_or_default();
                crate::store::mentions::add(
                    conn,
                    &f.property_id,
                    d,
                    &m.staff_id,
                    &m.staff_name,
                    m.department as i16,
                    sentiment == Sentiment::Positive,
                    sentiment == Sentiment::Negative,
                )
                .await?;
            }
            if !f.redacted_excerpt.trim().is_empty() {
                let q = ent::QuoteRow {
                    feedback_id: f.feedback_id.clone(),
                    property_id: f.property_id.clone(),
                    guest_id: f.guest_id.clone(),
                    day: d,
                    receive_time: t,
                    channel: f.channel as i16,
                    category: f.category as i16,
                    sentiment: f.sentiment as i16,
                    language: f.language.clone(),
                    excerpt: f.redacted_excerpt.chars().take(280).collect(),
                };
                ent::quote(conn, &q).await?;
            }
            // A survey answer needs no reply; everything else does.
            if !f.has_survey {
                for b in ["".to_string(), bd("channel", f.channel)] {
                    add(
                        conn,
                        &f.property_id,
                        d,
                        "feedback_response",
                        &b,
                        Add::rate(responded),
                    )
                    .await?;
                }
            }
        }
        Payload::FeedbackReplied(r) => {
            responded(conn, &r.feedback_id).await?;
            crate::ota_replies::replied(conn, state, r).await?;
        }
        Payload::GuestErased(g) if !g.guest_id.is_empty() => {
            // Erasing a merged-away id erases the profile it lives on in (guest-profile
            // erases a survivor together with what was merged into it).
            let survivor = guestloop_db::guest_directory::survivor(conn, &g.guest_id).await?;
            ent::erase_guest(conn, &g.guest_id).await?;
            ent::erase_guest(conn, &survivor).await?;
        }
        Payload::SurveyAnswered(s) => {
            let d = day(state, &s.property_id, time(&s.answer_time).unwrap_or(occur));
            let p = &s.property_id;
            if let Some(c) = s.csat {
                add(conn, p, d, "csat", "", Add::rate(c >= 4)).await?;
                add(
                    conn,
                    p,
                    d,
                    "csat",
                    &bd("channel", s.channel),
                    Add::rate(c >= 4),
                )
                .await?;
            }
            if let Some(n) = s.nps {
                // num: promoters; sum: detractors.
                let a = Add {
                    n: 1,
                    num: i64::from(n >= 9),
                    sum: f64::from(u8::from(n <= 6)),
                    sum_sq: 0.0,
                };
                add(conn, p, d, "nps", "", a).await?;
            }
            for c in &s.csi_scores {
                let x = f64::from(c.score);
                add(conn, p, d, "csi", "", Add::score(x)).await?;
                add(
                    conn,
                    p,
                    d,
                    "csi",
                    &bd("csi_dimension", c.dimension),
                    Add::score(x),
                )
                .await?;
            }
        }
        Payload::StayCheckedOut(s) => {
            let Some(t) = time(&s.checked_out_time) else {
                return Ok(());
            };
            let d = day(state, &s.property_id, t);
            let seen =
                ent::stay_checked_out(conn, &s.stay_id, &s.property_id, &s.guest_id, t).await?;
            if !seen.first {
                // A check-out undone and redone at the PMS: the stay counted the first time.
                return Ok(());
            }
            add(conn, &s.property_id, d, "stays", "", Add::count()).await?;
            add(
                conn,
                &s.property_id,
                d,
                "profile_complete",
                "",
                Add::rate(s.profile_complete),
            )
            .await?;
            if state.chain.is_vip(s.tier) {
                let returned = ent::stayed_before(conn, &s.guest_id, &s.stay_id, t).await?;
                add(
                    conn,
                    &s.property_id,
                    d,
                    "vip_return",
                    "",
                    Add::rate(returned),
                )
                .await?;
            }
            add(
                conn,
                &s.property_id,
                d,
                "satisfaction_contact",
                "",
                Add::count(),
            )
            .await?;
            if let Some(c) = seen.contact {
                contact_counted(conn, state, &s.stay_id, &s.property_id, t, c).await?;
            }
        }
        Payload::MessageStatusChanged(m)
            if m.kind == MessageKind::SatisfactionSurvey as i32
                && !m.stay_id.is_empty()
                && matches!(
                    DeliveryStatus::try_from(m.status),
                    Ok(DeliveryStatus::Sent | DeliveryStatus::Delivered)
                ) =>
        {
            let sent = time(&m.status_time).unwrap_or(occur);
            if let Some((property, checkout)) = ent::stay_contacted(conn, &m.stay_id, sent).await? {
                contact_counted(conn, state, &m.stay_id, &property, checkout, sent).await?;
            }
        }
        Payload::CaseOpened(e) => case(conn, state, &e.case).await?,
        Payload::CaseStatusChanged(e) => case(conn, state, &e.case).await?,
        Payload::CaseEscalated(e) => case(conn, state, &e.case).await?,
        Payload::CaseAssigned(e) => case(conn, state, &e.case).await?,
        Payload::CaseRegraded(e) => case(conn, state, &e.case).await?,
        Payload::CaseActionRecorded(e) => case(conn, state, &e.case).await?,
        Payload::CaseLinkedToIncident(e) => case(conn, state, &e.case).await?,
        Payload::SlaClockStopped(c) => {
            let Some(start) = time(&c.start_time) else {
                return Ok(());
            };
            let kind = ClockKind::try_from(c.kind).unwrap_or_default();
            if !matches!(kind, ClockKind::FirstResponse | ClockKind::Resolution) {
                return Ok(());
            }
            let d = day(state, &c.property_id, start);
            let first = ent::clock_stopped(
                conn,
                &c.case_id,
                &c.property_id,
                d,
                start,
                kind,
                c.within_sla,
            )
            .await?;
            let Some(first) = first else {
                return Ok(()); // this clock was counted before
            };
            let p = &c.property_id;
            if kind == ClockKind::FirstResponse {
                add(conn, p, d, "fr_sla", "", Add::rate(c.within_sla)).await?;
                let secs = c.elapsed_duration.as_ref().map(|e| e.seconds).unwrap_or(0);
                let bucket = RESPONSE_BUCKETS
                    .iter()
                    .find(|b| secs <= **b)
                    .copied()
                    .unwrap_or(i64::MAX);
                add(
                    conn,
                    p,
                    d,
                    "fr_time",
                    &format!("bucket:{bucket}"),
                    Add::count(),
                )
                .await?;
                if first.channel > 0 {
                    let b = format!("channel:{}:bucket:{bucket}", first.channel);
                    add(conn, p, d, "fr_time", &b, Add::count()).await?;
                }
                if c.urgency == Urgency::Emergency as i32 {
                    let limit = state
                        .standards
                        .for_property(&state.chain, p)
                        .targets
                        .emergency_response_minutes;
                    let ok = (secs as f64) <= limit * 60.0;
                    add(conn, p, d, "emergency_response", "", Add::rate(ok)).await?;
                }
            } else {
                add(conn, p, d, "res_sla", "", Add::rate(c.within_sla)).await?;
            }
            if let Some(both) = first.compliance {
                add(conn, p, d, "sla_compliance", "", Add::rate(both)).await?;
            }
        }
        Payload::FollowUpTaskCreated(t) => {
            if follow_up(t.kind)
                && let Some(due) = time(&t.due_time)
            {
                let d = day(state, &t.property_id, due);
                add(conn, &t.property_id, d, "tasks", "", Add::count()).await?;
            }
        }
        Payload::FollowUpTaskCompleted(t) => {
            if follow_up(t.kind)
                && !t.late
                && let Some(due) = time(&t.due_time)
            {
                let d = day(state, &t.property_id, due);
                add(conn, &t.property_id, d, "tasks", "", Add::hit()).await?;
            }
            // A VIP's satisfaction contact is the duty manager's call, not a survey mail
            // (the scheduler's care plan): the call reaching the guest is the contact.
            if t.kind == TaskKind::SatisfactionCall as i32
                && !t.stay_id.is_empty()
                && t.outcome != TaskOutcome::GuestUnreachable as i32
            {
                let at = time(&t.complete_time).unwrap_or(occur);
                if let Some((property, checkout)) =
                    ent::stay_contacted(conn, &t.stay_id, at).await?
                {
                    contact_counted(conn, state, &t.stay_id, &property, checkout, at).await?;
                }
            }
        }
        // A follow-up cancelled because its guest was erased stays counted, as not
        // completed: an erasure changes no KPI (issue 11), while any other cancellation
        // takes the task out of the denominator.
        Payload::FollowUpTaskCancelled(t) if t.reason == "guest_erased" => {}
        // A VIP care task was never counted (follow_up): nothing to take out.
        Payload::FollowUpTaskCancelled(t) if !follow_up(t.kind) => {}
        Payload::FollowUpTaskCancelled(t) => {
            if let Some(due) = time(&t.due_time) {
                let d = day(state, &t.property_id, due);
                let a = Add {
                    n: -1,
                    ..Default::default()
                };
                add(conn, &t.property_id, d, "tasks", "", a).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether a scheduler task of this kind counts in the follow-up completion rate. A VIP's
/// pre-arrival care (an upgrade, a welcome gift) is the stay's plan, not a follow-up owed
/// to a guest after their feedback or stay: neither its creation, completion nor
/// cancellation counts.
fn follow_up(kind: i32) -> bool {
    kind != TaskKind::VipCare as i32
}

/// A feedback answered (replied, or its case acknowledged): counted once, on its receipt day.
async fn responded(conn: &mut PgConnection, feedback_id: &str) -> Result<(), sqlx::Error> {
    if feedback_id.is_empty() {
        return Ok(());
    }
    if let Some((property, d, channel)) = ent::feedback_responded(conn, feedback_id).await? {
        for b in ["".to_string(), bd("channel", channel)] {
            add(conn, &property, d, "feedback_response", &b, Add::hit()).await?;
        }
    }
    Ok(())
}

async fn contact_counted(
    conn: &mut PgConnection,
    state: &State,
    stay_id: &str,
    property: &str,
    checkout: DateTime<Utc>,
    sent: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let within = state
        .standards
        .for_property(&state.chain, property)
        .satisfaction_contact_within
        .as_duration();
    let ok = (sent - checkout)
        .to_std()
        .map(|d| d <= within)
        .unwrap_or(true);
    if ok && ent::mark_stay_counted(conn, stay_id).await? {
        let d = day(state, property, checkout);
        add(conn, property, d, "satisfaction_contact", "", Add::hit()).await?;
    }
    Ok(())
}

/// Any case event: the case's opening is counted once (from whichever event comes first,
/// all carry the facts), its first resolution once, and its acknowledgement answers its
/// feedback.
async fn case(
    conn: &mut PgConnection,
    state: &State,
    facts: &Option<CaseFacts>,
) -> Result<(), sqlx::Error> {
    let Some(c) = facts else {
        return Ok(());
    };
    let Some(open) = time(&c.open_time) else {
        return Ok(());
    };
    let p = &c.property_id;
    let d = day(state, p, open);
    if ent::case_opened(conn, &c.case_id, p, d, open, c.channel).await? {
        for b in [
            "".to_string(),
            bd("channel", c.channel),
            bd("category", c.category),
            bd("department", c.department),
            format!("category:{}:department:{}", c.category, c.department),
        ] {
            add(conn, p, d, "complaints", &b, Add::count()).await?;
        }
        // By category too: the board proposes a category whose cases keep being repeats
        // (improvement/proposer.rs), whatever its complaint rate.
        for b in ["".to_string(), bd("category", c.category)] {
            add(conn, p, d, "repeat", &b, Add::rate(c.repeat)).await?;
        }
        add(conn, p, d, "closed_24h", "", Add::rate(false)).await?;
        for b in ["".to_string(), bd("channel", c.channel)] {
            add(conn, p, d, "resolution_rate", &b, Add::rate(false)).await?;
        }
    }
    ent::case_facts(
        conn,
        &ent::CaseFactsRow {
            case_id: c.case_id.clone(),
            version: c.version,
            reference: c.reference.clone(),
            category: c.category as i16,
            department: c.department as i16,
            risk_grade: c.risk_grade as i16,
            status: c.status as i16,
            tier: c.escalation_tier as i16,
            fr_due: time(&c.first_response_due_time),
            res_due: time(&c.resolution_due_time),
            ack_time: time(&c.acknowledge_time),
            // A reopened case is open again, whatever its earlier resolve time.
            done_time: matches!(
                CaseStatus::try_from(c.status),
                Ok(CaseStatus::Resolved | CaseStatus::Closed)
            )
            .then(|| time(&c.resolve_time).or(time(&c.close_time)))
            .flatten(),
        },
    )
    .await?;
    let status = CaseStatus::try_from(c.status).unwrap_or_default();
    if c.acknowledge_time.is_some() || status != CaseStatus::Received {
        responded(conn, &c.origin_feedback_id).await?;
    }
    let done = time(&c.resolve_time).or(time(&c.close_time));
    if let (Some(done), true) = (
        done,
        matches!(status, CaseStatus::Resolved | CaseStatus::Closed),
    ) && ent::mark_case_resolved(conn, &c.case_id).await?
    {
        for b in ["".to_string(), bd("channel", c.channel)] {
            add(conn, p, d, "resolution_rate", &b, Add::hit()).await?;
        }
        if done - open <= chrono::Duration::hours(24) {
            add(conn, p, d, "closed_24h", "", Add::hit()).await?;
        }
    }
    Ok(())
}

//! What a clock's timer does when it fires. The warning alerts the case's current owner;
//! the deadline marks the breach and moves the ladder one step: feedback-intake's
//! EscalateCase (idempotency key = the timer's, so a retried firing escalates once), then an
//! alert to the new owner, then the new tier's step clock. Calls to other services happen
//! first; what they changed is written afterwards in the transaction that finishes the
//! timer under its lease (`Fired::write`), so a replica that loses its lease writes nothing
//! and the next one replays the same idempotent calls.

use super::{clock_label, emit, start_step};
use crate::alerts::{self, Alert, Sent};
use crate::domain::to_timestamp;
use crate::state::State;
use crate::store::clocks::{self as store, ClockRow};
use crate::store::timers::TimerRow;
use chrono::{DateTime, Utc};
use guestloop_proto::common::v1::Urgency;
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::feedback::v1::{self as fb, EscalationTier, EscalationTrigger};
use guestloop_proto::notification::v1::MessageKind;
use sqlx::PgConnection;
use uuid::Uuid;

/// What the firing found and did outside the database.
#[derive(Debug)]
pub enum Fired {
    Warning {
        clock_id: Uuid,
        message_id: String,
    },
    Breach {
        clock_id: Uuid,
        hop: Option<Hop>,
    },
    /// The clock stopped, paused or moved since the timer was set: nothing to do.
    Stale,
}

#[derive(Debug)]
pub struct Hop {
    pub from: i16,
    pub to: i16,
    pub key: String,
    pub confirmed: bool,
    pub message_id: String,
    pub at: DateTime<Utc>,
}

pub enum Step {
    Retry(String),
    Failed(String),
}

async fn load(state: &State, row: &TimerRow) -> Result<Option<(ClockRow, store::CaseRow)>, Step> {
    let Some(id) = row.clock_id else {
        return Err(Step::Failed("an SLA timer without a clock".into()));
    };
    let db = |e: sqlx::Error| Step::Retry(format!("database: {e}"));
    let Some(clock) = store::by_id(&state.pool, id).await.map_err(db)? else {
        return Ok(None);
    };
    let case = store::case(&state.pool, &clock.case_id).await.map_err(db)?;
    Ok(case.map(|c| (clock, c)))
}

pub async fn warning(state: &State, row: &TimerRow) -> Result<Fired, Step> {
    let Some((clock, case)) = load(state, row).await? else {
        return Ok(Fired::Stale);
    };
    if !clock.running() || clock.warned {
        return Ok(Fired::Stale);
    }
    let alert = Alert {
        key: row.idempotency_key(),
        kind: MessageKind::StaffSlaWarning,
        to: alerts::owner(
            &case.property_id,
            case.tier,
            case.department,
            &case.assignee_id,
            state.alerts.on_duty_fallback,
        ),
        urgency: Urgency::try_from(i32::from(case.urgency)).unwrap_or_default(),
        case_id: &case.case_id,
        task_id: "",
        variables: vec![
            ("case_reference", case.reference.clone()),
            ("clock", clock_label(clock.kind).to_string()),
            (
                "due_time",
                alerts::local_time(state, &case.property_id, clock.due_time),
            ),
        ],
    };
    match alerts::send(state, alert).await {
        Sent::Ok(message_id) => Ok(Fired::Warning {
            clock_id: clock.id,
            message_id,
        }),
        Sent::Retry(e) => Err(Step::Retry(e)),
    }
}

pub async fn deadline(state: &State, row: &TimerRow) -> Result<Fired, Step> {
    let Some((clock, case)) = load(state, row).await? else {
        return Ok(Fired::Stale);
    };
    if !clock.running() || clock.due_time > Utc::now() {
        return Ok(Fired::Stale);
    }
    let from = case.tier.max(EscalationTier::FrontLine as i16);
    if from >= EscalationTier::GeneralManager as i16 {
        // The top of the ladder: the breach is recorded and reported, nobody is above.
        return Ok(Fired::Breach {
            clock_id: clock.id,
            hop: None,
        });
    }
    let to = from + 1;
    let key = row.idempotency_key();
    let Some(feedback) = &state.peers.feedback else {
        // The breach is still recorded and reported; only the hop cannot be made.
        tracing::warn!(case_id = %case.case_id, "peers.feedback_intake is not set: no escalation");
        return Ok(Fired::Breach {
            clock_id: clock.id,
            hop: None,
        });
    };
    let mut feedback = feedback.clone();
    let call = feedback.escalate_case(fb::EscalateCaseRequest {
        case_id: case.case_id.clone(),
        to_tier: i32::from(to),
        trigger: EscalationTrigger::DeadlineMissed as i32,
        reason: String::new(),
        idempotency_key: key.clone(),
        clock_id: clock.id.to_string(),
    });
    let confirmed =
        match tokio::time::timeout(state.timers.action_timeout.as_duration(), call).await {
            Err(_) => return Err(Step::Retry("feedback-intake: timed out".into())),
            // A replay answers escalated = false; the case's tier says whether it holds.
            Ok(Ok(r)) => r
                .into_inner()
                .case
                .is_some_and(|c| c.escalation_tier >= i32::from(to)),
            // Resolved or closed meanwhile: nothing to escalate.
            Ok(Err(s)) if s.code() == tonic::Code::FailedPrecondition => false,
            Ok(Err(s)) if alerts::permanent(s.code()) => {
                return Err(Step::Failed(format!("feedback-intake: {:?}", s.code())));
            }
            Ok(Err(s)) => return Err(Step::Retry(format!("feedback-intake: {:?}", s.code()))),
        };
    let mut message_id = String::new();
    if confirmed {
        let alert = Alert {
            key: format!("hop:{key}"),
            kind: MessageKind::StaffEscalation,
            to: alerts::owner(
                &case.property_id,
                to,
                case.department,
                &case.assignee_id,
                state.alerts.on_duty_fallback,
            ),
            urgency: Urgency::Urgent,
            case_id: &case.case_id,
            task_id: "",
            variables: vec![
                ("case_reference", case.reference.clone()),
                ("tier", alerts::tier_label(to).to_string()),
                (
                    "reason",
                    format!(
                        "the {} deadline passed at {}",
                        clock_label(clock.kind),
                        alerts::local_time(state, &case.property_id, clock.due_time)
                    ),
                ),
            ],
        };
        match alerts::send(state, alert).await {
            Sent::Ok(id) => message_id = id,
            Sent::Retry(e) => return Err(Step::Retry(e)),
        }
    }
    Ok(Fired::Breach {
        clock_id: clock.id,
        hop: Some(Hop {
            from,
            to,
            key,
            confirmed,
            message_id,
            at: Utc::now(),
        }),
    })
}

impl Fired {
    /// Records what the firing did, in the transaction that finishes its timer.
    pub async fn write(&self, conn: &mut PgConnection, state: &State) -> Result<(), sqlx::Error> {
        match self {
            Fired::Stale => Ok(()),
            Fired::Warning { clock_id, .. } => {
                let Some(mut clock) = store::lock(conn, *clock_id).await? else {
                    return Ok(());
                };
                if !clock.running() || clock.warned {
                    return Ok(());
                }
                clock.warned = true;
                store::save(conn, &clock).await?;
                super::changed(conn, &clock).await?;
                metrics::counter!("scheduler_sla_warnings_total").increment(1);
                emit(
                    conn,
                    &clock,
                    Payload::SlaClockWarned(ev::SlaClockWarned {
                        clock_id: clock.id.to_string(),
                        kind: i32::from(clock.kind),
                        case_id: clock.case_id.clone(),
                        property_id: clock.property_id.clone(),
                        urgency: i32::from(clock.urgency),
                        escalation_tier: i32::from(clock.tier),
                        start_time: Some(to_timestamp(clock.start_time)),
                        due_time: Some(to_timestamp(clock.due_time)),
                        warn_time: Some(to_timestamp(Utc::now())),
                    }),
                )
                .await
            }
            Fired::Breach { clock_id, hop } => {
                let Some(mut clock) = store::lock(conn, *clock_id).await? else {
                    return Ok(());
                };
                // Its due time may have moved on while the ladder call was in flight.
                if clock.running() && clock.due_time <= Utc::now() {
                    clock.state = store::BREACHED;
                    clock.breach_time = Some(clock.due_time);
                    store::save(conn, &clock).await?;
                    super::changed(conn, &clock).await?;
                    metrics::counter!(
                        "scheduler_sla_breaches_total",
                        "property" => clock.property_id.clone()
                    )
                    .increment(1);
                    emit(
                        conn,
                        &clock,
                        Payload::SlaClockBreached(ev::SlaClockBreached {
                            clock_id: clock.id.to_string(),
                            kind: i32::from(clock.kind),
                            case_id: clock.case_id.clone(),
                            property_id: clock.property_id.clone(),
                            urgency: i32::from(clock.urgency),
                            escalation_tier: i32::from(clock.tier),
                            next_tier: hop.as_ref().map(|h| i32::from(h.to)).unwrap_or(0),
                            start_time: Some(to_timestamp(clock.start_time)),
                            due_time: Some(to_timestamp(clock.due_time)),
                            breach_time: Some(to_timestamp(clock.due_time)),
                        }),
                    )
                    .await?;
                }
                let Some(h) = hop else {
                    return Ok(());
                };
                let recorded = store::insert_hop(
                    conn,
                    &store::HopRow {
                        idempotency_key: h.key.clone(),
                        case_id: clock.case_id.clone(),
                        property_id: clock.property_id.clone(),
                        from_tier: h.from,
                        to_tier: h.to,
                        clock_id: clock.id,
                        hop_time: h.at,
                        confirmed: h.confirmed,
                        message_id: h.message_id.clone(),
                    },
                )
                .await?;
                if recorded && h.confirmed {
                    metrics::counter!("scheduler_escalations_total").increment(1);
                    store::raise_tier(conn, &clock.case_id, h.to).await?;
                    if let Some(case) = store::case(&mut *conn, &clock.case_id).await? {
                        let steps = state
                            .standards
                            .for_property(&state.chain, &case.property_id)
                            .escalation_steps;
                        start_step(conn, state, &case, h.to, h.at, &steps).await?;
                    }
                }
                Ok(())
            }
        }
    }

    pub fn message_id(&self) -> String {
        match self {
            Fired::Warning { message_id, .. } => message_id.clone(),
            Fired::Breach { hop: Some(h), .. } => h.message_id.clone(),
            _ => String::new(),
        }
    }
}

//! SLA clocks of complaint cases (issue 4, part 4), kept in step with feedback-intake's case
//! events. The case's own due times are the truth (feedback-intake computes them from the
//! chain's SLA policy and moves the resolution deadline on by the time spent waiting for the
//! guest); the scheduler adds what a case cannot do for itself: a warning at
//! `sla_warning_at` of each clock, the breach, and the ladder (fire.rs). Every clock has two
//! timers, `case/<id>/<clock>/warn` and `.../deadline`; stopping or pausing a clock cancels
//! them, resuming arms them again.
//!
//! Events may arrive out of order or twice: the inbox drops repeats, and facts older than
//! the stored version change nothing.

pub mod fire;

use crate::domain::{micros, to_duration_ms, to_timestamp};
use crate::state::State;
use crate::store::clocks::{self as store, CaseRow, ClockRow};
use crate::store::timers;
use chrono::{DateTime, Duration, Utc};
use guestloop_proto::events::v1::{self as ev, CaseFacts};
use guestloop_proto::feedback::v1::{CaseStatus, EscalationTier};
use guestloop_proto::followup::v1::{ClockKind, ClockState, LatePolicy, TimerPurpose};
use sqlx::PgConnection;
use uuid::Uuid;

pub const SOURCE: &str = crate::SERVICE_NAME;

/// A case as its latest event describes it.
#[derive(Debug, Clone)]
pub struct Facts {
    pub case: CaseRow,
    pub open_time: DateTime<Utc>,
    pub first_response_due: DateTime<Utc>,
    pub resolution_due: DateTime<Utc>,
    pub acknowledged: Option<DateTime<Utc>>,
    /// Resolved or closed: when.
    pub done: Option<DateTime<Utc>>,
}

/// An instant of the facts; `None` when unset or outside years 1 to 9999 (a due time at
/// chrono's end would overflow when the warning is armed).
fn time(t: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    guestloop_proto::time::instant(t).map(micros)
}

impl Facts {
    /// `None` when the facts lack what a clock needs (an event from a broken producer: it is
    /// acknowledged and logged, never retried forever).
    pub fn parse(f: &CaseFacts) -> Option<Self> {
        let status = CaseStatus::try_from(f.status).ok()?;
        let done = match status {
            CaseStatus::Resolved | CaseStatus::Closed => {
                Some(time(&f.resolve_time).or(time(&f.close_time))?)
            }
            _ => None,
        };
        Some(Self {
            case: CaseRow {
                case_id: f.case_id.clone(),
                property_id: f.property_id.clone(),
                reference: f.reference.clone(),
                guest_id: f.guest_id.clone(),
                stay_id: f.stay_id.clone(),
                status: status as i16,
                tier: i16::try_from(f.escalation_tier).ok()?,
                urgency: i16::try_from(f.urgency).ok()?,
                department: i16::try_from(f.department).ok()?,
                assignee_id: f.assignee_id.clone(),
                version: f.version,
            },
            open_time: time(&f.open_time)?,
            first_response_due: time(&f.first_response_due_time)?,
            resolution_due: time(&f.resolution_due_time)?,
            acknowledged: time(&f.acknowledge_time),
            done,
        })
    }
}

pub fn clock_name(kind: i16, tier: i16) -> String {
    match ClockKind::try_from(i32::from(kind)) {
        Ok(ClockKind::FirstResponse) => "first_response".into(),
        Ok(ClockKind::Resolution) => "resolution".into(),
        _ => format!("step{tier}"),
    }
}

/// How a person reads the clock in an alert.
pub fn clock_label(kind: i16) -> &'static str {
    match ClockKind::try_from(i32::from(kind)) {
        Ok(ClockKind::FirstResponse) => "first response",
        Ok(ClockKind::Resolution) => "resolution",
        _ => "escalation step",
    }
}

fn timer_prefix(c: &ClockRow) -> String {
    format!("case/{}/{}/", c.case_id, clock_name(c.kind, c.tier))
}

fn new_clock(
    case: &CaseRow,
    kind: ClockKind,
    tier: i16,
    start: DateTime<Utc>,
    due: DateTime<Utc>,
) -> ClockRow {
    ClockRow {
        id: Uuid::now_v7(),
        case_id: case.case_id.clone(),
        kind: kind as i16,
        tier,
        property_id: case.property_id.clone(),
        urgency: case.urgency,
        state: store::RUNNING,
        start_time: start,
        due_time: due,
        target_ms: (due - start).num_milliseconds().max(0),
        warn_time: None,
        warned: false,
        stop_time: None,
        breach_time: None,
        paused_since: None,
        paused_ms: 0,
    }
}

/// Applies the latest facts of a case (in the event's transaction).
pub async fn apply(
    conn: &mut PgConnection,
    state: &State,
    facts: &Facts,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let Some(case) = store::upsert_case(conn, &facts.case).await? else {
        return Ok(()); // older than what is known
    };
    let status = CaseStatus::try_from(i32::from(case.status)).unwrap_or_default();

    // First response: from opening until the first response to the guest.
    let fr = new_clock(
        &case,
        ClockKind::FirstResponse,
        0,
        facts.open_time,
        facts.first_response_due,
    );
    let mut fr = store::insert_or_get(conn, &fr).await?;
    if let Some(ack) = facts.acknowledged.or(facts.done) {
        stop(conn, state, &mut fr, ack).await?;
    } else if fr.running() {
        move_due(conn, state, &case, &mut fr, facts.first_response_due).await?;
    }

    // Resolution: paused while the case waits for the guest, stopped when resolved, running
    // again when reopened.
    let res = new_clock(
        &case,
        ClockKind::Resolution,
        0,
        facts.open_time,
        facts.resolution_due,
    );
    let mut res = store::insert_or_get(conn, &res).await?;
    match (status, facts.done) {
        (_, Some(done)) => stop(conn, state, &mut res, done).await?,
        (CaseStatus::WaitingForGuest, _) => pause(conn, &mut res, at).await?,
        _ => {
            resume(conn, &mut res, at);
            move_due(conn, state, &case, &mut res, facts.resolution_due).await?;
        }
    }

    // Escalation steps: one per tier above the front line, each with its own deadline.
    let tier = case.tier;
    let steps = state
        .standards
        .for_property(&state.chain, &case.property_id)
        .escalation_steps;
    for mut clock in store::lock_open_of_case(conn, &case.case_id).await? {
        if clock.kind != ClockKind::EscalationStep as i16 || !clock.open() {
            continue;
        }
        if let Some(done) = facts.done {
            stop(conn, state, &mut clock, done).await?;
        } else if clock.tier < tier {
            // Moved up by hand before this step's deadline: superseded.
            clock.state = store::CANCELLED;
            clock.stop_time = Some(at);
            disarm(conn, &clock).await?;
            store::save(conn, &clock).await?;
            changed(conn, &clock).await?;
        }
    }
    if facts.done.is_none() {
        start_step(conn, state, &case, tier, at, &steps).await?;
    }
    Ok(())
}

/// Starts the escalation-step clock of `tier` (customer-service manager and up) if the case
/// has none yet.
pub async fn start_step(
    conn: &mut PgConnection,
    state: &State,
    case: &CaseRow,
    tier: i16,
    at: DateTime<Utc>,
    steps: &[guestloop_config::Seconds],
) -> Result<(), sqlx::Error> {
    let index = tier - EscalationTier::CustomerServiceManager as i16;
    let Some(step) = usize::try_from(index).ok().and_then(|i| steps.get(i)) else {
        return Ok(());
    };
    let due = micros(at + Duration::from_std(step.as_duration()).unwrap_or(Duration::MAX));
    let clock = new_clock(case, ClockKind::EscalationStep, tier, micros(at), due);
    let id = clock.id;
    let mut clock = store::insert_or_get(conn, &clock).await?;
    if clock.id == id {
        arm(conn, state, &mut clock).await?;
        store::save(conn, &clock).await?;
        changed(conn, &clock).await?;
    }
    Ok(())
}

/// A running clock whose due time the case moved (or a new one): re-armed.
async fn move_due(
    conn: &mut PgConnection,
    state: &State,
    _case: &CaseRow,
    clock: &mut ClockRow,
    due: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if !clock.running() {
        return Ok(());
    }
    let fresh = clock.warn_time.is_none();
    if clock.due_time != due || fresh {
        clock.due_time = due;
        arm(conn, state, clock).await?;
        store::save(conn, clock).await?;
        changed(conn, clock).await?;
    }
    Ok(())
}

/// Schedules the clock's warning (unless it went out) and deadline timers.
async fn arm(
    conn: &mut PgConnection,
    state: &State,
    clock: &mut ClockRow,
) -> Result<(), sqlx::Error> {
    let s = state
        .standards
        .for_property(&state.chain, &clock.property_id);
    let before =
        Duration::milliseconds((clock.target_ms as f64 * (1.0 - s.sla_warning_at)).round() as i64);
    let warn = micros(clock.due_time - before);
    clock.warn_time = Some(warn);
    // Keys carry the due time: a clock that runs again (resumed, reopened) gets timers of
    // its own instead of meeting its fired ones. The pending ones of the old due time go.
    disarm(conn, clock).await?;
    let prefix = timer_prefix(clock);
    let stamp = clock.due_time.timestamp_millis();
    let timer = |which: &str, purpose, due, policy, late_ms: i64| crate::domain::NewTimer {
        key: format!("{prefix}{which}/{stamp}"),
        purpose,
        property_id: clock.property_id.clone(),
        guest_id: String::new(),
        stay_id: String::new(),
        case_id: clock.case_id.clone(),
        due_time: due,
        late_policy: policy,
        late_threshold_ms: late_ms.max(1000),
        action: None,
        clock_id: Some(clock.id),
        task_id: None,
    };
    if !clock.warned {
        // A warning after the deadline says nothing the breach does not.
        let t = timer(
            "warn",
            TimerPurpose::SlaWarning,
            warn,
            LatePolicy::Skip,
            before.num_milliseconds(),
        );
        timers::upsert(conn, &t, true).await?;
    }
    // A late escalation is better than none.
    let t = timer(
        "deadline",
        TimerPurpose::SlaDeadline,
        clock.due_time,
        LatePolicy::Fire,
        state
            .timers
            .default_late_threshold
            .as_duration()
            .as_millis() as i64,
    );
    timers::upsert(conn, &t, true).await?;
    Ok(())
}

async fn disarm(conn: &mut PgConnection, clock: &ClockRow) -> Result<(), sqlx::Error> {
    timers::cancel_prefix(conn, &timer_prefix(clock)).await?;
    Ok(())
}

fn elapsed_ms(c: &ClockRow, until: DateTime<Utc>) -> i64 {
    ((until - c.start_time).num_milliseconds() - c.paused_ms).max(0)
}

/// Stops an open clock at `at`: MET before its due time, else it stays BREACHED with its
/// stop time. Emits SlaClockStopped.
async fn stop(
    conn: &mut PgConnection,
    _state: &State,
    clock: &mut ClockRow,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if !clock.open() {
        return Ok(());
    }
    resume(conn, clock, at);
    let within = at <= clock.due_time && clock.breach_time.is_none();
    clock.state = if within { store::MET } else { store::BREACHED };
    if !within && clock.breach_time.is_none() {
        clock.breach_time = Some(clock.due_time);
    }
    clock.stop_time = Some(at);
    disarm(conn, clock).await?;
    store::save(conn, clock).await?;
    changed(conn, clock).await?;
    emit(
        conn,
        clock,
        ev::event_envelope::Payload::SlaClockStopped(ev::SlaClockStopped {
            clock_id: clock.id.to_string(),
            kind: i32::from(clock.kind),
            case_id: clock.case_id.clone(),
            property_id: clock.property_id.clone(),
            urgency: i32::from(clock.urgency),
            final_state: if within {
                ClockState::Met
            } else {
                ClockState::Breached
            } as i32,
            within_sla: within,
            start_time: Some(to_timestamp(clock.start_time)),
            due_time: Some(to_timestamp(clock.due_time)),
            stop_time: Some(to_timestamp(at)),
            elapsed_duration: Some(to_duration_ms(elapsed_ms(clock, at))),
            paused_duration: Some(to_duration_ms(clock.paused_ms)),
        }),
    )
    .await
}

async fn pause(
    conn: &mut PgConnection,
    clock: &mut ClockRow,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if clock.state != store::RUNNING {
        return Ok(());
    }
    clock.state = store::PAUSED;
    clock.paused_since = Some(at);
    disarm(conn, clock).await?;
    store::save(conn, clock).await?;
    changed(conn, clock).await
}

/// Counts a pause as over (the due time itself comes from the case).
fn resume(_conn: &mut PgConnection, clock: &mut ClockRow, at: DateTime<Utc>) {
    if let Some(since) = clock.paused_since.take() {
        clock.paused_ms += (at - since).num_milliseconds().max(0);
        clock.state = store::RUNNING;
        // Re-armed by the caller; a warning already sent stays sent.
        clock.warn_time = None;
    }
    if clock.state == store::MET || (clock.state == store::BREACHED && clock.stop_time.is_some()) {
        // Reopened: the clock runs again; a breach on record stays on record.
        clock.state = store::RUNNING;
        clock.stop_time = None;
        clock.warned = false;
        clock.warn_time = None;
    }
}

pub async fn changed(conn: &mut PgConnection, clock: &ClockRow) -> Result<(), sqlx::Error> {
    crate::store::deadline_changed(conn, &clock.property_id, "clock", clock.id).await
}

pub async fn emit(
    conn: &mut PgConnection,
    clock: &ClockRow,
    payload: ev::event_envelope::Payload,
) -> Result<(), sqlx::Error> {
    guestloop_outbox::enqueue(
        conn,
        SOURCE,
        guestloop_outbox::NewEvent {
            aggregate_type: "clock",
            aggregate_id: clock.id.to_string(),
            property_id: clock.property_id.clone(),
            payload,
        },
    )
    .await?;
    Ok(())
}

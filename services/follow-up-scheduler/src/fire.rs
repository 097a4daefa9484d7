//! The firing worker. Every replica may run one: it claims due timers with
//! `FOR UPDATE SKIP LOCKED` and a lease (store::timers::claim_due), so no two replicas run a
//! timer at once; a replica that dies mid-job loses its lease when lease_until passes and
//! another replica takes the timer. Every write is guarded by the lease, and the action
//! carries the idempotency key `timer:<timer_id>:<generation>`, so a retry after a lost
//! lease has its effect once.
//!
//! Per claimed timer: lateness = now − due_time; beyond its late_threshold the late policy
//! applies: SKIP → SKIPPED ("late"); FIRE → runs, marked late; ESCALATE → does not run
//! either (the proto: a person decides): SKIPPED with reason "late: for the duty manager",
//! a task for the duty manager and an alert to them.
//!
//! What a firing does: the plan's guest messages first pass their precheck (consent, survey
//! cap, plan/precheck.rs), then SendMessage goes to notification; CreateTask creates the task
//! here (a VIP's call after consent, alerting the duty manager); EscalateCase calls feedback-intake; SLA timers run the clock's warning or breach
//! (clocks/fire.rs); a task's due timer marks it MISSED. Calls to other services run first;
//! what they changed is written in the transaction that finishes the timer under its lease.

use crate::alerts::{self, Alert, Sent};
use crate::clocks::fire::{self as clock_fire, Fired, Step};
use crate::domain::{LateDecision, late_decision};
use crate::finish::{Effect, Outcome};
use crate::plan::precheck::{self, Precheck};
use crate::state::State;
use crate::store::tasks::TaskRow;
use crate::store::timers::{self as store, Finish, TimerRow};
use chrono::{DateTime, Utc};
use guestloop_db::batch::Lease;
use guestloop_proto::common::v1::{ConsentPurpose, Urgency};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::followup::v1::{
    self as pb, LatePolicy, TimerAction, TimerPurpose, timer_action,
};
use guestloop_proto::notification::v1::{self as notify, MessageKind, StaffRole};
use prost::Message;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Worker {
    state: Arc<State>,
    owner: String,
    /// When the backlog gauge was last counted (a count over a million due timers is not
    /// free, so at most once per `timers.backlog_interval`), shared by a replica's workers.
    backlog_counted: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// What running the action came to.
enum Ran {
    Done {
        kind: &'static str,
        message_id: String,
        effect: Effect,
    },
    /// Not run: its precondition no longer holds.
    Skipped(&'static str),
    Retry(String),
    Failed(String),
}

impl Worker {
    /// A replica's `n` firing loops (`timers.workers`, at least 1 by validation): each its
    /// own lease owner, one backlog gauge between them.
    pub fn replica(state: Arc<State>, n: usize) -> Vec<Self> {
        if state.peers.notification.is_none() {
            tracing::warn!("peers.notification is not set: SendMessage timers will fail");
        }
        let backlog_counted = Arc::new(std::sync::Mutex::new(None));
        // "timer-worker-<replica>/<loop>": a firing record names the replica and its loop.
        let replica = uuid::Uuid::now_v7();
        (0..n)
            .map(|i| Self {
                state: state.clone(),
                owner: format!("timer-worker-{replica}/{i}"),
                backlog_counted: backlog_counted.clone(),
            })
            .collect()
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let poll = self.state.timers.poll_interval.as_duration();
        // One connection from full batch to full batch (no pool checkout, and the round
        // trips it costs, per batch); back to the pool before the worker sleeps.
        let mut lease = Lease::new(self.state.pool.clone());
        loop {
            if *stop.borrow() {
                break;
            }
            let full = match self.tick(&mut lease).await {
                Ok(n) => n as i64 >= self.state.timers.batch_size,
                Err(e) => {
                    tracing::warn!(error = %e, "timer worker: claiming failed");
                    false
                }
            };
            if full {
                continue;
            }
            lease.release();
            // Until the next pending timer is due, if that is sooner than the poll interval:
            // a timer known in advance fires on time, not up to a poll interval late.
            let wait = match store::next_due(&self.state.pool).await {
                Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or_default().min(poll),
                _ => poll,
            };
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claims and processes one batch, concurrently; returns how many were claimed. The
    /// claim and the finish run on `lease`'s connection.
    pub async fn tick(&self, lease: &mut Lease) -> Result<usize, sqlx::Error> {
        let t = &self.state.timers;
        self.count_backlog().await;
        let claimed = store::claim_due(
            lease.conn().await?,
            &self.owner,
            t.lease.as_duration().as_secs_f64(),
            t.batch_size,
        )
        .await;
        let rows = claimed.inspect_err(|_| lease.release())?;
        let n = rows.len();
        let decided = futures::future::join_all(rows.into_iter().map(|row| async move {
            let id = row.id;
            let property = row.property_id.clone();
            self.decide(row).await.unwrap_or_else(|e| {
                tracing::warn!(timer_id = %id, property_id = %property, error = %e,
                    "timer worker: processing failed");
                None
            })
        }))
        .await;
        crate::finish::write(
            &self.state,
            lease,
            &self.owner,
            decided.into_iter().flatten().collect(),
        )
        .await;
        Ok(n)
    }

    async fn count_backlog(&self) {
        let every = self.state.timers.backlog_interval.as_duration();
        {
            let mut last = self.backlog_counted.lock().expect("not poisoned");
            if last.is_some_and(|t| t.elapsed() < every) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        if let Ok((n, oldest)) = store::backlog(&self.state.pool).await {
            metrics::gauge!("scheduler_timers_backlog").set(n as f64);
            metrics::gauge!("scheduler_timers_oldest_due_age_seconds").set(oldest.max(0.0));
        }
    }

    /// Runs a claimed timer's action and decides how it finishes; `None` when it is to be
    /// retried later (written at once) and has nothing to finish.
    async fn decide(&self, row: TimerRow) -> Result<Option<Outcome>, sqlx::Error> {
        let now = Utc::now();
        let lateness_ms = (now - row.due_time).num_milliseconds().max(0);
        let policy = LatePolicy::try_from(i32::from(row.late_policy)).unwrap_or(LatePolicy::Fire);
        let decision = late_decision(lateness_ms, row.late_threshold_ms, policy);
        let late = decision != LateDecision::OnTime;
        let late_decision = match decision {
            LateDecision::OnTime => "",
            LateDecision::FireLate => "fired_late",
            LateDecision::Skip => "skipped_late",
            LateDecision::Escalate => "escalate",
        };
        if late {
            metrics::counter!("scheduler_timers_late_total", "decision" => late_decision)
                .increment(1);
            tracing::info!(timer_id = %row.id, property_id = %row.property_id, lateness_ms,
                decision = late_decision, "timer came due late");
        }
        if matches!(decision, LateDecision::Skip | LateDecision::Escalate) {
            let mut effect = Effect::None;
            if decision == LateDecision::Escalate {
                match self.duty_manager(&row, now).await {
                    Ok(task) => effect = task,
                    Err(e) => {
                        self.retry(&row, &e).await?;
                        return Ok(None);
                    }
                }
            }
            let finish = Finish {
                state: store::SKIPPED,
                fire_time: now,
                late,
                late_decision,
                skip_reason: if decision == LateDecision::Escalate {
                    "late: for the duty manager"
                } else {
                    "late"
                },
                last_error: String::new(),
                message_id: String::new(),
            };
            return Ok(Some(Outcome {
                row,
                finish,
                kind: "",
                effect,
            }));
        }
        let ran = self.execute(&row).await;
        let fire_time = Utc::now();
        let (state, kind, message_id, error, effect, skip_reason) = match ran {
            Ran::Done {
                kind,
                message_id,
                effect,
            } => (store::FIRED, kind, message_id, String::new(), effect, ""),
            Ran::Skipped(reason) => (
                store::SKIPPED,
                "",
                String::new(),
                String::new(),
                Effect::None,
                reason,
            ),
            Ran::Failed(e) => (store::FAILED, "", String::new(), e, Effect::None, ""),
            Ran::Retry(e) if row.attempt_count >= self.state.timers.max_attempts => {
                (store::FAILED, "", String::new(), e, Effect::None, "")
            }
            Ran::Retry(e) => {
                self.retry(&row, &e).await?;
                return Ok(None);
            }
        };
        let finish = Finish {
            state,
            fire_time,
            late,
            late_decision,
            skip_reason,
            last_error: error,
            message_id,
        };
        Ok(Some(Outcome {
            row,
            finish,
            kind,
            effect,
        }))
    }

    async fn retry(&self, row: &TimerRow, error: &str) -> Result<(), sqlx::Error> {
        let retry_at = Utc::now()
            + chrono::Duration::from_std(self.state.timers.retry_delay.as_duration())
                .unwrap_or_else(|_| chrono::Duration::seconds(30));
        store::retry_later(&self.state.pool, row, &self.owner, retry_at, error).await
    }

    async fn execute(&self, row: &TimerRow) -> Ran {
        let action = match row.action.as_deref().map(TimerAction::decode) {
            None => None,
            Some(Ok(a)) => a.action,
            Some(Err(_)) => return Ran::Failed("the stored action does not decode".into()),
        };
        let purpose = TimerPurpose::try_from(i32::from(row.purpose)).unwrap_or_default();
        match action {
            None => self.internal(row, purpose).await,
            Some(timer_action::Action::CreateTask(t)) => self.create_task(row, purpose, t).await,
            Some(timer_action::Action::EscalateCase(e)) => self.escalate(row, e).await,
            Some(timer_action::Action::SendMessage(s)) => {
                let spec = s.message.unwrap_or_default();
                let consent = ConsentPurpose::try_from(spec.purpose).unwrap_or_default();
                match precheck::check(&self.state, row, consent).await {
                    Precheck::Go => self.send(row, spec).await,
                    Precheck::Skip(reason) => Ran::Skipped(reason),
                    Precheck::Retry(e) => Ran::Retry(e),
                }
            }
        }
    }

    /// A task from a CreateTask action. A plan timer's task is a call to the guest (a VIP's,
    /// plan/calls.rs): their consent first. With `notify_role`, that role of the property is
    /// alerted to it (once: the alert's key is the timer's).
    async fn create_task(
        &self,
        row: &TimerRow,
        purpose: TimerPurpose,
        t: pb::CreateTaskAction,
    ) -> Ran {
        if matches!(
            purpose,
            TimerPurpose::SatisfactionContact | TimerPurpose::PostStayFollowUp
        ) {
            match precheck::call(&self.state, row).await {
                Precheck::Go => {}
                Precheck::Skip(reason) => return Ran::Skipped(reason),
                Precheck::Retry(e) => return Ran::Retry(e),
            }
        }
        let task = task_from_action(row, &t);
        if let Ok(role) = StaffRole::try_from(t.notify_role)
            && role != StaffRole::Unspecified
        {
            let alert = Alert {
                key: format!("task-alert:{}", row.idempotency_key()),
                kind: MessageKind::StaffTaskAssigned,
                to: notify::StaffRecipient {
                    property_id: row.property_id.clone(),
                    role: role as i32,
                    ..Default::default()
                },
                urgency: Urgency::try_from(t.urgency)
                    .ok()
                    .filter(|u| *u != Urgency::Unspecified)
                    .unwrap_or(Urgency::Normal),
                case_id: &row.case_id,
                task_id: "",
                variables: vec![
                    ("task_title", task.title.clone()),
                    (
                        "due_time",
                        alerts::local_time(&self.state, &row.property_id, task.due_time),
                    ),
                ],
            };
            if let Sent::Retry(e) = alerts::send(&self.state, alert).await {
                return Ran::Retry(e);
            }
        }
        Ran::Done {
            kind: "create_task",
            message_id: String::new(),
            effect: Effect::CreateTask(Box::new(task)),
        }
    }

    /// Timers the scheduler keeps for itself: clock warnings and deadlines, task due times.
    async fn internal(&self, row: &TimerRow, purpose: TimerPurpose) -> Ran {
        let fired = match purpose {
            TimerPurpose::SlaWarning => clock_fire::warning(&self.state, row).await,
            TimerPurpose::SlaDeadline => clock_fire::deadline(&self.state, row).await,
            TimerPurpose::TaskDue => {
                return match row.task_id {
                    Some(id) => Ran::Done {
                        kind: "task_due",
                        message_id: String::new(),
                        effect: Effect::TaskMissed(id),
                    },
                    None => Ran::Failed("a task timer without a task".into()),
                };
            }
            _ => {
                return Ran::Done {
                    kind: "none",
                    message_id: String::new(),
                    effect: Effect::None,
                };
            }
        };
        match fired {
            Ok(f) => Ran::Done {
                kind: match (&f, purpose) {
                    (Fired::Stale, _) => "clock_stale",
                    (_, TimerPurpose::SlaWarning) => "sla_warning",
                    _ => "sla_breach",
                },
                message_id: f.message_id(),
                effect: Effect::Clock(f),
            },
            Err(Step::Retry(e)) => Ran::Retry(e),
            Err(Step::Failed(e)) => Ran::Failed(e),
        }
    }

    async fn escalate(&self, row: &TimerRow, e: pb::EscalateCaseAction) -> Ran {
        let Some(client) = &self.state.peers.feedback else {
            return Ran::Failed("peers.feedback_intake is not configured".into());
        };
        let mut client = client.clone();
        let call = client.escalate_case(fb::EscalateCaseRequest {
            case_id: e.case_id,
            to_tier: e.to_tier,
            trigger: fb::EscalationTrigger::DeadlineMissed as i32,
            reason: String::new(),
            idempotency_key: row.idempotency_key(),
            clock_id: String::new(),
        });
        match tokio::time::timeout(self.state.timers.action_timeout.as_duration(), call).await {
            Err(_) => Ran::Retry("feedback-intake: timed out".into()),
            Ok(Ok(_)) => Ran::Done {
                kind: "escalate_case",
                message_id: String::new(),
                effect: Effect::None,
            },
            Ok(Err(s)) if alerts::permanent(s.code()) => {
                Ran::Failed(format!("feedback-intake: {:?}", s.code()))
            }
            Ok(Err(s)) => Ran::Retry(format!("feedback-intake: {:?}", s.code())),
        }
    }

    /// A timer missed under LATE_POLICY_ESCALATE: a task for the duty manager to decide,
    /// and an alert to them (outside working hours too: it is their job).
    async fn duty_manager(&self, row: &TimerRow, now: DateTime<Utc>) -> Result<Effect, String> {
        let title = format!(
            "Decide on a missed {} (due {})",
            purpose_label(row.purpose),
            alerts::local_time(&self.state, &row.property_id, row.due_time)
        );
        let alert = Alert {
            key: format!("late:{}", row.idempotency_key()),
            kind: MessageKind::StaffTaskAssigned,
            to: notify::StaffRecipient {
                property_id: row.property_id.clone(),
                role: StaffRole::DutyManager as i32,
                ..Default::default()
            },
            urgency: Urgency::Urgent,
            case_id: &row.case_id,
            task_id: "",
            variables: vec![
                ("task_title", title.clone()),
                (
                    "due_time",
                    alerts::local_time(&self.state, &row.property_id, now),
                ),
            ],
        };
        match alerts::send(&self.state, alert).await {
            Sent::Ok(_) => {}
            Sent::Retry(e) => return Err(e),
        }
        let action = pb::CreateTaskAction {
            kind: pb::TaskKind::Other as i32,
            title,
            instructions: format!("timer key {}", row.key),
            urgency: Urgency::Urgent as i32,
            ..Default::default()
        };
        let mut task = task_from_action(row, &action);
        task.due_time = now;
        Ok(Effect::CreateTask(Box::new(task)))
    }

    async fn send(&self, row: &TimerRow, mut spec: notify::MessageSpec) -> Ran {
        let Some(client) = &self.state.peers.notification else {
            return Ran::Failed("peers.notification is not configured".into());
        };
        if spec.property_id.is_empty() {
            spec.property_id = row.property_id.clone();
        }
        let mut client = client.clone();
        let call = client.send_message(notify::SendMessageRequest {
            idempotency_key: row.idempotency_key(),
            message: Some(spec),
        });
        match tokio::time::timeout(self.state.timers.action_timeout.as_duration(), call).await {
            Err(_) => Ran::Retry("notification: timed out".into()),
            Ok(Ok(resp)) => Ran::Done {
                kind: "send_message",
                message_id: resp
                    .into_inner()
                    .message
                    .map(|m| m.message_id)
                    .unwrap_or_default(),
                effect: Effect::None,
            },
            Ok(Err(status)) => {
                let text = format!("notification: {:?}", status.code());
                if alerts::permanent(status.code()) {
                    Ran::Failed(text)
                } else {
                    Ran::Retry(text)
                }
            }
        }
    }
}

fn purpose_label(purpose: i16) -> &'static str {
    match TimerPurpose::try_from(i32::from(purpose)).unwrap_or_default() {
        TimerPurpose::SatisfactionContact => "satisfaction contact",
        TimerPurpose::SurveyReminder => "survey reminder",
        TimerPurpose::PostStayFollowUp => "post-stay follow-up",
        TimerPurpose::BirthdayCare => "birthday greeting",
        TimerPurpose::AnniversaryCare => "anniversary greeting",
        _ => "scheduled action",
    }
}

/// The task a CreateTask action makes, due `due_after` after the firing (default 24 h).
fn task_from_action(row: &TimerRow, a: &pb::CreateTaskAction) -> TaskRow {
    let now = Utc::now();
    let after = a
        .due_after
        .as_ref()
        .map(|d| chrono::Duration::milliseconds(d.seconds * 1000 + i64::from(d.nanos) / 1_000_000))
        .filter(|d| *d > chrono::Duration::zero())
        .unwrap_or_else(|| chrono::Duration::hours(24));
    TaskRow {
        kind: i16::try_from(a.kind)
            .unwrap_or(pb::TaskKind::Other as i16)
            .max(1),
        property_id: row.property_id.clone(),
        guest_id: row.guest_id.clone(),
        stay_id: row.stay_id.clone(),
        case_id: row.case_id.clone(),
        title: if a.title.trim().is_empty() {
            "Follow up".into()
        } else {
            a.title.clone()
        },
        instructions: a.instructions.clone(),
        department: i16::try_from(a.department).unwrap_or(0),
        assignee_id: a.assignee_id.clone(),
        urgency: i16::try_from(a.urgency).unwrap_or(0),
        due_time: crate::domain::micros(now + after),
        timer_id: Some(row.id),
        ..TaskRow::open(crate::SERVICE_NAME.into(), now)
    }
}

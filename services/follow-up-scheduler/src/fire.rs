//! The firing worker. Every replica may run one: it claims due timers with
//! `FOR UPDATE SKIP LOCKED` and a lease (store::timers::claim_due), so no two replicas run a
//! timer at once; a replica that dies mid-job loses its lease when lease_until passes and
//! another replica takes the timer. Every write is guarded by the lease, and the action
//! carries the idempotency key `timer:<timer_id>:<generation>`, so a retry after a lost
//! lease has its effect once.
//!
//! Per claimed timer: lateness = now − due_time; beyond its late_threshold the late policy
//! applies: SKIP → SKIPPED ("late"); FIRE → runs, marked late; ESCALATE → does not run
//! either (the proto: a person decides): SKIPPED with reason "late: for the duty manager" and
//! `scheduler_timers_late_total{decision="escalate"}` counted. The alert to the duty manager
//! itself is not sent yet (notification wiring comes with the SLA ladder).
//!
//! Actions really executed: SendMessage (notification's SendMessage through
//! `peers.notification`, idempotency key as above; FAILED when no peer is configured or
//! notification refuses it permanently, retried after `retry_delay` otherwise). CreateTask
//! and EscalateCase, and timers without an action, are only recorded as fired (a row in
//! timer_firings) until tasks and the feedback-intake wiring arrive.

use crate::domain::{LateDecision, late_decision};
use crate::state::State;
use crate::store::timers::{self as store, Finish, TimerRow};
use chrono::Utc;
use guestloop_client::NotificationClient;
use guestloop_proto::followup::v1::{LatePolicy, TimerAction, timer_action};
use guestloop_proto::notification::v1 as notify;
use prost::Message;
use std::sync::Arc;
use tokio::sync::watch;
use tonic::Code;

#[derive(Debug)]
pub struct Worker {
    state: Arc<State>,
    notification: Option<NotificationClient>,
    owner: String,
}

/// What running the action came to.
enum Ran {
    Done {
        kind: &'static str,
        message_id: String,
    },
    Retry(String),
    Failed(String),
}

impl Worker {
    pub fn new(state: Arc<State>, notification: Option<NotificationClient>) -> Self {
        if notification.is_none() {
            tracing::warn!("peers.notification is not set: SendMessage timers will fail");
        }
        Self {
            state,
            notification,
            owner: format!("timer-worker-{}", uuid::Uuid::now_v7()),
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let poll = self.state.timers.poll_interval.as_duration();
        loop {
            if *stop.borrow() {
                break;
            }
            let full = match self.tick().await {
                Ok(n) => n as i64 >= self.state.timers.batch_size,
                Err(e) => {
                    tracing::warn!(error = %e, "timer worker: claiming failed");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Claims and processes one batch, concurrently; returns how many were claimed.
    pub async fn tick(&self) -> Result<usize, sqlx::Error> {
        let t = &self.state.timers;
        if let Ok(n) = store::backlog(&self.state.pool).await {
            metrics::gauge!("scheduler_timers_backlog").set(n as f64);
        }
        let rows = store::claim_due(
            &self.state.pool,
            &self.owner,
            t.lease.as_duration().as_secs_f64(),
            t.batch_size,
        )
        .await?;
        let n = rows.len();
        futures::future::join_all(rows.into_iter().map(|row| async move {
            let id = row.id;
            let property = row.property_id.clone();
            if let Err(e) = self.process(row).await {
                tracing::warn!(timer_id = %id, property_id = %property, error = %e,
                    "timer worker: processing failed");
            }
        }))
        .await;
        Ok(n)
    }

    async fn process(&self, row: TimerRow) -> Result<(), sqlx::Error> {
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
            let f = Finish {
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
            let mut tx = self.state.pool.begin().await?;
            if store::finish(&mut tx, &row, &self.owner, &f).await? {
                tx.commit().await?;
                metrics::counter!("scheduler_timers_skipped_total").increment(1);
                record_lag(&row, now);
            }
            return Ok(());
        }
        let ran = self.execute(&row).await;
        let fire_time = Utc::now();
        let (state, kind, message_id, error) = match ran {
            Ran::Done { kind, message_id } => (store::FIRED, kind, message_id, String::new()),
            Ran::Failed(e) => (store::FAILED, "", String::new(), e),
            Ran::Retry(e) if row.attempt_count >= self.state.timers.max_attempts => {
                (store::FAILED, "", String::new(), e)
            }
            Ran::Retry(e) => {
                let retry_at = fire_time
                    + chrono::Duration::from_std(self.state.timers.retry_delay.as_duration())
                        .unwrap_or_else(|_| chrono::Duration::seconds(30));
                return store::retry_later(&self.state.pool, &row, &self.owner, retry_at, &e).await;
            }
        };
        let f = Finish {
            state,
            fire_time,
            late,
            late_decision,
            skip_reason: "",
            last_error: error,
            message_id,
        };
        let mut tx = self.state.pool.begin().await?;
        if state == store::FIRED {
            store::record_firing(&mut tx, &row, kind, &self.owner, fire_time).await?;
        }
        if !store::finish(&mut tx, &row, &self.owner, &f).await? {
            // The lease ran out meanwhile and another worker has the timer: nothing written
            // here; the action's idempotency key keeps its effect single.
            tracing::warn!(timer_id = %row.id, "timer worker: lease lost before finishing");
            return Ok(());
        }
        tx.commit().await?;
        if state == store::FIRED {
            metrics::counter!("scheduler_timers_fired_total", "action" => kind).increment(1);
        } else {
            metrics::counter!("scheduler_timers_failed_total").increment(1);
            tracing::warn!(timer_id = %row.id, property_id = %row.property_id,
                "timer failed permanently");
        }
        record_lag(&row, fire_time);
        Ok(())
    }

    async fn execute(&self, row: &TimerRow) -> Ran {
        let action = match row.action.as_deref().map(TimerAction::decode) {
            None => None,
            Some(Ok(a)) => a.action,
            Some(Err(_)) => return Ran::Failed("the stored action does not decode".into()),
        };
        match action {
            None => Ran::Done {
                kind: "none",
                message_id: String::new(),
            },
            Some(timer_action::Action::CreateTask(_)) => Ran::Done {
                kind: "create_task_recorded",
                message_id: String::new(),
            },
            Some(timer_action::Action::EscalateCase(_)) => Ran::Done {
                kind: "escalate_case_recorded",
                message_id: String::new(),
            },
            Some(timer_action::Action::SendMessage(s)) => self.send(row, s.message).await,
        }
    }

    async fn send(&self, row: &TimerRow, message: Option<notify::MessageSpec>) -> Ran {
        let Some(client) = &self.notification else {
            return Ran::Failed("peers.notification is not configured".into());
        };
        let mut spec = message.unwrap_or_default();
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
            },
            Ok(Err(status)) => {
                let text = format!("notification: {:?}", status.code());
                match status.code() {
                    Code::InvalidArgument
                    | Code::NotFound
                    | Code::PermissionDenied
                    | Code::FailedPrecondition
                    | Code::Unauthenticated
                    | Code::Unimplemented => Ran::Failed(text),
                    _ => Ran::Retry(text),
                }
            }
        }
    }
}

fn record_lag(row: &TimerRow, fired: chrono::DateTime<Utc>) {
    let lag = (fired - row.due_time).as_seconds_f64().max(0.0);
    metrics::histogram!("scheduler_timer_lag_seconds").record(lag);
}

//! Writing what the firing worker decided for a claimed batch. The whole batch finishes in
//! one transaction: one lease-guarded UPDATE of every timer, then each still-owned timer's
//! own effect, then the deadline notices and the firing records (one statement each), and
//! one commit —
//! instead of a commit per timer, which bounded firing at the database's commit rate.
//! Timers whose lease was lost meanwhile are left to the worker that holds them (the
//! action's idempotency key keeps its effect single). If the batch's transaction fails,
//! each timer is written alone, so one bad effect does not hold the others back.

use crate::clocks::fire::Fired;
use crate::state::State;
use crate::store::tasks::TaskRow;
use crate::store::timers::{self as store, Finish, TimerRow};
use chrono::{DateTime, Utc};
use guestloop_db::batch::Lease;
use sqlx::PgConnection;
use std::collections::HashSet;

/// What a firing changes in this service's own tables, written with its finish.
pub enum Effect {
    None,
    Clock(Fired),
    CreateTask(Box<TaskRow>),
    TaskMissed(uuid::Uuid),
}

/// One claimed timer's decided end: how it finishes, what it changes.
pub struct Outcome {
    pub row: TimerRow,
    pub finish: Finish,
    /// The action kind in the firing record (FIRED timers only).
    pub kind: &'static str,
    pub effect: Effect,
}

/// Writes every outcome (the batch at once, else one by one) and counts what was written.
pub async fn write(state: &State, lease: &mut Lease, owner: &str, outcomes: Vec<Outcome>) {
    if outcomes.is_empty() {
        return;
    }
    match write_retrying(state, lease, owner, &outcomes).await {
        Ok(kept) => done(&outcomes, &kept),
        Err(e) if outcomes.len() > 1 => {
            tracing::warn!(error = %e, timers = outcomes.len(),
                "timer worker: the batch did not commit; finishing its timers one by one");
            for o in outcomes {
                let one = std::slice::from_ref(&o);
                match write_retrying(state, lease, owner, one).await {
                    Ok(kept) => done(one, &kept),
                    Err(e) => tracing::warn!(timer_id = %o.row.id,
                        property_id = %o.row.property_id, error = %e,
                        "timer worker: finishing failed"),
                }
            }
        }
        Err(e) => tracing::warn!(timer_id = %outcomes[0].row.id, error = %e,
            "timer worker: finishing failed"),
    }
}

/// One transaction for `outcomes`; returns the ids it finished.
/// [`write_batch`], again at once when PostgreSQL aborted it to break a deadlock or a
/// serialization conflict (a case event applied at the same moment locks the same case's
/// rows). Nothing of an aborted attempt was written; without the retry the timer waited
/// out its lease and fired again (seen in CI: an escalation hop 40 s late).
async fn write_retrying(
    state: &State,
    lease: &mut Lease,
    owner: &str,
    outcomes: &[Outcome],
) -> Result<HashSet<uuid::Uuid>, sqlx::Error> {
    const ATTEMPTS: usize = 3;
    let mut attempt = 1;
    loop {
        let written = match lease.conn().await {
            Ok(conn) => write_batch(conn, state, owner, outcomes).await,
            Err(e) => Err(e),
        };
        if written.is_err() {
            // The connection may be what failed: the pool tests it on return.
            lease.release();
        }
        match written {
            Err(sqlx::Error::Database(e))
                if attempt < ATTEMPTS && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
            {
                tracing::info!(error = %e, attempt, "timer worker: finishing retried");
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn write_batch(
    conn: &mut PgConnection,
    state: &State,
    owner: &str,
    outcomes: &[Outcome],
) -> Result<HashSet<uuid::Uuid>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let pairs: Vec<(&TimerRow, &Finish)> = outcomes.iter().map(|o| (&o.row, &o.finish)).collect();
    let kept: HashSet<uuid::Uuid> = store::finish_many(&mut tx, owner, &pairs)
        .await?
        .into_iter()
        .collect();
    let mut fired = Vec::new();
    let mut moved_on = Vec::new();
    for o in outcomes.iter().filter(|o| kept.contains(&o.row.id)) {
        write_effect(&mut tx, state, o, o.finish.fire_time).await?;
        // Plan timers tell the deadline watches they moved on.
        if matches!(o.row.purpose, 1..=3) {
            moved_on.push((o.row.property_id.as_str(), o.row.id));
        }
        if o.finish.state == store::FIRED {
            fired.push((&o.row, o.kind, o.finish.fire_time));
        }
    }
    crate::store::timers_changed(&mut tx, &moved_on).await?;
    store::record_firings(&mut tx, &fired, owner).await?;
    tx.commit().await?;
    Ok(kept)
}

async fn write_effect(
    conn: &mut PgConnection,
    state: &State,
    o: &Outcome,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    match &o.effect {
        Effect::None => Ok(()),
        Effect::Clock(f) => f.write(conn, state).await,
        Effect::TaskMissed(id) => crate::tasks::miss(conn, *id, now).await,
        Effect::CreateTask(task) => {
            let key = o.row.idempotency_key();
            crate::tasks::create(conn, state, task, Some(&key)).await?;
            Ok(())
        }
    }
}

/// Counters and lag of what committed; a warning for each lease lost before finishing.
fn done(outcomes: &[Outcome], kept: &HashSet<uuid::Uuid>) {
    for o in outcomes {
        if !kept.contains(&o.row.id) {
            tracing::warn!(timer_id = %o.row.id, "timer worker: lease lost before finishing");
            continue;
        }
        match o.finish.state {
            store::FIRED => {
                metrics::counter!("scheduler_timers_fired_total", "action" => o.kind).increment(1)
            }
            store::SKIPPED => metrics::counter!("scheduler_timers_skipped_total").increment(1),
            _ => {
                metrics::counter!("scheduler_timers_failed_total").increment(1);
                tracing::warn!(timer_id = %o.row.id, property_id = %o.row.property_id,
                    "timer failed permanently");
            }
        }
        let lag = (o.finish.fire_time - o.row.due_time)
            .as_seconds_f64()
            .max(0.0);
        metrics::histogram!("scheduler_timer_lag_seconds").record(lag);
    }
}

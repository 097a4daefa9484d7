//! WatchDeadlines: a property's upcoming deadlines, live. The watch subscribes to the
//! process's deadline feed (one listening connection for all watches; writers notify at
//! commit) before it reads the snapshot, so no change falls between the two. Each change
//! is read back and compared with what the watcher last sent, which says whether it was
//! added, updated, warned, breached or removed. A resume token is accepted but a resumed
//! watch starts with a fresh snapshot (the proto allows it: "or resumed from a token too
//! old").

use super::clocks::{clock, stay_clock};
use super::tasks::task;
use crate::domain::{micros, to_timestamp};
use crate::error::{Result, SchedulerError, invalid};
use crate::state::{Caller, State};
use crate::store::clocks as clocks_store;
use crate::store::tasks as tasks_store;
use crate::store::timers as timers_store;
use chrono::{DateTime, Duration, Utc};
use guestloop_proto::followup::v1::watch_deadlines_response::Deadline;
use guestloop_proto::followup::v1::{self as pb, ClockKind, ClockState, DeadlineChange};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::Status;

pub type DeadlineStream = tonic::codegen::BoxStream<pb::WatchDeadlinesResponse>;

const SNAPSHOT_LIMIT: i64 = 2000;

/// What the watcher last sent about one deadline.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    state: i32,
    warned: bool,
}

struct Watch {
    property: String,
    horizon: Duration,
    kinds: Vec<i32>,
    include_tasks: bool,
}

impl Watch {
    fn wants(&self, kind: i32) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
    fn until(&self) -> DateTime<Utc> {
        Utc::now() + self.horizon
    }
}

fn open_clock(c: &pb::Clock) -> bool {
    matches!(
        ClockState::try_from(c.state).unwrap_or_default(),
        ClockState::Running | ClockState::Paused
    )
}

fn due(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    t.as_ref()
        .and_then(|t| crate::domain::timestamp(t).ok())
        .unwrap_or_else(Utc::now)
}

pub async fn start(
    state: Arc<State>,
    caller: Caller,
    req: pb::WatchDeadlinesRequest,
) -> Result<DeadlineStream> {
    let property = guestloop_errors::parse::required_text(&req.property_id, 100)
        .map_err(|e| invalid("property_id", e))?;
    if state.chain.property(&property).is_none() || !caller.sees(&state, &property) {
        return Err(SchedulerError::NotFound("property"));
    }
    let horizon = match &req.horizon {
        None => Duration::hours(24),
        Some(d) if d.seconds <= 0 || d.seconds > 31 * 86_400 => {
            return Err(invalid("horizon", "must be between 1 second and 31 days"));
        }
        Some(d) => Duration::seconds(d.seconds),
    };
    for (i, k) in req.kinds.iter().enumerate() {
        if matches!(ClockKind::try_from(*k), Ok(ClockKind::Unspecified) | Err(_)) {
            return Err(invalid(
                &format!("kinds[{i}]"),
                format!("{k} is not a clock kind"),
            ));
        }
    }
    let watch = Watch {
        property,
        horizon,
        kinds: req.kinds,
        include_tasks: req.include_tasks,
    };
    // Subscribed before the snapshot is read, so no change falls between the two.
    let mut feed = state.deadline_feed.subscribe(&state.pool).await?;
    let until = watch.until();
    let mut snapshot: Vec<Deadline> = Vec::new();
    for c in clocks_store::due_within(&state.pool, &watch.property, until, SNAPSHOT_LIMIT).await? {
        snapshot.push(Deadline::Clock(clock(&c, Vec::new())));
    }
    let filter = timers_store::Filter {
        property_id: Some(watch.property.clone()),
        states: vec![timers_store::PENDING, timers_store::RUNNING],
        purposes: vec![1, 2, 3],
        due_until: Some(until),
        ..Default::default()
    };
    for t in timers_store::list(&state.pool, &filter, None, SNAPSHOT_LIMIT).await? {
        if let Some(c) = stay_clock(&t) {
            snapshot.push(Deadline::Clock(c));
        }
    }
    if watch.include_tasks {
        for t in tasks_store::open_due_within(&state.pool, &watch.property, until, SNAPSHOT_LIMIT)
            .await?
        {
            snapshot.push(Deadline::Task(task(&t)));
        }
    }
    snapshot.retain(|d| match d {
        Deadline::Clock(c) => watch.wants(c.kind),
        Deadline::Task(_) => true,
    });
    snapshot.sort_by_key(|d| match d {
        Deadline::Clock(c) => due(&c.due_time),
        Deadline::Task(t) => due(&t.due_time),
    });

    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut seq: u64 = 0;
        let mut send = |change: DeadlineChange, deadline: Option<Deadline>| {
            seq += 1;
            Ok(pb::WatchDeadlinesResponse {
                change: change as i32,
                deadline,
                change_time: Some(to_timestamp(micros(Utc::now()))),
                resume_token: seq.to_string(),
            })
        };
        let mut seen: HashMap<String, Seen> = HashMap::new();
        for d in snapshot {
            let (id, s) = identity(&d);
            seen.insert(id, s);
            if tx
                .send(send(DeadlineChange::Snapshot, Some(d)))
                .await
                .is_err()
            {
                return;
            }
        }
        if tx
            .send(send(DeadlineChange::SnapshotComplete, None))
            .await
            .is_err()
        {
            return;
        }
        let lost = |why: &str| Err(Status::unavailable(format!("{why}; watch again")));
        loop {
            let payload = tokio::select! {
                n = feed.recv() => n,
                () = tx.closed() => return,
            };
            let payload = match payload {
                Ok(p) => p,
                Err(RecvError::Lagged(_)) => {
                    let _ = tx.send(lost("fell behind the deadline feed")).await;
                    return;
                }
                Err(RecvError::Closed) => {
                    let _ = tx.send(lost("lost the deadline feed")).await;
                    return;
                }
            };
            let mut parts = payload.splitn(3, ' ');
            let (Some(p), Some(what), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if p != watch.property {
                continue;
            }
            let Ok(id) = uuid::Uuid::parse_str(id) else {
                continue;
            };
            let read = match what {
                "clock" => clocks_store::by_id(&state.pool, id)
                    .await
                    .map(|c| c.map(|c| Deadline::Clock(clock(&c, Vec::new())))),
                "timer" => timers_store::by_id(&state.pool, id)
                    .await
                    .map(|t| t.as_ref().and_then(stay_clock).map(Deadline::Clock)),
                "task" if watch.include_tasks => tasks_store::get(&state.pool, id)
                    .await
                    .map(|t| t.map(|t| Deadline::Task(task(&t)))),
                _ => continue,
            };
            // A change that cannot be read is not skipped silently: the watch ends.
            let d = match read {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(_) => {
                    let _ = tx.send(lost("could not read a changed deadline")).await;
                    return;
                }
            };
            let (key, now_seen) = identity(&d);
            let (open, kind_ok, due_at) = match &d {
                Deadline::Clock(c) => (open_clock(c), watch.wants(c.kind), due(&c.due_time)),
                Deadline::Task(t) => (
                    t.status == pb::TaskStatus::Open as i32,
                    true,
                    due(&t.due_time),
                ),
            };
            if !kind_ok {
                continue;
            }
            let inside = open && due_at < watch.until();
            let before = seen.get(&key).cloned();
            // A breach is news once: when it happens, not when the breached clock stops.
            let breached = now_seen.state == ClockState::Breached as i32
                && matches!(&d, Deadline::Clock(c) if c.stop_time.is_none());
            let change = match (&before, inside) {
                (None, true) => DeadlineChange::Added,
                (None, false) if breached => DeadlineChange::Breached,
                (None, false) => continue,
                (Some(b), _) if breached && b.state != now_seen.state => DeadlineChange::Breached,
                (Some(b), true) if now_seen.warned && !b.warned => DeadlineChange::Warned,
                (Some(_), true) => DeadlineChange::Updated,
                (Some(_), false) => DeadlineChange::Removed,
            };
            if inside {
                seen.insert(key, now_seen);
            } else {
                seen.remove(&key);
            }
            if tx.send(send(change, Some(d))).await.is_err() {
                return;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

fn identity(d: &Deadline) -> (String, Seen) {
    match d {
        Deadline::Clock(c) => (
            c.clock_id.clone(),
            Seen {
                state: c.state,
                warned: c.warned,
            },
        ),
        Deadline::Task(t) => (
            t.task_id.clone(),
            Seen {
                state: t.status,
                warned: false,
            },
        ),
    }
}

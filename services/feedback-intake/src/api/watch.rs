//! WatchCaseQueue: a property's case queue, live. The watcher subscribes to the process's
//! case feed (change notifications sent at commit by every case change, one listening
//! connection for all watches) before it reads the snapshot, so no change falls between the
//! two; then it streams each change that touches its filter.

use super::filters;
use crate::convert;
use crate::error::{FeedbackError, Result, invalid};
use crate::state::{Caller, State};
use crate::store::cases::{self as store, CaseRow, Order};
use guestloop_proto::feedback::v1 as pb;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

pub type CaseQueueStream =
    Pin<Box<dyn Stream<Item = std::result::Result<pb::WatchCaseQueueResponse, Status>> + Send>>;

/// Most cases a snapshot sends; a queue larger than this is a problem of its own.
const SNAPSHOT_LIMIT: i64 = 2000;

pub async fn start(
    state: Arc<State>,
    caller: Caller,
    req: pb::WatchCaseQueueRequest,
) -> Result<CaseQueueStream> {
    let property = guestloop_errors::parse::required_text(&req.property_id, 64)
        .map_err(|e| invalid("property_id", e))?;
    if state.chain.property(&property).is_none() || !caller.sees(&state, &property) {
        return Err(FeedbackError::NotFound("property"));
    }
    let mut filter = req.filter.unwrap_or_default();
    filter.property_ids = vec![property.clone()];
    filter.region_id.clear();
    let mut f = filters::case(&state, &caller, &filter)?;
    if f.statuses.is_empty() {
        f.statuses = [1, 2, 3, 4, 5, 7].to_vec();
    }
    // Subscribed before the snapshot is read, so no change falls between the two.
    let mut feed = state.case_feed.subscribe(&state.pool).await?;
    let snapshot = store::list(&state.pool, &f, Order::OpenTimeAsc, SNAPSHOT_LIMIT, 0).await?;

    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let send = |change: pb::CaseQueueChange, case: Option<pb::Case>| {
            let now = chrono::Utc::now();
            Ok(pb::WatchCaseQueueResponse {
                change: change as i32,
                resume_token: case
                    .as_ref()
                    .map(|c| format!("{}:{}", c.case_id, c.version))
                    .unwrap_or_default(),
                case,
                change_time: Some(convert::ts(now)),
            })
        };
        let mut members = HashSet::new();
        for c in &snapshot {
            members.insert(c.id);
            let msg = message(&state, c).await;
            if tx
                .send(send(pb::CaseQueueChange::Snapshot, msg))
                .await
                .is_err()
            {
                return;
            }
        }
        if tx
            .send(send(pb::CaseQueueChange::SnapshotComplete, None))
            .await
            .is_err()
        {
            return;
        }
        let lost = |why: &str| Err(Status::unavailable(format!("{why}; watch again")));
        loop {
            let notification = tokio::select! {
                n = feed.recv() => n,
                () = tx.closed() => return,
            };
            let payload = match notification {
                Ok(p) => p,
                Err(RecvError::Lagged(_)) => {
                    let _ = tx.send(lost("fell behind the change feed")).await;
                    return;
                }
                Err(RecvError::Closed) => {
                    let _ = tx.send(lost("lost the change feed")).await;
                    return;
                }
            };
            let Some((p, id)) = payload.split_once(' ') else {
                continue;
            };
            if p != property {
                continue;
            }
            // A change that cannot be read is not skipped silently: the watch ends.
            let case = match store::get(&state.pool, id, false).await {
                Ok(Some(case)) => case,
                Ok(None) => continue,
                Err(_) => {
                    let _ = tx.send(lost("could not read a changed case")).await;
                    return;
                }
            };
            let inside = matches(&f, &case);
            let was = members.contains(&case.id);
            let change = match (was, inside) {
                (false, true) => pb::CaseQueueChange::Added,
                (true, true) => pb::CaseQueueChange::Updated,
                (true, false) => pb::CaseQueueChange::Removed,
                (false, false) => continue,
            };
            if inside {
                members.insert(case.id);
            } else {
                members.remove(&case.id);
            }
            let msg = message(&state, &case).await;
            if tx.send(send(change, msg)).await.is_err() {
                return;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

async fn message(state: &State, c: &CaseRow) -> Option<pb::Case> {
    let ids = crate::store::feedback::ids_of_case(&state.pool, c.id)
        .await
        .ok()?;
    Some(convert::case(c, &ids))
}

/// Whether a case is inside the watch's filter (the filter fields a queue uses).
fn matches(f: &store::Filter, c: &CaseRow) -> bool {
    let any = |set: &[i16], v: i16| set.is_empty() || set.contains(&v);
    any(&f.statuses, c.status)
        && any(&f.categories, c.category)
        && any(&f.channels, c.channel)
        && any(&f.grades, c.risk_grade)
        && any(&f.urgencies, c.urgency)
        && any(&f.departments, c.department)
        && any(&f.tiers, c.escalation_tier)
        && f.assignee_id
            .as_ref()
            .is_none_or(|a| c.assignee_id.as_ref() == Some(a))
        && (!f.unassigned || c.assignee_id.is_none())
        && f.repeat.is_none_or(|r| c.repeat == r)
        && f.incident_id.is_none_or(|i| c.incident_id == Some(i))
        && f.guest_id.is_none_or(|g| c.guest_id == Some(g))
}

//! The care plan of a stay, written in the event's transaction: a booking creates its
//! pre-arrival tasks once (a redelivered booking finds the plan), a booking again (the
//! guest's tier or care facts changed before arrival) re-plans them, a moved arrival
//! re-times them, a cancellation cancels them, an erased guest's plans go. Each
//! plan remembers the stay event that last changed it (`version`, the event's sequence), so
//! an older event changes nothing.
//!
//! A task is never edited in place: moving one cancels it (reason `stay_changed`) and
//! creates its successor due at the new time, so metrics' completion rate, which counts a
//! task on its due day, stays right.

use super::{Booking, Prep};
use crate::state::State;
use crate::store::care::{self as store, ACTIVE, CANCELLED, PlanRow};
use crate::store::tasks::{OPEN, TaskRow};
use crate::store::{guests, tasks as task_store};
use crate::tasks;
use chrono::{DateTime, NaiveDate, Utc};
use guestloop_proto::common::v1::{Department, Urgency};
use guestloop_proto::followup::v1::TaskKind;
use sqlx::PgConnection;

/// A stay was booked (event `version`): its pre-arrival tasks, if the guest is cared for.
/// Returns how many tasks were created.
pub async fn booked(
    conn: &mut PgConnection,
    state: &State,
    mut b: Booking,
    version: i64,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    if !state.care.enabled {
        return Ok(0);
    }
    // A booking of a merged-away profile is the survivor's; an erased guest gets nothing
    // (the event may arrive after the erasure: stays and guests are separate streams).
    let survivor = guests::survivor(conn, &b.guest_id).await?;
    if guests::any_erased(conn, &[&b.guest_id, &survivor]).await? {
        return Ok(0);
    }
    b.guest_id = survivor;
    let plan = store::lock(conn, &b.stay_id).await?;
    match &plan {
        Some(p) if p.version >= version => return Ok(0),
        // Booked again while planned: the guest's tier or care facts changed before
        // arrival (guest-profile books the coming stays again), or the arrival moved.
        Some(p) if p.state == ACTIVE => {
            return replanned(conn, state, p.clone(), &b, version, now).await;
        }
        _ => {}
    }
    let planned = super::plan(&b, &state.care, &state.chain, now);
    if planned.is_empty() {
        return Ok(0);
    }
    for p in &planned {
        let row = task(&b, p.due, &p.title, &p.instructions, now);
        let key = store::task_key(&b.stay_id, p.prep.name(), version);
        tasks::create(conn, state, &row, Some(&key)).await?;
    }
    store::save(
        conn,
        &PlanRow {
            stay_id: b.stay_id.clone(),
            property_id: b.property_id.clone(),
            arrival_date: b.arrival,
            version,
            state: ACTIVE,
        },
    )
    .await?;
    tracing::info!(stay_id = %b.stay_id, property_id = %b.property_id, tasks = planned.len(),
        "pre-arrival care planned");
    Ok(planned.len())
}

/// A stay changed (event `version`) while still to come: a moved arrival re-times its
/// open care tasks.
pub async fn changed(
    conn: &mut PgConnection,
    state: &State,
    stay_id: &str,
    arrival: NaiveDate,
    version: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    match store::lock(conn, stay_id).await? {
        Some(p) if p.state == ACTIVE && p.version < version => {
            moved(conn, state, p, arrival, version, now).await
        }
        _ => Ok(()),
    }
}

/// A stay was cancelled (event `version`): its open care tasks are cancelled.
pub async fn cancelled(
    conn: &mut PgConnection,
    stay_id: &str,
    version: i64,
) -> Result<u64, sqlx::Error> {
    let Some(mut p) = store::lock(conn, stay_id).await? else {
        return Ok(0);
    };
    if p.state != ACTIVE || p.version >= version {
        return Ok(0);
    }
    let mut n = 0;
    for (_, t) in task_store::lock_open_care_of_stay(conn, stay_id).await? {
        tasks::cancel(conn, t, "stay_cancelled".into()).await?;
        n += 1;
    }
    p.state = CANCELLED;
    p.version = version;
    store::save(conn, &p).await?;
    Ok(n)
}

/// An erased guest: their plans go (their tasks are cancelled and blanked by tasks.rs).
pub async fn erased(conn: &mut PgConnection, guest_id: &str) -> Result<(), sqlx::Error> {
    store::forget_guest(conn, guest_id).await.map(|_| ())
}

/// The plan's open tasks due for `arrival`: each whose due time changes is cancelled and
/// succeeded by a copy keyed with `version`; once the guest is due, they are only cancelled.
async fn moved(
    conn: &mut PgConnection,
    state: &State,
    mut p: PlanRow,
    arrival: NaiveDate,
    version: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if p.arrival_date != arrival {
        let at = super::arrival_at(
            &state.chain,
            &p.property_id,
            arrival,
            state.care.arrival_time,
        );
        for (key, t) in task_store::lock_open_care_of_stay(conn, &p.stay_id).await? {
            let Some(prep) = store::task_of_key(&key).and_then(Prep::from_name) else {
                continue;
            };
            let due = at.and_then(|at| super::due(at, prep.lead(&state.care), now));
            if due == Some(t.due_time) {
                continue;
            }
            let old = tasks::cancel(conn, t, "stay_changed".into()).await?;
            if let Some(due) = due {
                let mut next = old.clone();
                next.id = uuid::Uuid::now_v7();
                next.status = OPEN;
                next.due_time = due;
                next.create_time = now;
                next.update_time = now;
                let key = store::task_key(&p.stay_id, prep.name(), version);
                tasks::create(conn, state, &next, Some(&key)).await?;
            }
        }
        tracing::info!(stay_id = %p.stay_id, property_id = %p.property_id,
            "pre-arrival care re-timed to a moved arrival");
    }
    p.arrival_date = arrival;
    p.version = version;
    store::save(conn, &p).await
}

/// The plan's tasks brought to what `b` asks for now: an open task no longer asked for is
/// cancelled (`care_changed`), one whose due time or instructions differ is cancelled and
/// succeeded, a task newly asked for is created; one already completed or missed is not
/// asked again. Returns how many tasks were created.
async fn replanned(
    conn: &mut PgConnection,
    state: &State,
    mut p: PlanRow,
    b: &Booking,
    version: i64,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let planned = super::plan(b, &state.care, &state.chain, now);
    let open = task_store::lock_open_care_of_stay(conn, &p.stay_id).await?;
    let done: Vec<Prep> = task_store::done_care_keys_of_stay(conn, &p.stay_id)
        .await?
        .iter()
        .filter_map(|k| store::task_of_key(k).and_then(Prep::from_name))
        .collect();
    let mut kept = Vec::new();
    for (key, t) in open {
        let Some(prep) = store::task_of_key(&key).and_then(Prep::from_name) else {
            continue;
        };
        // A task already due stays as it is when the new plan wants it now too.
        let now_due = crate::domain::micros(now);
        let same = planned.iter().any(|x| {
            x.prep == prep
                && x.instructions == t.instructions
                && (x.due == t.due_time || (x.due == now_due && t.due_time <= now_due))
        });
        if same {
            kept.push(prep);
        } else {
            tasks::cancel(conn, t, "care_changed".into()).await?;
        }
    }
    let mut created = 0;
    for x in planned
        .iter()
        .filter(|x| !kept.contains(&x.prep) && !done.contains(&x.prep))
    {
        let row = task(b, x.due, &x.title, &x.instructions, now);
        let key = store::task_key(&p.stay_id, x.prep.name(), version);
        tasks::create(conn, state, &row, Some(&key)).await?;
        created += 1;
    }
    p.arrival_date = b.arrival;
    p.version = version;
    store::save(conn, &p).await?;
    tracing::info!(stay_id = %p.stay_id, property_id = %p.property_id, created,
        "pre-arrival care re-planned");
    Ok(created)
}

/// A new pre-arrival task for the property.
fn task(
    b: &Booking,
    due: DateTime<Utc>,
    title: &str,
    instructions: &str,
    now: DateTime<Utc>,
) -> TaskRow {
    TaskRow {
        kind: TaskKind::VipCare as i16,
        property_id: b.property_id.clone(),
        guest_id: b.guest_id.clone(),
        stay_id: b.stay_id.clone(),
        title: title.to_string(),
        instructions: instructions.to_string(),
        department: Department::FrontOffice as i16,
        urgency: Urgency::Normal as i16,
        due_time: due,
        ..TaskRow::open(crate::SERVICE_NAME.into(), now)
    }
}

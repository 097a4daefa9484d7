//! Overdue items reach the general manager through the scheduler: while an item is worked
//! (PLAN, DO, CHECK) with a due time, a durable scheduler timer `improvement/<id>/overdue`
//! is armed for that time, whose action sends STAFF_IMPROVEMENT_OVERDUE to the property's
//! general manager (a regional item: the region's regional manager); checked, closed or
//! dismissed, the timer is cancelled. The scheduler fires it once across its replicas and
//! notification sends it once per key.
//!
//! Every change to an item clears `timer_synced` in the same transaction; this job (woken at
//! once after a change, and every `timer_sync_interval`) brings the timer in step, holding
//! the item FOR UPDATE SKIP LOCKED so replicas do not both, and sets the flag again only once
//! the scheduler answered: a scheduler that is down delays the timer, it never loses it.

use super::store::{COLUMNS, ItemRow};
use super::watched;
use crate::state::State;
use guestloop_proto::followup::v1 as fu;
use guestloop_proto::metrics::v1::{ImprovementState as S, ScopeLevel};
use guestloop_proto::notification::v1 as notify;
use guestloop_proto::time::to_timestamp as ts;
use std::sync::Arc;
use tokio::sync::watch;

pub fn timer_key(item: &uuid::Uuid) -> String {
    format!("improvement/{item}/overdue")
}

pub async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let every = state.improvement.timer_sync_interval.as_duration();
    loop {
        if let Err(e) = tick(&state).await {
            tracing::warn!(error = %e, "improvement timers not synced; retried");
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = state.improvement_timers.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Brings up to 50 items' timers in step; returns how many the scheduler confirmed.
pub async fn tick(state: &State) -> Result<usize, sqlx::Error> {
    let Some(client) = &state.follow_up else {
        return Ok(0);
    };
    let mut tx = state.pool.begin().await?;
    let rows: Vec<ItemRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM improvement_items WHERE NOT timer_synced
         ORDER BY update_time LIMIT 50 FOR UPDATE SKIP LOCKED"
    )))
    .fetch_all(&mut *tx)
    .await?;
    let mut synced = 0;
    for row in &rows {
        let st = S::try_from(i32::from(row.state)).unwrap_or_default();
        let key = timer_key(&row.id);
        let answer = match (watched(st), row.due_time) {
            (true, Some(due)) => client
                .clone()
                .schedule_timer(fu::ScheduleTimerRequest {
                    timer: Some(timer(state, row, &key, due)),
                })
                .await
                .map(|_| ()),
            _ => client
                .clone()
                .cancel_timer(fu::CancelTimerRequest {
                    key: key.clone(),
                    reason: format!("improvement item {}", st.as_str_name()),
                })
                .await
                .map(|_| ()),
        };
        match answer {
            Ok(()) => {
                sqlx::query("UPDATE improvement_items SET timer_synced = true WHERE id = $1")
                    .bind(row.id)
                    .execute(&mut *tx)
                    .await?;
                synced += 1;
            }
            Err(s) => {
                sqlx::query(
                    "UPDATE improvement_items SET timer_attempts = timer_attempts + 1 WHERE id = $1",
                )
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
                tracing::warn!(item_id = %row.id, code = ?s.code(), "improvement timer not synced");
            }
        }
    }
    tx.commit().await?;
    Ok(synced)
}

fn timer(state: &State, row: &ItemRow, key: &str, due: chrono::DateTime<chrono::Utc>) -> fu::Timer {
    let regional = row.scope_level == ScopeLevel::Region as i16;
    let property = if regional {
        super::properties(state, row.scope_level, &row.scope_id)
            .first()
            .cloned()
            .unwrap_or_default()
    } else {
        row.scope_id.clone()
    };
    let recipient = notify::StaffRecipient {
        property_id: property.clone(),
        role: if regional {
            notify::StaffRole::RegionalManager
        } else {
            notify::StaffRole::GeneralManager
        } as i32,
        region_id: if regional {
            row.scope_id.clone()
        } else {
            String::new()
        },
        ..Default::default()
    };
    fu::Timer {
        key: key.to_string(),
        purpose: fu::TimerPurpose::Custom as i32,
        property_id: property.clone(),
        due_time: Some(ts(due)),
        late_policy: fu::LatePolicy::Fire as i32,
        action: Some(fu::TimerAction {
            action: Some(fu::timer_action::Action::SendMessage(
                fu::SendMessageAction {
                    message: Some(notify::MessageSpec {
                        recipient: Some(notify::Recipient {
                            kind: Some(notify::recipient::Kind::Staff(recipient)),
                        }),
                        kind: notify::MessageKind::StaffImprovementOverdue as i32,
                        property_id: property,
                        variables: [
                            ("title".to_string(), row.title.clone()),
                            ("item_id".to_string(), row.id.to_string()),
                            (
                                "due_time".to_string(),
                                due.format("%Y-%m-%d %H:%M UTC").to_string(),
                            ),
                            (
                                "state".to_string(),
                                S::try_from(i32::from(row.state))
                                    .unwrap_or_default()
                                    .as_str_name()
                                    .trim_start_matches("IMPROVEMENT_STATE_")
                                    .to_string(),
                            ),
                        ]
                        .into_iter()
                        .collect(),
                        ..Default::default()
                    }),
                },
            )),
        }),
        ..Default::default()
    }
}

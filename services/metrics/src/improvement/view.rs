//! An item as the API shows it: its row, its steps and linked cases, and its current rate
//! (since DO from the rollups; the judged value once checked). A page of items (a list,
//! the report's open items) is loaded with one query for all their steps, one for their
//! cases and one for their rates, not three per item.

use super::store::{self, ItemRow};
use super::{properties, rate, today, watched};
use crate::state::State;
use chrono::{NaiveDate, Utc};
use guestloop_proto::metrics::v1::{self as pb, ImprovementState as S, Scope};
use guestloop_proto::time::to_timestamp as ts;
use prost::Message;
use std::collections::BTreeSet;
use uuid::Uuid;

/// The item as the API shows it: the current rate since DO (to the CHECK day once judged),
/// and with `with_daily` the rate on each day since it opened (90 at most).
pub async fn view(
    state: &State,
    row: &ItemRow,
    with_daily: bool,
) -> Result<pb::ImprovementItem, sqlx::Error> {
    let mut item = views(state, std::slice::from_ref(row))
        .await?
        .pop()
        .expect("one view per row");
    if with_daily {
        let properties = properties(state, row.scope_level, &row.scope_id);
        let today = today(state, &properties);
        let from = row.open_day.max(today - chrono::Duration::days(89));
        let category = i32::from(row.category);
        item.daily = rate::daily(
            state,
            &properties,
            category,
            from,
            today,
            Some(row.target_rate),
        )
        .await?;
    }
    Ok(item)
}

/// The items as `view` shows them without their daily rates, in the order given.
pub async fn views(
    state: &State,
    rows: &[ItemRow],
) -> Result<Vec<pb::ImprovementItem>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut steps = store::steps(&state.pool, &ids).await?;
    let mut cases = store::cases(&state.pool, &ids).await?;
    let current = currents(state, rows).await?;
    Ok(rows
        .iter()
        .zip(current)
        .map(|(row, current)| {
            let steps = steps.remove(&row.id).unwrap_or_default();
            let case_ids = cases.remove(&row.id).unwrap_or_default();
            shape(row, current, steps, case_ids)
        })
        .collect())
}

/// Each item's current rate: judged once checked; else its rate since DO (none before),
/// all of them from one read of the rollups of their properties over their days.
async fn currents(
    state: &State,
    rows: &[ItemRow],
) -> Result<Vec<Option<pb::KpiValue>>, sqlx::Error> {
    /// An item whose rate since DO is wanted: its index, properties and days.
    struct Since {
        i: usize,
        properties: Vec<String>,
        from: NaiveDate,
        to: NaiveDate,
    }
    let mut out = vec![None; rows.len()];
    let mut since = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match (row.do_day, row.check_day, &row.verdict_value) {
            (_, Some(_), Some(judged)) => out[i] = pb::KpiValue::decode(judged.as_slice()).ok(),
            (Some(from), _, _) => {
                let properties = properties(state, row.scope_level, &row.scope_id);
                let to = today(state, &properties);
                since.push(Since {
                    i,
                    properties,
                    from,
                    to,
                });
            }
            _ => {}
        }
    }
    let (Some(from), Some(to)) = (
        since.iter().map(|s| s.from).min(),
        since.iter().map(|s| s.to).max(),
    ) else {
        return Ok(out);
    };
    let properties: BTreeSet<&String> = since.iter().flat_map(|s| &s.properties).collect();
    let properties: Vec<String> = properties.into_iter().cloned().collect();
    let categories: BTreeSet<i32> = since
        .iter()
        .map(|s| i32::from(rows[s.i].category))
        .collect();
    let categories: Vec<i32> = categories.into_iter().collect();
    let counts = rate::counts(&state.pool, &properties, &categories, from, to).await?;
    for s in since {
        let row = &rows[s.i];
        let mine = counts
            .iter()
            .filter(|c| c.day >= s.from && c.day <= s.to && s.properties.contains(&c.property_id));
        let t = rate::totals(mine);
        out[s.i] = Some(rate::judge(
            state,
            &t,
            i32::from(row.category),
            Some(row.target_rate),
        ));
    }
    Ok(out)
}

/// The API's item from its row and what was loaded for it.
fn shape(
    row: &ItemRow,
    current: Option<pb::KpiValue>,
    steps: Vec<store::StepRow>,
    case_ids: Vec<String>,
) -> pb::ImprovementItem {
    let st = S::try_from(i32::from(row.state)).unwrap_or_default();
    pb::ImprovementItem {
        item_id: row.id.to_string(),
        state: st as i32,
        scope: Some(Scope {
            level: i32::from(row.scope_level),
            id: row.scope_id.clone(),
        }),
        category: i32::from(row.category),
        department: i32::from(row.department),
        tag: row.tag.clone(),
        title: row.title.clone(),
        owner_staff_id: row.owner_staff_id.clone(),
        plan: row.plan.clone(),
        due_time: row.due_time.map(ts),
        baseline: pb::KpiValue::decode(row.baseline.as_slice()).ok(),
        target_rate: row.target_rate,
        current,
        verdict: i32::from(row.verdict),
        daily: Vec::new(),
        proposal_reason: row.proposal_reason.clone(),
        case_ids,
        steps: steps
            .into_iter()
            .map(|s| pb::ImprovementStep {
                from_state: i32::from(s.from_state),
                to_state: i32::from(s.to_state),
                note: s.note,
                actor: s.actor,
                step_time: Some(ts(s.step_time)),
            })
            .collect(),
        create_time: Some(ts(row.create_time)),
        update_time: Some(ts(row.update_time)),
        overdue: watched(st) && row.due_time.is_some_and(|d| d <= Utc::now()),
    }
}

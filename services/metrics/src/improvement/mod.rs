//! The improvement board (plan-do-check-act, PRODUCT.md): a recurring issue, a complaint
//! category at a property or region, becomes an item with an owner, a plan, a due time, the
//! complaint rate at opening (the baseline) and a target; it moves PLAN -> DO -> CHECK ->
//! ACT -> CLOSED, its rate followed day by day from the rollups and judged at CHECK like a
//! KPI (minimum sample, interval). The platform proposes items (proposer.rs: a sustained
//! complaint rate, or a sustained share of repeat cases, repeats.rs); an item past
//! its due time before it was checked alerts the general manager through a scheduler timer
//! (overdue.rs).
//!
//! It lives in metrics because everything it measures is metrics' own: the baseline, the
//! daily rate and the verdict come from the rollups, the proposals from the same sums the
//! KPIs use, and the case facts it links arrive here already as events. feedback-intake owns
//! each case; the board owns what the chain learns from many of them.

pub mod overdue;
pub mod proposer;
pub mod rate;
pub mod repeats;
pub mod store;
mod view;

pub use view::{view, views};

use crate::state::State;
use chrono::{DateTime, NaiveDate, Utc};
use guestloop_proto::metrics::v1::{
    self as pb, ImprovementState as S, ImprovementVerdict as V, KpiStatus, Scope, ScopeLevel,
};

/// The steps the board allows.
pub fn allowed(from: S, to: S) -> bool {
    matches!(
        (from, to),
        (S::Proposed, S::Plan)
            | (S::Proposed, S::Dismissed)
            | (S::Plan, S::Do)
            | (S::Plan, S::Dismissed)
            | (S::Do, S::Check)
            | (S::Check, S::Act)
            | (S::Check, S::Do)
            | (S::Act, S::Closed)
    )
}

/// While the item is being worked, its due time is watched (the scheduler's timer).
pub fn watched(s: S) -> bool {
    matches!(s, S::Plan | S::Do | S::Check)
}

/// The states of an item not yet closed or dismissed.
pub const OPEN: [S; 5] = [S::Proposed, S::Plan, S::Do, S::Check, S::Act];

/// The verdict of a judged rate.
pub fn verdict(v: &pb::KpiValue) -> V {
    match KpiStatus::try_from(v.status).unwrap_or_default() {
        KpiStatus::Met => V::Met,
        KpiStatus::Missed => V::NotMet,
        _ => V::InsufficientSample,
    }
}

/// The default target: the baseline less the configured share (no baseline: 0).
pub fn default_target(state: &State, baseline: &pb::KpiValue) -> f64 {
    baseline.value.unwrap_or(0.0) * (1.0 - state.improvement.target_reduction)
}

/// The properties of an item's scope.
pub fn properties(state: &State, level: i16, id: &str) -> Vec<String> {
    let scope = Scope {
        level: i32::from(level),
        id: id.to_string(),
    };
    crate::api::scope::of(state, &scope)
        .map(|r| r.properties)
        .unwrap_or_default()
}

/// Today in the scope's zone (its first property's), as the rollups count days.
pub fn today(state: &State, properties: &[String]) -> NaiveDate {
    let first = properties.first().map(String::as_str).unwrap_or_default();
    crate::ingest::day(state, first, Utc::now())
}

/// The scope level of an item (property or region only).
pub fn item_level(level: ScopeLevel) -> bool {
    matches!(level, ScopeLevel::Property | ScopeLevel::Region)
}

/// A new item as stored: what the API or the proposer decided.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub state: S,
    pub scope_level: ScopeLevel,
    pub scope_id: String,
    pub category: i32,
    pub department: i32,
    pub tag: String,
    pub title: String,
    pub owner_staff_id: String,
    pub plan: String,
    pub due_time: Option<DateTime<Utc>>,
    pub target_rate: Option<f64>,
    pub proposal_reason: String,
    pub idempotency_key: Option<String>,
    pub actor: String,
}

/// Opens an item: its baseline is the rate over the `baseline_days` before today (local),
/// its target the given one or the default from the baseline.
pub async fn create(state: &State, n: &NewItem) -> Result<store::Inserted, sqlx::Error> {
    let properties = properties(state, n.scope_level as i16, &n.scope_id);
    let open_day = today(state, &properties);
    let days = state.improvement.baseline_days;
    let baseline = rate::over(
        state,
        &properties,
        n.category,
        open_day - chrono::Duration::days(days),
        open_day - chrono::Duration::days(1),
        None,
    )
    .await?;
    let target = n
        .target_rate
        .unwrap_or_else(|| default_target(state, &baseline));
    let mut tx = state.pool.begin().await?;
    let inserted = store::insert(&mut tx, n, open_day, &baseline, target).await?;
    tx.commit().await?;
    if matches!(inserted, store::Inserted::New(_)) {
        state.improvement_timers.notify_one();
        metrics::counter!("metrics_improvement_items_opened_total",
            "by" => if n.state == S::Proposed { "platform" } else { "manager" })
        .increment(1);
    }
    Ok(inserted)
}

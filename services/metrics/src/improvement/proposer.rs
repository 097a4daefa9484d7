//! The platform proposes improvement items: a complaint category at a property is proposed
//! when, over the `window_days` ending on each of the last `sustained_days` local days, one
//! of two rules held on every one of those windows:
//! - its complaints per 100 checked-out stays were above `threshold_per_100_stays` (each
//!   window with the KPIs' minimum sample of stays, so a quiet week proposes nothing);
//! - the share of its cases that were repeats was above `repeat_threshold` (each window
//!   with the minimum sample of the category's cases): guests coming back about the same
//!   thing is a recurring issue whatever the volume (PRODUCT.md: repeat complaints must
//!   fall).
//!
//! The reason names the rule that fired (both, when both did) with its numbers. One open
//! item per property and category whichever rule fired (the unique index; racing replicas
//! insert one), and none again within `sustained_days` of one being closed or dismissed.

use super::{NewItem, rate, repeats};
use crate::report::html::category as name_of;
use crate::state::State;
use chrono::{Duration, NaiveDate, Utc};
use guestloop_proto::metrics::v1::{self as pb, ImprovementState as S, ScopeLevel};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::watch;

pub async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let every = state.improvement.propose_interval.as_duration();
    loop {
        match tick(&state).await {
            Ok(n) if n > 0 => tracing::info!(proposed = n, "improvement items proposed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "improvement proposals not made"),
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One round over every property; returns how many items it opened.
pub async fn tick(state: &State) -> Result<usize, sqlx::Error> {
    let s = &state.improvement;
    let yesterdays: Vec<(String, NaiveDate)> = state
        .chain
        .properties
        .iter()
        .map(|p| {
            let today = crate::ingest::day(state, &p.id, Utc::now());
            (p.id.clone(), today - Duration::days(1))
        })
        .collect();
    let (Some(last), Some(first)) = (
        yesterdays.iter().map(|x| x.1).max(),
        yesterdays.iter().map(|x| x.1).min(),
    ) else {
        return Ok(0);
    };
    let first = first - Duration::days(s.sustained_days + s.window_days - 2);
    let ids: Vec<String> = yesterdays.iter().map(|x| x.0.clone()).collect();
    let rates = rate::counts(&state.pool, &ids, &[], first, last).await?;
    let repeats = repeats::counts(&state.pool, &ids, first, last).await?;
    let rates = by_property(&rates, |r| &r.property_id);
    let repeats = by_property(&repeats, |r| &r.property_id);
    let mut opened = 0;
    for (property, yesterday) in &yesterdays {
        let rates = rates.get(property.as_str()).map_or(&[][..], Vec::as_slice);
        let repeats = repeats
            .get(property.as_str())
            .map_or(&[][..], Vec::as_slice);
        let mut fired: BTreeMap<i32, Vec<Fired>> = BTreeMap::new();
        for (c, f) in complaint_rate(state, rates, *yesterday)
            .into_iter()
            .chain(repeat_share(state, repeats, *yesterday))
        {
            fired.entry(c).or_default().push(f);
        }
        for (c, why) in fired {
            if recently_ended(state, property, c).await? {
                continue;
            }
            if matches!(
                super::create(state, &proposal(state, property, c, &why)).await?,
                super::store::Inserted::New(_)
            ) {
                opened += 1;
            }
        }
    }
    Ok(opened)
}

fn by_property<T>(rows: &[T], property: impl Fn(&T) -> &str) -> BTreeMap<&str, Vec<&T>> {
    let mut out: BTreeMap<&str, Vec<&T>> = BTreeMap::new();
    for r in rows {
        out.entry(property(r)).or_default().push(r);
    }
    out
}

/// A rule that held for a category, with the value of its latest window.
enum Fired {
    ComplaintRate(pb::KpiValue),
    RepeatShare(pb::KpiValue),
}

/// The value of the window ending yesterday when the windows ending on each of the last
/// `sustained_days` days all had the minimum sample and were above `threshold`.
fn sustained(
    state: &State,
    yesterday: NaiveDate,
    threshold: f64,
    window: impl Fn(NaiveDate, NaiveDate) -> pb::KpiValue,
) -> Option<pb::KpiValue> {
    let s = &state.improvement;
    let mut latest = None;
    for i in 0..s.sustained_days {
        let end = yesterday - Duration::days(i);
        let v = window(end - Duration::days(s.window_days - 1), end);
        let above =
            v.sample_size >= state.kpis.min_sample && v.value.is_some_and(|x| x > threshold);
        if !above {
            return None;
        }
        latest.get_or_insert(v);
    }
    latest
}

/// The categories whose complaints per 100 stays stayed above the threshold.
fn complaint_rate(
    state: &State,
    rows: &[&rate::DayCount],
    yesterday: NaiveDate,
) -> Vec<(i32, Fired)> {
    let categories: BTreeSet<i32> = rows
        .iter()
        .filter_map(|r| r.what.strip_prefix("category:")?.parse().ok())
        .collect();
    categories
        .into_iter()
        .filter_map(|c| {
            let v = sustained(
                state,
                yesterday,
                state.improvement.threshold_per_100_stays,
                |from, end| {
                    let days = rows
                        .iter()
                        .copied()
                        .filter(|r| r.day >= from && r.day <= end);
                    rate::judge(state, &rate::totals(days), c, None)
                },
            )?;
            Some((c, Fired::ComplaintRate(v)))
        })
        .collect()
}

/// The categories whose share of repeat cases stayed above the threshold.
fn repeat_share(
    state: &State,
    rows: &[&repeats::DayRepeats],
    yesterday: NaiveDate,
) -> Vec<(i32, Fired)> {
    let categories: BTreeSet<i32> = rows.iter().map(|r| r.category).collect();
    categories
        .into_iter()
        .filter_map(|c| {
            let v = sustained(
                state,
                yesterday,
                state.improvement.repeat_threshold,
                |from, end| {
                    let days = rows
                        .iter()
                        .copied()
                        .filter(|r| r.category == c && r.day >= from && r.day <= end);
                    repeats::share(state, days)
                },
            )?;
            Some((c, Fired::RepeatShare(v)))
        })
        .collect()
}

/// The proposed item: titled after its rule (the complaint rate first), every rule that
/// fired in its reason.
fn proposal(state: &State, property: &str, c: i32, why: &[Fired]) -> NewItem {
    let s = &state.improvement;
    let category = name_of(c);
    let windows = format!(
        "over the {} days ending on each of the last {} days",
        s.window_days, s.sustained_days
    );
    let reasons: Vec<String> = why
        .iter()
        .map(|f| match f {
            Fired::ComplaintRate(v) => format!(
                "{category} complaints per 100 stays above {:.1} {windows}; latest {:.1} ({} complaints, {} stays)",
                s.threshold_per_100_stays,
                v.value.unwrap_or(0.0),
                v.numerator,
                v.denominator,
            ),
            Fired::RepeatShare(v) => format!(
                "repeat share of {category} complaints above {:.0}% {windows}; latest {:.0}% ({} repeats of {} cases)",
                s.repeat_threshold * 100.0,
                v.value.unwrap_or(0.0) * 100.0,
                v.numerator,
                v.denominator,
            ),
        })
        .collect();
    let name = state
        .chain
        .property(property)
        .map_or(property, |p| p.name.as_str());
    let title = if matches!(why.first(), Some(Fired::RepeatShare(_))) {
        format!("Repeat {category} complaints at {name}")
    } else {
        format!("{category} complaints at {name}")
    };
    NewItem {
        state: S::Proposed,
        scope_level: ScopeLevel::Property,
        scope_id: property.to_string(),
        category: c,
        department: 0,
        tag: String::new(),
        title,
        owner_staff_id: String::new(),
        plan: String::new(),
        due_time: None,
        target_rate: None,
        proposal_reason: reasons.join("; and "),
        idempotency_key: None,
        actor: crate::SERVICE_NAME.to_string(),
    }
}

/// An item for the property and category is open, or ended within `sustained_days`.
async fn recently_ended(state: &State, property: &str, category: i32) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM improvement_items
            WHERE scope_level = 1 AND scope_id = $1 AND category = $2
              AND (state NOT IN (6, 7) OR update_time > now() - make_interval(days => $3)))",
    )
    .bind(property)
    .bind(category as i16)
    .bind(state.improvement.sustained_days as i32)
    .fetch_one(&state.pool)
    .await
}

//! The platform proposes improvement items: a complaint category whose rate at a property,
//! over the `window_days` ending on each of the last `sustained_days` local days, stayed
//! above `threshold_per_100_stays` every day (each window with the KPIs' minimum sample of
//! stays, so a quiet week proposes nothing). One open item per property and category (the
//! unique index; racing replicas insert one), and none again within `sustained_days` of one
//! being closed or dismissed.

use super::{NewItem, rate};
use crate::state::State;
use chrono::{Duration, NaiveDate, Utc};
use guestloop_proto::metrics::v1::{ImprovementState as S, ScopeLevel};
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
    let rows = rate::counts(&state.pool, &ids, None, first, last).await?;
    let mut by_property: BTreeMap<&str, Vec<&rate::DayCount>> = BTreeMap::new();
    for r in &rows {
        by_property
            .entry(r.property_id.as_str())
            .or_default()
            .push(r);
    }
    let mut opened = 0;
    for (property, yesterday) in &yesterdays {
        let Some(rows) = by_property.get(property.as_str()) else {
            continue;
        };
        let categories: BTreeSet<i32> = rows
            .iter()
            .filter_map(|r| r.what.strip_prefix("category:")?.parse().ok())
            .collect();
        for c in categories {
            let window = |end: NaiveDate| {
                let from = end - Duration::days(s.window_days - 1);
                let t = rate::totals(
                    rows.iter()
                        .copied()
                        .filter(|r| r.day >= from && r.day <= end),
                );
                rate::judge(state, &t, c, None)
            };
            let above = (0..s.sustained_days).all(|i| {
                let v = window(*yesterday - Duration::days(i));
                v.sample_size >= state.kpis.min_sample
                    && v.value.is_some_and(|x| x > s.threshold_per_100_stays)
            });
            if !above || recently_ended(state, property, c).await? {
                continue;
            }
            let latest = window(*yesterday);
            let name = state
                .chain
                .property(property)
                .map(|p| p.name.clone())
                .unwrap_or(property.clone());
            let item = NewItem {
                state: S::Proposed,
                scope_level: ScopeLevel::Property,
                scope_id: property.clone(),
                category: c,
                department: 0,
                tag: String::new(),
                title: format!("{} complaints at {name}", crate::report::html::category(c)),
                owner_staff_id: String::new(),
                plan: String::new(),
                due_time: None,
                target_rate: None,
                proposal_reason: format!(
                    "{} complaints per 100 stays above {:.1} over the {} days ending on each of the last {} days; latest {:.1} ({} complaints, {} stays)",
                    crate::report::html::category(c),
                    s.threshold_per_100_stays,
                    s.window_days,
                    s.sustained_days,
                    latest.value.unwrap_or(0.0),
                    latest.numerator,
                    latest.denominator,
                ),
                idempotency_key: None,
                actor: crate::SERVICE_NAME.to_string(),
            };
            if matches!(
                super::create(state, &item).await?,
                super::store::Inserted::New(_)
            ) {
                opened += 1;
            }
        }
    }
    Ok(opened)
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

//! An item's measure: complaints of its category per 100 checked-out stays in its scope,
//! over local days, from the rollups, judged like the KPIs (the minimum sample of stays,
//! a Wilson interval, the item's target as an upper bound).

use crate::kpi::{self, Totals, def_of};
use crate::state::State;
use crate::store::rollups::Sum;
use chrono::NaiveDate;
use guestloop_proto::metrics::v1::{self as pb, Kpi};
use sqlx::PgExecutor;
use std::collections::BTreeMap;

/// The category's complaints and the stays of `properties`, per property and day.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DayCount {
    pub property_id: String,
    pub day: NaiveDate,
    /// "stays" or "category:<n>".
    pub what: String,
    pub n: i64,
}

/// Stays and per-category complaints of `properties` over `from..=to`, of `categories`
/// (every category when empty).
pub async fn counts<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    categories: &[i32],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayCount>, sqlx::Error> {
    let wanted: Vec<String> = categories.iter().map(|c| format!("category:{c}")).collect();
    sqlx::query_as(
        "SELECT property_id, day,
            CASE WHEN measure = 'stays' THEN 'stays' ELSE breakdown END AS what,
            SUM(n)::bigint AS n
         FROM rollups
         WHERE property_id = ANY($1) AND day BETWEEN $2 AND $3
           AND ((measure = 'stays' AND breakdown = '')
             OR (measure = 'complaints' AND breakdown ~ '^category:[0-9]+$'
                 AND (cardinality($4::text[]) = 0 OR breakdown = ANY($4))))
         GROUP BY 1, 2, 3",
    )
    .bind(properties)
    .bind(from)
    .bind(to)
    .bind(wanted)
    .fetch_all(exec)
    .await
}

/// Totals (as the KPIs read them) of the counts on the days `keep` accepts.
pub fn totals<'a>(rows: impl Iterator<Item = &'a DayCount>) -> Totals {
    let mut t = Totals::default();
    for r in rows {
        let (measure, breakdown) = if r.what == "stays" {
            ("stays", "")
        } else {
            ("complaints", r.what.as_str())
        };
        t.add(
            measure,
            breakdown,
            &Sum {
                measure: String::new(),
                breakdown: String::new(),
                day: r.day,
                n: r.n,
                num: 0,
                sum: 0.0,
                sum_sq: 0.0,
            },
        );
    }
    t
}

/// The category's rate in `t`, judged against `target` (None: not judged).
pub fn judge(state: &State, t: &Totals, category: i32, target: Option<f64>) -> pb::KpiValue {
    let d = def_of(Kpi::ComplaintsPer100Stays).expect("a defined KPI");
    kpi::value(d, t, &format!("category:{category}"), target, state.judge())
}

/// The rate over `from..=to` in the scope.
pub async fn over(
    state: &State,
    properties: &[String],
    category: i32,
    from: NaiveDate,
    to: NaiveDate,
    target: Option<f64>,
) -> Result<pb::KpiValue, sqlx::Error> {
    let rows = counts(&state.pool, properties, &[category], from, to).await?;
    Ok(judge(state, &totals(rows.iter()), category, target))
}

/// The rate on each day of `from..=to`, oldest first.
pub async fn daily(
    state: &State,
    properties: &[String],
    category: i32,
    from: NaiveDate,
    to: NaiveDate,
    target: Option<f64>,
) -> Result<Vec<pb::KpiDayValue>, sqlx::Error> {
    let rows = counts(&state.pool, properties, &[category], from, to).await?;
    let mut by_day: BTreeMap<NaiveDate, Vec<&DayCount>> = BTreeMap::new();
    for r in &rows {
        by_day.entry(r.day).or_default().push(r);
    }
    Ok(from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|d| {
            let t = totals(by_day.get(&d).into_iter().flatten().copied());
            pb::KpiDayValue {
                date: Some(crate::api::scope::to_date(d)),
                value: Some(judge(state, &t, category, target)),
            }
        })
        .collect())
}

//! The repeat share of a category at a property: of its cases opened on some local days, how
//! many were repeats (the same guest with the same category again, as feedback-intake marks
//! CaseFacts.repeat), from the rollups (`repeat` by `category:<n>`, counted on each case's
//! opening day), judged like the repeat-complaint KPI: a rate, on the minimum sample of
//! cases.

use crate::kpi::{self, Totals, def_of};
use crate::state::State;
use crate::store::rollups::Sum;
use chrono::NaiveDate;
use guestloop_proto::metrics::v1::{self as pb, Kpi};
use sqlx::PgExecutor;

/// A category's cases and repeats at a property on one day.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DayRepeats {
    pub property_id: String,
    pub day: NaiveDate,
    pub category: i32,
    pub cases: i64,
    pub repeats: i64,
}

/// The per-category cases and repeats of `properties` over `from..=to`.
pub async fn counts<'e>(
    exec: impl PgExecutor<'e>,
    properties: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayRepeats>, sqlx::Error> {
    // One row per property, day and breakdown (the primary key): nothing to sum.
    sqlx::query_as(
        "SELECT property_id, day, split_part(breakdown, ':', 2)::int AS category,
            n AS cases, num AS repeats
         FROM rollups
         WHERE property_id = ANY($1) AND day BETWEEN $2 AND $3
           AND measure = 'repeat' AND breakdown ~ '^category:[0-9]+$'",
    )
    .bind(properties)
    .bind(from)
    .bind(to)
    .fetch_all(exec)
    .await
}

/// The share of repeats among the cases of `rows` (not judged against a target).
pub fn share<'a>(state: &State, rows: impl Iterator<Item = &'a DayRepeats>) -> pb::KpiValue {
    let mut t = Totals::default();
    for r in rows {
        t.add(
            "repeat",
            "",
            &Sum {
                n: r.cases,
                num: r.repeats,
                day: r.day,
                ..Default::default()
            },
        );
    }
    let d = def_of(Kpi::RepeatComplaintRate).expect("a defined KPI");
    kpi::value(d, &t, "", None, state.judge())
}

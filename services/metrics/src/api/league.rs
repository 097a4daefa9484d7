//! GetLeagueTable: properties ranked by SLA compliance (default) or CSAT over a date range,
//! with their rank over the range of the same length before. Head office sees the chain, a
//! regional manager the region, property staff only their own rows.

use super::scope;
use crate::error::{Result, invalid};
use crate::kpi::{self, Totals, def_of};
use crate::state::{Caller, State};
use crate::store::rollups::{self, PropertySum, Sum};
use chrono::{Duration, NaiveDate, Utc};
use guestloop_proto::metrics::v1::{self as pb, Kpi, KpiStatus, LeagueTableOrder, ScopeLevel};
use std::collections::BTreeMap;

fn per_property(rows: &[PropertySum]) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Vec<Sum>> = BTreeMap::new();
    for r in rows {
        out.entry(r.property_id.clone()).or_default().push(Sum {
            measure: r.measure.clone(),
            breakdown: r.breakdown.clone(),
            day: NaiveDate::MIN,
            n: r.n,
            num: r.num,
            sum: r.sum,
            sum_sq: r.sum_sq,
        });
    }
    out.into_iter()
        .map(|(p, sums)| (p, Totals::from_sums(sums.iter())))
        .collect()
}

/// Ranks (1 = best) of the properties by `kpi`; those without a judged value get 0.
fn ranks(
    state: &State,
    totals: &BTreeMap<String, Totals>,
    properties: &[String],
    kpi: Kpi,
) -> BTreeMap<String, i32> {
    let d = def_of(kpi).expect("a defined KPI");
    let empty = Totals::default();
    let mut scored: Vec<(f64, String)> = properties
        .iter()
        .filter_map(|p| {
            let v = kpi::value(
                d,
                totals.get(p).unwrap_or(&empty),
                "",
                Some(0.0),
                state.judge(),
            );
            let judged = v.status != KpiStatus::InsufficientSample as i32
                && v.status != KpiStatus::NoData as i32;
            judged.then(|| (v.value.unwrap_or(0.0), p.clone()))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut out: BTreeMap<String, i32> = properties.iter().map(|p| (p.clone(), 0)).collect();
    for (i, (_, p)) in scored.into_iter().enumerate() {
        out.insert(p, i as i32 + 1);
    }
    out
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetLeagueTableRequest,
) -> Result<pb::GetLeagueTableResponse> {
    let requested = req.scope.clone().unwrap_or_else(|| scope::widest(caller));
    let resolved = scope::resolve(state, caller, Some(&requested), "scope")?;
    let (from, to) = scope::range(req.date_range.as_ref(), "date_range", 400)?;
    let order = match LeagueTableOrder::try_from(req.order_by) {
        Ok(LeagueTableOrder::Csat) => Kpi::Csat,
        Ok(_) => Kpi::SlaComplianceRate,
        Err(_) => {
            return Err(invalid(
                "order_by",
                format!("{} is not an order", req.order_by),
            ));
        }
    };
    // Property staff see their own rows only, whatever scope they name.
    let properties: Vec<String> = resolved
        .properties
        .iter()
        .filter(|p| caller.principal.can_see_property(&state.chain, p))
        .cloned()
        .collect();
    let rows = ranked(state, &properties, from, to, order).await?;
    let scope = if resolved.scope.level == ScopeLevel::Property as i32 {
        requested
    } else {
        resolved.scope
    };
    Ok(pb::GetLeagueTableResponse {
        scope: Some(scope),
        rows,
        as_of_time: Some(guestloop_proto::time::to_timestamp(Utc::now())),
    })
}

/// The league table of `properties` over `from..=to`, ranked by SLA compliance, with each
/// property's rank over the range of the same length before (the report's comparison too).
pub async fn table(
    state: &State,
    properties: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> std::result::Result<Vec<pb::LeagueTableRow>, sqlx::Error> {
    ranked(state, properties, from, to, Kpi::SlaComplianceRate).await
}

async fn ranked(
    state: &State,
    properties: &[String],
    from: NaiveDate,
    to: NaiveDate,
    order: Kpi,
) -> std::result::Result<Vec<pb::LeagueTableRow>, sqlx::Error> {
    let now = rollups::sums_by_property(&state.pool, properties, from, to).await?;
    let days = (to - from).num_days() + 1;
    let before = rollups::sums_by_property(
        &state.pool,
        properties,
        from - Duration::days(days),
        from - Duration::days(1),
    )
    .await?;
    let (now, before) = (per_property(&now), per_property(&before));
    let rank = ranks(state, &now, properties, order);
    let previous = ranks(state, &before, properties, order);
    let empty = Totals::default();
    let mut rows: Vec<pb::LeagueTableRow> = properties
        .iter()
        .map(|p| {
            let t = now.get(p).unwrap_or(&empty);
            let s = state.standards.for_property(&state.chain, p);
            let v = |k: Kpi| {
                let d = def_of(k).expect("a defined KPI");
                Some(kpi::value(d, t, "", kpi::target(k, &s), state.judge()))
            };
            let prop = state.chain.property(p);
            pb::LeagueTableRow {
                rank: rank[p],
                previous_rank: previous[p],
                property_id: p.clone(),
                property_name: prop.map(|x| x.name.clone()).unwrap_or_default(),
                region_id: prop.map(|x| x.region.clone()).unwrap_or_default(),
                sla_compliance: v(Kpi::SlaComplianceRate),
                first_response_within_sla: v(Kpi::FirstResponseWithinSlaRate),
                resolution_within_sla: v(Kpi::ResolutionWithinSlaRate),
                csat: v(Kpi::Csat),
                nps: v(Kpi::Nps),
                complaints_per_100_stays: v(Kpi::ComplaintsPer100Stays),
            }
        })
        .collect();
    // Ranked first (1, 2, ...), the unranked after them by id.
    rows.sort_by_key(|r| (r.rank == 0, r.rank, r.property_id.clone()));
    Ok(rows)
}

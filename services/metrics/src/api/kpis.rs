//! GetKpis: every KPI (or those asked for) of a scope over a local date range, in total and
//! per day, ISO week or month, with breakdowns on request. Served from the rollups: one
//! query summing the scope's rows per measure, breakdown and day (a region's or the chain's
//! own sums, store/scopes.rs).

use super::scope::{self, Resolved};
use crate::error::{Result, invalid};
use crate::kpi::{self, DEFS, Def, Totals};
use crate::state::{Caller, State};
use crate::store::rollups;
use crate::store::scopes;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use guestloop_proto::metrics::v1::{
    self as pb, Granularity, Kpi, KpiBreakdown, ScopeLevel, kpi_breakdown::Key,
};

/// The periods of a range: whole days, ISO weeks or months, cut to the range.
pub fn periods(from: NaiveDate, to: NaiveDate, g: Granularity) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = match g {
            Granularity::Week => {
                start + Duration::days(6 - i64::from(start.weekday().num_days_from_monday()))
            }
            Granularity::Month => {
                let (y, m) = if start.month() == 12 {
                    (start.year() + 1, 1)
                } else {
                    (start.year(), start.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).expect("valid") - Duration::days(1)
            }
            _ => start,
        }
        .min(to);
        out.push((start, end));
        start = end + Duration::days(1);
    }
    out
}

fn breakdown_key(key: &str) -> Option<KpiBreakdown> {
    let (kind, v) = key.split_once(':')?;
    let v: i32 = v.parse().ok()?;
    let key = match kind {
        "channel" => Key::Channel(v),
        "category" => Key::Category(v),
        "csi_dimension" => Key::CsiDimension(v),
        "department" => Key::Department(v),
        "site" => Key::OtaSite(v),
        _ => return None,
    };
    Some(KpiBreakdown { key: Some(key) })
}

pub fn series(
    d: &Def,
    breakdown: &str,
    total: &Totals,
    periods: &[(NaiveDate, NaiveDate, Totals)],
    target: Option<f64>,
    state: &State,
) -> pb::KpiSeries {
    let j = state.judge();
    pb::KpiSeries {
        kpi: d.kpi as i32,
        breakdown: breakdown_key(breakdown),
        total: Some(kpi::value(d, total, breakdown, target, j)),
        periods: periods
            .iter()
            .map(|(s, e, t)| pb::KpiPeriodValue {
                start_date: Some(scope::to_date(*s)),
                end_date: Some(scope::to_date(*e)),
                value: Some(kpi::value(d, t, breakdown, target, j)),
            })
            .collect(),
    }
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetKpisRequest,
) -> Result<pb::GetKpisResponse> {
    let granularity = match Granularity::try_from(req.granularity) {
        Ok(Granularity::Unspecified) => Granularity::Day,
        Ok(g) => g,
        Err(_) => {
            return Err(invalid(
                "granularity",
                format!("{} is not a granularity", req.granularity),
            ));
        }
    };
    let max = if granularity == Granularity::Day {
        400
    } else {
        5 * 366
    };
    let Resolved {
        scope,
        properties,
        standards,
    } = scope::resolve(state, caller, req.scope.as_ref(), "scope")?;
    let (from, to) = scope::range(req.date_range.as_ref(), "date_range", max)?;
    let mut wanted = Vec::new();
    for (i, k) in req.kpis.iter().enumerate() {
        match Kpi::try_from(*k) {
            Ok(Kpi::Unspecified) | Err(_) => {
                return Err(invalid(&format!("kpis[{i}]"), format!("{k} is not a KPI")));
            }
            Ok(k) => wanted.push(k),
        }
    }
    // A region or the chain reads its own sums (whole months as one row when the answer is
    // per month); a property its own rows.
    let ready = state
        .scopes_ready
        .load(std::sync::atomic::Ordering::Acquire);
    let months = granularity == Granularity::Month;
    let own = match ScopeLevel::try_from(scope.level) {
        Ok(ScopeLevel::Chain) if ready => Some(scopes::Scope::Chain),
        Ok(ScopeLevel::Region) if ready => Some(scopes::Scope::Region(&scope.id)),
        _ => None,
    };
    let sums = match own {
        Some(own) => scopes::sums(&state.pool, own, from, to, months).await?,
        None => rollups::sums(&state.pool, &properties, from, to).await?,
    };
    let total = Totals::from_sums(sums.iter());
    // One pass: each row into the period holding its day (periods are in order, contiguous).
    let mut per: Vec<(NaiveDate, NaiveDate, Totals)> = periods(from, to, granularity)
        .into_iter()
        .map(|(s, e)| (s, e, Totals::default()))
        .collect();
    for r in &sums {
        let i = per.partition_point(|(_, e, _)| *e < r.day);
        if let Some((s, _, t)) = per.get_mut(i)
            && *s <= r.day
        {
            t.add(&r.measure, &r.breakdown, r);
        }
    }
    let mut out = Vec::new();
    for d in DEFS
        .iter()
        .filter(|d| wanted.is_empty() || wanted.contains(&d.kpi))
    {
        let target = kpi::target(d.kpi, &standards);
        // CSI per dimension exists only broken down.
        if d.kpi != Kpi::CsiDimension {
            out.push(series(d, "", &total, &per, target, state));
        }
        if req.include_breakdowns || d.kpi == Kpi::CsiDimension {
            for kind in d.breakdowns {
                for key in total.breakdowns(d.measure, kind) {
                    out.push(series(d, &key, &total, &per, target, state));
                }
            }
        }
    }
    Ok(pb::GetKpisResponse {
        scope: Some(scope),
        date_range: req.date_range,
        series: out,
        as_of_time: Some(guestloop_proto::time::to_timestamp(Utc::now())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weeks_and_months_are_cut_to_the_range() {
        // 2026-11-18 is a Wednesday.
        let w = periods(d("2026-11-18"), d("2026-12-01"), Granularity::Week);
        assert_eq!(
            w,
            vec![
                (d("2026-11-18"), d("2026-11-22")),
                (d("2026-11-23"), d("2026-11-29")),
                (d("2026-11-30"), d("2026-12-01")),
            ]
        );
        let m = periods(d("2026-11-18"), d("2027-01-05"), Granularity::Month);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1], (d("2026-12-01"), d("2026-12-31")));
        assert_eq!(
            periods(d("2026-11-18"), d("2026-11-20"), Granularity::Day).len(),
            3
        );
    }
}

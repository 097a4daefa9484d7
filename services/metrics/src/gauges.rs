//! Business KPIs on /metrics beside the technical ones, for Grafana: per property (labels
//! property and region, never a guest), over the last `kpis.gauge_window_days` local days,
//! recomputed from the rollups every `kpis.gauge_interval`. The numerator and denominator
//! are exported too, so a dashboard can sum them per region or chain and divide (averaging
//! rates would be wrong).

use crate::kpi::{self, Totals, def_of};
use crate::state::State;
use crate::store::rollups;
use chrono::{Duration, Utc};
use guestloop_proto::metrics::v1::{Kpi, KpiStatus};
use std::sync::Arc;
use tokio::sync::watch;

const EXPORTED: [Kpi; 9] = [
    Kpi::Csat,
    Kpi::Nps,
    Kpi::Csi,
    Kpi::SlaComplianceRate,
    Kpi::FirstResponseWithinSlaRate,
    Kpi::ResolutionWithinSlaRate,
    Kpi::FeedbackResponseRate,
    Kpi::ComplaintsPer100Stays,
    Kpi::FollowUpCompletionRate,
];

/// HELP lines for the metrics service's series, and the KPI-alert counters at zero from
/// the start for every KPI a rule judges (a series born at its first increment loses that
/// increment to `rate()`/`increase()`).
pub fn register_metrics(state: &State) {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(
        "guestloop_kpi_value",
        "A KPI per property over the last kpis.gauge_window_days local days (NaN without data)"
    );
    describe_gauge!(
        "guestloop_kpi_numerator",
        "A KPI's numerator per property (sum these and the denominators to aggregate)"
    );
    describe_gauge!(
        "guestloop_kpi_denominator",
        "A KPI's denominator per property"
    );
    describe_gauge!(
        "guestloop_kpi_target_met",
        "1 when a KPI meets its target at a property (0 also without data or enough sample)"
    );
    describe_gauge!(
        "guestloop_kpi_target_missed",
        "1 when a KPI misses its target at a property with enough sample (kpis.min_sample)"
    );
    describe_counter!(
        "metrics_kpi_alerts_raised_total",
        "KPI alerts raised (a KPI missed its target at a property), by KPI"
    );
    describe_counter!(
        "metrics_kpi_alerts_cleared_total",
        "KPI alerts cleared (the KPI met its target again), by KPI"
    );
    describe_counter!(
        "metrics_scope_deltas_folded_total",
        "Rollup deltas folded into region and chain scopes"
    );
    for rule in &state.kpi_alerts.rules {
        if let Some(k) = kpi::by_name(&rule.kpi) {
            for name in [
                "metrics_kpi_alerts_raised_total",
                "metrics_kpi_alerts_cleared_total",
            ] {
                metrics::counter!(name, "kpi" => kpi::name(k)).increment(0);
            }
        }
    }
}

pub async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let every = state.kpis.gauge_interval.as_duration();
    loop {
        if let Err(e) = refresh(&state).await {
            tracing::warn!(error = %e, "business gauges not refreshed");
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

pub async fn refresh(state: &State) -> Result<(), sqlx::Error> {
    for p in &state.chain.properties {
        let today = crate::ingest::day(state, &p.id, Utc::now());
        let from = today - Duration::days(state.kpis.gauge_window_days - 1);
        let sums = rollups::sums(&state.pool, std::slice::from_ref(&p.id), from, today).await?;
        let totals = Totals::from_sums(sums.iter());
        let standards = state.standards.for_property(&state.chain, &p.id);
        for k in EXPORTED {
            let d = def_of(k).expect("a defined KPI");
            let v = kpi::value(d, &totals, "", kpi::target(k, &standards), state.judge());
            let labels = [
                ("kpi", kpi::name(k)),
                ("property", p.id.clone()),
                ("region", p.region.clone()),
            ];
            metrics::gauge!("guestloop_kpi_numerator", &labels).set(v.numerator as f64);
            metrics::gauge!("guestloop_kpi_denominator", &labels).set(v.denominator as f64);
            match v.value {
                Some(x) => metrics::gauge!("guestloop_kpi_value", &labels).set(x),
                None => metrics::gauge!("guestloop_kpi_value", &labels).set(f64::NAN),
            }
            metrics::gauge!("guestloop_kpi_target_met", &labels)
                .set(f64::from(u8::from(v.target_met)));
            // Not the negation of target_met: 0 also while there is no data, no target or
            // too small a sample, so an alert on it means a real miss.
            let missed = v.status == KpiStatus::Missed as i32;
            metrics::gauge!("guestloop_kpi_target_missed", &labels)
                .set(f64::from(u8::from(missed)));
        }
    }
    Ok(())
}

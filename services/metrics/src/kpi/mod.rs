//! What each KPI is made of (which rollup measure, how it is computed, its unit, target
//! and comparison) and how a value is judged: the target from the chain's standards, the
//! minimum sample below which a value is shown but not judged, and its confidence
//! interval. Pure functions over summed rollups, tested without a database.

pub mod stats;

use crate::store::rollups::{Add, Sum};
use guestloop_config::ServiceStandards;
use guestloop_proto::metrics::v1::{Kpi, KpiStatus, KpiUnit, KpiValue, TargetComparison};
use std::collections::BTreeMap;

/// How a KPI's value comes out of its measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calc {
    /// num / n.
    Rate,
    /// Promoters (num) minus detractors (sum) over n, ×100.
    Nps,
    /// sum / n.
    Mean,
    /// Complaints per 100 checked-out stays.
    Per100Stays,
    /// n.
    Count,
    /// The median of the first-response histogram.
    Median,
}

#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub kpi: Kpi,
    pub measure: &'static str,
    pub calc: Calc,
    pub unit: KpiUnit,
    pub comparison: TargetComparison,
    /// Breakdown kinds served with include_breakdowns (prefixes of the rollup breakdown).
    pub breakdowns: &'static [&'static str],
}

const fn def(
    kpi: Kpi,
    measure: &'static str,
    calc: Calc,
    unit: KpiUnit,
    comparison: TargetComparison,
    breakdowns: &'static [&'static str],
) -> Def {
    Def {
        kpi,
        measure,
        calc,
        unit,
        comparison,
        breakdowns,
    }
}

use Calc::*;
use KpiUnit as U;
use TargetComparison::{AtLeast, AtMost};

pub const DEFS: [Def; 23] = [
    def(Kpi::Csat, "csat", Rate, U::Ratio, AtLeast, &["channel"]),
    def(Kpi::Nps, "nps", Nps, U::NpsPoints, AtLeast, &[]),
    def(Kpi::Csi, "csi", Mean, U::Score10, AtLeast, &[]),
    def(
        Kpi::CsiDimension,
        "csi",
        Mean,
        U::Score10,
        AtLeast,
        &["csi_dimension"],
    ),
    def(
        Kpi::ComplaintsPer100Stays,
        "complaints",
        Per100Stays,
        U::Per100Stays,
        AtMost,
        &[],
    ),
    def(
        Kpi::FirstResponseWithinSlaRate,
        "fr_sla",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::ResolutionWithinSlaRate,
        "res_sla",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::ClosedWithin24hRate,
        "closed_24h",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::FeedbackResponseRate,
        "feedback_response",
        Rate,
        U::Ratio,
        AtLeast,
        &["channel"],
    ),
    def(
        Kpi::FollowUpCompletionRate,
        "tasks",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::RepeatComplaintRate,
        "repeat",
        Rate,
        U::Ratio,
        AtMost,
        &[],
    ),
    def(
        Kpi::ProfileCompleteness,
        "profile_complete",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::VipReturnRate,
        "vip_return",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::SatisfactionContactWithin48hRate,
        "satisfaction_contact",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::EmergencyResponseRate,
        "emergency_response",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::FeedbackVolume,
        "feedback",
        Count,
        U::Count,
        AtLeast,
        &["channel", "category"],
    ),
    def(
        Kpi::ComplaintVolume,
        "complaints",
        Count,
        U::Count,
        AtMost,
        &["category", "channel", "department"],
    ),
    def(
        Kpi::FirstResponseTimeMedian,
        "fr_time",
        Median,
        U::Seconds,
        AtMost,
        &["channel"],
    ),
    def(
        Kpi::ResolutionRate,
        "resolution_rate",
        Rate,
        U::Ratio,
        AtLeast,
        &["channel"],
    ),
    def(
        Kpi::SlaComplianceRate,
        "sla_compliance",
        Rate,
        U::Ratio,
        AtLeast,
        &[],
    ),
    def(
        Kpi::OtaReplyRate,
        crate::ota_replies::REPLY,
        Rate,
        U::Ratio,
        AtLeast,
        &["site"],
    ),
    def(
        Kpi::OtaReplyTimeMean,
        crate::ota_replies::REPLY_TIME,
        Mean,
        U::Seconds,
        AtMost,
        &["site"],
    ),
    def(
        Kpi::OtaReplyWithinDeadlineRate,
        crate::ota_replies::ON_TIME,
        Rate,
        U::Ratio,
        AtLeast,
        &["site"],
    ),
];

pub fn def_of(kpi: Kpi) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.kpi == kpi)
}

/// The target of a KPI in the effective standards of a scope.
pub fn target(kpi: Kpi, s: &ServiceStandards) -> Option<f64> {
    let t = &s.targets;
    match kpi {
        Kpi::Csat => Some(t.csat),
        Kpi::Nps => Some(t.nps),
        Kpi::Csi | Kpi::CsiDimension => Some(t.csi),
        Kpi::FirstResponseWithinSlaRate | Kpi::SlaComplianceRate => {
            Some(t.complaint_response_on_time)
        }
        Kpi::ClosedWithin24hRate => Some(t.closed_within_24h),
        Kpi::FeedbackResponseRate => Some(t.feedback_response_rate),
        Kpi::ProfileCompleteness => Some(t.profile_completeness),
        Kpi::OtaReplyRate => Some(t.ota_reply_rate),
        Kpi::OtaReplyWithinDeadlineRate => Some(t.ota_reply_within_deadline),
        _ => None,
    }
}

/// Rollups summed over a set of days: measure → breakdown → totals. Nested so that adding a
/// row or looking one up borrows the caller's strings (a flat (measure, breakdown) key
/// allocated two strings per row and per look-up: most of GetKpis's CPU for a chain's year).
#[derive(Debug, Clone, Default)]
pub struct Totals(pub BTreeMap<String, BTreeMap<String, Add>>);

impl Totals {
    pub fn from_sums<'a>(rows: impl Iterator<Item = &'a Sum>) -> Self {
        let mut t = Totals::default();
        for r in rows {
            t.add(&r.measure, &r.breakdown, r);
        }
        t
    }

    /// Adds one summed row.
    pub fn add(&mut self, measure: &str, breakdown: &str, r: &Sum) {
        let per_breakdown = match self.0.get_mut(measure) {
            Some(m) => m,
            None => self.0.entry(measure.to_string()).or_default(),
        };
        let e = match per_breakdown.get_mut(breakdown) {
            Some(e) => e,
            None => per_breakdown.entry(breakdown.to_string()).or_default(),
        };
        e.n += r.n;
        e.num += r.num;
        e.sum += r.sum;
        e.sum_sq += r.sum_sq;
    }

    pub fn get(&self, measure: &str, breakdown: &str) -> Add {
        self.0
            .get(measure)
            .and_then(|m| m.get(breakdown))
            .copied()
            .unwrap_or_default()
    }

    /// A measure's breakdowns that start with `prefix`, with their totals, in key order.
    pub fn with_prefix<'a>(
        &'a self,
        measure: &str,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Add)> + 'a {
        self.0
            .get(measure)
            .into_iter()
            .flat_map(move |m| {
                m.range::<str, _>((
                    std::ops::Bound::Included(prefix),
                    std::ops::Bound::Unbounded,
                ))
            })
            .take_while(move |(b, _)| b.starts_with(prefix))
            .map(|(b, a)| (b.as_str(), a))
    }

    /// The breakdown keys present for a measure that start with `kind:` (e.g. channel:3).
    pub fn breakdowns(&self, measure: &str, kind: &str) -> Vec<String> {
        let prefix = format!("{kind}:");
        self.with_prefix(measure, &prefix)
            .map(|(b, _)| {
                // fr_time by channel is "channel:<c>:bucket:<s>": its key is "channel:<c>".
                b.splitn(3, ':').take(2).collect::<Vec<_>>().join(":")
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// Judging settings: the minimum sample and the z of the confidence interval.
#[derive(Debug, Clone, Copy)]
pub struct Judge {
    pub min_sample: i64,
    pub z: f64,
    pub level: f64,
}

/// The value of one KPI (or one breakdown of it) from the totals.
pub fn value(d: &Def, t: &Totals, breakdown: &str, target: Option<f64>, j: Judge) -> KpiValue {
    let a = t.get(d.measure, breakdown);
    let mut v = KpiValue {
        unit: d.unit as i32,
        target_comparison: d.comparison as i32,
        confidence_level: j.level,
        ..Default::default()
    };
    let mut min = j.min_sample;
    match d.calc {
        Rate => {
            v.numerator = a.num;
            v.denominator = a.n;
            v.sample_size = a.n;
            if a.n > 0 {
                v.value = Some(a.num as f64 / a.n as f64);
                let (lo, hi) = stats::wilson(a.num, a.n, j.z).unwrap_or((0.0, 0.0));
                v.confidence_low = Some(lo);
                v.confidence_high = Some(hi);
            }
        }
        Nps => {
            v.numerator = a.num - a.sum as i64;
            v.denominator = a.n;
            v.sample_size = a.n;
            if let Some((s, lo, hi)) = stats::nps(a.num, a.sum as i64, a.n, j.z) {
                v.value = Some(s);
                v.confidence_low = Some(lo);
                v.confidence_high = Some(hi);
            }
        }
        Mean => {
            v.numerator = a.sum.round() as i64;
            v.denominator = a.n;
            v.sample_size = a.n;
            if let Some((m, lo, hi)) = stats::mean(a.sum, a.sum_sq, a.n, j.z) {
                v.value = Some(m);
                v.confidence_low = Some(lo);
                v.confidence_high = Some(hi);
            }
        }
        Per100Stays => {
            let stays = t.get("stays", "").n;
            v.numerator = a.n;
            v.denominator = stays;
            v.sample_size = stays;
            if stays > 0 {
                v.value = Some(a.n as f64 * 100.0 / stays as f64);
                let (lo, hi) = stats::wilson(a.n.min(stays), stays, j.z).unwrap_or((0.0, 0.0));
                v.confidence_low = Some(lo * 100.0);
                v.confidence_high = Some(hi * 100.0);
            }
        }
        Count => {
            min = 0;
            v.numerator = a.n;
            v.sample_size = a.n;
            v.value = Some(a.n as f64);
        }
        Median => {
            let prefix = if breakdown.is_empty() {
                "bucket:".to_string()
            } else {
                format!("{breakdown}:bucket:")
            };
            let mut buckets: Vec<(i64, i64)> = t
                .with_prefix(d.measure, &prefix)
                .filter_map(|(b, a)| Some((b[prefix.len()..].parse().ok()?, a.n)))
                .collect();
            buckets.sort();
            let n: i64 = buckets.iter().map(|(_, c)| c).sum();
            v.sample_size = n;
            v.denominator = n;
            let mut seen = 0;
            for (bound, c) in buckets {
                seen += c;
                if n > 0 && seen * 2 >= n {
                    v.value = Some(bound as f64);
                    break;
                }
            }
        }
    }
    v.min_sample_size = min;
    v.target = target;
    v.status = match (v.value, target) {
        (None, _) => KpiStatus::NoData,
        (Some(_), None) => KpiStatus::NoTarget,
        (Some(_), Some(_)) if v.sample_size < min => KpiStatus::InsufficientSample,
        (Some(x), Some(t)) => {
            let met = match d.comparison {
                AtMost => x <= t + 1e-12,
                _ => x + 1e-12 >= t,
            };
            if met {
                KpiStatus::Met
            } else {
                KpiStatus::Missed
            }
        }
    } as i32;
    v.target_met = v.status == KpiStatus::Met as i32;
    v
}

/// A KPI by its lower-case proto name without the prefix ("csat", "sla_compliance_rate").
pub fn by_name(name: &str) -> Option<Kpi> {
    let wanted = format!("KPI_{}", name.to_ascii_uppercase());
    DEFS.iter()
        .map(|d| d.kpi)
        .find(|k| k.as_str_name() == wanted)
}

/// The lower-case name of a KPI, for metric labels.
pub fn name(kpi: Kpi) -> String {
    kpi.as_str_name()
        .trim_start_matches("KPI_")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(rows: &[(&str, &str, Add)]) -> Totals {
        let mut t = Totals::default();
        for (m, b, a) in rows {
            t.0.entry(m.to_string())
                .or_default()
                .insert(b.to_string(), *a);
        }
        t
    }

    const J: Judge = Judge {
        min_sample: 5,
        z: stats::Z95,
        level: 0.95,
    };

    #[test]
    fn rates_are_judged_against_their_target_only_with_enough_sample() {
        let d = def_of(Kpi::Csat).unwrap();
        let t = totals(&[(
            "csat",
            "",
            Add {
                n: 10,
                num: 9,
                ..Default::default()
            },
        )]);
        let v = value(d, &t, "", Some(0.9), J);
        assert_eq!(v.value, Some(0.9));
        assert_eq!(v.status, KpiStatus::Met as i32);
        assert!(v.target_met);
        let v = value(d, &t, "", Some(0.95), J);
        assert_eq!(v.status, KpiStatus::Missed as i32);
        let small = totals(&[(
            "csat",
            "",
            Add {
                n: 4,
                num: 1,
                ..Default::default()
            },
        )]);
        let v = value(d, &small, "", Some(0.9), J);
        assert_eq!(v.status, KpiStatus::InsufficientSample as i32);
        assert!(!v.target_met);
        assert!(v.confidence_low.unwrap() < 0.25 && v.confidence_high.unwrap() > 0.25);
        let none = value(d, &Totals::default(), "", Some(0.9), J);
        assert_eq!(none.status, KpiStatus::NoData as i32);
        assert!(none.value.is_none());
    }

    #[test]
    fn complaints_per_100_stays_and_the_median() {
        let t = totals(&[
            (
                "complaints",
                "",
                Add {
                    n: 3,
                    ..Default::default()
                },
            ),
            (
                "stays",
                "",
                Add {
                    n: 60,
                    ..Default::default()
                },
            ),
            (
                "fr_time",
                "bucket:300",
                Add {
                    n: 2,
                    ..Default::default()
                },
            ),
            (
                "fr_time",
                "bucket:900",
                Add {
                    n: 1,
                    ..Default::default()
                },
            ),
            (
                "fr_time",
                "bucket:3600",
                Add {
                    n: 2,
                    ..Default::default()
                },
            ),
        ]);
        let v = value(def_of(Kpi::ComplaintsPer100Stays).unwrap(), &t, "", None, J);
        assert_eq!(v.value, Some(5.0));
        assert_eq!(v.status, KpiStatus::NoTarget as i32);
        let m = value(
            def_of(Kpi::FirstResponseTimeMedian).unwrap(),
            &t,
            "",
            None,
            J,
        );
        assert_eq!(m.value, Some(900.0));
        assert_eq!(m.sample_size, 5);
    }

    #[test]
    fn nps_counts_promoters_minus_detractors() {
        // 10 answers: 6 promoters, 2 detractors.
        let t = totals(&[(
            "nps",
            "",
            Add {
                n: 10,
                num: 6,
                sum: 2.0,
                sum_sq: 0.0,
            },
        )]);
        let v = value(def_of(Kpi::Nps).unwrap(), &t, "", Some(50.0), J);
        assert_eq!(v.value, Some(40.0));
        assert_eq!(v.status, KpiStatus::Missed as i32);
    }
}

//! The daily voice-of-customer report of a property, a region or the chain: volumes by
//! channel and category against the 7 and 30 days before, the top issues with guests' own
//! (redacted) words, open and late cases per department at the end of the day, and the
//! headline KPIs' trend. Built from the rollups (one query over 31 days), the cases' current
//! facts and the stored quotes; html.rs renders it as one self-contained page, mailer.rs
//! sends it to the managers each morning.

pub mod html;
pub mod mailer;
mod sections;

use crate::api::scope::{Resolved, to_date};
use crate::kpi::{self, Totals, def_of};
use crate::state::State;
use crate::store::{report as store, rollups};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use guestloop_proto::metrics::v1::{self as pb, Kpi, ScopeLevel};
use guestloop_proto::time::to_timestamp as ts;
use std::collections::BTreeSet;

/// The KPIs drawn day by day over the last 30 days.
const SERIES: [Kpi; 4] = [
    Kpi::Csat,
    Kpi::Nps,
    Kpi::ComplaintsPer100Stays,
    Kpi::SlaComplianceRate,
];

/// Staff per property in the monthly service-star ranking.
const STARS_PER_PROPERTY: usize = 3;

const TRENDS: [Kpi; 6] = [
    Kpi::Csat,
    Kpi::Nps,
    Kpi::FirstResponseWithinSlaRate,
    Kpi::ResolutionWithinSlaRate,
    Kpi::ComplaintsPer100Stays,
    Kpi::FeedbackResponseRate,
];

/// The time zone a scope's days are counted in: its (first) property's.
pub fn zone(state: &State, r: &Resolved) -> chrono_tz::Tz {
    r.properties
        .first()
        .and_then(|p| state.chain.property(p))
        .and_then(|p| p.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Yesterday in the scope's zone.
pub fn yesterday(state: &State, r: &Resolved) -> NaiveDate {
    Utc::now().with_timezone(&zone(state, r)).date_naive() - Duration::days(1)
}

fn volume(
    days: &[(NaiveDate, &Totals)],
    day: NaiveDate,
    measure: &str,
    breakdown: &str,
) -> pb::Volume {
    let on = |d: NaiveDate| {
        days.iter()
            .filter(|(x, _)| *x == d)
            .map(|(_, t)| t.get(measure, breakdown).n)
            .sum::<i64>()
    };
    let avg = |n: i64| (1..=n).map(|i| on(day - Duration::days(i))).sum::<i64>() as f64 / n as f64;
    pb::Volume {
        count: on(day),
        previous_7_day_average: avg(7),
        previous_30_day_average: avg(30),
    }
}

fn keys(totals: &Totals, measures: &[&str], kind: &str) -> BTreeSet<i32> {
    measures
        .iter()
        .flat_map(|m| totals.breakdowns(m, kind))
        .filter_map(|k| k.split_once(':').and_then(|(_, v)| v.parse().ok()))
        .collect()
}

pub async fn build(
    state: &State,
    r: &Resolved,
    day: NaiveDate,
    top: usize,
) -> Result<pb::VoiceOfCustomerReport, sqlx::Error> {
    let sums = rollups::sums(&state.pool, &r.properties, day - Duration::days(30), day).await?;
    let per_day: Vec<(NaiveDate, Totals)> = (0..=30)
        .map(|i| day - Duration::days(i))
        .map(|d| (d, Totals::from_sums(sums.iter().filter(|s| s.day == d))))
        .collect();
    let days: Vec<(NaiveDate, &Totals)> = per_day.iter().map(|(d, t)| (*d, t)).collect();
    let all = Totals::from_sums(sums.iter());
    let today = Totals::from_sums(sums.iter().filter(|s| s.day == day));
    let prev = |n: i64| {
        Totals::from_sums(
            sums.iter()
                .filter(|s| s.day < day && s.day >= day - Duration::days(n)),
        )
    };

    let channels = keys(&all, &["feedback", "complaints"], "channel")
        .into_iter()
        .map(|c| pb::ChannelVolume {
            channel: c,
            feedback: Some(volume(&days, day, "feedback", &format!("channel:{c}"))),
            complaints: Some(volume(&days, day, "complaints", &format!("channel:{c}"))),
        })
        .collect();
    let categories = keys(&all, &["feedback", "complaints"], "category")
        .into_iter()
        .map(|c| pb::CategoryVolume {
            category: c,
            feedback: Some(volume(&days, day, "feedback", &format!("category:{c}"))),
            complaints: Some(volume(&days, day, "complaints", &format!("category:{c}"))),
        })
        .collect();

    // Top issues: the day's complaint categories, most first, at their usual department.
    let day_complaints = today.get("complaints", "").n;
    let mut issues: Vec<(i64, i32)> = keys(&today, &["complaints"], "category")
        .into_iter()
        .map(|c| (today.get("complaints", &format!("category:{c}")).n, c))
        .filter(|(n, _)| *n > 0)
        .collect();
    issues.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    issues.truncate(top);
    let quotes = store::quotes(&state.pool, &r.properties, day, 3).await?;
    let top_issues = issues
        .into_iter()
        .map(|(n, c)| {
            let prefix = format!("category:{c}:department:");
            let department = all
                .with_prefix("complaints", &prefix)
                .max_by_key(|(_, a)| a.n)
                .and_then(|(b, _)| b[prefix.len()..].parse().ok())
                .unwrap_or(0);
            pb::TopIssue {
                category: c,
                department,
                complaints: Some(volume(&days, day, "complaints", &format!("category:{c}"))),
                share: n as f64 / day_complaints.max(1) as f64,
                example_quotes: quotes
                    .iter()
                    .filter(|q| i32::from(q.category) == c)
                    .map(|q| pb::Quote {
                        feedback_id: q.feedback_id.clone(),
                        property_id: q.property_id.clone(),
                        channel: i32::from(q.channel),
                        language: q.language.clone(),
                        sentiment: i32::from(q.sentiment),
                        excerpt: q.excerpt.clone(),
                        receive_time: Some(ts(q.receive_time)),
                    })
                    .collect(),
            }
        })
        .collect();

    // Cases at the end of the report day, local.
    let end = crate::report::end_of(day, zone(state, r));
    let departments = store::open_by_department(&state.pool, &r.properties, end).await?;
    let late_case_count = departments.iter().map(|d| d.late_count).sum();
    let late = store::late_cases(&state.pool, &r.properties, end, 100).await?;

    let j = state.judge();
    let (p7, p30) = (prev(7), prev(30));
    let kpi_trends = TRENDS
        .iter()
        .map(|k| {
            let d = def_of(*k).expect("a defined KPI");
            let target = kpi::target(*k, &r.standards);
            pb::KpiTrend {
                kpi: *k as i32,
                report_day: Some(kpi::value(d, &today, "", target, j)),
                previous_7_days: Some(kpi::value(d, &p7, "", target, j)),
                previous_30_days: Some(kpi::value(d, &p30, "", target, j)),
            }
        })
        .collect();
    let daily_series = SERIES
        .iter()
        .map(|k| {
            let d = def_of(*k).expect("a defined KPI");
            let target = kpi::target(*k, &r.standards);
            pb::KpiDailySeries {
                kpi: *k as i32,
                days: per_day[..30]
                    .iter()
                    .rev()
                    .map(|(date, t)| pb::KpiDayValue {
                        date: Some(to_date(*date)),
                        value: Some(kpi::value(d, t, "", target, j)),
                    })
                    .collect(),
            }
        })
        .collect();
    let property_comparison = if r.scope.level == ScopeLevel::Property as i32 {
        Vec::new()
    } else {
        crate::api::league::table(state, &r.properties, day - Duration::days(29), day).await?
    };
    let (service_star_month, service_stars) = service_stars(state, r, day).await?;
    let improvement_items = open_items(state, r).await?;
    Ok(pb::VoiceOfCustomerReport {
        scope: Some(r.scope.clone()),
        report_date: Some(to_date(day)),
        generate_time: Some(ts(Utc::now())),
        feedback: Some(volume(&days, day, "feedback", "")),
        complaints: Some(volume(&days, day, "complaints", "")),
        channels,
        categories,
        top_issues,
        open_cases_by_department: departments
            .iter()
            .map(|d| pb::DepartmentCases {
                department: i32::from(d.department),
                open_count: d.open_count,
                late_count: d.late_count,
                high_grade_open_count: d.high_grade_open_count,
                escalated_open_count: d.escalated_open_count,
            })
            .collect(),
        late_cases: late
            .iter()
            .map(|c| pb::LateCase {
                case_id: c.case_id.clone(),
                reference: c.reference.clone(),
                property_id: c.property_id.clone(),
                category: i32::from(c.category),
                department: i32::from(c.department),
                risk_grade: i32::from(c.risk_grade),
                status: i32::from(c.status),
                escalation_tier: i32::from(c.tier),
                open_time: Some(ts(c.open_time)),
                due_time: Some(ts(c.missed)),
            })
            .collect(),
        late_case_count,
        kpi_trends,
        daily_series,
        property_comparison,
        service_star_month,
        service_stars,
        improvement_items,
    })
}

/// The improvement items open in the scope (a region's and the chain's include their
/// regions' own), due first; at most 50.
async fn open_items(state: &State, r: &Resolved) -> Result<Vec<pb::ImprovementItem>, sqlx::Error> {
    let regions = crate::api::scope::regions(state, &r.scope);
    let open = crate::improvement::OPEN.map(|s| s as i16);
    let page = guestloop_db::page::Page {
        size: 50,
        after: None,
    };
    let rows =
        crate::improvement::store::list(&state.pool, &r.properties, &regions, &open, &page).await?;
    let mut items = crate::improvement::views(state, &rows).await?;
    items.sort_by_key(|i| {
        (
            i.due_time
                .map(|t| (t.seconds, t.nanos))
                .unwrap_or((i64::MAX, 0)),
            i.item_id.clone(),
        )
    });
    Ok(items)
}

/// On a month's last day: per property, the staff most praised that month (ties: fewer
/// complaints, then name), only those praised at least once.
async fn service_stars(
    state: &State,
    r: &Resolved,
    day: NaiveDate,
) -> Result<
    (
        Option<guestloop_proto::common::v1::Date>,
        Vec<pb::ServiceStar>,
    ),
    sqlx::Error,
> {
    if (day + Duration::days(1)).day() != 1 {
        return Ok((None, Vec::new()));
    }
    let first = day.with_day(1).expect("the first of the month");
    let mut rows =
        crate::store::mentions::list(&state.pool, &r.properties, first, day, 10_000, 0).await?;
    rows.retain(|m| m.praise > 0);
    rows.sort_by(|a, b| {
        (
            &a.property_id,
            std::cmp::Reverse(a.praise),
            a.complaint,
            &a.staff_name,
        )
            .cmp(&(
                &b.property_id,
                std::cmp::Reverse(b.praise),
                b.complaint,
                &b.staff_name,
            ))
    });
    let mut stars = Vec::new();
    let mut rank = 0;
    let mut at = String::new();
    for m in rows {
        if m.property_id != at {
            at = m.property_id.clone();
            rank = 0;
        }
        rank += 1;
        if rank as usize > STARS_PER_PROPERTY {
            continue;
        }
        stars.push(pb::ServiceStar {
            rank,
            staff: Some(pb::StaffMentionCount {
                staff_id: m.staff_id,
                staff_name: m.staff_name,
                property_id: m.property_id,
                department: i32::from(m.department),
                praise_count: m.praise,
                complaint_count: m.complaint,
            }),
        });
    }
    Ok((Some(to_date(first)), stars))
}

/// The first instant after `day` in `tz`.
pub fn end_of(day: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let next = (day + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    tz.from_local_datetime(&next)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&next))
}

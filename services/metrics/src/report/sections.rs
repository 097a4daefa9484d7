//! The report's multi-day sections (issue 13), beside html.rs's page: the 30-day SVG line
//! of each series KPI, the properties compared, the open improvement items and the month's
//! service stars. Same rules as the page: inline SVG, every text from the data escaped.

use super::html::{Labels, escape, kpi_text};
use crate::kpi;
use guestloop_config::ChainDirectory;
use guestloop_proto::metrics::v1::{self as pb, KpiStatus, KpiUnit};
use std::fmt::Write;

fn kpi_title(k: i32) -> String {
    let k = pb::Kpi::try_from(k).unwrap_or_default();
    let n = kpi::name(k).replace('_', " ");
    match k {
        pb::Kpi::Csat | pb::Kpi::Nps => n.to_uppercase(),
        _ => {
            let mut c = n.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

/// The value as drawn and shown: rates in per cent, the rest as they are.
fn plotted(v: &pb::KpiValue) -> Option<f64> {
    let x = v.value?;
    Some(match KpiUnit::try_from(v.unit).unwrap_or_default() {
        KpiUnit::Ratio => x * 100.0,
        _ => x,
    })
}

/// One KPI's 30 days as an SVG line: judged days as filled dots, days below the minimum
/// sample hollow, days without data leave a gap; the target as a dashed line.
pub fn line_chart(s: &pb::KpiDailySeries, l_target: &str) -> String {
    const W: f64 = 440.0;
    const H: f64 = 120.0;
    const LEFT: f64 = 44.0;
    const TOP: f64 = 8.0;
    let points: Vec<(usize, f64, bool)> = s
        .days
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let v = d.value.as_ref()?;
            let judged = v.status != KpiStatus::InsufficientSample as i32;
            plotted(v).map(|y| (i, y, judged))
        })
        .collect();
    let target = s
        .days
        .iter()
        .rev()
        .find_map(|d| d.value.as_ref().and_then(|v| v.target))
        .map(|t| {
            plotted(&pb::KpiValue {
                value: Some(t),
                unit: s
                    .days
                    .first()
                    .and_then(|d| d.value)
                    .map(|v| v.unit)
                    .unwrap_or(0),
                ..Default::default()
            })
            .unwrap_or(t)
        });
    let ys = points.iter().map(|p| p.1).chain(target);
    let (mut lo, mut hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.1;
    let (lo, hi) = (lo - pad, hi + pad);
    let n = s.days.len().max(2) as f64 - 1.0;
    let x = |i: usize| LEFT + i as f64 / n * (W - LEFT - 8.0);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - 20.0);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img"><rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#ddd"/><text x="0" y="{ty1}" font-size="10">{hi:.0}</text><text x="0" y="{ty2}" font-size="10">{lo:.0}</text>"##,
        pw = W - LEFT - 8.0,
        ph = H - TOP - 20.0,
        ty1 = TOP + 8.0,
        ty2 = H - 20.0,
    );
    if let Some(t) = target {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{ty}" y2="{ty}" stroke="#59a14f" stroke-dasharray="4 3"/><text x="{tx}" y="{tty}" font-size="10" fill="#59a14f">{} {t:.0}</text>"##,
            escape(l_target),
            x2 = W - 8.0,
            ty = y(t),
            tx = W - 70.0,
            tty = y(t) - 3.0,
        );
    }
    // Consecutive days joined; a day without data breaks the line.
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut last: Option<usize> = None;
    for (i, v, _) in &points {
        if last.is_none_or(|l| l + 1 != *i) {
            runs.push(Vec::new());
        }
        if let Some(run) = runs.last_mut() {
            run.push(format!("{:.1},{:.1}", x(*i), y(*v)));
        }
        last = Some(*i);
    }
    for run in runs.iter().filter(|r| r.len() > 1) {
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="#4e79a7" stroke-width="1.5" points="{}"/>"##,
            run.join(" ")
        );
    }
    for (i, v, judged) in &points {
        let fill = if *judged { "#4e79a7" } else { "#fff" };
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{fill}" stroke="#4e79a7"/>"##,
            x(*i),
            y(*v)
        );
    }
    let date = |d: Option<&pb::KpiDayValue>| {
        d.and_then(|d| d.date)
            .map(|d| format!("{:02}-{:02}", d.month, d.day))
            .unwrap_or_default()
    };
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{by}" font-size="10">{}</text><text x="{ex}" y="{by}" font-size="10">{}</text></svg>"##,
        date(s.days.first()),
        date(s.days.last()),
        by = H - 6.0,
        ex = W - 40.0,
    );
    svg
}

pub(super) fn series(h: &mut String, r: &pb::VoiceOfCustomerReport, l: &Labels) {
    if r.daily_series.is_empty() {
        return;
    }
    let _ = write!(h, "<h2>{}</h2>", l.last30);
    for s in &r.daily_series {
        let _ = write!(
            h,
            "<h3>{}</h3>{}",
            escape(&kpi_title(s.kpi)),
            line_chart(s, l.target)
        );
    }
}

/// Properties shown in full up to this many; past it the best and the worst half of it.
const COMPARED_IN_FULL: usize = 20;

pub(super) fn comparison(h: &mut String, r: &pb::VoiceOfCustomerReport, l: &Labels) {
    let rows = &r.property_comparison;
    if rows.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<h2>{}</h2><table><tr><th>#</th><th>{}</th><th>SLA</th><th>CSAT</th><th>NPS</th><th>{}/100</th></tr>",
        l.compare, l.property, l.complaints
    );
    let row = |h: &mut String, x: &pb::LeagueTableRow| {
        let rank = if x.rank == 0 {
            "–".to_string()
        } else {
            let moved = match (x.previous_rank, x.rank) {
                (0, _) => "",
                (p, n) if n < p => " ▲",
                (p, n) if n > p => " ▼",
                _ => "",
            };
            format!("{}{moved}", x.rank)
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            rank,
            escape(&x.property_name),
            kpi_text(&x.sla_compliance),
            kpi_text(&x.csat),
            kpi_text(&x.nps),
            kpi_text(&x.complaints_per_100_stays),
        );
    };
    if rows.len() <= COMPARED_IN_FULL {
        rows.iter().for_each(|x| row(h, x));
    } else {
        let half = COMPARED_IN_FULL / 2;
        rows[..half].iter().for_each(|x| row(h, x));
        let _ = write!(
            h,
            "<tr><td colspan=\"6\"><small>… {} {} …</small></td></tr>",
            rows.len() - COMPARED_IN_FULL,
            l.more
        );
        rows[rows.len() - half..].iter().for_each(|x| row(h, x));
    }
    h.push_str("</table>");
}

pub(super) fn improvement(h: &mut String, r: &pb::VoiceOfCustomerReport, l: &Labels) {
    let _ = write!(h, "<h2>{}</h2>", l.improvement);
    if r.improvement_items.is_empty() {
        let _ = write!(h, "<p>{}</p>", l.no_items);
        return;
    }
    let _ = write!(
        h,
        "<table><tr><th></th><th>PDCA</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        l.owner, l.due, l.baseline, l.now, l.target
    );
    for i in &r.improvement_items {
        let state = pb::ImprovementState::try_from(i.state)
            .unwrap_or_default()
            .as_str_name()
            .trim_start_matches("IMPROVEMENT_STATE_")
            .to_string();
        let due = i
            .due_time
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let late = if i.overdue {
            format!(" <b>{}</b>", l.overdue)
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            escape(&i.title),
            state,
            escape(&i.owner_staff_id),
            due,
            late,
            kpi_text(&i.baseline),
            kpi_text(&i.current),
            i.target_rate
        );
    }
    h.push_str("</table>");
}

pub(super) fn stars(
    h: &mut String,
    r: &pb::VoiceOfCustomerReport,
    l: &Labels,
    chain: &ChainDirectory,
) {
    let Some(month) = r.service_star_month else {
        return;
    };
    let _ = write!(
        h,
        "<h2>{} {:04}-{:02}</h2>",
        l.stars, month.year, month.month
    );
    if r.service_stars.is_empty() {
        let _ = write!(h, "<p>{}</p>", l.none);
        return;
    }
    let _ = write!(
        h,
        "<table><tr><th>#</th><th></th><th>{}</th><th>{}</th><th>{}</th></tr>",
        l.property, l.praise, l.complaints
    );
    for s in &r.service_stars {
        let m = s.staff.clone().unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.rank,
            escape(&m.staff_name),
            escape(
                &chain
                    .property(&m.property_id)
                    .map(|p| p.name.clone())
                    .unwrap_or(m.property_id.clone())
            ),
            m.praise_count,
            m.complaint_count
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_breaks_where_a_day_has_no_data_and_thin_days_are_hollow() {
        // (value, status) per day; None: no data that day.
        let days: [Option<(f64, KpiStatus)>; 7] = [
            Some((0.9, KpiStatus::Met)),
            Some((0.8, KpiStatus::Missed)),
            Some((0.95, KpiStatus::InsufficientSample)),
            None,
            Some((0.7, KpiStatus::Missed)),
            Some((0.92, KpiStatus::Met)),
            None,
        ];
        let s = pb::KpiDailySeries {
            kpi: pb::Kpi::Csat as i32,
            days: days
                .iter()
                .enumerate()
                .map(|(i, d)| pb::KpiDayValue {
                    date: Some(guestloop_proto::common::v1::Date {
                        year: 2026,
                        month: 11,
                        day: i as i32 + 1,
                    }),
                    value: Some(pb::KpiValue {
                        value: d.map(|x| x.0),
                        status: d.map(|x| x.1 as i32).unwrap_or(KpiStatus::NoData as i32),
                        unit: KpiUnit::Ratio as i32,
                        target: Some(0.9),
                        ..Default::default()
                    }),
                })
                .collect(),
        };
        let svg = line_chart(&s, "target");
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 5);
        assert_eq!(svg.matches(r##"fill="#fff""##).count(), 1, "one thin day");
        assert!(svg.contains("target 90"), "the target in per cent: {svg}");
        assert!(svg.contains(">11-01<") && svg.contains(">11-07<"));
    }
}

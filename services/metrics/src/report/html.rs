//! The voice-of-customer report as one self-contained HTML page: inline CSS, inline SVG bar
//! charts, no script and no external resource, so it opens from a mail attachment or a
//! file share. Every text from the data is HTML-escaped. Headings come in en, zh-CN and
//! zh-TW; names of channels, categories and departments are shown in English.

use crate::kpi::{self, def_of};
use guestloop_config::ChainDirectory;
use guestloop_proto::common::v1::Department;
use guestloop_proto::feedback::v1::{Category, FeedbackChannel};
use guestloop_proto::metrics::v1::{self as pb, KpiStatus, KpiUnit, ScopeLevel};
use std::fmt::Write;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "CATEGORY_ROOM_CLEANLINESS" → "Room cleanliness".
fn pretty(name: &str, prefix: &str) -> String {
    let s = name
        .trim_start_matches(prefix)
        .replace('_', " ")
        .to_lowercase();
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn channel(c: i32) -> String {
    FeedbackChannel::try_from(c)
        .map(|x| pretty(x.as_str_name(), "FEEDBACK_CHANNEL_"))
        .unwrap_or_else(|_| c.to_string())
}
fn category(c: i32) -> String {
    Category::try_from(c)
        .map(|x| pretty(x.as_str_name(), "CATEGORY_"))
        .unwrap_or_else(|_| c.to_string())
}
fn department(d: i32) -> String {
    Department::try_from(d)
        .map(|x| pretty(x.as_str_name(), "DEPARTMENT_"))
        .unwrap_or_else(|_| d.to_string())
}

struct Labels {
    title: &'static str,
    feedback: &'static str,
    complaints: &'static str,
    vs: &'static str,
    channels: &'static str,
    categories: &'static str,
    top: &'static str,
    open: &'static str,
    late: &'static str,
    kpis: &'static str,
    day: &'static str,
    prev7: &'static str,
    prev30: &'static str,
    none: &'static str,
    last30: &'static str,
    target: &'static str,
    compare: &'static str,
    property: &'static str,
    no_open: &'static str,
    no_late: &'static str,
    stars: &'static str,
    praise: &'static str,
    more: &'static str,
    improvement: &'static str,
    no_items: &'static str,
    overdue: &'static str,
}

fn labels(language: &str) -> Labels {
    match language {
        "zh-CN" => Labels {
            title: "宾客之声日报",
            feedback: "反馈",
            complaints: "投诉",
            vs: "对比前7天 / 前30天日均",
            channels: "渠道",
            categories: "类别",
            top: "主要问题",
            open: "各部门未结案件",
            late: "逾期案件",
            kpis: "关键指标趋势",
            day: "当日",
            prev7: "前7天",
            prev30: "前30天",
            none: "无",
            last30: "近30天每日走势",
            target: "目标",
            compare: "各酒店对比（近30天）",
            property: "酒店",
            no_open: "没有未结案件",
            no_late: "没有逾期案件",
            stars: "服务之星",
            praise: "表扬",
            more: "其余",
            improvement: "改进项目",
            no_items: "没有进行中的改进项目",
            overdue: "已逾期",
        },
        "zh-TW" => Labels {
            title: "賓客之聲日報",
            feedback: "回饋",
            complaints: "投訴",
            vs: "對比前7天 / 前30天日均",
            channels: "管道",
            categories: "類別",
            top: "主要問題",
            open: "各部門未結案件",
            late: "逾期案件",
            kpis: "關鍵指標趨勢",
            day: "當日",
            prev7: "前7天",
            prev30: "前30天",
            none: "無",
            last30: "近30天每日走勢",
            target: "目標",
            compare: "各酒店對比（近30天）",
            property: "酒店",
            no_open: "沒有未結案件",
            no_late: "沒有逾期案件",
            stars: "服務之星",
            praise: "表揚",
            more: "其餘",
            improvement: "改進項目",
            no_items: "沒有進行中的改進項目",
            overdue: "已逾期",
        },
        _ => Labels {
            title: "Voice of the customer",
            feedback: "Feedback",
            complaints: "Complaints",
            vs: "vs. daily average of the 7 / 30 days before",
            channels: "Channels",
            categories: "Categories",
            top: "Top issues",
            open: "Open cases by department",
            late: "Late cases",
            kpis: "KPI trend",
            day: "Report day",
            prev7: "Previous 7 days",
            prev30: "Previous 30 days",
            none: "None",
            last30: "Day by day, last 30 days",
            target: "target",
            compare: "Properties compared (last 30 days)",
            property: "Property",
            no_open: "No open cases",
            no_late: "No late cases",
            stars: "Service stars",
            praise: "praise",
            more: "more",
            improvement: "Improvement items",
            no_items: "No open improvement items",
            overdue: "overdue",
        },
    }
}

fn kpi_text(v: &Option<pb::KpiValue>) -> String {
    let Some(v) = v else {
        return "–".into();
    };
    let Some(x) = v.value else {
        return "–".into();
    };
    let shown = match KpiUnit::try_from(v.unit).unwrap_or_default() {
        KpiUnit::Ratio => format!("{:.1}%", x * 100.0),
        _ => format!("{x:.1}"),
    };
    let mark = match KpiStatus::try_from(v.status).unwrap_or_default() {
        KpiStatus::Met => " ✓",
        KpiStatus::Missed => " ✗",
        KpiStatus::InsufficientSample => " (n<min)",
        _ => "",
    };
    format!("{shown}{mark} <small>n={}</small>", v.sample_size)
}

/// A horizontal bar chart of (label, feedback, complaints) pairs.
fn bars(rows: &[(String, i64, i64)], l: &Labels) -> String {
    if rows.is_empty() {
        return format!("<p>{}</p>", l.none);
    }
    let max = rows.iter().map(|r| r.1.max(r.2)).max().unwrap_or(1).max(1) as f64;
    let h = 22 * rows.len() as i32 + 24;
    let mut svg =
        format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="560" height="{h}" role="img">"#);
    for (i, (label, f, c)) in rows.iter().enumerate() {
        let y = 22 * i as i32;
        let wf = (*f as f64 / max * 300.0).round();
        let wc = (*c as f64 / max * 300.0).round();
        let _ = write!(
            svg,
            r##"<text x="0" y="{ty}" font-size="12">{label}</text><rect x="170" y="{y}" width="{wf}" height="9" fill="#4e79a7"/><rect x="170" y="{y2}" width="{wc}" height="9" fill="#e15759"/><text x="{tx}" y="{ty}" font-size="11">{f} / {c}</text>"##,
            ty = y + 14,
            y2 = y + 10,
            tx = 175.0 + wf.max(wc),
            label = escape(label),
        );
    }
    let _ = write!(
        svg,
        r##"<rect x="170" y="{a}" width="10" height="10" fill="#4e79a7"/><text x="184" y="{b}" font-size="11">{}</text><rect x="270" y="{a}" width="10" height="10" fill="#e15759"/><text x="284" y="{b}" font-size="11">{}</text></svg>"##,
        l.feedback,
        l.complaints,
        a = h - 14,
        b = h - 5,
    );
    svg
}

fn vol(v: &Option<pb::Volume>) -> String {
    let v = (*v).unwrap_or_default();
    format!(
        "<b>{}</b> <small>({:.1} / {:.1})</small>",
        v.count, v.previous_7_day_average, v.previous_30_day_average
    )
}

/// The name of the report's scope: the property's or region's, or the chain's.
pub fn scope_name(r: &pb::VoiceOfCustomerReport, chain: &ChainDirectory) -> String {
    let scope = r.scope.clone().unwrap_or_default();
    match ScopeLevel::try_from(scope.level).unwrap_or_default() {
        ScopeLevel::Property => chain
            .property(&scope.id)
            .map(|p| p.name.clone())
            .unwrap_or(scope.id.clone()),
        ScopeLevel::Region => chain
            .region(&scope.id)
            .map(|x| x.name.clone())
            .unwrap_or(scope.id.clone()),
        _ => chain.name.clone(),
    }
}

pub fn render(r: &pb::VoiceOfCustomerReport, chain: &ChainDirectory, language: &str) -> String {
    let l = labels(language);
    let scope_name = scope_name(r, chain);
    let date = r
        .report_date
        .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        .unwrap_or_default();
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title} – {name} – {date}</title><style>
body{{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;max-width:960px}}
h1{{font-size:1.5em}} h2{{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}}
table{{border-collapse:collapse;width:100%}} td,th{{border-bottom:1px solid #eee;padding:.3em .5em;text-align:left;font-size:.92em}}
.cards{{display:flex;gap:1em}} .card{{border:1px solid #ddd;border-radius:6px;padding:.8em 1.2em}}
blockquote{{margin:.2em 0 .2em 1em;color:#555;font-style:italic}} small{{color:#777}}
</style></head><body>"#,
        lang = escape(if language.is_empty() { "en" } else { language }),
        title = l.title,
        name = escape(&scope_name),
        date = date,
    );
    let _ = write!(
        h,
        r#"<h1>{} – {} – {}</h1><div class="cards"><div class="card">{}<br>{}</div><div class="card">{}<br>{}</div></div><p><small>{}</small></p>"#,
        l.title,
        escape(&scope_name),
        date,
        l.feedback,
        vol(&r.feedback),
        l.complaints,
        vol(&r.complaints),
        l.vs
    );
    let ch: Vec<(String, i64, i64)> = r
        .channels
        .iter()
        .map(|c| {
            (
                channel(c.channel),
                c.feedback.as_ref().map(|v| v.count).unwrap_or(0),
                c.complaints.as_ref().map(|v| v.count).unwrap_or(0),
            )
        })
        .filter(|r| r.1 + r.2 > 0)
        .collect();
    let _ = write!(h, "<h2>{}</h2>{}", l.channels, bars(&ch, &l));
    let cat: Vec<(String, i64, i64)> = r
        .categories
        .iter()
        .map(|c| {
            (
                category(c.category),
                c.feedback.as_ref().map(|v| v.count).unwrap_or(0),
                c.complaints.as_ref().map(|v| v.count).unwrap_or(0),
            )
        })
        .filter(|r| r.1 + r.2 > 0)
        .collect();
    let _ = write!(h, "<h2>{}</h2>{}", l.categories, bars(&cat, &l));
    let _ = write!(h, "<h2>{}</h2>", l.top);
    if r.top_issues.is_empty() {
        let _ = write!(h, "<p>{}</p>", l.none);
    }
    for t in &r.top_issues {
        let _ = write!(
            h,
            "<h3>{} <small>({}, {:.0}%, {})</small></h3>",
            escape(&category(t.category)),
            escape(&department(t.department)),
            t.share * 100.0,
            vol(&t.complaints)
        );
        for q in &t.example_quotes {
            let _ = write!(
                h,
                "<blockquote>“{}” <small>{}</small></blockquote>",
                escape(&q.excerpt),
                escape(&channel(q.channel))
            );
        }
    }
    let _ = write!(h, "<h2>{}</h2>", l.open);
    if r.open_cases_by_department.is_empty() {
        let _ = write!(h, "<p>{}</p>", l.no_open);
    } else {
        h.push_str("<table><tr><th></th><th>open</th><th>late</th><th>high grade</th><th>escalated</th></tr>");
    }
    for d in &r.open_cases_by_department {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&department(d.department)),
            d.open_count,
            d.late_count,
            d.high_grade_open_count,
            d.escalated_open_count
        );
    }
    if !r.open_cases_by_department.is_empty() {
        h.push_str("</table>");
    }
    let _ = write!(h, "<h2>{} ({})</h2>", l.late, r.late_case_count);
    if r.late_cases.is_empty() {
        let _ = write!(h, "<p>{}</p>", l.no_late);
    }
    h.push_str("<table>");
    for c in &r.late_cases {
        let due = c
            .due_time
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.reference),
            escape(&category(c.category)),
            escape(&department(c.department)),
            due
        );
    }
    let _ = write!(
        h,
        "</table><h2>{}</h2><table><tr><th></th><th>{}</th><th>{}</th><th>{}</th><th>target</th></tr>",
        l.kpis, l.day, l.prev7, l.prev30
    );
    for t in &r.kpi_trends {
        let k = pb::Kpi::try_from(t.kpi).unwrap_or_default();
        let target = t
            .report_day
            .and_then(|v| v.target)
            .map(|x| match def_of(k).map(|d| d.unit) {
                Some(KpiUnit::Ratio) => format!("{:.0}%", x * 100.0),
                _ => format!("{x}"),
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&kpi::name(k).replace('_', " ")),
            kpi_text(&t.report_day),
            kpi_text(&t.previous_7_days),
            kpi_text(&t.previous_30_days),
            target
        );
    }
    h.push_str("</table>");
    series_section(&mut h, r, &l);
    comparison_section(&mut h, r, &l);
    improvement_section(&mut h, r, &l);
    stars_section(&mut h, r, &l, chain);
    h.push_str("</body></html>\n");
    h
}

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

fn series_section(h: &mut String, r: &pb::VoiceOfCustomerReport, l: &Labels) {
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

fn comparison_section(h: &mut String, r: &pb::VoiceOfCustomerReport, l: &Labels) {
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

fn improvement_section(h: &mut String, r: &pb::VoiceOfCustomerReport, l: &Labels) {
    let _ = write!(h, "<h2>{}</h2>", l.improvement);
    if r.improvement_items.is_empty() {
        let _ = write!(h, "<p>{}</p>", l.no_items);
        return;
    }
    h.push_str("<table><tr><th></th><th>PDCA</th><th>owner</th><th>due</th><th>baseline</th><th>now</th><th>target</th></tr>");
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

fn stars_section(
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
    fn data_is_escaped_and_names_are_readable() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
        assert_eq!(
            pretty("CATEGORY_ROOM_CLEANLINESS", "CATEGORY_"),
            "Room cleanliness"
        );
    }

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

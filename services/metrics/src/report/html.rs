//! The voice-of-customer report as one self-contained HTML page: inline CSS, inline SVG bar
//! charts, no script and no external resource, so it opens from a mail attachment or a
//! file share. Every text from the data is HTML-escaped. Headings come in en, zh-CN and
//! zh-TW; names of channels, categories and departments are shown in English.

use super::sections;
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
pub(crate) fn category(c: i32) -> String {
    Category::try_from(c)
        .map(|x| pretty(x.as_str_name(), "CATEGORY_"))
        .unwrap_or_else(|_| c.to_string())
}
fn department(d: i32) -> String {
    Department::try_from(d)
        .map(|x| pretty(x.as_str_name(), "DEPARTMENT_"))
        .unwrap_or_else(|_| d.to_string())
}

pub(super) struct Labels {
    pub(super) title: &'static str,
    pub(super) feedback: &'static str,
    pub(super) complaints: &'static str,
    pub(super) vs: &'static str,
    pub(super) channels: &'static str,
    pub(super) categories: &'static str,
    pub(super) top: &'static str,
    pub(super) open: &'static str,
    pub(super) late: &'static str,
    pub(super) kpis: &'static str,
    pub(super) day: &'static str,
    pub(super) prev7: &'static str,
    pub(super) prev30: &'static str,
    pub(super) none: &'static str,
    pub(super) last30: &'static str,
    pub(super) target: &'static str,
    pub(super) compare: &'static str,
    pub(super) property: &'static str,
    pub(super) no_open: &'static str,
    pub(super) no_late: &'static str,
    pub(super) stars: &'static str,
    pub(super) praise: &'static str,
    pub(super) more: &'static str,
    pub(super) improvement: &'static str,
    pub(super) no_items: &'static str,
    pub(super) overdue: &'static str,
    pub(super) owner: &'static str,
    pub(super) due: &'static str,
    pub(super) baseline: &'static str,
    pub(super) now: &'static str,
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
            owner: "负责人",
            due: "期限",
            baseline: "基线",
            now: "当前",
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
            owner: "負責人",
            due: "期限",
            baseline: "基線",
            now: "目前",
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
            owner: "owner",
            due: "due",
            baseline: "baseline",
            now: "now",
        },
    }
}

pub(super) fn kpi_text(v: &Option<pb::KpiValue>) -> String {
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
    sections::series(&mut h, r, &l);
    sections::comparison(&mut h, r, &l);
    sections::improvement(&mut h, r, &l);
    sections::stars(&mut h, r, &l, chain);
    h.push_str("</body></html>\n");
    h
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
    fn the_improvement_table_speaks_the_readers_language() {
        let report = pb::VoiceOfCustomerReport {
            improvement_items: vec![pb::ImprovementItem {
                title: "Noise".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        for (language, heads) in [
            ("en", ["owner", "due", "baseline", "now", "target"]),
            ("zh-CN", ["负责人", "期限", "基线", "当前", "目标"]),
            ("zh-TW", ["負責人", "期限", "基線", "目前", "目標"]),
        ] {
            let mut h = String::new();
            super::super::sections::improvement(&mut h, &report, &labels(language));
            for head in heads {
                assert!(h.contains(&format!("<th>{head}</th>")), "{language}: {h}");
            }
        }
    }
}

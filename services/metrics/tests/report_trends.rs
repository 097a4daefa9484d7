//! The report's multi-day parts, against numbers counted here: the 30-day series of CSAT,
//! NPS, complaints per 100 stays and SLA compliance (oldest first, each day judged on its
//! own sample, gaps where there is no data), the property comparison of a region (absent
//! from a property's report), the month-end service stars (per property, most praise
//! first, ties by fewer complaints, only the month's mentions, three at most), and the page
//! saying "no open cases" rather than showing an empty table.

mod common;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use common::*;
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::feedback::v1::{Sentiment, StaffMention};
use guestloop_proto::metrics::v1::{self as pb, Kpi, KpiStatus};

/// Noon local (UTC+8, every east property) on `day`.
fn noon(day: NaiveDate) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).expect("noon"))
        .single()
        .expect("no DST")
        .with_timezone(&Utc)
}

async fn report(app: &TestApp, scope: pb::Scope, day: NaiveDate) -> pb::VoiceOfCustomerReport {
    app.head_office()
        .get_voice_of_customer_report(pb::GetVoiceOfCustomerReportRequest {
            scope: Some(scope),
            report_date: Some(date(day)),
            top_issue_limit: 0,
        })
        .await
        .unwrap_or_else(|s| panic!("report: {s:?}"))
        .into_inner()
        .report
        .expect("report")
}

fn series(r: &pb::VoiceOfCustomerReport, kpi: Kpi) -> &pb::KpiDailySeries {
    r.daily_series
        .iter()
        .find(|s| s.kpi == kpi as i32)
        .unwrap_or_else(|| panic!("no series for {kpi:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_series_and_the_comparison_follow_the_days() {
    let app = TestApp::spawn("").await; // min_sample = 5
    let day = local_day("sh-bund", Utc::now()) - Duration::days(2);
    let mut events = Vec::new();
    // The report day: sh-bund 5 of 6 satisfied (4-5 of 5), hz-lake 1 of 5.
    for csat in [5, 5, 4, 4, 5, 2] {
        events.push(csat_answer("sh-bund", csat, noon(day)));
    }
    for csat in [5, 1, 2, 3, 1] {
        events.push(csat_answer("hz-lake", csat, noon(day)));
    }
    // Three days before: two answers, both satisfied: shown, below the minimum sample.
    for _ in 0..2 {
        events.push(csat_answer("sh-bund", 5, noon(day - Duration::days(3))));
    }
    // 30 days before the report day: outside the series' window (day-29 ..= day).
    events.push(csat_answer("sh-bund", 1, noon(day - Duration::days(30))));
    // The day after: not in a report of `day`.
    events.push(csat_answer("sh-bund", 1, noon(day + Duration::days(1))));
    app.deliver(events).await;

    let r = report(&app, region("east"), day).await;
    let kpis: Vec<i32> = r.daily_series.iter().map(|s| s.kpi).collect();
    assert_eq!(
        kpis,
        [
            Kpi::Csat,
            Kpi::Nps,
            Kpi::ComplaintsPer100Stays,
            Kpi::SlaComplianceRate
        ]
        .map(|k| k as i32)
    );
    for s in &r.daily_series {
        let dates: Vec<_> = s.days.iter().map(|d| d.date.expect("date")).collect();
        let want: Vec<_> = (0..30)
            .rev()
            .map(|i| date(day - Duration::days(i)))
            .collect();
        assert_eq!(
            dates, want,
            "30 days, oldest first, ending on the report day"
        );
    }
    let csat = series(&r, Kpi::Csat);
    let with_data: Vec<(usize, f64, i32, i64)> = csat
        .days
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let v = d.value.expect("a value per day");
            v.value.map(|x| (i, x, v.status, v.sample_size))
        })
        .collect();
    assert_eq!(with_data.len(), 2, "{with_data:?}");
    let (i, x, status, n) = with_data[0];
    assert_eq!(
        (i, n, status),
        (26, 2, KpiStatus::InsufficientSample as i32)
    );
    assert!((x - 1.0).abs() < 1e-9);
    let (i, x, status, n) = with_data[1];
    assert_eq!((i, n), (29, 11));
    assert!((x - 6.0 / 11.0).abs() < 1e-9, "{x}");
    assert_eq!(status, KpiStatus::Missed as i32, "6/11 against 90 %");

    // The region's properties over the 30 days; no cases, so nobody is ranked on SLA.
    let rows: Vec<(&str, i32, f64, i64)> = r
        .property_comparison
        .iter()
        .map(|p| {
            let c = p.csat.expect("csat");
            (
                p.property_id.as_str(),
                p.rank,
                c.value.unwrap_or(-1.0),
                c.sample_size,
            )
        })
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0, rows[0].1, rows[0].3), ("hz-lake", 0, 5));
    assert!((rows[0].2 - 0.2).abs() < 1e-9);
    assert_eq!((rows[1].0, rows[1].1, rows[1].3), ("sh-bund", 0, 8));
    assert!((rows[1].2 - 7.0 / 8.0).abs() < 1e-9);

    let own = report(&app, property("sh-bund"), day).await;
    assert!(own.property_comparison.is_empty());
    let own_csat: Vec<i64> = series(&own, Kpi::Csat)
        .days
        .iter()
        .map(|d| d.value.expect("value").sample_size)
        .filter(|n| *n > 0)
        .collect();
    assert_eq!(own_csat, [2, 6]);

    // The page: one chart per series, a dot per day with data, and no empty case table.
    let page = app
        .head_office()
        .render_voice_of_customer_report(pb::RenderVoiceOfCustomerReportRequest {
            scope: Some(region("east")),
            report_date: Some(date(day)),
            language: "zh-CN".into(),
            top_issue_limit: 0,
        })
        .await
        .expect("render")
        .into_inner()
        .html;
    assert!(page.contains("近30天每日走势"));
    assert!(page.contains("各酒店对比"));
    assert!(page.contains("没有未结案件"), "no open cases said in words");
    assert!(!page.contains("<th>open</th>"), "no empty table");
    let dots: usize = r
        .daily_series
        .iter()
        .flat_map(|s| &s.days)
        .filter(|d| d.value.and_then(|v| v.value).is_some())
        .count();
    assert_eq!(page.matches("<circle").count(), dots);
    assert_eq!(page.matches("<polyline").count(), 0, "no two days in a row");
}

fn praised(
    property: &str,
    at: DateTime<Utc>,
    who: &[(&str, &str, Sentiment)],
) -> ev::EventEnvelope {
    let id = new_id("fb");
    envelope(
        "feedback-intake",
        "feedback",
        &id,
        property,
        at,
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: id.clone(),
            property_id: property.into(),
            channel: 2,
            receive_time: Some(ts(at)),
            staff_mentions: who
                .iter()
                .map(|(id, name, s)| StaffMention {
                    staff_id: id.to_string(),
                    staff_name: name.to_string(),
                    department: 2,
                    sentiment: *s as i32,
                })
                .collect(),
            ..Default::default()
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_month_end_report_names_each_propertys_service_stars() {
    use Sentiment::{Negative as N, Positive as P};
    let app = TestApp::spawn("").await;
    let today = local_day("sh-bund", Utc::now());
    let month_end = today.with_day(1).expect("first") - Duration::days(1);
    let first = month_end.with_day(1).expect("first");
    let mid = noon(first + Duration::days(10));
    let mut events = vec![
        // s-wang: 3 praise, 0 complaints; s-li: 3 praise, 1 complaint; s-zhao 1 praise;
        // s-qian 1 praise 2 complaints (fourth: left out); Tom only complained.
        praised("sh-bund", mid, &[("s-wang", "Wang", P), ("s-li", "Li", P)]),
        praised("sh-bund", mid, &[("s-wang", "Wang", P), ("s-li", "Li", P)]),
        praised(
            "sh-bund",
            noon(month_end),
            &[("s-wang", "Wang", P), ("s-li", "Li", P)],
        ),
        praised(
            "sh-bund",
            noon(first),
            &[("s-li", "Li", N), ("s-zhao", "Zhao", P)],
        ),
        praised(
            "sh-bund",
            mid,
            &[("s-qian", "Qian", P), ("s-qian", "Qian", N)],
        ),
        praised("sh-bund", mid, &[("s-qian", "Qian", N), ("", "Tom", N)]),
        praised("hz-lake", mid, &[("s-hu", "Hu", P)]),
    ];
    // Outside the month: the day before it and the day after it.
    events.push(praised(
        "sh-bund",
        noon(first - Duration::days(1)),
        &[("s-zhao", "Zhao", P); 3],
    ));
    events.push(praised(
        "sh-bund",
        noon(month_end + Duration::days(1)),
        &[("s-zhao", "Zhao", P); 3],
    ));
    app.deliver(events).await;

    let r = report(&app, region("east"), month_end).await;
    assert_eq!(r.service_star_month, Some(date(first)));
    let stars: Vec<(&str, i32, &str, i64, i64)> = r
        .service_stars
        .iter()
        .map(|s| {
            let m = s.staff.as_ref().expect("staff");
            (
                m.property_id.as_str(),
                s.rank,
                m.staff_id.as_str(),
                m.praise_count,
                m.complaint_count,
            )
        })
        .collect();
    assert_eq!(
        stars,
        [
            ("hz-lake", 1, "s-hu", 1, 0),
            ("sh-bund", 1, "s-wang", 3, 0),
            ("sh-bund", 2, "s-li", 3, 1),
            ("sh-bund", 3, "s-zhao", 1, 0),
        ]
    );
    let own = report(&app, property("hz-lake"), month_end).await;
    assert_eq!(own.service_stars.len(), 1);
    let before = report(&app, property("sh-bund"), month_end - Duration::days(1)).await;
    assert!(before.service_star_month.is_none() && before.service_stars.is_empty());

    let page = app
        .head_office()
        .render_voice_of_customer_report(pb::RenderVoiceOfCustomerReportRequest {
            scope: Some(region("east")),
            report_date: Some(date(month_end)),
            language: "en".into(),
            top_issue_limit: 0,
        })
        .await
        .expect("render")
        .into_inner()
        .html;
    assert!(page.contains(&format!(
        "Service stars {:04}-{:02}",
        first.year(),
        first.month()
    )));
    assert!(page.contains("<td>Wang</td><td>Shanghai Bund</td><td>3</td><td>0</td>"));
}

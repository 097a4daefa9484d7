//! Business KPIs on /metrics (its own test binary: the Prometheus recorder is per process).

mod common;

use chrono::Utc;
use common::*;
use std::time::Duration;

/// The value of the sample `name{labels}` whose labels include all of `want`.
fn sample(body: &str, name: &str, want: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| want.iter().all(|w| l.contains(w)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_kpis_are_on_the_metrics_endpoint() {
    let app = TestApp::spawn("").await;
    let now = Utc::now();
    // 7 answers, 5 of them 4-5.
    let events: Vec<_> = [5, 4, 5, 5, 4, 2, 1]
        .iter()
        .map(|c| csat_answer("sh-bund", *c, now))
        .collect();
    let mut secrets = Vec::new();
    for e in &events {
        if let Some(guestloop_proto::events::v1::event_envelope::Payload::SurveyAnswered(s)) =
            &e.payload
        {
            secrets.extend([s.guest_id.clone(), s.stay_id.clone(), s.feedback_id.clone()]);
        }
    }
    app.deliver(events).await;

    let labels = [r#"kpi="csat""#, r#"property="sh-bund""#, r#"region="east""#];
    let body = eventually("the CSAT gauges", Duration::from_secs(10), || async {
        let body = app.scrape().await;
        (sample(&body, "guestloop_kpi_denominator", &labels) == Some(7.0)).then_some(body)
    })
    .await;
    assert!(body.contains("guestloop_kpi_value{"), "{body}");
    assert_eq!(
        sample(&body, "guestloop_kpi_numerator", &labels),
        Some(5.0),
        "{body}"
    );
    let value = sample(&body, "guestloop_kpi_value", &labels).expect("a CSAT value");
    assert!((value - 5.0 / 7.0).abs() < 1e-6, "{value}");
    assert_eq!(
        sample(&body, "guestloop_kpi_target_met", &labels),
        Some(0.0)
    );
    // Another property, no answers: zero counts, labelled with its region.
    assert_eq!(
        sample(
            &body,
            "guestloop_kpi_denominator",
            &[
                r#"kpi="csat""#,
                r#"property="hk-harbour""#,
                r#"region="south""#
            ]
        ),
        Some(0.0),
        "{body}"
    );
    for s in &secrets {
        assert!(!body.contains(s.as_str()), "{s} is on /metrics");
    }
    assert!(!body.contains("guest_id") && !body.contains("stay_id"));
    app.stop().await;
}

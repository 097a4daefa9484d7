//! The whole loop end to end (issue 5): PostgreSQL and the five services as separate
//! processes with service tokens, a real SMTP server, a small chain (2 regions, 4
//! properties, 240 guests) with SLA durations in seconds. The scenario (testkit scenario.rs,
//! the same the local demo plays) checks guests out, waits for their surveys to be sent,
//! has some answer badly, acknowledges half the cases at once and lets the rest breach and
//! climb the ladder, then resolves everything. The test computes the KPIs on its own from
//! what the scenario did and compares them with metrics' answers, the league table and the
//! voice-of-customer report; and it checks that one request's trace crosses at least three
//! services, as received by an OTLP receiver run by the test.

use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::metrics::v1 as mx;
use guestloop_proto::notification::v1 as nt;
use guestloop_testkit::otlp::TraceReceiver;
use guestloop_testkit::platform::Platform;
use guestloop_testkit::scenario::{self, Endpoints, PROPERTIES};
use guestloop_testkit::sinks;
use std::time::Duration;
use tracing::Instrument;

fn kpi(r: &mx::GetKpisResponse, k: mx::Kpi) -> mx::KpiValue {
    r.series
        .iter()
        .find(|s| s.kpi == k as i32 && s.breakdown.is_none())
        .and_then(|s| s.total)
        .unwrap_or_else(|| panic!("{k:?} missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_from_check_out_to_kpis_and_report() {
    // The OTLP receiver.
    let (receiver, otlp_addr) = TraceReceiver::start(true).await.unwrap();
    let smtp = sinks::smtp_sink();
    let extra_env = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            format!("http://{otlp_addr}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".to_string(), "200".to_string()),
    ]
    .into_iter()
    .collect();
    let config = scenario::config_toml(smtp.port);
    let spec = guestloop_e2e::platform_spec("the-loop", "metrics", &config, extra_env).await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let endpoints = Endpoints::of(&platform);
    let token = guestloop_e2e::head_office_token(&spec.signing_key);
    let played = scenario::play(&endpoints, &token, 60, 7)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    // --- KPIs per property, computed here from what the scenario did.
    let conn = |u: &str| {
        guestloop_client::Connection::builder(u.to_string())
            .token(&token)
            .connect_lazy()
            .unwrap()
    };
    let mut metrics = conn(&endpoints.metrics).metrics();
    let mut table = String::from(
        "property     stays answers  CSAT    NPS   cases /100stays FR-in-SLA SLA-compl survey<48h\n",
    );
    let mut all_cases = 0;
    for (property, ..) in PROPERTIES {
        let p = &played.properties[property];
        let r = metrics
            .get_kpis(mx::GetKpisRequest {
                scope: Some(mx::Scope {
                    level: mx::ScopeLevel::Property as i32,
                    id: property.into(),
                }),
                date_range: Some(played.days()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let n = p.answers.len() as i64;
        let happy = p.answers.iter().filter(|(c, _)| *c >= 4).count() as i64;
        let promoters = p.answers.iter().filter(|(_, s)| *s >= 9).count() as i64;
        let detractors = p.answers.iter().filter(|(_, s)| *s <= 6).count() as i64;
        let cases = p.cases.len() as i64;
        let in_time = p.cases.iter().filter(|(_, a)| *a).count() as i64;
        all_cases += cases;
        let csat = kpi(&r, mx::Kpi::Csat);
        assert_eq!(
            (csat.numerator, csat.denominator),
            (happy, n),
            "{property} CSAT"
        );
        let nps = kpi(&r, mx::Kpi::Nps);
        let expected_nps = (promoters - detractors) as f64 * 100.0 / n as f64;
        assert!(
            (nps.value.unwrap() - expected_nps).abs() < 1e-9,
            "{property} NPS"
        );
        let per100 = kpi(&r, mx::Kpi::ComplaintsPer100Stays);
        assert_eq!(
            (per100.numerator, per100.denominator),
            (cases, p.stays),
            "{property} /100"
        );
        let fr = kpi(&r, mx::Kpi::FirstResponseWithinSlaRate);
        assert_eq!(
            (fr.numerator, fr.denominator),
            (in_time, cases),
            "{property} FR"
        );
        let res = kpi(&r, mx::Kpi::ResolutionWithinSlaRate);
        assert_eq!(
            (res.numerator, res.denominator),
            (cases, cases),
            "{property} resolution"
        );
        let sla = kpi(&r, mx::Kpi::SlaComplianceRate);
        assert_eq!(
            (sla.numerator, sla.denominator),
            (in_time, cases),
            "{property} SLA"
        );
        let closed = kpi(&r, mx::Kpi::ClosedWithin24hRate);
        assert_eq!(
            (closed.numerator, closed.denominator),
            (cases, cases),
            "{property} 24h"
        );
        let contact = kpi(&r, mx::Kpi::SatisfactionContactWithin48hRate);
        assert_eq!(
            (contact.numerator, contact.denominator),
            (p.consenting, p.stays),
            "{property} survey"
        );
        let profiles = kpi(&r, mx::Kpi::ProfileCompleteness);
        assert_eq!(
            (profiles.numerator, profiles.denominator),
            (p.complete, p.stays),
            "{property} profiles"
        );
        let volume = kpi(&r, mx::Kpi::FeedbackVolume);
        assert_eq!(volume.numerator, n, "{property} feedback volume");
        let pct = |v: &mx::KpiValue| {
            v.value
                .map(|x| format!("{:.1}%", x * 100.0))
                .unwrap_or("-".into())
        };
        table.push_str(&format!(
            "{property:<12} {:>5} {:>7} {:>6} {:>6.1} {:>6} {:>9.1} {:>9} {:>9} {:>10}\n",
            p.stays,
            n,
            pct(&csat),
            nps.value.unwrap_or(0.0),
            cases,
            per100.value.unwrap_or(0.0),
            pct(&fr),
            pct(&sla),
            pct(&contact),
        ));
    }
    assert!(all_cases > 0, "some guests answered badly");
    eprintln!(
        "{table}escalation hops: {}, elapsed {:?}",
        played.hops, played.elapsed
    );

    // --- The ladder escalated and alerted: one STAFF_ESCALATION per hop at least.
    let mut notification = conn(&endpoints.notification).notification();
    let mut escalations = 0;
    for (property, ..) in PROPERTIES {
        let r = notification
            .list_messages(nt::ListMessagesRequest {
                property_id: property.into(),
                kinds: vec![nt::MessageKind::StaffEscalation as i32],
                page: Some(guestloop_proto::common::v1::PageRequest {
                    page_size: 500,
                    page_token: String::new(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        escalations += r.messages.len() as i64;
    }
    let ignored: i64 = played
        .properties
        .values()
        .map(|p| p.cases.iter().filter(|(_, a)| !a).count() as i64)
        .sum();
    assert!(
        played.hops >= ignored && escalations >= ignored,
        "{} hops, {escalations} alerts, {ignored} ignored",
        played.hops
    );
    // Every survey went out by SMTP, to a real server.
    let consenting: i64 = played.properties.values().map(|p| p.consenting).sum();
    assert!(
        smtp.mails().len() as i64 >= consenting,
        "{} mails for {consenting} surveys",
        smtp.mails().len()
    );

    // --- The league table and the report say the same.
    let league = metrics
        .get_league_table(mx::GetLeagueTableRequest {
            date_range: Some(played.days()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(league.rows.len(), 4);
    let report = metrics
        .get_voice_of_customer_report(mx::GetVoiceOfCustomerReportRequest {
            scope: Some(mx::Scope {
                level: mx::ScopeLevel::Chain as i32,
                id: String::new(),
            }),
            report_date: scenario::today_range().start_date,
            top_issue_limit: 5,
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(report.complaints.unwrap().count, all_cases);
    assert_eq!(report.late_case_count, 0, "every case was resolved");
    let page = metrics
        .render_voice_of_customer_report(mx::RenderVoiceOfCustomerReportRequest {
            scope: Some(mx::Scope {
                level: mx::ScopeLevel::Chain as i32,
                id: String::new(),
            }),
            report_date: scenario::today_range().start_date,
            top_issue_limit: 5,
            language: "en".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.html.contains("<svg"));
    eprintln!("report page: {} bytes", page.html.len());

    // --- One request's trace crosses three services or more.
    let _ = guestloop_telemetry::init("e2e-loop-test");
    let trace_id = "5af7183fc1a8d37a1f6fcd5a4c1e9b21";
    let span = tracing::info_span!("front-desk-call");
    guestloop_telemetry::propagation::set_parent_from_traceparent(
        &span,
        &format!("00-{trace_id}-00f067aa0ba902b7-01"),
    );
    let guest_id = async {
        let mut feedback = conn(&endpoints.feedback_intake).feedback();
        feedback
            .submit_feedback(fb::SubmitFeedbackRequest {
                feedback: Some(fb::Feedback {
                    property_id: "sh-bund".into(),
                    channel: fb::FeedbackChannel::Phone as i32,
                    text: "The air conditioning is broken".into(),
                    language: "en".into(),
                    ..Default::default()
                }),
                guest: Some(fb::GuestReference {
                    email: "g0.sh-bund.x@guest.test".into(),
                    ..Default::default()
                }),
                complaint: Some(fb::CaseDetails::default()),
                idempotency_key: "trace-call".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .case
            .map(|c| c.case_id)
    }
    .instrument(span)
    .await;
    assert!(guest_id.is_some(), "the complaint opened a case");
    let services = {
        let start = std::time::Instant::now();
        loop {
            let seen = receiver
                .traces
                .lock()
                .unwrap()
                .get(trace_id)
                .cloned()
                .unwrap_or_default();
            if seen.len() >= 3 || start.elapsed() > Duration::from_secs(30) {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert!(
        services.len() >= 3,
        "trace {trace_id} reached only {services:?}"
    );
    eprintln!("trace {trace_id} crossed {services:?}");

    for s in platform.services.iter_mut().rev() {
        let status = s.stop(Duration::from_secs(25)).unwrap().unwrap();
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            s.name,
            s.log_tail()
        );
    }
}

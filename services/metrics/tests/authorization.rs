//! The access matrix of metrics. sh-bund has survey answers bad enough to raise a CSAT
//! alert, a late noise complaint with a quoted feedback, and a staff member named in it.
//! Every RPC (enumerated from the published descriptor, so a new RPC fails this test until
//! it has a row) is called by every caller for sh-bund, its region, the chain and the
//! caller's own property: outsiders (hz-lake's staff and manager in the same region,
//! hk-harbour's staff, the south regional manager) get NOT_FOUND for sh-bund and east
//! (PERMISSION_DENIED for the chain, and for event delivery by a non-service), and their own
//! KPIs, league tables, reports, alerts and staff mentions hold nothing of sh-bund; the
//! schema is byte-for-byte what it was. Insiders see sh-bund (a region only its regional
//! manager and head office; the chain only head office). Without a trusted token every RPC
//! is UNAUTHENTICATED.

mod common;

use chrono::{Duration as Span, Utc};
use common::*;
use guestloop_auth::Role;
use guestloop_client::{EventIngestClient, MetricsClient};
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::feedback::v1::{Category, Sentiment, StaffMention};
use guestloop_proto::metrics::v1 as pb;
use guestloop_testkit::authz::{Expect, Policy, Who, answer, connection, run_table, snapshot};
use std::collections::BTreeSet;
use std::time::Duration;
use tonic::{Code, Status};

const ALERTS: &str = r#"
[kpi_alerts]
enabled = true
interval = "200ms"
rules = [{ kpi = "csat", window_days = 7 }]
"#;

const REFERENCE: &str = "SHB-AUTH-000042";
const STAFF: &str = "s-gao-1208";
const QUOTE: &str = "the karaoke next to room 1208 kept us awake";

/// sh-bund's data, delivered as its producers would; the CSAT alert it raised.
async fn world(app: &TestApp) -> pb::KpiAlert {
    let now = Utc::now();
    let mut events: Vec<ev::EventEnvelope> = (0..6)
        .map(|i| csat_answer("sh-bund", 1 + i % 2, now))
        .collect();
    let fb = new_id("fb");
    let noise = Category::Noise as i32;
    events.push(envelope(
        "feedback-intake",
        "feedback",
        &fb,
        "sh-bund",
        now,
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: fb.clone(),
            property_id: "sh-bund".into(),
            channel: 2,
            receive_time: Some(ts(now)),
            category: noise,
            sentiment: Sentiment::Negative as i32,
            redacted_excerpt: QUOTE.into(),
            staff_mentions: vec![StaffMention {
                staff_id: STAFF.into(),
                staff_name: "Ms Gao".into(),
                department: 2,
                sentiment: Sentiment::Negative as i32,
            }],
            ..Default::default()
        }),
    ));
    let case = new_id("case");
    let facts = ev::CaseFacts {
        case_id: case.clone(),
        reference: REFERENCE.into(),
        property_id: "sh-bund".into(),
        channel: 2,
        category: noise,
        department: 2,
        status: 1,
        open_time: Some(ts(now - Span::hours(2))),
        first_response_due_time: Some(ts(now - Span::hours(1))),
        resolution_due_time: Some(ts(now + Span::hours(40))),
        version: 1,
        ..Default::default()
    };
    let opened = ev::CaseOpened {
        case: Some(facts),
        feedback_id: fb,
    };
    events.push(envelope(
        "feedback-intake",
        "case",
        &case,
        "sh-bund",
        now,
        Payload::CaseOpened(opened),
    ));
    app.deliver(events).await;
    eventually("the CSAT alert", Duration::from_secs(10), || async {
        let alerts = app
            .head_office()
            .list_alerts(pb::ListAlertsRequest::default())
            .await
            .ok()?;
        alerts.into_inner().alerts.into_iter().next()
    })
    .await
}

fn secrets(alert: &pb::KpiAlert) -> Vec<String> {
    [
        "sh-bund",
        "Shanghai Bund",
        REFERENCE,
        STAFF,
        QUOTE,
        &alert.alert_id,
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, Clone, Copy)]
enum At {
    ShBund,
    East,
    Chain,
    Own,
}

#[derive(Debug, Clone, Copy)]
enum Call {
    GetKpis(At),
    GetLeagueTable(At),
    GetLeagueTableByDefault,
    GetReport(At),
    RenderReport(At),
    ListAlerts(At),
    ListAlertsByDefault,
    ListStaffMentions(At),
    DeliverEvents,
}

fn east(w: &Who) -> Expect {
    match w.role {
        Role::HeadOffice | Role::Service => Expect::Sees,
        Role::RegionalManager if w.inside => Expect::Sees,
        _ => Expect::Refused(Code::NotFound),
    }
}

fn chain_wide(w: &Who) -> Expect {
    match w.role {
        Role::HeadOffice | Role::Service => Expect::Sees,
        _ => Expect::Refused(Code::PermissionDenied),
    }
}

/// The default is the caller's widest scope; for staff of several properties their first
/// (hz-lake here), so sh-bund is not in it, though it could be.
fn league_by_default(w: &Who) -> Expect {
    match w.inside && w.name != "staff of hz-lake and sh-bund" {
        true => Expect::Sees,
        false => Expect::Blind,
    }
}

const NOT_FOUND: Policy = Policy::Scoped(Code::NotFound);
const EAST: Policy = Policy::By(east);
const CHAIN: Policy = Policy::By(chain_wide);

/// The matrix: every row is called by every caller.
const TABLE: &[(Call, &str, Policy)] = &[
    (Call::GetKpis(At::ShBund), "GetKpis", NOT_FOUND),
    (Call::GetKpis(At::East), "GetKpis", EAST),
    (Call::GetKpis(At::Chain), "GetKpis", CHAIN),
    (Call::GetKpis(At::Own), "GetKpis", Policy::Filtered),
    (
        Call::GetLeagueTable(At::ShBund),
        "GetLeagueTable",
        NOT_FOUND,
    ),
    (Call::GetLeagueTable(At::East), "GetLeagueTable", EAST),
    (Call::GetLeagueTable(At::Chain), "GetLeagueTable", CHAIN),
    (
        Call::GetLeagueTableByDefault,
        "GetLeagueTable",
        Policy::By(league_by_default),
    ),
    (
        Call::GetReport(At::ShBund),
        "GetVoiceOfCustomerReport",
        NOT_FOUND,
    ),
    (Call::GetReport(At::East), "GetVoiceOfCustomerReport", EAST),
    (
        Call::GetReport(At::Chain),
        "GetVoiceOfCustomerReport",
        CHAIN,
    ),
    (
        Call::GetReport(At::Own),
        "GetVoiceOfCustomerReport",
        Policy::Filtered,
    ),
    (
        Call::RenderReport(At::ShBund),
        "RenderVoiceOfCustomerReport",
        NOT_FOUND,
    ),
    (
        Call::RenderReport(At::Own),
        "RenderVoiceOfCustomerReport",
        Policy::Filtered,
    ),
    (Call::ListAlerts(At::ShBund), "ListAlerts", NOT_FOUND),
    (Call::ListAlerts(At::East), "ListAlerts", EAST),
    (Call::ListAlerts(At::Chain), "ListAlerts", CHAIN),
    (Call::ListAlertsByDefault, "ListAlerts", Policy::Filtered),
    (
        Call::ListStaffMentions(At::ShBund),
        "ListStaffMentions",
        NOT_FOUND,
    ),
    (Call::ListStaffMentions(At::East), "ListStaffMentions", EAST),
    (
        Call::ListStaffMentions(At::Own),
        "ListStaffMentions",
        Policy::Filtered,
    ),
    (
        Call::DeliverEvents,
        "DeliverEvents",
        Policy::Only(Role::Service),
    ),
];

struct Clients {
    api: MetricsClient,
    events: EventIngestClient,
}

fn clients(app: &TestApp, who: &Who) -> Clients {
    let conn = connection(app.addr(), who);
    Clients {
        api: conn.metrics(),
        events: conn.event_ingest(),
    }
}

fn scope(at: At, who: &Who) -> Option<pb::Scope> {
    Some(match at {
        At::ShBund => property("sh-bund"),
        At::East => region("east"),
        At::Chain => chain(),
        At::Own => property(who.own),
    })
}

async fn call(
    c: &mut Clients,
    alert: &pb::KpiAlert,
    who: &Who,
    what: Call,
) -> Result<guestloop_testkit::authz::Answer, Status> {
    let api = &mut c.api;
    let today = local_day("sh-bund", Utc::now());
    let days = Some(range(today, today));
    let report_date = Some(date(today));
    match what {
        Call::GetKpis(at) => {
            let req = pb::GetKpisRequest {
                scope: scope(at, who),
                date_range: days,
                kpis: vec![pb::Kpi::Csat as i32],
                ..Default::default()
            };
            // Six answers at sh-bund, none anywhere else.
            answer(api.get_kpis(req).await, "sample_size: 6")
        }
        Call::GetLeagueTable(at) => {
            let req = pb::GetLeagueTableRequest {
                scope: scope(at, who),
                date_range: days,
                order_by: 0,
            };
            answer(api.get_league_table(req).await, "Shanghai Bund")
        }
        Call::GetLeagueTableByDefault => {
            let req = pb::GetLeagueTableRequest {
                scope: None,
                date_range: days,
                order_by: 0,
            };
            answer(api.get_league_table(req).await, "Shanghai Bund")
        }
        Call::GetReport(at) => {
            let req = pb::GetVoiceOfCustomerReportRequest {
                scope: scope(at, who),
                report_date,
                top_issue_limit: 0,
            };
            answer(api.get_voice_of_customer_report(req).await, REFERENCE)
        }
        Call::RenderReport(at) => {
            let req = pb::RenderVoiceOfCustomerReportRequest {
                scope: scope(at, who),
                report_date,
                ..Default::default()
            };
            answer(api.render_voice_of_customer_report(req).await, REFERENCE)
        }
        Call::ListAlerts(at) => {
            let req = pb::ListAlertsRequest {
                scope: scope(at, who),
                ..Default::default()
            };
            answer(api.list_alerts(req).await, &alert.alert_id)
        }
        Call::ListAlertsByDefault => answer(
            api.list_alerts(pb::ListAlertsRequest::default()).await,
            &alert.alert_id,
        ),
        Call::ListStaffMentions(at) => {
            let req = pb::ListStaffMentionsRequest {
                scope: scope(at, who),
                date_range: days,
                page: None,
            };
            answer(api.list_staff_mentions(req).await, STAFF)
        }
        Call::DeliverEvents => {
            // Harmless to what the other rows look for: one more answer at hz-lake.
            let event = csat_answer("hz-lake", 10, Utc::now());
            let id = event.event_id.clone();
            answer(
                c.events
                    .deliver_events(ev::DeliverEventsRequest {
                        events: vec![event],
                    })
                    .await,
                &id,
            )
        }
    }
}

/// Runs every row as `who`; returns how many cells were checked.
async fn run_rows(
    app: &TestApp,
    alert: &pb::KpiAlert,
    who: &Who,
    expect: impl Fn(Policy) -> Expect,
) -> usize {
    let mut c = clients(app, who);
    run_table(who, TABLE, &secrets(alert), expect, async |what| {
        call(&mut c, alert, who, what).await
    })
    .await
}

#[tokio::test]
async fn the_matrix_calls_every_rpc() {
    let called: BTreeSet<&str> = TABLE.iter().map(|(_, rpc, _)| *rpc).collect();
    guestloop_testkit::authz::assert_covers(&called, "guestloop.metrics.v1", "MetricsService");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_see_nothing_of_sh_bund_and_change_nothing() {
    let app = TestApp::spawn(ALERTS).await;
    let alert = world(&app).await;
    let before = snapshot(&app.pool).await;
    let mut cells = 0;
    for who in guestloop_testkit::authz::outsiders() {
        cells += run_rows(&app, &alert, &who, |p| p.expect(&who)).await;
        assert_eq!(
            snapshot(&app.pool).await,
            before,
            "{}: the schema is unchanged",
            who.name
        );
    }
    eprintln!("outsiders: {cells} cells");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insiders_see_sh_bund() {
    let app = TestApp::spawn(ALERTS).await;
    let alert = world(&app).await;
    let mut cells = 0;
    // The service goes last: its delivery adds data.
    for who in guestloop_testkit::authz::insiders() {
        cells += run_rows(&app, &alert, &who, |p| p.expect(&who)).await;
    }
    eprintln!("insiders: {cells} cells");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trusted_token_nothing_answers_and_nothing_changes() {
    let app = TestApp::spawn(ALERTS).await;
    let alert = world(&app).await;
    let before = snapshot(&app.pool).await;
    for who in guestloop_testkit::authz::strangers() {
        run_rows(&app, &alert, &who, |_| {
            Expect::Refused(Code::Unauthenticated)
        })
        .await;
    }
    assert_eq!(snapshot(&app.pool).await, before);
}

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
const ITEM_TITLE: &str = "SHB karaoke floor 12";

/// sh-bund's alert, its improvement item and its case.
struct World {
    alert: pb::KpiAlert,
    item: pb::ImprovementItem,
    case_id: String,
}

fn improvement(key: &str) -> pb::CreateImprovementItemRequest {
    pb::CreateImprovementItemRequest {
        scope: Some(property("sh-bund")),
        category: Category::Noise as i32,
        title: ITEM_TITLE.into(),
        owner_staff_id: STAFF.into(),
        due_time: Some(ts(Utc::now() + Span::days(30))),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

/// sh-bund's data, delivered as its producers would; the CSAT alert it raised, an
/// improvement item and the case; returned once the chain and region sums have folded it.
async fn world(app: &TestApp) -> World {
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
    let item = app
        .head_office()
        .create_improvement_item(improvement("authz"))
        .await
        .expect("improvement item")
        .into_inner()
        .item
        .expect("item");
    let alert = eventually("the CSAT alert", Duration::from_secs(10), || async {
        let alerts = app
            .head_office()
            .list_alerts(pb::ListAlertsRequest::default())
            .await
            .ok()?;
        alerts.into_inner().alerts.into_iter().next()
    })
    .await;
    app.folded().await;
    World {
        alert,
        item,
        case_id: case,
    }
}

fn secrets(w: &World) -> Vec<String> {
    [
        "sh-bund",
        "Shanghai Bund",
        REFERENCE,
        STAFF,
        QUOTE,
        ITEM_TITLE,
        &w.alert.alert_id,
        &w.item.item_id,
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
    CreateImprovementItem,
    GetImprovementItem,
    ListImprovementItems(At),
    ListImprovementItemsByDefault,
    AdvanceImprovementItem,
    LinkImprovementCases,
    DeliverEvents,
}

/// Managers (and services) of sh-bund work its board; its staff only read it.
fn works(w: &Who) -> Expect {
    match (w.inside, w.role) {
        (false, _) => Expect::Refused(Code::NotFound),
        (true, Role::PropertyStaff) => Expect::Refused(Code::PermissionDenied),
        (true, _) => Expect::Sees,
    }
}

/// A move from a state the item is not in: past the scope and role checks, refused.
fn moves(w: &Who) -> Expect {
    match works(w) {
        Expect::Sees => Expect::Refused(Code::FailedPrecondition),
        other => other,
    }
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
    // The same idempotency key: insiders get the item the world created, nothing new.
    (
        Call::CreateImprovementItem,
        "CreateImprovementItem",
        Policy::By(works),
    ),
    (Call::GetImprovementItem, "GetImprovementItem", NOT_FOUND),
    (
        Call::ListImprovementItems(At::ShBund),
        "ListImprovementItems",
        NOT_FOUND,
    ),
    (
        Call::ListImprovementItemsByDefault,
        "ListImprovementItems",
        Policy::Filtered,
    ),
    (
        Call::AdvanceImprovementItem,
        "AdvanceImprovementItem",
        Policy::By(moves),
    ),
    // Linking the world's case again changes nothing.
    (
        Call::LinkImprovementCases,
        "LinkImprovementCases",
        Policy::By(works),
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
    w: &World,
    who: &Who,
    what: Call,
) -> Result<guestloop_testkit::authz::Answer, Status> {
    let alert = &w.alert;
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
        Call::CreateImprovementItem => answer(
            api.create_improvement_item(improvement("authz")).await,
            &w.item.item_id,
        ),
        Call::GetImprovementItem => {
            let req = pb::GetImprovementItemRequest {
                item_id: w.item.item_id.clone(),
            };
            answer(api.get_improvement_item(req).await, ITEM_TITLE)
        }
        Call::ListImprovementItems(at) => {
            let req = pb::ListImprovementItemsRequest {
                scope: scope(at, who),
                ..Default::default()
            };
            answer(api.list_improvement_items(req).await, ITEM_TITLE)
        }
        Call::ListImprovementItemsByDefault => answer(
            api.list_improvement_items(pb::ListImprovementItemsRequest::default())
                .await,
            ITEM_TITLE,
        ),
        Call::AdvanceImprovementItem => {
            let req = pb::AdvanceImprovementItemRequest {
                item_id: w.item.item_id.clone(),
                from_state: pb::ImprovementState::Do as i32,
                to_state: pb::ImprovementState::Check as i32,
                ..Default::default()
            };
            answer(api.advance_improvement_item(req).await, ITEM_TITLE)
        }
        Call::LinkImprovementCases => {
            let req = pb::LinkImprovementCasesRequest {
                item_id: w.item.item_id.clone(),
                case_ids: vec![w.case_id.clone()],
            };
            answer(api.link_improvement_cases(req).await, ITEM_TITLE)
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
async fn run_rows(app: &TestApp, w: &World, who: &Who, expect: impl Fn(Policy) -> Expect) -> usize {
    let mut c = clients(app, who);
    run_table(who, TABLE, &secrets(w), expect, async |what| {
        call(&mut c, w, who, what).await
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
    let w = world(&app).await;
    let before = snapshot(&app.pool).await;
    let mut cells = 0;
    for who in guestloop_testkit::authz::outsiders() {
        cells += run_rows(&app, &w, &who, |p| p.expect(&who)).await;
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
    let w = world(&app).await;
    let mut cells = 0;
    // The service goes last: its delivery adds data.
    for who in guestloop_testkit::authz::insiders() {
        cells += run_rows(&app, &w, &who, |p| p.expect(&who)).await;
    }
    eprintln!("insiders: {cells} cells");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trusted_token_nothing_answers_and_nothing_changes() {
    let app = TestApp::spawn(ALERTS).await;
    let w = world(&app).await;
    let before = snapshot(&app.pool).await;
    for who in guestloop_testkit::authz::strangers() {
        run_rows(&app, &w, &who, |_| Expect::Refused(Code::Unauthenticated)).await;
    }
    assert_eq!(snapshot(&app.pool).await, before);
}

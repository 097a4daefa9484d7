//! The improvement board against numbers counted here: the platform proposes exactly the
//! category whose complaint rate stayed above the threshold on every day of the window
//! (not a thin property, not a two-day spike), once, with two replicas proposing; an item
//! is worked PLAN -> DO -> CHECK -> ACT -> CLOSED, its baseline and its rate since DO
//! computed from the stays and complaints delivered, judged MET, NOT MET or on too small a
//! sample; moves from a stale state or off the ladder refused; one open item per scope and
//! category; who may read and work items; bad input named by field; cases linked only
//! from the item's scope.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use guestloop_auth::Role;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::metrics::v1::{
    self as pb, ImprovementState as S, ImprovementVerdict as V, KpiStatus,
};
use guestloop_testkit::keys;
use tonic::Code;

const HYGIENE: i32 = 3;
const NOISE: i32 = 4;
const FOOD: i32 = 5;

fn stays(property: &str, n: usize, at: DateTime<Utc>) -> Vec<EventEnvelope> {
    (0..n)
        .map(|_| {
            let stay = new_id("stay");
            envelope(
                "guest-profile",
                "stay",
                &stay,
                property,
                at,
                Payload::StayCheckedOut(ev::StayCheckedOut {
                    stay_id: stay.clone(),
                    guest_id: new_id("guest"),
                    property_id: property.into(),
                    checked_out_time: Some(ts(at)),
                    ..Default::default()
                }),
            )
        })
        .collect()
}

/// A complaint case opened at `at`; returns its event and id.
fn complaint(property: &str, category: i32, at: DateTime<Utc>) -> (EventEnvelope, String) {
    let id = new_id("case");
    let e = envelope(
        "feedback-intake",
        "case",
        &id,
        property,
        at,
        Payload::CaseOpened(ev::CaseOpened {
            case: Some(ev::CaseFacts {
                case_id: id.clone(),
                reference: format!("R-{id}"),
                property_id: property.into(),
                guest_id: new_id("guest"),
                channel: 1,
                category,
                risk_grade: 1,
                department: 2,
                status: 1,
                escalation_tier: 1,
                open_time: Some(ts(at)),
                first_response_due_time: Some(ts(at + Duration::minutes(30))),
                resolution_due_time: Some(ts(at + Duration::hours(48))),
                version: 1,
                ..Default::default()
            }),
            feedback_id: String::new(),
        }),
    );
    (e, id)
}

/// `days_ago` local days before today at noon-ish (UTC+8 properties: 04:00 UTC is noon).
fn days_ago(n: i64) -> DateTime<Utc> {
    let day = local_day("sh-bund", Utc::now()) - Duration::days(n);
    day.and_hms_opt(4, 0, 0).expect("time").and_utc()
}

fn manager(property: &str) -> String {
    keys().token(Role::PropertyManager, &[property], None)
}

const PROPOSING: &str = r#"
[improvement]
propose_interval = "200ms"
threshold_per_100_stays = 2.0
window_days = 3
sustained_days = 3
baseline_days = 28
target_reduction = 0.5
"#;

async fn items(
    app: &TestApp,
    token: &str,
    req: pb::ListImprovementItemsRequest,
) -> Vec<pb::ImprovementItem> {
    app.client(token)
        .list_improvement_items(req)
        .await
        .unwrap_or_else(|s| panic!("ListImprovementItems: {s:?}"))
        .into_inner()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_proposes_a_sustained_category_once() {
    // The first replica does not propose until every event is in; then two replicas race.
    let app = TestApp::spawn(&format!("{PROPOSING}propose = false\n")).await;
    let mut events = Vec::new();
    for d in 1..=6 {
        // sh-bund: 10 stays a day, one noise complaint a day: 10 per 100 stays.
        events.extend(stays("sh-bund", 10, days_ago(d)));
        events.push(complaint("sh-bund", NOISE, days_ago(d)).0);
        // hz-lake: one stay a day, a noise complaint a day: 3 stays per window, too few.
        events.extend(stays("hz-lake", 1, days_ago(d)));
        events.push(complaint("hz-lake", NOISE, days_ago(d)).0);
        // sz-bay: busy, but noisy only the last two days (the window ending 3 days ago is quiet).
        events.extend(stays("sz-bay", 10, days_ago(d)));
        if d <= 2 {
            events.push(complaint("sz-bay", NOISE, days_ago(d)).0);
        }
    }
    // sh-bund food: one complaint 5 days ago, outside every window that counts.
    events.push(complaint("sh-bund", FOOD, days_ago(5)).0);
    app.deliver(events).await;
    let proposing = "[improvement]\npropose = true\n";
    let replicas = [
        app.replica_with(proposing).await,
        app.replica_with(proposing).await,
    ];

    let ho = keys().head_office();
    let proposed = eventually("a proposal", std::time::Duration::from_secs(10), || async {
        let found = items(&app, &ho, Default::default()).await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    // More rounds on both replicas propose nothing more.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let all = items(&app, &ho, Default::default()).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    let item = &proposed[0];
    assert_eq!(item.state, S::Proposed as i32);
    assert_eq!(item.scope, Some(property("sh-bund")));
    assert_eq!(item.category, NOISE);
    assert!(
        item.proposal_reason.contains("above 2.0"),
        "{}",
        item.proposal_reason
    );
    let b = item.baseline.expect("baseline");
    // The 28 days before today: 6 noise complaints over 60 stays.
    assert_eq!((b.numerator, b.denominator), (6, 60));
    assert!((b.value.expect("value") - 10.0).abs() < 1e-9);
    assert!((item.target_rate - 5.0).abs() < 1e-9);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM improvement_items").await,
        1,
        "one row, whichever replica proposed it"
    );

    // Dismissed, it is not proposed again at once.
    let mut c = app.client(&manager("sh-bund"));
    c.advance_improvement_item(pb::AdvanceImprovementItemRequest {
        item_id: item.item_id.clone(),
        from_state: S::Proposed as i32,
        to_state: S::Dismissed as i32,
        note: "construction next door, ends this week".into(),
        ..Default::default()
    })
    .await
    .expect("dismiss");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(items(&app, &ho, Default::default()).await.len(), 1);
    drop(replicas);
}

fn create(category: i32, scope: pb::Scope, title: &str) -> pb::CreateImprovementItemRequest {
    pb::CreateImprovementItemRequest {
        scope: Some(scope),
        category,
        title: title.into(),
        owner_staff_id: "s-li".into(),
        due_time: Some(ts(Utc::now() + Duration::days(14))),
        ..Default::default()
    }
}

async fn step(
    c: &mut guestloop_client::MetricsClient,
    item: &pb::ImprovementItem,
    to: S,
    f: impl FnOnce(&mut pb::AdvanceImprovementItemRequest),
) -> Result<pb::ImprovementItem, tonic::Status> {
    let mut req = pb::AdvanceImprovementItemRequest {
        item_id: item.item_id.clone(),
        from_state: item.state,
        to_state: to as i32,
        ..Default::default()
    };
    f(&mut req);
    c.advance_improvement_item(req)
        .await
        .map(|r| r.into_inner().item.expect("item"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_is_worked_and_judged_on_its_own_numbers() {
    let app = TestApp::spawn("").await; // min_sample = 5; proposals on, hourly
    let mut before = Vec::new();
    for d in 1..=4 {
        before.extend(stays("sh-bund", 5, days_ago(d)));
    }
    before.push(complaint("sh-bund", HYGIENE, days_ago(2)).0);
    before.push(complaint("sh-bund", HYGIENE, days_ago(3)).0);
    before.push(complaint("sh-bund", NOISE, days_ago(3)).0);
    app.deliver(before).await;
    let mut c = app.client(&manager("sh-bund"));

    let made = c
        .create_improvement_item(create(HYGIENE, property("sh-bund"), "Bathrooms"))
        .await
        .expect("create")
        .into_inner();
    assert!(made.created);
    let item = made.item.expect("item");
    assert_eq!(item.state, S::Plan as i32);
    let b = item.baseline.expect("baseline");
    assert_eq!(
        (b.numerator, b.denominator),
        (2, 20),
        "2 hygiene cases over 20 stays"
    );
    assert!((item.target_rate - 5.0).abs() < 1e-9, "half of 10 per 100");

    // One open item per scope and category.
    let again = c
        .create_improvement_item(create(HYGIENE, property("sh-bund"), "Bathrooms again"))
        .await;
    assert_code(again, Code::AlreadyExists);

    // PLAN -> DO needs a plan.
    let no_plan = step(&mut c, &item, S::Do, |_| {}).await;
    assert_invalid(no_plan, "plan");
    let item = step(&mut c, &item, S::Do, |r| {
        r.plan = "Re-train housekeeping; checklist per room".into();
        r.note = "started".into();
    })
    .await
    .expect("do");
    assert_eq!(item.state, S::Do as i32);

    // Since DO: 40 stays, one hygiene case: 2.5 per 100, at or under 5 on 40 stays.
    let mut today = stays("sh-bund", 40, Utc::now());
    today.push(complaint("sh-bund", HYGIENE, Utc::now()).0);
    app.deliver(today).await;
    let running = app
        .client(&keys().staff("sh-bund"))
        .get_improvement_item(pb::GetImprovementItemRequest {
            item_id: item.item_id.clone(),
        })
        .await
        .expect("staff read")
        .into_inner()
        .item
        .expect("item");
    let now = running.current.expect("current");
    assert_eq!((now.numerator, now.denominator), (1, 40));
    let last = running.daily.last().and_then(|d| d.value).expect("today");
    assert_eq!((last.numerator, last.denominator), (1, 40));

    // Stale and off-ladder moves.
    let stale = step(&mut c, &item, S::Check, |r| r.from_state = S::Plan as i32).await;
    assert_code(stale, Code::FailedPrecondition);
    assert_code(
        step(&mut c, &item, S::Closed, |_| {}).await,
        Code::FailedPrecondition,
    );

    let checked = step(&mut c, &item, S::Check, |_| {}).await.expect("check");
    assert_eq!(checked.verdict, V::Met as i32);
    let judged = checked.current.expect("judged");
    assert_eq!(judged.status, KpiStatus::Met as i32);
    assert!((judged.value.expect("v") - 2.5).abs() < 1e-9);
    let acted = step(&mut c, &checked, S::Act, |r| {
        r.note = "checklist is the standard".into()
    })
    .await
    .expect("act");
    let closed = step(&mut c, &acted, S::Closed, |_| {})
        .await
        .expect("close");
    let moves: Vec<(i32, i32)> = closed
        .steps
        .iter()
        .map(|s| (s.from_state, s.to_state))
        .collect();
    use S::*;
    assert_eq!(
        moves,
        [
            (Unspecified, Plan),
            (Plan, Do),
            (Do, Check),
            (Check, Act),
            (Act, Closed)
        ]
        .map(|(a, b)| (a as i32, b as i32))
    );
    assert!(closed.steps.iter().all(|s| !s.actor.is_empty()));

    // Noise: 5 cases over the 40 stays since DO: 12.5 against a target of 1: not met, so
    // ACT is refused and another cycle begins.
    let noise = c
        .create_improvement_item(pb::CreateImprovementItemRequest {
            target_rate: Some(1.0),
            plan: "Quiet hours on floors 3-5".into(),
            ..create(NOISE, property("sh-bund"), "Night noise")
        })
        .await
        .expect("create noise")
        .into_inner()
        .item
        .expect("item");
    let noise = step(&mut c, &noise, S::Do, |_| {}).await.expect("do");
    app.deliver(
        (0..5)
            .map(|_| complaint("sh-bund", NOISE, Utc::now()).0)
            .collect(),
    )
    .await;
    let noise = step(&mut c, &noise, S::Check, |_| {}).await.expect("check");
    assert_eq!(noise.verdict, V::NotMet as i32);
    assert_code(
        step(&mut c, &noise, S::Act, |_| {}).await,
        Code::FailedPrecondition,
    );
    let again = step(&mut c, &noise, S::Do, |_| {})
        .await
        .expect("another cycle");
    assert_eq!(
        (again.state, again.verdict),
        (S::Do as i32, V::Unspecified as i32)
    );

    // South: no stays since DO: too small a sample either way.
    let mut rm = app.client(&keys().regional("south"));
    let south = rm
        .create_improvement_item(pb::CreateImprovementItemRequest {
            plan: "Harbour-view rooms first".into(),
            ..create(FOOD, region("south"), "Breakfast")
        })
        .await
        .expect("regional item")
        .into_inner()
        .item
        .expect("item");
    let south = step(&mut rm, &south, S::Do, |_| {}).await.expect("do");
    let south = step(&mut rm, &south, S::Check, |_| {})
        .await
        .expect("check");
    assert_eq!(south.verdict, V::InsufficientSample as i32);

    // Closed, the category may be opened again; the report lists the open ones.
    let reopened = c
        .create_improvement_item(create(HYGIENE, property("sh-bund"), "Bathrooms, round two"))
        .await
        .expect("reopen");
    assert!(reopened.into_inner().created);
    let report = app
        .head_office()
        .get_voice_of_customer_report(pb::GetVoiceOfCustomerReportRequest {
            scope: Some(region("east")),
            ..Default::default()
        })
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("report");
    let titles: Vec<&str> = report
        .improvement_items
        .iter()
        .map(|i| i.title.as_str())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles.contains(&"Night noise") && titles.contains(&"Bathrooms, round two"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_read_and_work_items_and_what_is_refused() {
    let app = TestApp::spawn("").await;
    let (case_here, here) = complaint("sh-bund", HYGIENE, Utc::now());
    let (case_there, there) = complaint("hz-lake", HYGIENE, Utc::now());
    app.deliver(vec![case_here, case_there]).await;
    let item = app
        .client(&manager("sh-bund"))
        .create_improvement_item(create(HYGIENE, property("sh-bund"), "Bathrooms"))
        .await
        .expect("create")
        .into_inner()
        .item
        .expect("item");
    let get = |token: String| {
        let id = item.item_id.clone();
        let app = &app;
        async move {
            app.client(&token)
                .get_improvement_item(pb::GetImprovementItemRequest { item_id: id })
                .await
                .map(|_| ())
        }
    };
    // (caller, reads, works: the expected code of a step)
    let table: Vec<(&str, String, Option<Code>, Code)> = vec![
        ("head office", keys().head_office(), None, Code::Ok),
        ("sh-bund manager", manager("sh-bund"), None, Code::Ok),
        ("east regional", keys().regional("east"), None, Code::Ok),
        (
            "sh-bund staff",
            keys().staff("sh-bund"),
            None,
            Code::PermissionDenied,
        ),
        (
            "hz-lake manager",
            manager("hz-lake"),
            Some(Code::NotFound),
            Code::NotFound,
        ),
        (
            "south regional",
            keys().regional("south"),
            Some(Code::NotFound),
            Code::NotFound,
        ),
    ];
    for (who, token, read, work) in table {
        match (get(token.clone()).await, read) {
            (Ok(()), None) => {}
            (Err(s), Some(code)) => assert_eq!(s.code(), code, "{who} reads"),
            (got, want) => panic!("{who} reads: {got:?}, wanted {want:?}"),
        }
        let listed = items(&app, &token, Default::default()).await;
        assert_eq!(listed.len(), usize::from(read.is_none()), "{who} lists");
        // A note-only step to a state the item is not in is refused before anything is
        // written, so each caller sees only the authorization answer.
        let moved = app
            .client(&token)
            .advance_improvement_item(pb::AdvanceImprovementItemRequest {
                item_id: item.item_id.clone(),
                from_state: S::Do as i32,
                to_state: S::Check as i32,
                ..Default::default()
            })
            .await;
        let code = moved.err().map(|s| s.code()).unwrap_or(Code::Ok);
        let want = if work == Code::Ok {
            Code::FailedPrecondition
        } else {
            work
        };
        assert_eq!(code, want, "{who} works");
    }

    let mut c = app.client(&manager("sh-bund"));
    // Bad input, every field named.
    let bad: Vec<(pb::CreateImprovementItemRequest, &[&str])> = vec![
        (
            pb::CreateImprovementItemRequest::default(),
            &[
                "scope.level",
                "category",
                "title",
                "owner_staff_id",
                "due_time",
            ],
        ),
        (
            pb::CreateImprovementItemRequest {
                due_time: Some(ts(Utc::now() - Duration::hours(1))),
                target_rate: Some(-1.0),
                ..create(HYGIENE, property("sh-bund"), "x")
            },
            &["due_time", "target_rate"],
        ),
        (
            pb::CreateImprovementItemRequest {
                title: "x".repeat(201),
                department: 99,
                ..create(HYGIENE, chain(), "x")
            },
            &["scope.level", "title", "department"],
        ),
    ];
    for (req, fields) in bad {
        let status = c.create_improvement_item(req).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        let got = violated_fields(&status);
        for f in fields {
            assert!(got.iter().any(|g| g == f), "{f} not in {got:?}");
        }
        assert_eq!(got.len(), fields.len(), "{got:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM improvement_items").await, 1);

    // Cases: only this scope's known cases link.
    let refused = c
        .link_improvement_cases(pb::LinkImprovementCasesRequest {
            item_id: item.item_id.clone(),
            case_ids: vec![here.clone(), there.clone(), "case-nobody-knows".into()],
        })
        .await;
    let status = refused.expect_err("refused");
    assert_eq!(violated_fields(&status), ["case_ids[1]", "case_ids[2]"]);
    let linked = c
        .link_improvement_cases(pb::LinkImprovementCasesRequest {
            item_id: item.item_id.clone(),
            case_ids: vec![here.clone(), here.clone()],
        })
        .await
        .expect("link")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(linked.case_ids, [here]);
}

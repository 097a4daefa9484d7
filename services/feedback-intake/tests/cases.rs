//! Complaint cases (issue 3, section 3 and 6): the lifecycle with its legal and illegal
//! moves; the append-only case history (who, when, why, guest contacted, compensation) and
//! an outbox event per change, in order per case; optimistic versions; SLA due times
//! (urgent first response, waiting for the guest, per-property standards); risk grades from
//! the rules and staff overrides; reclassify, assign, actions, attach, replies; escalation.

mod common;

use common::*;
use guestloop_auth::Role;
use guestloop_proto::common::v1::{ContactChannel, Department, Urgency};
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1 as gp;
use pb::CaseStatus as S;
use pb::FeedbackChannel as Ch;
use std::time::Duration;
use tonic::Code;

fn move_to(case_id: &str, to: S) -> pb::TransitionCaseRequest {
    pb::TransitionCaseRequest {
        case_id: case_id.into(),
        to_status: to as i32,
        ..Default::default()
    }
}

fn refund(amount_minor: i64) -> Option<pb::Compensation> {
    Some(pb::Compensation {
        kind: pb::CompensationKind::Refund as i32,
        value: cny(amount_minor),
        description: "one night refunded".into(),
    })
}

#[tokio::test]
async fn a_complaint_is_worked_from_received_to_closed_and_reopened() {
    let app = TestApp::spawn().await;
    let desk = token_as("desk-li", Role::PropertyStaff, &["sh-bund"], None);
    let gm = token_as("gm-chen", Role::PropertyManager, &["sh-bund"], None);
    let r = app
        .client(&desk)
        .submit_feedback(complaint(
            "sh-bund",
            Ch::Phone,
            "Loud music next door until 2am, room 1208.",
        ))
        .await
        .unwrap()
        .into_inner();
    let case = r.case.unwrap();
    let fid = r.feedback.unwrap().feedback_id;
    assert_eq!(case.status, S::Received as i32);
    assert_eq!(case.version, 1);
    assert!(app.get_feedback(&fid).await.reply_time.is_none());

    let steps: Vec<(String, pb::TransitionCaseRequest)> = vec![
        (
            desk.clone(),
            pb::TransitionCaseRequest {
                guest_contacted: true,
                contact_channel: ContactChannel::PhoneCall as i32,
                note: "Called the guest back, apologised.".into(),
                ..move_to(&case.case_id, S::Acknowledged)
            },
        ),
        (
            desk.clone(),
            pb::TransitionCaseRequest {
                note: "Security sent to 1210.".into(),
                ..move_to(&case.case_id, S::InProgress)
            },
        ),
        (
            desk.clone(),
            pb::TransitionCaseRequest {
                reason: "Asked the guest whether it is quiet now.".into(),
                ..move_to(&case.case_id, S::WaitingForGuest)
            },
        ),
        (desk.clone(), move_to(&case.case_id, S::InProgress)),
        (
            gm.clone(),
            pb::TransitionCaseRequest {
                note: "Moved the guest to a quiet room.".into(),
                compensation: refund(30_000),
                guest_contacted: true,
                contact_channel: ContactChannel::PhoneCall as i32,
                ..move_to(&case.case_id, S::Resolved)
            },
        ),
        (
            gm.clone(),
            pb::TransitionCaseRequest {
                reason: "The closing window passed.".into(),
                ..move_to(&case.case_id, S::Closed)
            },
        ),
        (
            gm.clone(),
            pb::TransitionCaseRequest {
                reason: "The guest wrote again: the new room was noisy too.".into(),
                ..move_to(&case.case_id, S::Reopened)
            },
        ),
        (desk.clone(), move_to(&case.case_id, S::Resolved)),
        (
            desk.clone(),
            pb::TransitionCaseRequest {
                guest_contacted: true,
                contact_channel: ContactChannel::Email as i32,
                note: "Guest confirmed by email.".into(),
                ..move_to(&case.case_id, S::Closed)
            },
        ),
    ];
    let mut statuses = vec![S::Received];
    let mut first_ack = None;
    for (i, (token, req)) in steps.iter().enumerate() {
        let to = S::try_from(req.to_status).unwrap();
        let r = app
            .client(token)
            .transition_case(req.clone())
            .await
            .unwrap_or_else(|s| panic!("step {i} to {to:?}: {s:?}"))
            .into_inner();
        let c = r.case.unwrap();
        let e = r.event.unwrap();
        assert_eq!(status_of(&c), to);
        assert_eq!(
            c.version,
            i as i64 + 2,
            "every change raises the version by one"
        );
        assert_eq!(e.sequence, c.version);
        assert_eq!(e.from_status, *statuses.last().unwrap() as i32);
        assert_eq!(e.to_status, to as i32);
        if to == S::Acknowledged {
            first_ack = c.acknowledge_time;
        }
        statuses.push(to);
    }

    let c = app.get_case(&case.case_id).await;
    assert_eq!(status_of(&c), S::Closed);
    assert_eq!(
        c.acknowledge_time, first_ack,
        "the first response stays the first"
    );
    assert!(c.resolve_time.is_some() && c.close_time.is_some());
    assert_eq!(c.reopen_count, 1);
    assert_eq!(c.compensation_total, vec![cny(30_000).unwrap()]);
    assert_eq!(c.version, 10);
    // Acknowledging answered the feedback: its reply time is the first response.
    assert_eq!(app.get_feedback(&fid).await.reply_time, first_ack);

    // The history: who, when, why, and what was given.
    let events = app.case_events(&case.case_id).await;
    assert_eq!(events.len(), 10);
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(events[0].kind, pb::CaseEventKind::Opened as i32);
    assert_eq!(events[0].feedback_id, fid);
    assert_eq!(events[0].actor, "desk-li");
    assert!(
        events[1..]
            .iter()
            .all(|e| e.kind == pb::CaseEventKind::StatusChanged as i32)
    );
    assert_eq!(
        events.iter().map(|e| e.to_status).collect::<Vec<_>>(),
        statuses.iter().map(|s| *s as i32).collect::<Vec<_>>()
    );
    let ack = &events[1];
    assert_eq!(
        (ack.actor.as_str(), ack.actor_role.as_str()),
        ("desk-li", "property_staff")
    );
    assert!(ack.guest_contacted);
    assert_eq!(ack.contact_channel, ContactChannel::PhoneCall as i32);
    assert_eq!(ack.note, "Called the guest back, apologised.");
    assert!(ack.event_time.is_some());
    let resolved = &events[5];
    assert_eq!(
        (resolved.actor.as_str(), resolved.actor_role.as_str()),
        ("gm-chen", "property_manager")
    );
    assert_eq!(resolved.compensation.as_ref().unwrap().value, cny(30_000));
    assert_eq!(
        resolved.compensation.as_ref().unwrap().kind,
        pb::CompensationKind::Refund as i32
    );
    assert_eq!(
        events[7].reason,
        "The guest wrote again: the new room was noisy too."
    );
    let times: Vec<_> = events.iter().map(|e| time_of(&e.event_time)).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // The outbox: CaseOpened, then a CaseStatusChanged per move, in order, facts current.
    let out = app.events("case", &case.case_id).await;
    let mut expected = vec!["case_opened".to_string()];
    expected.extend(std::iter::repeat_n("case_status_changed".to_string(), 9));
    assert_eq!(kinds(&out), expected);
    assert_eq!(
        out.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    for (i, e) in out.iter().enumerate().skip(1) {
        let Payload::CaseStatusChanged(p) = payload(e) else {
            panic!()
        };
        let facts = p.case.as_ref().unwrap();
        assert_eq!(facts.version, i as i64 + 1);
        assert_eq!(p.to_status, statuses[i] as i32);
        assert_eq!(p.from_status, statuses[i - 1] as i32);
        assert_eq!(facts.status, statuses[i] as i32);
    }
    let Payload::CaseStatusChanged(p) = payload(&out[5]) else {
        panic!()
    };
    assert_eq!(p.compensation_value, cny(30_000));
    assert_eq!(p.compensation_kind, pb::CompensationKind::Refund as i32);
    assert!(p.guest_contacted);
    assert_eq!(p.actor_role, "property_manager");
    // The feedback was answered once (FeedbackReplied), not on the later moves.
    assert_eq!(
        kinds(&app.events("feedback", &fid).await),
        ["feedback_received", "feedback_replied"]
    );
}

#[tokio::test]
async fn an_illegal_move_answers_failed_precondition_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let case = app.complaint_case("sh-bund", "The TV does not work.").await;
    let before = app.dump().await;
    for to in [
        S::Resolved,
        S::InProgress,
        S::Closed,
        S::WaitingForGuest,
        S::Received,
    ] {
        let status = assert_code(
            app.head_office()
                .transition_case(pb::TransitionCaseRequest {
                    reason: "trying".into(),
                    ..move_to(&case.case_id, to)
                })
                .await,
            Code::FailedPrecondition,
        );
        assert!(status.message().contains("RECEIVED"), "{status:?}");
    }
    assert_code(
        app.head_office()
            .transition_case(pb::TransitionCaseRequest {
                reason: "trying".into(),
                ..move_to(&case.case_id, S::Reopened)
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(app.dump().await, before, "nothing was written");

    app.transition(&case.case_id, S::Acknowledged).await;
    assert_code(
        app.head_office()
            .transition_case(move_to(&case.case_id, S::Acknowledged))
            .await,
        Code::FailedPrecondition,
    );
    app.transition(&case.case_id, S::Resolved).await;
    assert_code(
        app.head_office()
            .transition_case(move_to(&case.case_id, S::InProgress))
            .await,
        Code::FailedPrecondition,
    );
    app.transition(&case.case_id, S::Closed).await;
    for to in [
        S::InProgress,
        S::Resolved,
        S::WaitingForGuest,
        S::Acknowledged,
    ] {
        assert_code(
            app.head_office()
                .transition_case(move_to(&case.case_id, to))
                .await,
            Code::FailedPrecondition,
        );
    }

    // Reopening, and closing without the guest's confirmation, need a reason.
    assert_invalid(
        app.head_office()
            .transition_case(move_to(&case.case_id, S::Reopened))
            .await,
        "reason",
    );
    let other = app.complaint_case("sh-bund", "The kettle is broken.").await;
    app.transition(&other.case_id, S::Acknowledged).await;
    app.transition(&other.case_id, S::Resolved).await;
    assert_invalid(
        app.head_office()
            .transition_case(move_to(&other.case_id, S::Closed))
            .await,
        "reason",
    );
    assert_invalid(
        app.head_office()
            .transition_case(move_to(&other.case_id, S::Unspecified))
            .await,
        "to_status",
    );
    assert_invalid(
        app.head_office()
            .transition_case(pb::TransitionCaseRequest {
                to_status: 42,
                ..move_to(&other.case_id, S::Closed)
            })
            .await,
        "to_status",
    );
    assert_code(
        app.head_office()
            .transition_case(move_to(&uuid::Uuid::new_v4().to_string(), S::Acknowledged))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn a_stale_expected_version_is_aborted_and_a_retried_key_changes_nothing() {
    let app = TestApp::spawn().await;
    let case = app.complaint_case("sh-bund", "Room not cleaned.").await;
    let id = case.case_id.clone();
    let mut c = app.head_office();
    let stale = |v: i64| pb::TransitionCaseRequest {
        expected_version: v,
        ..move_to(&id, S::Acknowledged)
    };
    assert_code(c.transition_case(stale(2)).await, Code::Aborted);
    let ok = c.transition_case(stale(1)).await.unwrap().into_inner();
    assert_eq!(ok.case.unwrap().version, 2);
    let status = assert_code(
        c.transition_case(pb::TransitionCaseRequest {
            expected_version: 1,
            ..move_to(&id, S::InProgress)
        })
        .await,
        Code::Aborted,
    );
    assert!(status.message().contains('2'), "{status:?}");
    assert_code(
        c.assign_case(pb::AssignCaseRequest {
            case_id: id.clone(),
            assignee_id: "hk-zhao".into(),
            expected_version: 1,
            ..Default::default()
        })
        .await,
        Code::Aborted,
    );
    assert_code(
        c.set_case_grade(pb::SetCaseGradeRequest {
            case_id: id.clone(),
            risk_grade: pb::RiskGrade::High as i32,
            reason: "VIP".into(),
            expected_version: 1,
            ..Default::default()
        })
        .await,
        Code::Aborted,
    );
    assert_code(
        c.reclassify_case(pb::ReclassifyCaseRequest {
            case_id: id.clone(),
            category: pb::Category::Hygiene as i32,
            update_mask: mask(&["category"]),
            reason: "it is hygiene".into(),
            expected_version: 1,
            ..Default::default()
        })
        .await,
        Code::Aborted,
    );
    assert_eq!(app.get_case(&id).await.version, 2);

    // A transition retried with its idempotency key answers the first result.
    let keyed = pb::TransitionCaseRequest {
        idempotency_key: "desk-tablet-op-77".into(),
        ..move_to(&id, S::InProgress)
    };
    let first = c.transition_case(keyed.clone()).await.unwrap().into_inner();
    let before = app.counts().await;
    let again = c.transition_case(keyed).await.unwrap().into_inner();
    assert_eq!(again.event, first.event);
    assert_eq!(again.case.unwrap().version, 3);
    assert_eq!(app.counts().await, before);
}

#[tokio::test]
async fn due_times_follow_urgency_waiting_and_the_propertys_standards() {
    let app = TestApp::spawn_with(
        "[standards.properties.hz-lake]\nfirst_response_urgent = \"5m\"\nresolution = \"12h\"\n",
    )
    .await;
    let due = |c: &pb::Case| {
        (
            time_of(&c.first_response_due_time) - time_of(&c.open_time),
            time_of(&c.resolution_due_time) - time_of(&c.open_time),
        )
    };
    let with_urgency = |property: &str, u: Urgency| pb::SubmitFeedbackRequest {
        complaint: Some(pb::CaseDetails {
            urgency: u as i32,
            ..Default::default()
        }),
        ..complaint(property, Ch::Email, "Something needs attention.")
    };
    let urgent = app
        .submit(with_urgency("sh-bund", Urgency::Urgent))
        .await
        .case
        .unwrap();
    assert_eq!(
        due(&urgent),
        (chrono::Duration::minutes(15), chrono::Duration::hours(48))
    );
    let emergency = app
        .submit(with_urgency("sh-bund", Urgency::Emergency))
        .await
        .case
        .unwrap();
    assert_eq!(
        due(&emergency).0,
        chrono::Duration::minutes(15),
        "an emergency is at least urgent"
    );
    let normal = app
        .submit(with_urgency("sh-bund", Urgency::Normal))
        .await
        .case
        .unwrap();
    assert_eq!(
        due(&normal),
        (chrono::Duration::hours(24), chrono::Duration::hours(48))
    );
    let hz = app
        .submit(with_urgency("hz-lake", Urgency::Urgent))
        .await
        .case
        .unwrap();
    assert_eq!(
        due(&hz),
        (chrono::Duration::minutes(5), chrono::Duration::hours(12)),
        "hz-lake's own standards"
    );

    // The rules' default: a broken air-conditioner phoned in is urgent; smoke is an emergency.
    let mut ac = complaint(
        "sh-bund",
        Ch::Phone,
        "The air conditioning is broken, room is 30 degrees",
    );
    ac.feedback.as_mut().unwrap().category = pb::Category::FacilityMaintenance as i32;
    let ac = app.submit(ac).await.case.unwrap();
    assert_eq!(ac.urgency, Urgency::Urgent as i32);
    assert_eq!(due(&ac).0, chrono::Duration::minutes(15));
    let smoke = app
        .complaint_case("sh-bund", "There is smoke coming out of the socket")
        .await;
    assert_eq!(smoke.urgency, Urgency::Emergency as i32);

    // A changed urgency re-times the first response while it is still due.
    let r = app
        .head_office()
        .reclassify_case(pb::ReclassifyCaseRequest {
            case_id: normal.case_id.clone(),
            urgency: Urgency::Urgent as i32,
            update_mask: mask(&["urgency"]),
            reason: "the guest is in the room now".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        due(r.case.as_ref().unwrap()).0,
        chrono::Duration::minutes(15)
    );

    // Waiting for the guest pauses resolution: the due time moves on by the wait.
    app.transition(&normal.case_id, S::Acknowledged).await;
    let waiting = app
        .transition(&normal.case_id, S::WaitingForGuest)
        .await
        .case
        .unwrap();
    let due_before = time_of(&waiting.resolution_due_time);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let back = app
        .transition(&normal.case_id, S::InProgress)
        .await
        .case
        .unwrap();
    let moved = time_of(&back.resolution_due_time) - due_before;
    assert!(
        moved >= chrono::Duration::milliseconds(1500) && moved < chrono::Duration::seconds(10),
        "resolution due moved by the wait: {moved}"
    );
    // Resolving straight from waiting also counts the wait.
    app.transition(&normal.case_id, S::WaitingForGuest).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resolved = app
        .transition(&normal.case_id, S::Resolved)
        .await
        .case
        .unwrap();
    assert!(
        time_of(&resolved.resolution_due_time) - time_of(&back.resolution_due_time)
            >= chrono::Duration::milliseconds(1100)
    );
    // Reopening restarts the resolution clock from now.
    app.transition(&normal.case_id, S::Closed).await;
    let reopened = app
        .transition(&normal.case_id, S::Reopened)
        .await
        .case
        .unwrap();
    let left = time_of(&reopened.resolution_due_time) - chrono::Utc::now();
    assert!(
        left > chrono::Duration::hours(47) && left <= chrono::Duration::hours(48),
        "{left}"
    );

    // An acknowledged case's first response is done: a later urgency change leaves it.
    let r = app
        .head_office()
        .reclassify_case(pb::ReclassifyCaseRequest {
            case_id: normal.case_id.clone(),
            urgency: Urgency::Normal as i32,
            update_mask: mask(&["urgency"]),
            reason: "calmer now".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        due(r.case.as_ref().unwrap()).0,
        chrono::Duration::minutes(15)
    );
}

#[tokio::test]
async fn overdue_cases_are_flagged() {
    let app = TestApp::spawn().await;
    let mut old = complaint(
        "sh-bund",
        Ch::Email,
        "Received three days ago, nobody answered.",
    );
    old.feedback.as_mut().unwrap().receive_time = ago(chrono::Duration::days(3));
    let old = app.submit(old).await.case.unwrap();
    assert!(old.overdue);
    let fresh = app.complaint_case("sh-bund", "Just now.").await;
    assert!(!fresh.overdue);
    // Waiting for the guest is not overdue on resolution, but the first response still is
    // until acknowledged.
    app.transition(&old.case_id, S::Acknowledged).await;
    let c = app
        .transition(&old.case_id, S::WaitingForGuest)
        .await
        .case
        .unwrap();
    assert!(!c.overdue, "paused and answered");
    let c = app
        .transition(&old.case_id, S::Resolved)
        .await
        .case
        .unwrap();
    assert!(!c.overdue, "resolved");
}

#[tokio::test]
async fn the_rules_grade_the_risk_and_staff_may_override_it() {
    let app = TestApp::spawn().await;
    let regular = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::Regular))
        .await;
    let vip = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::VipGold))
        .await;
    let grade_of = |c: &pb::Case| pb::RiskGrade::try_from(c.risk_grade).unwrap();

    let low = app
        .submit(complaint_from(
            "sh-bund",
            &regular,
            pb::Category::Noise,
            "A bit loud.",
        ))
        .await
        .case
        .unwrap();
    assert_eq!(grade_of(&low), pb::RiskGrade::Low, "{}", low.grade_reason);
    assert!(!low.grade_overridden);
    let vip_case = app
        .submit(complaint_from(
            "sh-bund",
            &vip,
            pb::Category::Noise,
            "A bit loud.",
        ))
        .await
        .case
        .unwrap();
    assert_eq!(
        grade_of(&vip_case),
        pb::RiskGrade::Medium,
        "{}",
        vip_case.grade_reason
    );
    assert!(
        vip_case.grade_reason.contains("VIP"),
        "{}",
        vip_case.grade_reason
    );
    let hygiene = app
        .submit(complaint_from(
            "sh-bund",
            &regular,
            pb::Category::Hygiene,
            "Stains on the sheets.",
        ))
        .await
        .case
        .unwrap();
    assert_eq!(
        grade_of(&hygiene),
        pb::RiskGrade::Medium,
        "{}",
        hygiene.grade_reason
    );
    let words = app
        .submit(complaint_from(
            "sh-bund",
            &regular,
            pb::Category::ServiceAttitude,
            "If this is not fixed I call my lawyer.",
        ))
        .await
        .case
        .unwrap();
    assert_eq!(grade_of(&words), pb::RiskGrade::High);
    assert!(
        words.grade_reason.contains("lawyer"),
        "{}",
        words.grade_reason
    );
    let zh = app
        .submit(complaint_from(
            "sh-bund",
            &regular,
            pb::Category::FoodAndBeverage,
            "吃了早餐以后食物中毒了",
        ))
        .await
        .case
        .unwrap();
    assert_eq!(grade_of(&zh), pb::RiskGrade::High, "{}", zh.grade_reason);
    assert_eq!(
        zh.escalation_tier,
        pb::EscalationTier::CustomerServiceManager as i32,
        "high risk starts with the manager"
    );
    assert_eq!(low.escalation_tier, pb::EscalationTier::FrontLine as i32);

    // A staff override needs a reason, and sticks.
    let mut c = app.manager("sh-bund");
    assert_invalid(
        c.set_case_grade(pb::SetCaseGradeRequest {
            case_id: low.case_id.clone(),
            risk_grade: pb::RiskGrade::High as i32,
            ..Default::default()
        })
        .await,
        "reason",
    );
    assert_invalid(
        c.set_case_grade(pb::SetCaseGradeRequest {
            case_id: low.case_id.clone(),
            reason: "no grade given".into(),
            ..Default::default()
        })
        .await,
        "risk_grade",
    );
    let r = c
        .set_case_grade(pb::SetCaseGradeRequest {
            case_id: low.case_id.clone(),
            risk_grade: pb::RiskGrade::High as i32,
            reason: "Guest is a travel journalist".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let case = r.case.unwrap();
    assert_eq!(grade_of(&case), pb::RiskGrade::High);
    assert!(case.grade_overridden);
    assert!(
        case.grade_reason.contains("Guest is a travel journalist"),
        "{}",
        case.grade_reason
    );
    let e = r.event.unwrap();
    assert_eq!(e.kind, pb::CaseEventKind::GradeSet as i32);
    assert_eq!(
        (e.previous_risk_grade, e.risk_grade),
        (pb::RiskGrade::Low as i32, pb::RiskGrade::High as i32)
    );
    assert_eq!(e.reason, "Guest is a travel journalist");
    let out = app.events("case", &low.case_id).await;
    assert_eq!(kinds(&out), ["case_opened", "case_regraded"]);
    let Payload::CaseRegraded(p) = payload(&out[1]) else {
        panic!()
    };
    assert!(p.by_staff);
    assert_eq!(p.previous_risk_grade, pb::RiskGrade::Low as i32);
    assert_eq!(
        p.case.as_ref().unwrap().risk_grade,
        pb::RiskGrade::High as i32
    );

    // Handed back to the rules: the rules' grade again.
    let r = c
        .set_case_grade(pb::SetCaseGradeRequest {
            case_id: low.case_id.clone(),
            clear_override: true,
            reason: "not a journalist after all".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let case = r.case.unwrap();
    assert!(!case.grade_overridden);
    assert_eq!(grade_of(&case), pb::RiskGrade::Low);
}

/// The rules grade on the guest's own words, so handing a case back to them must give the
/// grade they gave when it opened, whatever title staff typed.
#[tokio::test]
async fn clearing_an_override_regrades_on_the_guests_words() {
    let app = TestApp::spawn().await;
    let r = app
        .submit(pb::SubmitFeedbackRequest {
            complaint: Some(pb::CaseDetails {
                title: "Noise complaint".into(),
                ..Default::default()
            }),
            ..complaint(
                "sh-bund",
                Ch::Email,
                "Third night in a row the bar downstairs played music until 3am. Nobody at the desk cared. \
                 If this happens again I will call the police.",
            )
        })
        .await;
    let case = r.case.unwrap();
    assert_eq!(
        case.risk_grade,
        pb::RiskGrade::High as i32,
        "{}",
        case.grade_reason
    );
    let mut c = app.manager("sh-bund");
    c.set_case_grade(pb::SetCaseGradeRequest {
        case_id: case.case_id.clone(),
        risk_grade: pb::RiskGrade::Low as i32,
        reason: "talked to the guest, calm now".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let cleared = c
        .set_case_grade(pb::SetCaseGradeRequest {
            case_id: case.case_id.clone(),
            clear_override: true,
            reason: "back to the rules".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert!(!cleared.grade_overridden);
    assert_eq!(
        (cleared.risk_grade, cleared.grade_reason.as_str()),
        (case.risk_grade, case.grade_reason.as_str()),
        "the rules give the grade they gave at opening"
    );
}

#[tokio::test]
async fn reclassify_assign_and_record_actions() {
    let app = TestApp::spawn().await;
    let case = app
        .complaint_case("sh-bund", "The room smelled of smoke.")
        .await;
    let id = case.case_id.clone();
    let mut c = app.manager("sh-bund");

    // Reclassify: category and department, with a reason; urgency untouched.
    let r = c
        .reclassify_case(pb::ReclassifyCaseRequest {
            case_id: id.clone(),
            category: pb::Category::Hygiene as i32,
            department: Department::Housekeeping as i32,
            urgency: Urgency::Emergency as i32,
            update_mask: mask(&["category", "department"]),
            reason: "It is about cleaning".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rc = r.case.unwrap();
    assert_eq!(rc.category, pb::Category::Hygiene as i32);
    assert_eq!(rc.department, Department::Housekeeping as i32);
    assert_eq!(rc.urgency, case.urgency, "not in the mask");
    let e = r.event.unwrap();
    assert_eq!(e.kind, pb::CaseEventKind::Reclassified as i32);
    assert_eq!(
        (e.previous_category, e.category),
        (pb::Category::Noise as i32, pb::Category::Hygiene as i32)
    );
    assert_eq!(e.previous_department, case.department);
    assert_eq!(e.reason, "It is about cleaning");
    for (req, field) in [
        (
            pb::ReclassifyCaseRequest {
                case_id: id.clone(),
                reason: "x".into(),
                ..Default::default()
            },
            "update_mask",
        ),
        (
            pb::ReclassifyCaseRequest {
                case_id: id.clone(),
                reason: "x".into(),
                update_mask: mask(&["title"]),
                ..Default::default()
            },
            "update_mask.paths[0]",
        ),
        (
            pb::ReclassifyCaseRequest {
                case_id: id.clone(),
                update_mask: mask(&["category"]),
                category: 3,
                ..Default::default()
            },
            "reason",
        ),
        (
            pb::ReclassifyCaseRequest {
                case_id: id.clone(),
                reason: "x".into(),
                update_mask: mask(&["category"]),
                ..Default::default()
            },
            "category",
        ),
    ] {
        assert_invalid(c.reclassify_case(req).await, field);
    }

    // Assign, reassign, unassign.
    let r = c
        .assign_case(pb::AssignCaseRequest {
            case_id: id.clone(),
            assignee_id: "hk-zhao".into(),
            reason: "floor supervisor".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.case.as_ref().unwrap().assignee_id, "hk-zhao");
    assert_eq!(
        r.case.as_ref().unwrap().department,
        Department::Housekeeping as i32,
        "department stays"
    );
    let e = r.event.unwrap();
    assert_eq!(
        (
            e.kind,
            e.previous_assignee_id.as_str(),
            e.assignee_id.as_str()
        ),
        (pb::CaseEventKind::Assigned as i32, "", "hk-zhao")
    );
    let r = c
        .assign_case(pb::AssignCaseRequest {
            case_id: id.clone(),
            assignee_id: "eng-wang".into(),
            department: Department::Engineering as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let e = r.event.unwrap();
    assert_eq!(
        (e.previous_assignee_id.as_str(), e.assignee_id.as_str()),
        ("hk-zhao", "eng-wang")
    );
    assert_eq!(
        (e.previous_department, e.department),
        (
            Department::Housekeeping as i32,
            Department::Engineering as i32
        )
    );
    let r = c
        .assign_case(pb::AssignCaseRequest {
            case_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.case.unwrap().assignee_id.is_empty());

    // Actions: a note alone (history only), a contact and compensation (an event out).
    let out = app.events("case", &id).await;
    assert_eq!(
        kinds(&out),
        [
            "case_opened",
            "case_regraded",
            "case_assigned",
            "case_assigned",
            "case_assigned"
        ]
    );
    let Payload::CaseAssigned(p) = payload(&out[3]) else {
        panic!()
    };
    assert_eq!(p.previous_assignee_id, "hk-zhao");
    assert_eq!(p.case.as_ref().unwrap().assignee_id, "eng-wang");
    let before_out = out.len();
    let r = c
        .record_case_action(pb::RecordCaseActionRequest {
            case_id: id.clone(),
            note: "Ozone machine ordered.".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.event.unwrap().kind,
        pb::CaseEventKind::ActionRecorded as i32
    );
    assert_eq!(
        app.events("case", &id).await.len(),
        before_out,
        "notes alone emit nothing"
    );
    let voucher = |currency: &str, amount: i64| pb::Compensation {
        kind: pb::CompensationKind::Voucher as i32,
        value: Some(guestloop_proto::common::v1::Money {
            currency_code: currency.into(),
            amount_minor: amount,
        }),
        description: "spa voucher".into(),
    };
    let action = |comp: pb::Compensation, key: &str| pb::RecordCaseActionRequest {
        case_id: id.clone(),
        guest_contacted: true,
        contact_channel: ContactChannel::Wechat as i32,
        compensation: Some(comp),
        idempotency_key: key.into(),
        ..Default::default()
    };
    c.record_case_action(action(voucher("CNY", 5_000), "a1"))
        .await
        .unwrap();
    c.record_case_action(action(voucher("CNY", 3_000), "a2"))
        .await
        .unwrap();
    let r = c
        .record_case_action(action(voucher("USD", 2_000), "a3"))
        .await
        .unwrap()
        .into_inner();
    let totals = r.case.unwrap().compensation_total;
    assert_eq!(
        totals
            .iter()
            .map(|m| (m.currency_code.as_str(), m.amount_minor))
            .collect::<Vec<_>>(),
        [("CNY", 8_000), ("USD", 2_000)]
    );
    // A retried action records nothing new.
    let before = app.counts().await;
    let again = c
        .record_case_action(action(voucher("CNY", 3_000), "a2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(app.counts().await, before);
    assert_eq!(again.case.unwrap().compensation_total, totals);
    let out = app.events("case", &id).await;
    assert_eq!(
        kinds(&out)[before_out..],
        [
            "case_action_recorded",
            "case_action_recorded",
            "case_action_recorded"
        ]
    );
    let Payload::CaseActionRecorded(p) = payload(out.last().unwrap()) else {
        panic!()
    };
    assert!(p.guest_contacted);
    assert_eq!(p.compensation_kind, pb::CompensationKind::Voucher as i32);
    assert_eq!(p.compensation_value.as_ref().unwrap().currency_code, "USD");

    assert_invalid(
        c.record_case_action(pb::RecordCaseActionRequest {
            case_id: id.clone(),
            ..Default::default()
        })
        .await,
        "note",
    );
    assert_invalid(
        c.record_case_action(action(voucher("cny", 1), "")).await,
        "compensation.value.currency_code",
    );
    assert_invalid(
        c.record_case_action(action(voucher("CNY", -1), "")).await,
        "compensation.value.amount_minor",
    );
    assert_invalid(
        c.record_case_action(action(
            pb::Compensation {
                kind: 0,
                ..voucher("CNY", 1)
            },
            "",
        ))
        .await,
        "compensation.kind",
    );

    // The whole history is there, oldest first, and pages.
    let all = app.case_events(&id).await;
    let kinds_in_history: Vec<_> = all
        .iter()
        .map(|e| pb::CaseEventKind::try_from(e.kind).unwrap())
        .collect();
    use pb::CaseEventKind as K;
    assert_eq!(
        kinds_in_history,
        [
            K::Opened,
            K::Reclassified,
            K::Assigned,
            K::Assigned,
            K::Assigned,
            K::ActionRecorded,
            K::ActionRecorded,
            K::ActionRecorded,
            K::ActionRecorded
        ]
    );
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let r = c
            .list_case_events(pb::ListCaseEventsRequest {
                case_id: id.clone(),
                page: page(4, &token),
            })
            .await
            .unwrap()
            .into_inner();
        paged.extend(r.events);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(paged, all);
}

#[tokio::test]
async fn escalation_moves_up_the_ladder_never_down_and_replays_change_nothing() {
    let app = TestApp::spawn().await;
    let case = app
        .complaint_case("sh-bund", "Nobody called me back.")
        .await;
    let id = case.case_id.clone();
    assert_eq!(case.escalation_tier, pb::EscalationTier::FrontLine as i32);
    let mut scheduler = app.client(&service());
    let by_clock = |key: &str| pb::EscalateCaseRequest {
        case_id: id.clone(),
        trigger: pb::EscalationTrigger::DeadlineMissed as i32,
        idempotency_key: key.into(),
        clock_id: "clock-first-response".into(),
        ..Default::default()
    };

    // Service callers must give a key; property staff may not escalate at all.
    assert_invalid(
        scheduler.escalate_case(by_clock("")).await,
        "idempotency_key",
    );
    assert_code(
        app.staff("sh-bund").escalate_case(by_clock("k")).await,
        Code::PermissionDenied,
    );
    assert_invalid(
        app.manager("sh-bund")
            .escalate_case(pb::EscalateCaseRequest {
                case_id: id.clone(),
                trigger: pb::EscalationTrigger::Manager as i32,
                ..Default::default()
            })
            .await,
        "reason",
    );
    assert_invalid(
        app.manager("sh-bund")
            .escalate_case(pb::EscalateCaseRequest {
                case_id: id.clone(),
                ..Default::default()
            })
            .await,
        "trigger",
    );
    assert_eq!(app.get_case(&id).await.version, 1);

    // The scheduler's clock passed: the next tier.
    let r = scheduler
        .escalate_case(by_clock("timer-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.escalated);
    let c = r.case.unwrap();
    assert_eq!(
        c.escalation_tier,
        pb::EscalationTier::CustomerServiceManager as i32
    );
    let e = r.event.unwrap();
    assert_eq!(e.kind, pb::CaseEventKind::Escalated as i32);
    assert_eq!(
        (e.from_tier, e.to_tier),
        (
            pb::EscalationTier::FrontLine as i32,
            pb::EscalationTier::CustomerServiceManager as i32
        )
    );
    assert_eq!(
        e.escalation_trigger,
        pb::EscalationTrigger::DeadlineMissed as i32
    );
    assert_eq!(e.actor_role, "service");

    // The same timer again: nothing changes, the first event answers.
    let before = app.dump().await;
    let again = scheduler
        .escalate_case(by_clock("timer-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.escalated);
    assert_eq!(again.event, Some(e.clone()));
    assert_eq!(
        again.case.unwrap().escalation_tier,
        pb::EscalationTier::CustomerServiceManager as i32
    );
    assert_eq!(app.dump().await, before);

    // A manager moves it on; then the top; never beyond, never down.
    let manager = |to: pb::EscalationTier| pb::EscalateCaseRequest {
        case_id: id.clone(),
        to_tier: to as i32,
        trigger: pb::EscalationTrigger::Manager as i32,
        reason: "guest asked for the manager".into(),
        ..Default::default()
    };
    let mut m = app.manager("sh-bund");
    let r = m
        .escalate_case(manager(pb::EscalationTier::Unspecified))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.case.unwrap().escalation_tier,
        pb::EscalationTier::DepartmentHead as i32
    );
    let r = m
        .escalate_case(manager(pb::EscalationTier::FrontLine))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.escalated && r.event.is_none(), "never down");
    assert_eq!(
        r.case.unwrap().escalation_tier,
        pb::EscalationTier::DepartmentHead as i32
    );
    let r = m
        .escalate_case(manager(pb::EscalationTier::GeneralManager))
        .await
        .unwrap()
        .into_inner();
    assert!(r.escalated);
    let r = scheduler
        .escalate_case(by_clock("timer-2"))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.escalated, "the general manager is the top");
    assert_eq!(
        r.case.unwrap().escalation_tier,
        pb::EscalationTier::GeneralManager as i32
    );

    let out = app.events("case", &id).await;
    assert_eq!(
        kinds(&out),
        [
            "case_opened",
            "case_escalated",
            "case_escalated",
            "case_escalated"
        ]
    );
    let Payload::CaseEscalated(p) = payload(&out[1]) else {
        panic!()
    };
    assert_eq!(p.clock_id, "clock-first-response");
    assert_eq!(p.trigger, pb::EscalationTrigger::DeadlineMissed as i32);
    assert_eq!(
        p.case.as_ref().unwrap().escalation_tier,
        pb::EscalationTier::CustomerServiceManager as i32
    );

    // A resolved case is not escalated.
    let done = app.complaint_case("sh-bund", "Fixed already.").await;
    app.transition(&done.case_id, S::Acknowledged).await;
    app.transition(&done.case_id, S::Resolved).await;
    let r = scheduler
        .escalate_case(pb::EscalateCaseRequest {
            case_id: done.case_id.clone(),
            ..by_clock("timer-3")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.escalated && r.event.is_none());
    assert_eq!(
        r.case.unwrap().escalation_tier,
        pb::EscalationTier::FrontLine as i32
    );
}

#[tokio::test]
async fn more_feedback_can_join_a_case_and_replies_are_recorded() {
    let app = TestApp::spawn().await;
    let case = app.complaint_case("sh-bund", "Cold shower.").await;
    // The guest also wrote a review about it.
    let review = app
        .submit(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::BookingCom,
            "BK-5",
            7.0,
            10.0,
        )))
        .await
        .feedback
        .unwrap();
    let mut c = app.manager("sh-bund");
    let r = c
        .attach_feedback(pb::AttachFeedbackRequest {
            case_id: case.case_id.clone(),
            feedback_id: review.feedback_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let attached = r.case.unwrap();
    assert_eq!(attached.feedback_ids.len(), 2);
    assert!(attached.feedback_ids.contains(&review.feedback_id));
    assert_eq!(
        r.event.unwrap().kind,
        pb::CaseEventKind::FeedbackAttached as i32
    );
    assert_eq!(
        app.get_feedback(&review.feedback_id).await.case_id,
        case.case_id
    );
    // Again: nothing new.
    let again = c
        .attach_feedback(pb::AttachFeedbackRequest {
            case_id: case.case_id.clone(),
            feedback_id: review.feedback_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.event.is_none());
    // Feedback of another property, or of another case, cannot join.
    let elsewhere = app
        .submit(submit_req(feedback("hz-lake", Ch::Email, "hz")))
        .await
        .feedback
        .unwrap();
    assert_code(
        app.head_office()
            .attach_feedback(pb::AttachFeedbackRequest {
                case_id: case.case_id.clone(),
                feedback_id: elsewhere.feedback_id,
            })
            .await,
        Code::FailedPrecondition,
    );
    let other_case = app.complaint_case("sh-bund", "Another issue.").await;
    assert_code(
        c.attach_feedback(pb::AttachFeedbackRequest {
            case_id: other_case.case_id.clone(),
            feedback_id: review.feedback_id.clone(),
        })
        .await,
        Code::FailedPrecondition,
    );

    // Acknowledging answers every feedback of the case.
    let ack = app
        .transition(&case.case_id, S::Acknowledged)
        .await
        .case
        .unwrap();
    for fid in &attached.feedback_ids {
        assert_eq!(
            app.get_feedback(fid).await.reply_time,
            ack.acknowledge_time,
            "{fid}"
        );
    }

    // An OTA reply on a review without a case: published, answered once.
    let lone = app
        .submit(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::Google,
            "G-1",
            4.0,
            5.0,
        )))
        .await
        .feedback
        .unwrap();
    let reply = |kind: pb::FeedbackReplyKind, id: &str| pb::RecordFeedbackReplyRequest {
        feedback_id: id.into(),
        kind: kind as i32,
        note: "Thank you for your review".into(),
        ..Default::default()
    };
    let r = c
        .record_feedback_reply(reply(pb::FeedbackReplyKind::OtaReply, &lone.feedback_id))
        .await
        .unwrap()
        .into_inner();
    let f = r.feedback.unwrap();
    assert_eq!(
        f.ota_review.unwrap().reply_status,
        pb::OtaReplyStatus::Published as i32
    );
    let first_reply = f.reply_time.expect("answered");
    let r = c
        .record_feedback_reply(reply(
            pb::FeedbackReplyKind::WrittenReply,
            &lone.feedback_id,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.feedback.unwrap().reply_time,
        Some(first_reply),
        "the first answer counts"
    );
    let out = app.events("feedback", &lone.feedback_id).await;
    assert_eq!(kinds(&out), ["feedback_received", "feedback_replied"]);
    let Payload::FeedbackReplied(p) = payload(&out[1]) else {
        panic!()
    };
    assert_eq!(p.kind, pb::FeedbackReplyKind::OtaReply as i32);

    let phone = app
        .submit(submit_req(feedback("sh-bund", Ch::Phone, "call log")))
        .await
        .feedback
        .unwrap();
    assert_invalid(
        c.record_feedback_reply(reply(pb::FeedbackReplyKind::OtaReply, &phone.feedback_id))
            .await,
        "kind",
    );
    assert_invalid(
        c.record_feedback_reply(reply(
            pb::FeedbackReplyKind::Unspecified,
            &phone.feedback_id,
        ))
        .await,
        "kind",
    );
    assert_invalid(
        c.record_feedback_reply(pb::RecordFeedbackReplyRequest {
            reply_time: Some(ts(chrono::Utc::now() + chrono::Duration::hours(2))),
            ..reply(pb::FeedbackReplyKind::GuestContacted, &phone.feedback_id)
        })
        .await,
        "reply_time",
    );
    assert!(
        app.get_feedback(&phone.feedback_id)
            .await
            .reply_time
            .is_none()
    );
}

/// The rules grade on category and urgency; when staff change those, a grade the rules set
/// follows (an overridden grade stays, it is staff's).
#[tokio::test]
async fn reclassifying_regrades_unless_staff_set_the_grade() {
    let app = TestApp::spawn().await;
    let g = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::Regular))
        .await;
    let mut c = app.manager("sh-bund");
    let reclassify = |id: &str, category: pb::Category| pb::ReclassifyCaseRequest {
        case_id: id.into(),
        category: category as i32,
        update_mask: mask(&["category"]),
        reason: "it was about cleaning".into(),
        ..Default::default()
    };

    let case = app
        .submit(complaint_from(
            "sh-bund",
            &g,
            pb::Category::Noise,
            "Noise and a dirty carpet.",
        ))
        .await
        .case
        .unwrap();
    assert_eq!(case.risk_grade, pb::RiskGrade::Low as i32);
    let r = c
        .reclassify_case(reclassify(&case.case_id, pb::Category::Hygiene))
        .await
        .unwrap()
        .into_inner();
    let regraded = r.case.unwrap();
    assert_eq!(
        regraded.risk_grade,
        pb::RiskGrade::Medium as i32,
        "{}",
        regraded.grade_reason
    );
    assert!(
        regraded.grade_reason.contains("HYGIENE"),
        "{}",
        regraded.grade_reason
    );
    let e = r.event.unwrap();
    assert_eq!(
        (e.previous_risk_grade, e.risk_grade),
        (pb::RiskGrade::Low as i32, pb::RiskGrade::Medium as i32)
    );
    let out = app.events("case", &case.case_id).await;
    let Payload::CaseRegraded(p) = payload(out.last().unwrap()) else {
        panic!()
    };
    assert_eq!(p.previous_risk_grade, pb::RiskGrade::Low as i32);
    assert_eq!(
        p.case.as_ref().unwrap().risk_grade,
        pb::RiskGrade::Medium as i32
    );

    // An emergency urgency raises it too.
    let r = c
        .reclassify_case(pb::ReclassifyCaseRequest {
            case_id: case.case_id.clone(),
            urgency: Urgency::Emergency as i32,
            update_mask: mask(&["urgency"]),
            reason: "the guest feels unwell".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.case.unwrap().risk_grade, pb::RiskGrade::High as i32);

    // Staff's grade is staff's.
    let other = app
        .submit(complaint_from(
            "sh-bund",
            &g,
            pb::Category::BillingPrice,
            "Minibar charged twice.",
        ))
        .await
        .case
        .unwrap();
    c.set_case_grade(pb::SetCaseGradeRequest {
        case_id: other.case_id.clone(),
        risk_grade: pb::RiskGrade::Low as i32,
        reason: "refunded on the spot".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = c
        .reclassify_case(reclassify(&other.case_id, pb::Category::Hygiene))
        .await
        .unwrap()
        .into_inner();
    let kept = r.case.unwrap();
    assert_eq!(kept.risk_grade, pb::RiskGrade::Low as i32);
    assert!(kept.grade_overridden);
}

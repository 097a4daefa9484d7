//! The access matrix (issue 3, section 7). Feedback, a case and an incident at sh-bund; every
//! RPC of the service (enumerated from the descriptor the server publishes, so a new RPC
//! fails this test until it is covered) called by callers outside sh-bund's scope — staff
//! and the manager of hz-lake (same region), staff of hk-harbour (other region), the south
//! regional manager — answers NOT_FOUND (PERMISSION_DENIED where the call writes to a
//! property outside the scope, or needs a role the caller lacks), lists, searches and watches
//! show nothing of sh-bund, and the database is unchanged afterwards. The east regional
//! manager, sh-bund's staff and head office see it all. Without a valid token nothing answers.

mod common;

use common::*;
use guestloop_auth::{Role, SigningKey, TokenSigner};
use guestloop_client::FeedbackClient;
use guestloop_proto::feedback::v1 as pb;
use guestloop_testkit::keys;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::{Code, Status};

/// What sh-bund holds.
struct World {
    /// A phone complaint (idempotency key BUND_KEY) with its case.
    fb: pb::Feedback,
    case: pb::Case,
    /// Feedback without a case, and an OTA review without one.
    loose: pb::Feedback,
    review: pb::Feedback,
    incident: pb::Incident,
}

const BUND_KEY: &str = "bund-phone-log-1";
const SECRET_TEXT: &str = "Mrs Gao in 1208 found a cockroach under the pillow";

async fn world(app: &TestApp) -> World {
    let g = app.create_guest("sh-bund", guest()).await;
    let r = app
        .submit(pb::SubmitFeedbackRequest {
            idempotency_key: BUND_KEY.into(),
            guest: by_id(&g),
            ..complaint("sh-bund", pb::FeedbackChannel::Phone, SECRET_TEXT)
        })
        .await;
    let (fb, case) = (r.feedback.unwrap(), r.case.unwrap());
    let loose = app
        .submit(submit_req(feedback(
            "sh-bund",
            pb::FeedbackChannel::Email,
            "cockroach follow-up email",
        )))
        .await
        .feedback
        .unwrap();
    let review = app
        .submit(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::TripCom,
            "TC-BUND-1",
            8.0,
            10.0,
        )))
        .await
        .feedback
        .unwrap();
    let incident = app
        .manager("sh-bund")
        .create_incident(pb::CreateIncidentRequest {
            incident: Some(pb::Incident {
                property_id: "sh-bund".into(),
                title: "cockroach infestation, floor 12".into(),
                ..Default::default()
            }),
            case_ids: vec![case.case_id.clone()],
            idempotency_key: "bund-incident".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    World {
        fb,
        case,
        loose,
        review,
        incident,
    }
}

/// What an outsider holds at their own property, to try to join sh-bund's things to.
struct Own {
    fb: pb::Feedback,
    case: pb::Case,
    incident: pb::Incident,
}

async fn own(app: &TestApp, property: &str) -> Own {
    let r = app
        .submit(complaint(
            property,
            pb::FeedbackChannel::Phone,
            "our own complaint",
        ))
        .await;
    let case = r.case.unwrap();
    let fb = app
        .submit(submit_req(feedback(
            property,
            pb::FeedbackChannel::Email,
            "our own loose feedback",
        )))
        .await
        .feedback
        .unwrap();
    let incident = app
        .head_office()
        .create_incident(pb::CreateIncidentRequest {
            incident: Some(pb::Incident {
                property_id: property.into(),
                title: "own incident".into(),
                ..Default::default()
            }),
            case_ids: vec![],
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    Own { fb, case, incident }
}

/// Every method of FeedbackIntakeService, from the descriptor the server publishes.
fn all_rpcs() -> BTreeSet<String> {
    guestloop_testkit::grpc::rpc_names("guestloop.feedback.v1", "FeedbackIntakeService")
}

type Probe<'a> = guestloop_testkit::grpc::AccessProbe<'a>;

const NF: &[Code] = &[Code::NotFound];
const DENIED: &[Code] = &[Code::PermissionDenied];
const NF_OR_DENIED: &[Code] = &[Code::NotFound, Code::PermissionDenied];

/// Calls every RPC as an outsider on sh-bund's feedback, case and incident.
async fn probe_outsider(w: &World, who: &str, mut c: FeedbackClient, mine: &Own) {
    let mut p = Probe {
        who,
        secrets: vec![
            w.fb.feedback_id.clone(),
            w.case.case_id.clone(),
            w.case.reference.clone(),
            w.loose.feedback_id.clone(),
            w.review.feedback_id.clone(),
            w.incident.incident_id.clone(),
            "cockroach".into(),
        ],
        called: BTreeSet::new(),
        check_answers: true,
    };
    let (fid, cid, iid) = (
        w.fb.feedback_id.clone(),
        w.case.case_id.clone(),
        w.incident.incident_id.clone(),
    );

    // Feedback.
    p.refused(
        "SubmitFeedback",
        c.submit_feedback(pb::SubmitFeedbackRequest {
            idempotency_key: BUND_KEY.into(),
            ..complaint("sh-bund", pb::FeedbackChannel::Phone, "intruder")
        })
        .await,
        DENIED,
    );
    let import = p.answered(
        "ImportFeedback",
        c.import_feedback(tokio_stream::iter(vec![
            pb::ImportFeedbackRequest {
                idempotency_key: BUND_KEY.into(),
                ..pb::ImportFeedbackRequest {
                    feedback: complaint("sh-bund", pb::FeedbackChannel::Phone, "x").feedback,
                    ..Default::default()
                }
            },
            pb::ImportFeedbackRequest {
                feedback: Some(ota_review(
                    "sh-bund",
                    pb::OtaSite::TripCom,
                    "TC-BUND-1",
                    8.0,
                    10.0,
                )),
                ..Default::default()
            },
        ]))
        .await,
    );
    assert_eq!(import.failed_count, 2, "{who}: {import:?}");
    assert!(
        import
            .results
            .iter()
            .all(|r| r.error_code == Code::PermissionDenied as i32 && r.feedback_id.is_empty()),
        "{who}: {import:?}"
    );
    p.refused(
        "GetFeedback",
        c.get_feedback(pb::GetFeedbackRequest {
            feedback_id: fid.clone(),
        })
        .await,
        NF,
    );
    for filter in [
        pb::FeedbackFilter::default(),
        pb::FeedbackFilter {
            property_ids: vec!["sh-bund".into()],
            ..Default::default()
        },
        pb::FeedbackFilter {
            region_id: "east".into(),
            ..Default::default()
        },
        pb::FeedbackFilter {
            guest_id: w.fb.guest_id.clone(),
            ..Default::default()
        },
    ] {
        let items = p
            .answered(
                "ListFeedback",
                c.list_feedback(pb::ListFeedbackRequest {
                    filter: Some(filter),
                    page: None,
                })
                .await,
            )
            .items;
        assert!(items.iter().all(|f| f.property_id != "sh-bund"), "{who}");
    }
    let found = p.answered(
        "SearchFeedback",
        c.search_feedback(pb::SearchFeedbackRequest {
            query: "cockroach".into(),
            filter: None,
            page: None,
        })
        .await,
    );
    assert!(found.items.is_empty(), "{who}");
    p.refused(
        "RecordFeedbackReply",
        c.record_feedback_reply(pb::RecordFeedbackReplyRequest {
            feedback_id: w.review.feedback_id.clone(),
            kind: pb::FeedbackReplyKind::OtaReply as i32,
            ..Default::default()
        })
        .await,
        NF,
    );

    // OTA review replies.
    let rid = w.review.feedback_id.clone();
    p.refused(
        "GetReviewReply",
        c.get_review_reply(pb::GetReviewReplyRequest {
            feedback_id: rid.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "DraftReviewReply",
        c.draft_review_reply(pb::DraftReviewReplyRequest {
            feedback_id: rid.clone(),
            text: "intruder".into(),
        })
        .await,
        NF,
    );
    p.refused(
        "ApproveReviewReply",
        c.approve_review_reply(pb::ApproveReviewReplyRequest {
            feedback_id: rid.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "RecordReviewReplyPosted",
        c.record_review_reply_posted(pb::RecordReviewReplyPostedRequest {
            feedback_id: rid.clone(),
            text: "intruder".into(),
            post_time: None,
        })
        .await,
        NF,
    );
    p.refused(
        "ListReviewReplies",
        c.list_review_replies(pb::ListReviewRepliesRequest {
            property_id: "sh-bund".into(),
            ..Default::default()
        })
        .await,
        NF,
    );

    // Cases.
    p.refused(
        "OpenCase",
        c.open_case(pb::OpenCaseRequest {
            feedback_id: w.loose.feedback_id.clone(),
            ..Default::default()
        })
        .await,
        NF,
    );
    p.refused(
        "GetCase",
        c.get_case(pb::GetCaseRequest {
            case_id: cid.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "GetCase",
        c.get_case(pb::GetCaseRequest {
            case_id: w.case.reference.clone(),
        })
        .await,
        NF,
    );
    for filter in [
        pb::CaseFilter::default(),
        pb::CaseFilter {
            property_ids: vec!["sh-bund".into()],
            ..Default::default()
        },
        pb::CaseFilter {
            incident_id: iid.clone(),
            ..Default::default()
        },
        pb::CaseFilter {
            region_id: "east".into(),
            ..Default::default()
        },
    ] {
        let cases = p
            .answered(
                "ListCases",
                c.list_cases(pb::ListCasesRequest {
                    filter: Some(filter),
                    ..Default::default()
                })
                .await,
            )
            .cases;
        assert!(cases.iter().all(|x| x.property_id != "sh-bund"), "{who}");
    }
    let found = p.answered(
        "SearchCases",
        c.search_cases(pb::SearchCasesRequest {
            query: "cockroach".into(),
            filter: None,
            page: None,
        })
        .await,
    );
    assert!(found.cases.is_empty(), "{who}");
    p.refused(
        "TransitionCase",
        c.transition_case(pb::TransitionCaseRequest {
            case_id: cid.clone(),
            to_status: pb::CaseStatus::Acknowledged as i32,
            ..Default::default()
        })
        .await,
        NF,
    );
    p.refused(
        "AssignCase",
        c.assign_case(pb::AssignCaseRequest {
            case_id: cid.clone(),
            assignee_id: "intruder".into(),
            ..Default::default()
        })
        .await,
        NF,
    );
    p.refused(
        "SetCaseGrade",
        c.set_case_grade(pb::SetCaseGradeRequest {
            case_id: cid.clone(),
            risk_grade: pb::RiskGrade::Low as i32,
            reason: "x".into(),
            ..Default::default()
        })
        .await,
        NF,
    );
    p.refused(
        "ReclassifyCase",
        c.reclassify_case(pb::ReclassifyCaseRequest {
            case_id: cid.clone(),
            category: pb::Category::Other as i32,
            update_mask: mask(&["category"]),
            reason: "x".into(),
            ..Default::default()
        })
        .await,
        NF,
    );
    p.refused(
        "RecordCaseAction",
        c.record_case_action(pb::RecordCaseActionRequest {
            case_id: cid.clone(),
            note: "x".into(),
            ..Default::default()
        })
        .await,
        NF,
    );
    p.refused(
        "EscalateCase",
        c.escalate_case(pb::EscalateCaseRequest {
            case_id: cid.clone(),
            trigger: pb::EscalationTrigger::Manager as i32,
            reason: "x".into(),
            ..Default::default()
        })
        .await,
        NF_OR_DENIED,
    );
    p.refused(
        "AttachFeedback",
        c.attach_feedback(pb::AttachFeedbackRequest {
            case_id: cid.clone(),
            feedback_id: mine.fb.feedback_id.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "AttachFeedback",
        c.attach_feedback(pb::AttachFeedbackRequest {
            case_id: mine.case.case_id.clone(),
            feedback_id: w.loose.feedback_id.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "ListCaseEvents",
        c.list_case_events(pb::ListCaseEventsRequest {
            case_id: cid.clone(),
            page: None,
        })
        .await,
        NF,
    );

    // Incidents.
    p.refused(
        "CreateIncident",
        c.create_incident(pb::CreateIncidentRequest {
            incident: Some(pb::Incident {
                property_id: "sh-bund".into(),
                title: "x".into(),
                ..Default::default()
            }),
            case_ids: vec![],
            idempotency_key: "bund-incident".into(),
        })
        .await,
        DENIED,
    );
    p.refused(
        "CreateIncident",
        c.create_incident(pb::CreateIncidentRequest {
            incident: Some(pb::Incident {
                property_id: mine.case.property_id.clone(),
                title: "x".into(),
                ..Default::default()
            }),
            case_ids: vec![cid.clone()],
            idempotency_key: String::new(),
        })
        .await,
        NF_OR_DENIED,
    );
    p.refused(
        "LinkCasesToIncident",
        c.link_cases_to_incident(pb::LinkCasesToIncidentRequest {
            incident_id: iid.clone(),
            case_ids: vec![mine.case.case_id.clone()],
        })
        .await,
        NF,
    );
    p.refused(
        "LinkCasesToIncident",
        c.link_cases_to_incident(pb::LinkCasesToIncidentRequest {
            incident_id: mine.incident.incident_id.clone(),
            case_ids: vec![cid.clone()],
        })
        .await,
        NF_OR_DENIED,
    );
    p.refused(
        "GetIncident",
        c.get_incident(pb::GetIncidentRequest {
            incident_id: iid.clone(),
        })
        .await,
        NF,
    );
    for property_id in ["", "sh-bund"] {
        let list = p.answered(
            "ListIncidents",
            c.list_incidents(pb::ListIncidentsRequest {
                property_id: property_id.into(),
                ..Default::default()
            })
            .await,
        );
        assert!(
            list.incidents.iter().all(|i| i.property_id != "sh-bund"),
            "{who}"
        );
    }

    // The live queue.
    p.refused(
        "WatchCaseQueue",
        c.watch_case_queue(pb::WatchCaseQueueRequest {
            property_id: "sh-bund".into(),
            ..Default::default()
        })
        .await,
        NF,
    );

    assert_eq!(
        p.called,
        all_rpcs(),
        "{who}: the matrix must call every RPC"
    );
}

/// Everything stored in both services' schemas that a call could change.
async fn snapshot(app: &TestApp) -> (Vec<String>, i64) {
    let gp_reads: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log")
        .fetch_one(&app.gp_pool)
        .await
        .unwrap();
    (app.dump().await, gp_reads)
}

#[tokio::test]
async fn outsiders_can_neither_see_nor_change_another_propertys_feedback_and_cases() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let outsiders = [
        (
            "staff of hz-lake (same region)",
            keys().staff("hz-lake"),
            "hz-lake",
        ),
        (
            "manager of hz-lake (same region)",
            manager("hz-lake"),
            "hz-lake",
        ),
        (
            "staff of hk-harbour (other region)",
            keys().staff("hk-harbour"),
            "hk-harbour",
        ),
        (
            "regional manager of south",
            keys().regional("south"),
            "sz-bay",
        ),
    ];
    let mut mine = std::collections::HashMap::new();
    for property in ["hz-lake", "hk-harbour", "sz-bay"] {
        mine.insert(property, own(&app, property).await);
    }
    let before = snapshot(&app).await;
    for (who, token, property) in &outsiders {
        probe_outsider(&w, who, app.client(token), &mine[property]).await;
        assert_eq!(
            snapshot(&app).await,
            before,
            "{who}: the database shows no change (and guest-profile no lookup)"
        );
    }
}

#[tokio::test]
async fn insiders_see_and_work_the_case() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let insiders = [
        ("head office", keys().head_office()),
        ("regional manager of east", keys().regional("east")),
        ("staff of sh-bund", keys().staff("sh-bund")),
        ("manager of sh-bund", manager("sh-bund")),
    ];
    for (who, token) in &insiders {
        let mut c = app.client(token);
        let f = c
            .get_feedback(pb::GetFeedbackRequest {
                feedback_id: w.fb.feedback_id.clone(),
            })
            .await;
        assert_eq!(
            f.unwrap_or_else(|s| panic!("{who}: {s:?}"))
                .into_inner()
                .feedback
                .unwrap()
                .text,
            SECRET_TEXT
        );
        let case = c
            .get_case(pb::GetCaseRequest {
                case_id: w.case.reference.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .case
            .unwrap();
        assert_eq!(case.case_id, w.case.case_id, "{who}");
        let listed = c
            .list_cases(pb::ListCasesRequest {
                filter: Some(pb::CaseFilter {
                    property_ids: vec!["sh-bund".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .cases;
        assert!(listed.iter().any(|x| x.case_id == w.case.case_id), "{who}");
        let items = c
            .list_feedback(pb::ListFeedbackRequest::default())
            .await
            .unwrap()
            .into_inner()
            .items;
        assert_eq!(
            items.iter().filter(|x| x.property_id == "sh-bund").count(),
            3,
            "{who}"
        );
        let found = c
            .search_cases(pb::SearchCasesRequest {
                query: "cockroach".into(),
                filter: None,
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .cases;
        assert_eq!(found.len(), 1, "{who}");
        let incidents = c
            .list_incidents(pb::ListIncidentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .incidents;
        assert_eq!(incidents.len(), 1, "{who}");
        assert!(
            !c.list_case_events(pb::ListCaseEventsRequest {
                case_id: w.case.case_id.clone(),
                page: None
            })
            .await
            .unwrap()
            .into_inner()
            .events
            .is_empty()
        );
        let mut watch = c
            .watch_case_queue(pb::WatchCaseQueueRequest {
                property_id: "sh-bund".into(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{who}: {s:?}"))
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(first.case.unwrap().case_id, w.case.case_id, "{who}");
        // Each insider records an action.
        c.record_case_action(pb::RecordCaseActionRequest {
            case_id: w.case.case_id.clone(),
            note: format!("seen by {who}"),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("{who}: {s:?}"));
    }
    // The region's manager may escalate it; sh-bund's staff may not.
    let r = app
        .client(&keys().regional("east"))
        .escalate_case(pb::EscalateCaseRequest {
            case_id: w.case.case_id.clone(),
            trigger: pb::EscalationTrigger::Manager as i32,
            reason: "regional spot check".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.escalated);
    let notes: Vec<_> = app
        .case_events(&w.case.case_id)
        .await
        .into_iter()
        .map(|e| e.actor_role)
        .collect();
    assert!(
        notes.contains(&"regional_manager".to_string())
            && notes.contains(&"head_office".to_string())
    );
}

/// Calls every RPC once with harmless arguments; returns each RPC's name and outcome.
async fn call_every_rpc(c: &mut FeedbackClient, w: &World) -> Vec<(&'static str, Code)> {
    fn code<T>(r: Result<T, Status>) -> Code {
        r.map(|_| Code::Ok).unwrap_or_else(|s| s.code())
    }
    let (fid, cid, iid) = (
        w.fb.feedback_id.clone(),
        w.case.case_id.clone(),
        w.incident.incident_id.clone(),
    );
    vec![
        (
            "SubmitFeedback",
            code(
                c.submit_feedback(complaint("sh-bund", pb::FeedbackChannel::Phone, "x"))
                    .await,
            ),
        ),
        (
            "ImportFeedback",
            code(
                c.import_feedback(tokio_stream::iter(vec![
                    pb::ImportFeedbackRequest::default(),
                ]))
                .await,
            ),
        ),
        (
            "GetFeedback",
            code(
                c.get_feedback(pb::GetFeedbackRequest {
                    feedback_id: fid.clone(),
                })
                .await,
            ),
        ),
        (
            "ListFeedback",
            code(c.list_feedback(pb::ListFeedbackRequest::default()).await),
        ),
        (
            "SearchFeedback",
            code(
                c.search_feedback(pb::SearchFeedbackRequest {
                    query: "x".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "RecordFeedbackReply",
            code(
                c.record_feedback_reply(pb::RecordFeedbackReplyRequest {
                    feedback_id: fid.clone(),
                    kind: pb::FeedbackReplyKind::GuestContacted as i32,
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "GetReviewReply",
            code(
                c.get_review_reply(pb::GetReviewReplyRequest {
                    feedback_id: w.review.feedback_id.clone(),
                })
                .await,
            ),
        ),
        (
            "DraftReviewReply",
            code(
                c.draft_review_reply(pb::DraftReviewReplyRequest {
                    feedback_id: w.review.feedback_id.clone(),
                    text: "x".into(),
                })
                .await,
            ),
        ),
        (
            "ApproveReviewReply",
            code(
                c.approve_review_reply(pb::ApproveReviewReplyRequest {
                    feedback_id: w.review.feedback_id.clone(),
                })
                .await,
            ),
        ),
        (
            "RecordReviewReplyPosted",
            code(
                c.record_review_reply_posted(pb::RecordReviewReplyPostedRequest {
                    feedback_id: w.review.feedback_id.clone(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ListReviewReplies",
            code(
                c.list_review_replies(pb::ListReviewRepliesRequest {
                    property_id: "sh-bund".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "OpenCase",
            code(
                c.open_case(pb::OpenCaseRequest {
                    feedback_id: fid.clone(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "GetCase",
            code(
                c.get_case(pb::GetCaseRequest {
                    case_id: cid.clone(),
                })
                .await,
            ),
        ),
        (
            "ListCases",
            code(c.list_cases(pb::ListCasesRequest::default()).await),
        ),
        (
            "SearchCases",
            code(
                c.search_cases(pb::SearchCasesRequest {
                    query: "x".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "TransitionCase",
            code(
                c.transition_case(pb::TransitionCaseRequest {
                    case_id: cid.clone(),
                    to_status: pb::CaseStatus::Acknowledged as i32,
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "AssignCase",
            code(
                c.assign_case(pb::AssignCaseRequest {
                    case_id: cid.clone(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "SetCaseGrade",
            code(
                c.set_case_grade(pb::SetCaseGradeRequest {
                    case_id: cid.clone(),
                    risk_grade: 1,
                    reason: "x".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ReclassifyCase",
            code(
                c.reclassify_case(pb::ReclassifyCaseRequest {
                    case_id: cid.clone(),
                    category: 1,
                    update_mask: mask(&["category"]),
                    reason: "x".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "RecordCaseAction",
            code(
                c.record_case_action(pb::RecordCaseActionRequest {
                    case_id: cid.clone(),
                    note: "x".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "EscalateCase",
            code(
                c.escalate_case(pb::EscalateCaseRequest {
                    case_id: cid.clone(),
                    trigger: pb::EscalationTrigger::Manager as i32,
                    reason: "x".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "AttachFeedback",
            code(
                c.attach_feedback(pb::AttachFeedbackRequest {
                    case_id: cid.clone(),
                    feedback_id: w.loose.feedback_id.clone(),
                })
                .await,
            ),
        ),
        (
            "ListCaseEvents",
            code(
                c.list_case_events(pb::ListCaseEventsRequest {
                    case_id: cid.clone(),
                    page: None,
                })
                .await,
            ),
        ),
        (
            "CreateIncident",
            code(
                c.create_incident(pb::CreateIncidentRequest {
                    incident: Some(pb::Incident {
                        property_id: "sh-bund".into(),
                        title: "x".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "LinkCasesToIncident",
            code(
                c.link_cases_to_incident(pb::LinkCasesToIncidentRequest {
                    incident_id: iid.clone(),
                    case_ids: vec![cid.clone()],
                })
                .await,
            ),
        ),
        (
            "GetIncident",
            code(
                c.get_incident(pb::GetIncidentRequest {
                    incident_id: iid.clone(),
                })
                .await,
            ),
        ),
        (
            "ListIncidents",
            code(c.list_incidents(pb::ListIncidentsRequest::default()).await),
        ),
        (
            "WatchCaseQueue",
            code(
                c.watch_case_queue(pb::WatchCaseQueueRequest {
                    property_id: "sh-bund".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
    ]
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let (private, _) = guestloop_auth::generate_key_pair_pem();
    let forged = TokenSigner::new(SigningKey::from_pem(&private).unwrap(), "guestloop")
        .issue(
            "mallory",
            Role::HeadOffice,
            vec![],
            None,
            Duration::from_secs(600),
        )
        .unwrap();
    let wrong_issuer = TokenSigner::new(
        SigningKey::from_pem(&std::fs::read_to_string(&keys().signing_key_path).unwrap()).unwrap(),
        "someone-else",
    )
    .issue(
        "mallory",
        Role::HeadOffice,
        vec![],
        None,
        Duration::from_secs(600),
    )
    .unwrap();
    let before = snapshot(&app).await;
    for (who, mut c) in [
        ("no token", app.anonymous_client()),
        ("garbage", app.client("not-a-jwt")),
        ("forged key", app.client(&forged)),
        ("wrong issuer", app.client(&wrong_issuer)),
    ] {
        let answers = call_every_rpc(&mut c, &w).await;
        let names: BTreeSet<String> = answers.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, all_rpcs(), "{who}: every RPC is called");
        for (rpc, code) in answers {
            assert_eq!(code, Code::Unauthenticated, "{who}: {rpc}");
        }
    }
    assert_eq!(snapshot(&app).await, before);
    // The same calls with head office's token get through (the probe is a real probe).
    let answers = call_every_rpc(&mut app.head_office(), &w).await;
    assert!(answers.iter().all(|(_, c)| *c != Code::Unauthenticated));
}

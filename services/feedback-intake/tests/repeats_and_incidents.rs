//! Repeat complaints and incidents (issue 3, section 3): the same guest with the same
//! category within the repeat window, anywhere in the chain, marks the case as a repeat and
//! raises its grade; many cases from one cause are linked to one incident.

mod common;

use common::*;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1 as gp;
use pb::Category as Cat;
use tonic::Code;

async fn noise_case(app: &TestApp, property: &str, g: &gp::Guest, days_ago: i64) -> pb::Case {
    let mut req = complaint_from(property, g, Cat::Noise, "Noisy neighbours all night.");
    if days_ago > 0 {
        req.feedback.as_mut().unwrap().receive_time = ago(chrono::Duration::days(days_ago));
    }
    app.submit(req).await.case.expect("case")
}

#[tokio::test]
async fn the_same_guest_and_category_again_anywhere_in_the_chain_is_a_repeat() {
    let app = TestApp::spawn().await;
    let g = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::Regular))
        .await;
    let someone_else = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::Regular))
        .await;

    let first = noise_case(&app, "sh-bund", &g, 0).await;
    assert!(!first.repeat);
    assert!(first.repeat_of_case_ids.is_empty());
    assert_eq!(
        first.risk_grade,
        pb::RiskGrade::Low as i32,
        "{}",
        first.grade_reason
    );

    // Another region, another hotel, same guest, same category: a repeat, graded up.
    let second = noise_case(&app, "hk-harbour", &g, 0).await;
    assert!(second.repeat);
    assert_eq!(
        second.repeat_of_case_ids,
        std::slice::from_ref(&first.case_id)
    );
    assert_eq!(
        second.risk_grade,
        pb::RiskGrade::Medium as i32,
        "{}",
        second.grade_reason
    );
    assert!(
        second.grade_reason.contains("repeat"),
        "{}",
        second.grade_reason
    );
    let out = app.events("case", &second.case_id).await;
    let Payload::CaseOpened(opened) = payload(&out[0]) else {
        panic!()
    };
    assert!(
        opened.case.as_ref().unwrap().repeat,
        "consumers see the repeat"
    );

    let third = noise_case(&app, "sz-bay", &g, 0).await;
    assert_eq!(
        third.repeat_of_case_ids,
        [second.case_id.clone(), first.case_id.clone()],
        "newest first"
    );

    // Another category, another guest, or an unknown guest: not a repeat.
    let billing = app
        .submit(complaint_from(
            "sh-bund",
            &g,
            Cat::BillingPrice,
            "Charged twice for the minibar.",
        ))
        .await
        .case
        .unwrap();
    assert!(!billing.repeat);
    assert!(!noise_case(&app, "sh-bund", &someone_else, 0).await.repeat);
    for _ in 0..2 {
        let anon = app
            .submit(complaint(
                "sh-bund",
                pb::FeedbackChannel::CommentCard,
                "Noisy.",
            ))
            .await
            .case
            .unwrap();
        assert!(
            !anon.repeat,
            "an unknown guest is never a repeat of another unknown guest"
        );
    }

    // The repeat filter finds the two repeats.
    let repeats = app
        .head_office()
        .list_cases(pb::ListCasesRequest {
            filter: Some(pb::CaseFilter {
                repeat: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    let ids: std::collections::BTreeSet<_> = repeats.iter().map(|c| c.case_id.clone()).collect();
    assert_eq!(ids, [second.case_id.clone(), third.case_id.clone()].into());
}

#[tokio::test]
async fn the_repeat_window_is_the_properties_standard() {
    let app = TestApp::spawn_with(
        "[standards.properties.hk-harbour]\nrepeat_complaint_window = \"1d\"\n",
    )
    .await;
    let g = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::Regular))
        .await;
    let h = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::Regular))
        .await;

    // 100 days ago is outside the default 90 days.
    noise_case(&app, "sh-bund", &g, 100).await;
    assert!(
        !noise_case(&app, "sh-bund", &g, 0).await.repeat,
        "the only other case is a year's quarter old"
    );

    noise_case(&app, "sh-bund", &h, 3).await;
    assert!(
        !noise_case(&app, "hk-harbour", &h, 0).await.repeat,
        "hk-harbour looks back one day only"
    );
    assert!(
        noise_case(&app, "sz-bay", &h, 0).await.repeat,
        "sz-bay looks back 90 days"
    );
}

/// A comment card keyed in days late must not call a later case "earlier".
#[tokio::test]
async fn a_late_keyed_complaint_repeats_only_earlier_cases() {
    let app = TestApp::spawn().await;
    let g = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::Regular))
        .await;
    let yesterday = noise_case(&app, "sh-bund", &g, 1).await;
    // The card was filled in five days ago; the desk keys it in today.
    let card = noise_case(&app, "sh-bund", &g, 5).await;
    assert!(
        card.repeat_of_case_ids.is_empty(),
        "the card's complaint came first; {} is later",
        yesterday.case_id
    );
    assert!(!card.repeat);
    assert_eq!(
        card.risk_grade,
        pb::RiskGrade::Low as i32,
        "{}",
        card.grade_reason
    );
}

#[tokio::test]
async fn an_incident_links_many_cases() {
    let app = TestApp::spawn().await;
    let mut cases = Vec::new();
    for room in 1001..1006 {
        cases.push(
            app.complaint_case("sh-bund", &format!("AC not cooling in room {room}"))
                .await,
        );
    }
    let elsewhere = app.complaint_case("hz-lake", "AC not cooling").await;
    let mut c = app.manager("sh-bund");
    let incident = |key: &str| pb::CreateIncidentRequest {
        incident: Some(pb::Incident {
            property_id: "sh-bund".into(),
            title: "AC failure, floors 10-14".into(),
            description: "Chiller 2 tripped".into(),
            category: Cat::FacilityMaintenance as i32,
            department: guestloop_proto::common::v1::Department::Engineering as i32,
            start_time: ago(chrono::Duration::hours(2)),
            ..Default::default()
        }),
        case_ids: cases[..3].iter().map(|c| c.case_id.clone()).collect(),
        idempotency_key: key.into(),
    };

    // A bad case id refuses the whole request: no incident, no link.
    let before = app.counts().await;
    let mut bad = incident("");
    bad.case_ids.push("not-a-case".into());
    assert_code(c.create_incident(bad.clone()).await, Code::NotFound);
    bad.case_ids.pop();
    bad.case_ids.push(elsewhere.case_id.clone());
    assert_invalid(app.head_office().create_incident(bad).await, "case_ids[3]");
    assert_eq!(app.counts().await, before);

    let created = c
        .create_incident(incident("ac-2025-07-01"))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(created.case_count, 3);
    assert_eq!(created.title, "AC failure, floors 10-14");
    assert!(created.resolve_time.is_none());
    assert_eq!(created.created_by, "test-user");
    for case in &cases[..3] {
        let got = app.get_case(&case.case_id).await;
        assert_eq!(got.incident_id, created.incident_id);
        let out = app.events("case", &case.case_id).await;
        assert_eq!(kinds(&out), ["case_opened", "case_linked_to_incident"]);
        let Payload::CaseLinkedToIncident(p) = payload(&out[1]) else {
            panic!()
        };
        assert_eq!(p.incident_id, created.incident_id);
        let history = app.case_events(&case.case_id).await;
        assert_eq!(
            history.last().unwrap().kind,
            pb::CaseEventKind::LinkedToIncident as i32
        );
    }
    // A retry with the key answers the same incident.
    let again = c
        .create_incident(incident("ac-2025-07-01"))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(again.incident_id, created.incident_id);
    assert_eq!(app.count("incidents").await, 1);

    // More rooms join later; a case already linked changes nothing.
    let r = c
        .link_cases_to_incident(pb::LinkCasesToIncidentRequest {
            incident_id: created.incident_id.clone(),
            case_ids: cases[2..].iter().map(|c| c.case_id.clone()).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.incident.unwrap().case_count, 5);
    assert_eq!(r.cases.len(), 3);
    assert!(r.cases.iter().all(|x| x.incident_id == created.incident_id));
    assert_eq!(
        app.case_events(&cases[2].case_id).await.len(),
        2,
        "linked once only"
    );
    assert_invalid(
        c.link_cases_to_incident(pb::LinkCasesToIncidentRequest {
            incident_id: created.incident_id.clone(),
            case_ids: vec![],
        })
        .await,
        "case_ids",
    );

    // Filter cases by incident; read and list incidents.
    let linked = app
        .head_office()
        .list_cases(pb::ListCasesRequest {
            filter: Some(pb::CaseFilter {
                incident_id: created.incident_id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(linked.len(), 5);
    let got = c
        .get_incident(pb::GetIncidentRequest {
            incident_id: created.incident_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(got.case_count, 5);

    // A second incident takes a case over: it moves.
    let second = c
        .create_incident(pb::CreateIncidentRequest {
            incident: Some(pb::Incident {
                property_id: "sh-bund".into(),
                title: "Power cut, floor 10".into(),
                resolve_time: ago(chrono::Duration::minutes(5)),
                ..Default::default()
            }),
            case_ids: vec![cases[0].case_id.clone()],
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(second.case_count, 1);
    let first_now = c
        .get_incident(pb::GetIncidentRequest {
            incident_id: created.incident_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(first_now.case_count, 4);
    let all = c
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(all.len(), 2);
    let open = c
        .list_incidents(pb::ListIncidentsRequest {
            open_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(
        open.iter()
            .map(|i| i.incident_id.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&created.incident_id)
    );
    assert_invalid(
        c.create_incident(pb::CreateIncidentRequest {
            incident: Some(pb::Incident {
                property_id: "sh-bund".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        "incident.title",
    );
}

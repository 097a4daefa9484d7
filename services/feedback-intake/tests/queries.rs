//! Queries and the live view (issue 3, section 5): listing and searching feedback and cases
//! by property, region, status, category, channel, grade, assignee, overdue and date range;
//! opaque page tokens bound to their query; and WatchCaseQueue's snapshot and live changes.

mod common;

use common::*;
use guestloop_proto::common::v1::{Department, TimeRange, Urgency};
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1 as gp;
use pb::CaseStatus as S;
use pb::FeedbackChannel as Ch;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_stream::StreamExt;

struct World {
    /// sh-bund: noise by phone (acknowledged, assigned), hygiene by email (three days
    /// old, overdue), facility by WeChat with risky words (high).
    noise: pb::Case,
    hygiene: pb::Case,
    facility: pb::Case,
    hz: pb::Case,
    hk: pb::Case,
    sz: pb::Case,
    guest: gp::Guest,
}

async fn world(app: &TestApp) -> World {
    let guest = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::Regular))
        .await;
    let mut noise = complaint_from(
        "sh-bund",
        &guest,
        pb::Category::Noise,
        "Loud party next door",
    );
    noise.complaint.as_mut().unwrap().assignee_id = "desk-a".into();
    let noise = app.submit(noise).await.case.unwrap();
    let noise = app
        .transition(&noise.case_id, S::Acknowledged)
        .await
        .case
        .unwrap();
    let mut hygiene = complaint("sh-bund", Ch::Email, "Dirty towels in the bathroom");
    hygiene.feedback.as_mut().unwrap().category = pb::Category::Hygiene as i32;
    hygiene.feedback.as_mut().unwrap().receive_time = ago(chrono::Duration::days(3));
    let hygiene = app.submit(hygiene).await.case.unwrap();
    let mut facility = complaint(
        "sh-bund",
        Ch::Wechat,
        "The lift trapped my son, I will call the police",
    );
    facility.feedback.as_mut().unwrap().category = pb::Category::FacilityMaintenance as i32;
    let facility = app.submit(facility).await.case.unwrap();
    let hz = app
        .complaint_case("hz-lake", "Noise from the lake bar")
        .await;
    let mut hk = complaint("hk-harbour", Ch::Phone, "Charged twice");
    hk.feedback.as_mut().unwrap().category = pb::Category::BillingPrice as i32;
    let hk = app.submit(hk).await.case.unwrap();
    let sz = app
        .complaint_case("sz-bay", "Construction noise at 7am")
        .await;
    World {
        noise,
        hygiene,
        facility,
        hz,
        hk,
        sz,
        guest,
    }
}

async fn cases(app: &TestApp, filter: pb::CaseFilter) -> BTreeSet<String> {
    app.head_office()
        .list_cases(pb::ListCasesRequest {
            filter: Some(filter),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("{s:?}"))
        .into_inner()
        .cases
        .into_iter()
        .map(|c| c.case_id)
        .collect()
}

fn set(cases: &[&pb::Case]) -> BTreeSet<String> {
    cases.iter().map(|c| c.case_id.clone()).collect()
}

#[tokio::test]
async fn cases_are_listed_by_every_filter() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let f = pb::CaseFilter::default;

    assert_eq!(cases(&app, f()).await.len(), 6);
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                property_ids: vec!["sh-bund".into()],
                ..f()
            }
        )
        .await,
        set(&[&w.noise, &w.hygiene, &w.facility])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                region_id: "east".into(),
                ..f()
            }
        )
        .await,
        set(&[&w.noise, &w.hygiene, &w.facility, &w.hz])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                region_id: "south".into(),
                ..f()
            }
        )
        .await,
        set(&[&w.hk, &w.sz])
    );
    assert!(
        cases(
            &app,
            pb::CaseFilter {
                region_id: "east".into(),
                property_ids: vec!["hk-harbour".into()],
                ..f()
            }
        )
        .await
        .is_empty(),
        "property and region both apply"
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                statuses: vec![S::Acknowledged as i32],
                ..f()
            }
        )
        .await,
        set(&[&w.noise])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                categories: vec![pb::Category::Noise as i32],
                ..f()
            }
        )
        .await,
        set(&[&w.noise, &w.hz, &w.sz])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                channels: vec![Ch::Email as i32],
                ..f()
            }
        )
        .await,
        set(&[&w.hygiene])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                channels: vec![Ch::Email as i32, Ch::Wechat as i32],
                ..f()
            }
        )
        .await,
        set(&[&w.hygiene, &w.facility])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                risk_grades: vec![pb::RiskGrade::High as i32],
                ..f()
            }
        )
        .await,
        set(&[&w.facility])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                assignee_id: "desk-a".into(),
                ..f()
            }
        )
        .await,
        set(&[&w.noise])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                unassigned: true,
                ..f()
            }
        )
        .await
        .len(),
        5
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                overdue: Some(true),
                ..f()
            }
        )
        .await,
        set(&[&w.hygiene])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                overdue: Some(false),
                ..f()
            }
        )
        .await
        .len(),
        5
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                guest_id: w.guest.guest_id.clone(),
                ..f()
            }
        )
        .await,
        set(&[&w.noise])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                departments: vec![Department::Housekeeping as i32],
                ..f()
            }
        )
        .await,
        set(&[&w.hygiene])
    );
    let everything = [&w.noise, &w.hygiene, &w.facility, &w.hz, &w.hk, &w.sz];
    let pressing: Vec<&pb::Case> = everything
        .into_iter()
        .filter(|c| c.urgency != Urgency::Normal as i32)
        .collect();
    assert!(!pressing.is_empty() && pressing.len() < 6);
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                urgencies: vec![Urgency::Urgent as i32, Urgency::Emergency as i32],
                ..f()
            }
        )
        .await,
        set(&pressing)
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                escalation_tiers: vec![pb::EscalationTier::CustomerServiceManager as i32],
                ..f()
            }
        )
        .await,
        set(&[&w.facility]),
        "only the high-risk case starts with the manager"
    );
    let two_days_ago = ago(chrono::Duration::days(2));
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                open_time_range: Some(TimeRange {
                    start_time: None,
                    end_time: two_days_ago
                }),
                ..f()
            }
        )
        .await,
        set(&[&w.hygiene])
    );
    assert_eq!(
        cases(
            &app,
            pb::CaseFilter {
                open_time_range: Some(TimeRange {
                    start_time: two_days_ago,
                    end_time: None
                }),
                ..f()
            }
        )
        .await
        .len(),
        5
    );
    assert_invalid(
        app.head_office()
            .list_cases(pb::ListCasesRequest {
                filter: Some(pb::CaseFilter {
                    open_time_range: Some(TimeRange {
                        start_time: ago(chrono::Duration::hours(1)),
                        end_time: two_days_ago,
                    }),
                    ..f()
                }),
                ..Default::default()
            })
            .await,
        "filter.open_time_range.end_time",
    );
    assert_invalid(
        app.head_office()
            .list_cases(pb::ListCasesRequest {
                filter: Some(pb::CaseFilter {
                    statuses: vec![77],
                    ..f()
                }),
                ..Default::default()
            })
            .await,
        "filter.statuses[0]",
    );

    // Orders.
    let order = |o: pb::CaseOrder| {
        let app = &app;
        async move {
            app.head_office()
                .list_cases(pb::ListCasesRequest {
                    order_by: o as i32,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .cases
        }
    };
    assert_eq!(
        order(pb::CaseOrder::OpenTimeAsc).await[0].case_id,
        w.hygiene.case_id
    );
    assert_eq!(
        order(pb::CaseOrder::OpenTimeDesc).await[0].case_id,
        w.sz.case_id
    );
    assert_eq!(
        order(pb::CaseOrder::Priority).await[0].case_id,
        w.facility.case_id
    );
    assert_eq!(
        order(pb::CaseOrder::DueTimeAsc).await[0].case_id,
        w.hygiene.case_id,
        "the overdue one first"
    );

    // Search within a filter.
    let search = |q: &str, filter: pb::CaseFilter| {
        let app = &app;
        let q = q.to_string();
        async move {
            app.head_office()
                .search_cases(pb::SearchCasesRequest {
                    query: q,
                    filter: Some(filter),
                    page: None,
                })
                .await
                .map(|r| {
                    r.into_inner()
                        .cases
                        .into_iter()
                        .map(|c| c.case_id)
                        .collect::<BTreeSet<_>>()
                })
        }
    };
    assert_eq!(search("police", f()).await.unwrap(), set(&[&w.facility]));
    assert_eq!(search("noise", f()).await.unwrap(), set(&[&w.hz, &w.sz]));
    assert!(
        search(
            "police",
            pb::CaseFilter {
                property_ids: vec!["hz-lake".into()],
                ..f()
            }
        )
        .await
        .unwrap()
        .is_empty()
    );
    assert!(
        search("%", f()).await.unwrap().is_empty(),
        "`%` is searched as typed"
    );
    assert_invalid(search("  ", f()).await, "query");
}

#[tokio::test]
async fn feedback_is_listed_and_searched_by_every_filter() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let g = &w.guest;
    let mut praise = feedback(
        "sh-bund",
        Ch::InPerson,
        "Ms Li at the front desk was wonderful",
    );
    praise.sentiment = pb::Sentiment::Positive as i32;
    praise.staff_mentions = vec![pb::StaffMention {
        staff_id: "S-7".into(),
        ..Default::default()
    }];
    let praise = app.submit(submit_req(praise)).await.feedback.unwrap();
    let zh = app
        .submit(submit_req(pb::Feedback {
            language: "zh-CN".into(),
            ..feedback("hz-lake", Ch::Wechat, "房间的空调坏了，晚上很热")
        }))
        .await
        .feedback
        .unwrap();
    let review = app
        .submit(submit_req(ota_review(
            "hk-harbour",
            pb::OtaSite::Agoda,
            "AG-77",
            9.0,
            10.0,
        )))
        .await
        .feedback
        .unwrap();

    let list = |filter: pb::FeedbackFilter| {
        let app = &app;
        async move {
            app.head_office()
                .list_feedback(pb::ListFeedbackRequest {
                    filter: Some(filter),
                    page: None,
                })
                .await
                .unwrap_or_else(|s| panic!("{s:?}"))
                .into_inner()
                .items
        }
    };
    let ids = |items: Vec<pb::Feedback>| {
        items
            .into_iter()
            .map(|f| f.feedback_id)
            .collect::<BTreeSet<_>>()
    };
    let f = pb::FeedbackFilter::default;
    let all = list(f()).await;
    assert_eq!(all.len(), 9);
    let times: Vec<_> = all.iter().map(|x| time_of(&x.receive_time)).collect();
    assert!(
        times.windows(2).all(|t| t[0] >= t[1]),
        "newest received first"
    );

    assert_eq!(
        list(pb::FeedbackFilter {
            property_ids: vec!["sh-bund".into()],
            ..f()
        })
        .await
        .len(),
        4
    );
    assert_eq!(
        list(pb::FeedbackFilter {
            region_id: "south".into(),
            ..f()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        ids(list(pb::FeedbackFilter {
            channels: vec![Ch::InPerson as i32],
            ..f()
        })
        .await),
        [praise.feedback_id.clone()].into()
    );
    assert_eq!(
        ids(list(pb::FeedbackFilter {
            sentiments: vec![pb::Sentiment::Positive as i32],
            ..f()
        })
        .await),
        [praise.feedback_id.clone(), review.feedback_id.clone()].into()
    );
    assert_eq!(
        list(pb::FeedbackFilter {
            has_case: Some(true),
            ..f()
        })
        .await
        .len(),
        6
    );
    assert_eq!(
        list(pb::FeedbackFilter {
            has_case: Some(false),
            ..f()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        list(pb::FeedbackFilter {
            replied: Some(true),
            ..f()
        })
        .await
        .len(),
        1,
        "the acknowledged case's"
    );
    assert_eq!(
        ids(list(pb::FeedbackFilter {
            staff_id: "S-7".into(),
            ..f()
        })
        .await),
        [praise.feedback_id.clone()].into()
    );
    assert_eq!(
        ids(list(pb::FeedbackFilter {
            language: "zh-CN".into(),
            ..f()
        })
        .await),
        [zh.feedback_id.clone()].into()
    );
    assert_eq!(
        ids(list(pb::FeedbackFilter {
            ota_sites: vec![pb::OtaSite::Agoda as i32],
            ..f()
        })
        .await),
        [review.feedback_id.clone()].into()
    );
    assert_eq!(
        list(pb::FeedbackFilter {
            guest_id: g.guest_id.clone(),
            ..f()
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        list(pb::FeedbackFilter {
            categories: vec![pb::Category::Hygiene as i32],
            ..f()
        })
        .await[0]
            .case_id,
        w.hygiene.case_id
    );
    assert_eq!(
        list(pb::FeedbackFilter {
            receive_time_range: Some(TimeRange {
                start_time: None,
                end_time: ago(chrono::Duration::days(1))
            }),
            ..f()
        })
        .await
        .len(),
        1
    );

    let search = |q: &str, filter: pb::FeedbackFilter| {
        let app = &app;
        let q = q.to_string();
        async move {
            app.head_office()
                .search_feedback(pb::SearchFeedbackRequest {
                    query: q,
                    filter: Some(filter),
                    page: None,
                })
                .await
                .unwrap()
                .into_inner()
                .items
                .into_iter()
                .map(|f| f.feedback_id)
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(
        search("wonderful", f()).await,
        [praise.feedback_id.clone()].into()
    );
    assert_eq!(
        search("空调", f()).await,
        [zh.feedback_id.clone()].into(),
        "Chinese has no spaces"
    );
    assert!(
        search(
            "空调",
            pb::FeedbackFilter {
                property_ids: vec!["sh-bund".into()],
                ..f()
            }
        )
        .await
        .is_empty()
    );
    for wildcard in ["%", "_", "wonder%ul"] {
        assert!(
            search(wildcard, f()).await.is_empty(),
            "`{wildcard}` is searched as typed, not as a LIKE pattern"
        );
    }
}

#[tokio::test]
async fn pages_follow_their_token_and_a_token_is_bound_to_its_query() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.complaint_case("sh-bund", &format!("complaint {i}"))
            .await;
    }
    app.complaint_case("hz-lake", "elsewhere").await;
    let filter = pb::CaseFilter {
        property_ids: vec!["sh-bund".into()],
        ..Default::default()
    };
    let mut c = app.head_office();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let r = c
            .list_cases(pb::ListCasesRequest {
                filter: Some(filter.clone()),
                order_by: 0,
                page: page(3, &token),
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(r.cases.into_iter().map(|c| c.case_id));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7);
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        7,
        "no case twice"
    );

    // A token from one query used with another is refused.
    let first = c
        .list_cases(pb::ListCasesRequest {
            filter: Some(filter.clone()),
            order_by: 0,
            page: page(3, ""),
        })
        .await
        .unwrap()
        .into_inner();
    assert_invalid(
        c.list_cases(pb::ListCasesRequest {
            filter: Some(pb::CaseFilter {
                property_ids: vec!["hz-lake".into()],
                ..Default::default()
            }),
            order_by: 0,
            page: page(3, &first.next_page_token),
        })
        .await,
        "page.page_token",
    );
    assert_invalid(
        c.list_cases(pb::ListCasesRequest {
            filter: Some(filter.clone()),
            order_by: pb::CaseOrder::Priority as i32,
            page: page(3, &first.next_page_token),
        })
        .await,
        "page.page_token",
    );
    assert_invalid(
        c.search_cases(pb::SearchCasesRequest {
            query: "complaint".into(),
            filter: Some(filter.clone()),
            page: page(3, &first.next_page_token),
        })
        .await,
        "page.page_token",
    );
    assert_invalid(
        c.list_cases(pb::ListCasesRequest {
            filter: Some(filter.clone()),
            order_by: 0,
            page: page(3, "garbage"),
        })
        .await,
        "page.page_token",
    );
    assert_invalid(
        c.list_cases(pb::ListCasesRequest {
            filter: Some(filter.clone()),
            order_by: 0,
            page: page(501, ""),
        })
        .await,
        "page.page_size",
    );

    // Feedback pages the same way, and its tokens are bound the same way.
    let ffilter = pb::FeedbackFilter {
        property_ids: vec!["sh-bund".into()],
        ..Default::default()
    };
    let p1 = c
        .list_feedback(pb::ListFeedbackRequest {
            filter: Some(ffilter.clone()),
            page: page(5, ""),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p1.items.len(), 5);
    let p2 = c
        .list_feedback(pb::ListFeedbackRequest {
            filter: Some(ffilter.clone()),
            page: page(5, &p1.next_page_token),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p2.items.len(), 2);
    assert!(p2.next_page_token.is_empty());
    assert_invalid(
        c.list_feedback(pb::ListFeedbackRequest {
            filter: None,
            page: page(5, &p1.next_page_token),
        })
        .await,
        "page.page_token",
    );
    assert_invalid(
        c.search_feedback(pb::SearchFeedbackRequest {
            query: "complaint".into(),
            filter: Some(ffilter),
            page: page(5, &p1.next_page_token),
        })
        .await,
        "page.page_token",
    );
}

async fn next_change(
    stream: &mut tonic::Streaming<pb::WatchCaseQueueResponse>,
) -> pb::WatchCaseQueueResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a change within 10 s")
        .expect("the stream stays open")
        .expect("no error")
}

async fn no_change(stream: &mut tonic::Streaming<pb::WatchCaseQueueResponse>) {
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(700), stream.next()).await {
        panic!("unexpected change {m:?}");
    }
}

fn change(m: &pb::WatchCaseQueueResponse) -> pb::CaseQueueChange {
    pb::CaseQueueChange::try_from(m.change).unwrap()
}

#[tokio::test]
async fn the_case_queue_is_watched_live() {
    let app = TestApp::spawn().await;
    let open = app.complaint_case("sh-bund", "Waiting in the queue").await;
    let closed = app.complaint_case("sh-bund", "Done and closed").await;
    app.transition(&closed.case_id, S::Acknowledged).await;
    app.transition(&closed.case_id, S::Resolved).await;
    app.transition(&closed.case_id, S::Closed).await;
    app.complaint_case("hz-lake", "Another hotel").await;

    let mut stream = app
        .staff("sh-bund")
        .watch_case_queue(pb::WatchCaseQueueRequest {
            property_id: "sh-bund".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let m = next_change(&mut stream).await;
    assert_eq!(change(&m), pb::CaseQueueChange::Snapshot);
    assert_eq!(
        m.case.as_ref().unwrap().case_id,
        open.case_id,
        "the closed case is not in the queue"
    );
    assert!(!m.resume_token.is_empty());
    let m = next_change(&mut stream).await;
    assert_eq!(change(&m), pb::CaseQueueChange::SnapshotComplete);
    assert!(m.case.is_none());

    // A new complaint arrives: ADDED. Another hotel's: nothing.
    app.complaint_case("hz-lake", "Not ours").await;
    let new = app.complaint_case("sh-bund", "Towels missing").await;
    let m = next_change(&mut stream).await;
    assert_eq!(change(&m), pb::CaseQueueChange::Added);
    assert_eq!(m.case.as_ref().unwrap().case_id, new.case_id);

    // Worked on: UPDATED with the new state; closed: REMOVED with its last state.
    app.transition(&new.case_id, S::Acknowledged).await;
    let m = next_change(&mut stream).await;
    assert_eq!(change(&m), pb::CaseQueueChange::Updated);
    assert_eq!(m.case.as_ref().unwrap().status, S::Acknowledged as i32);
    app.head_office()
        .assign_case(pb::AssignCaseRequest {
            case_id: new.case_id.clone(),
            assignee_id: "hk-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let m = next_change(&mut stream).await;
    assert_eq!(change(&m), pb::CaseQueueChange::Updated);
    assert_eq!(m.case.as_ref().unwrap().assignee_id, "hk-1");
    app.transition(&new.case_id, S::Resolved).await;
    assert_eq!(
        change(&next_change(&mut stream).await),
        pb::CaseQueueChange::Updated,
        "resolved stays in the queue"
    );
    app.transition(&new.case_id, S::Closed).await;
    let m = next_change(&mut stream).await;
    assert_eq!(change(&m), pb::CaseQueueChange::Removed);
    assert_eq!(m.case.as_ref().unwrap().status, S::Closed as i32);
    // Reopened: back in the queue.
    app.transition(&closed.case_id, S::Reopened).await;
    let m = next_change(&mut stream).await;
    assert_eq!(change(&m), pb::CaseQueueChange::Added);
    assert_eq!(m.case.as_ref().unwrap().case_id, closed.case_id);
    no_change(&mut stream).await;
}

#[tokio::test]
async fn a_narrowed_watch_sees_only_its_filter() {
    let app = TestApp::spawn().await;
    let mut stream = app
        .manager("sh-bund")
        .watch_case_queue(pb::WatchCaseQueueRequest {
            property_id: "sh-bund".into(),
            filter: Some(pb::CaseFilter {
                statuses: vec![S::Received as i32],
                // Property fields of the filter are ignored: the watch is sh-bund's.
                property_ids: vec!["hz-lake".into()],
                ..Default::default()
            }),
            resume_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        change(&next_change(&mut stream).await),
        pb::CaseQueueChange::SnapshotComplete,
        "empty queue"
    );
    let case = app.complaint_case("sh-bund", "Broken lamp").await;
    assert_eq!(
        change(&next_change(&mut stream).await),
        pb::CaseQueueChange::Added
    );
    app.transition(&case.case_id, S::Acknowledged).await;
    let m = next_change(&mut stream).await;
    assert_eq!(
        change(&m),
        pb::CaseQueueChange::Removed,
        "no longer RECEIVED"
    );
    app.transition(&case.case_id, S::InProgress).await;
    no_change(&mut stream).await;

    // Only a property in the caller's scope can be watched.
    let status = app
        .manager("sh-bund")
        .watch_case_queue(pb::WatchCaseQueueRequest {
            property_id: "hz-lake".into(),
            ..Default::default()
        })
        .await
        .expect_err("hz-lake is not sh-bund's manager's");
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_invalid(
        app.manager("sh-bund")
            .watch_case_queue(pb::WatchCaseQueueRequest::default())
            .await,
        "property_id",
    );
}

/// Front-desk software keeps a watch open per property, all day. Open watches must not
/// take the connections every other call needs: with more watches than the service's
/// database pool has connections (5 in tests), calls still answer and every watch sees
/// the change.
#[tokio::test]
async fn many_open_watches_do_not_starve_the_service() {
    let app = TestApp::spawn().await;
    let mut watches = Vec::new();
    for i in 0..8 {
        let property = ["sh-bund", "hz-lake"][i % 2];
        let mut stream = tokio::time::timeout(
            Duration::from_secs(4),
            app.head_office()
                .watch_case_queue(pb::WatchCaseQueueRequest {
                    property_id: property.into(),
                    ..Default::default()
                }),
        )
        .await
        .unwrap_or_else(|_| panic!("watch {i} did not start within 4 s"))
        .unwrap_or_else(|s| panic!("watch {i}: {s:?}"))
        .into_inner();
        assert_eq!(
            change(&next_change(&mut stream).await),
            pb::CaseQueueChange::SnapshotComplete
        );
        watches.push((property, stream));
    }
    let started = std::time::Instant::now();
    let case = app
        .complaint_case("sh-bund", "Submitted while eight watches are open")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "submit took {:?}",
        started.elapsed()
    );
    for (property, stream) in &mut watches {
        if *property == "sh-bund" {
            let m = next_change(stream).await;
            assert_eq!(change(&m), pb::CaseQueueChange::Added);
            assert_eq!(m.case.unwrap().case_id, case.case_id);
        } else {
            no_change(stream).await;
        }
    }
}

/// If the feed's connection drops, changes in the gap would be lost: every open watch ends
/// with UNAVAILABLE (re-watch for a fresh snapshot) instead of going silently stale, and a
/// new watch starts a new feed.
#[tokio::test]
async fn a_lost_change_feed_ends_the_watches_and_a_new_watch_works() {
    let app = TestApp::spawn().await;
    let watch = || {
        let mut c = app.head_office();
        async move {
            let mut s = c
                .watch_case_queue(pb::WatchCaseQueueRequest {
                    property_id: "sh-bund".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                change(&next_change(&mut s).await),
                pb::CaseQueueChange::SnapshotComplete
            );
            s
        }
    };
    let mut first = watch().await;
    let mut second = watch().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        killed,
        [true],
        "one listening connection serves both watches"
    );
    for s in [&mut first, &mut second] {
        let end = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("the watch learns within 10 s")
            .expect("an answer, not a silent end");
        let status = end.expect_err("the watch ends with an error");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains("watch again"), "{status:?}");
    }
    let mut again = watch().await;
    let case = app
        .complaint_case("sh-bund", "After the feed came back")
        .await;
    let m = next_change(&mut again).await;
    assert_eq!(change(&m), pb::CaseQueueChange::Added);
    assert_eq!(m.case.unwrap().case_id, case.case_id);
}

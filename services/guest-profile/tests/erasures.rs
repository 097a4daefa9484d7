//! Erasures followed to completion (issue 11): the receipt EraseGuest answers, who may read
//! it (GetErasure, ListErasures), and a service that never confirms turning its part
//! failed, with the gauge the chart's alert reads. (The services confirming for real, and a
//! late confirmation completing a failed erasure: tests/tests/erasure.rs.)

mod common;

use common::*;
use guestloop_auth::Role;
use guestloop_proto::guestprofile::v1 as pb;
use std::time::{Duration, Instant};
use tonic::Code;

const PENDING: i32 = pb::ErasureState::Pending as i32;
const DONE: i32 = pb::ErasureState::Done as i32;
const FAILED: i32 = pb::ErasureState::Failed as i32;

/// guest-profile whose outbox delivers to a "metrics" that never answers: nothing listens
/// on its port.
async fn with_silent_subscriber() -> TestApp {
    let silent = guestloop_testkit::process::free_port();
    TestApp::spawn_with(&format!(
        r#"
[outbox]
subscribers = ["metrics"]
poll_interval = "100ms"
batch_size = 100
max_backoff = "1s"
[peers]
metrics = "http://127.0.0.1:{silent}"
[erasure]
confirm_within = "1s"
check_interval = "100ms"
"#
    ))
    .await
}

async fn erase(
    app: &TestApp,
    token: &str,
    guest_id: &str,
) -> Result<pb::EraseGuestResponse, tonic::Status> {
    app.client(token)
        .erase_guest(pb::EraseGuestRequest {
            guest_id: guest_id.into(),
            reason: "the guest asked by email".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get(app: &TestApp, token: &str, id: &str) -> Result<pb::Erasure, tonic::Status> {
    app.client(token)
        .get_erasure(pb::GetErasureRequest {
            erasure_id: id.into(),
        })
        .await
        .map(|r| r.into_inner().erasure.expect("an erasure"))
}

async fn list(app: &TestApp, state: i32, size: i32, token: &str) -> pb::ListErasuresResponse {
    app.head_office()
        .list_erasures(pb::ListErasuresRequest {
            state,
            page: page(size, token),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_subscribers_an_erasure_is_done_at_once_and_erasing_again_answers_it() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let dup = app.create_guest("sh-bund", guest()).await;
    app.client(&manager("sh-bund"))
        .merge_guests(pb::MergeGuestsRequest {
            survivor_guest_id: g.guest_id.clone(),
            duplicate_guest_id: dup.guest_id.clone(),
            reason: "twice".into(),
        })
        .await
        .unwrap();
    let by = token_as("dpo-li", Role::PropertyManager, &["sh-bund"], None);
    let first = erase(&app, &by, &dup.guest_id).await.unwrap();
    let e = first.erasure.expect("a receipt");
    assert_eq!(e.guest_id, g.guest_id, "the profile the id resolves to");
    let mut ids = e.erased_guest_ids.clone();
    ids.sort();
    let mut want = vec![g.guest_id.clone(), dup.guest_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(e.reason, "the guest asked by email");
    assert_eq!(e.requested_by, "dpo-li");
    assert_eq!(e.requested_by_role, "property_manager");
    assert_eq!(e.state, DONE);
    assert_eq!(e.complete_time, first.erase_time);
    assert_eq!(e.services.len(), 1);
    assert_eq!(e.services[0].service, "guest-profile");
    assert_eq!(e.services[0].state, DONE);
    assert_eq!(e.services[0].erase_time, first.erase_time);

    // Again (a client's retry, or another manager): the same erasure, nothing new.
    let again = erase(&app, &manager("sh-bund"), &g.guest_id).await.unwrap();
    assert_eq!(again.erasure.unwrap().erasure_id, e.erasure_id);
    assert_eq!(app.count("erasures").await, 1);
    assert_eq!(get(&app, &by, &e.erasure_id).await.unwrap(), e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_read_an_erasure() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    app.upsert_stay(stay(&g.guest_id, "sh-bund", "ER-9")).await;
    let id = erase(&app, &keys_head_office(), &g.guest_id)
        .await
        .unwrap()
        .erasure
        .unwrap()
        .erasure_id;
    let k = guestloop_testkit::keys();
    for (who, token, want) in managers_of_sh_bund() {
        let got = get(&app, &token, &id).await;
        match want {
            Ok(()) => assert_eq!(got.unwrap().erasure_id, id, "{who}"),
            Err(code) => assert_eq!(got.unwrap_err().code(), code, "{who}"),
        }
    }
    assert_invalid(
        get(&app, &k.head_office(), "not-a-uuid").await,
        "erasure_id",
    );
    assert_code(
        get(&app, &k.head_office(), &uuid::Uuid::now_v7().to_string()).await,
        Code::NotFound,
    );
    // The work list is head office's.
    assert_code(
        app.client(&manager("sh-bund"))
            .list_erasures(pb::ListErasuresRequest::default())
            .await,
        Code::PermissionDenied,
    );
    assert_invalid(
        app.head_office()
            .list_erasures(pb::ListErasuresRequest {
                state: 42,
                page: None,
            })
            .await,
        "state",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_confirms_fails_its_part_and_raises_the_gauge() {
    let app = with_silent_subscriber().await;
    let guests = [
        app.create_guest("sh-bund", guest()).await,
        app.create_guest("sh-bund", guest()).await,
        app.create_guest("sh-bund", guest()).await,
    ];
    let mut ids = Vec::new();
    for g in &guests {
        let e = erase(&app, &keys_head_office(), &g.guest_id)
            .await
            .unwrap()
            .erasure
            .unwrap();
        let parts: Vec<_> = e
            .services
            .iter()
            .map(|s| (s.service.as_str(), s.state))
            .collect();
        assert_eq!(parts, [("guest-profile", DONE), ("metrics", PENDING)]);
        assert_eq!(e.state, PENDING);
        assert_eq!(e.complete_time, None);
        ids.push(e.erasure_id);
    }

    // An export cannot reach the silent service either: it says so instead of failing.
    let export = app
        .head_office()
        .export_guest(pb::ExportGuestRequest {
            guest_id: guests[0].guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(export.gaps.len(), 1, "{:?}", export.gaps);
    assert_eq!(export.gaps[0].service, "metrics");
    assert!(
        export.gaps[0].reason.starts_with("Unavailable"),
        "{:?}",
        export.gaps
    );
    assert!(export.json_document.contains(r#""service": "metrics""#));

    let start = Instant::now();
    let failed = loop {
        let e = get(&app, &keys_head_office(), &ids[0]).await.unwrap();
        if e.state == FAILED {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "never failed: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let metrics_part = &failed.services[1];
    assert_eq!(metrics_part.service, "metrics");
    assert_eq!(metrics_part.state, FAILED);
    assert_eq!(metrics_part.erase_time, None);
    assert!(metrics_part.last_check_time.is_some());
    assert!(
        metrics_part.detail.starts_with("asking metrics: "),
        "the last error is kept: {}",
        metrics_part.detail
    );
    assert_eq!(failed.complete_time, None);

    // The gauge the GuestloopErasureOverdue alert reads, without any guest's id.
    let start = Instant::now();
    let body = loop {
        let body = app.scrape().await;
        if body.contains(r#"guestloop_erasure_parts{service="metrics",state="failed"} 3"#) {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains(r#"guestloop_erasures_failed_total{service="metrics"} 3"#),
        "{body}"
    );
    for g in &guests {
        assert!(!body.contains(&g.guest_id));
    }

    // The work list: three failed, newest first, paged; none done.
    let first = list(&app, FAILED, 2, "").await;
    assert_eq!(
        first
            .erasures
            .iter()
            .map(|e| e.erasure_id.clone())
            .collect::<Vec<_>>(),
        [ids[2].clone(), ids[1].clone()]
    );
    let rest = list(&app, FAILED, 2, &first.next_page_token).await;
    assert_eq!(rest.erasures.len(), 1);
    assert_eq!(rest.erasures[0].erasure_id, ids[0]);
    assert!(list(&app, DONE, 10, "").await.erasures.is_empty());
    assert!(list(&app, PENDING, 10, "").await.erasures.is_empty());
    assert_eq!(list(&app, 0, 10, "").await.erasures.len(), 3);
}

fn keys_head_office() -> String {
    guestloop_testkit::keys().head_office()
}

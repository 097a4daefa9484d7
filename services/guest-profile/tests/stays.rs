//! Stays from a PMS: idempotent by reservation, changes and check-outs and cancellations
//! emit events through the outbox, and the outbox keeps them until they are delivered.

mod common;

use common::*;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::events::v1::event_ingest_service_server::{
    EventIngestService, EventIngestServiceServer,
};
use guestloop_proto::events::v1::{DeliverEventsRequest, DeliverEventsResponse, EventEnvelope};
use guestloop_proto::guestprofile::v1 as pb;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn kinds(events: &[EventEnvelope]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e.payload {
            Some(Payload::StayCheckedOut(_)) => "checked_out",
            Some(Payload::StayChanged(_)) => "changed",
            Some(Payload::StayCancelled(_)) => "cancelled",
            Some(Payload::StayBooked(_)) => "booked",
            _ => "other",
        })
        .collect()
}

#[tokio::test]
async fn a_replayed_stay_is_the_same_stay() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let s = stay(&g.guest_id, "sh-bund", "PMS-1001");

    let first = app.upsert_stay(s.clone()).await;
    assert!(first.created && first.changed);
    let stored = first.stay.unwrap();
    assert_eq!(stored.pms_reservation_id, "PMS-1001");
    assert_eq!(stored.status, pb::StayStatus::Booked as i32);
    assert_eq!(stored.total_spend.as_ref().unwrap().amount_minor, 258_000);

    for _ in 0..3 {
        let replay = app.upsert_stay(s.clone()).await;
        assert!(!replay.created, "a replay creates nothing");
        assert!(!replay.changed, "a replay changes nothing");
        assert_eq!(replay.stay.unwrap(), stored);
    }
    assert_eq!(app.count("stays").await, 1);
    // The booking is announced once, however often the PMS pushes it.
    assert_eq!(
        kinds(&app.events("stay", &stored.stay_id).await),
        vec!["booked"]
    );

    // The same reservation id at another property is another stay.
    let other = app
        .upsert_stay(stay(&g.guest_id, "hz-lake", "PMS-1001"))
        .await;
    assert!(other.created);
    assert_ne!(other.stay.unwrap().stay_id, stored.stay_id);
    assert_eq!(app.count("stays").await, 2);

    let got = app
        .head_office()
        .get_stay(pb::GetStayRequest {
            stay_id: stored.stay_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stay
        .unwrap();
    assert_eq!(got, stored);
}

#[tokio::test]
async fn a_changed_departure_updates_the_stay_and_emits_stay_changed() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let s = stay(&g.guest_id, "sh-bund", "PMS-2001");
    let stay_id = app.upsert_stay(s.clone()).await.stay.unwrap().stay_id;

    let extended = pb::Stay {
        departure_date: Some(date(2025, 3, 6)),
        ..s.clone()
    };
    let r = app.upsert_stay(extended.clone()).await;
    assert!(!r.created);
    assert!(r.changed);
    let updated = r.stay.unwrap();
    assert_eq!(updated.stay_id, stay_id);
    assert_eq!(updated.departure_date, Some(date(2025, 3, 6)));

    let events = app.events("stay", &stay_id).await;
    assert_eq!(kinds(&events), vec!["booked", "changed"]);
    let e = &events[1];
    assert_eq!(e.source, "guest-profile");
    assert_eq!(e.aggregate_id, stay_id);
    assert_eq!(e.property_id, "sh-bund");
    assert_eq!(e.sequence, 2);
    let Some(Payload::StayChanged(changed)) = &e.payload else {
        unreachable!()
    };
    assert_eq!(changed.stay_id, stay_id);
    assert_eq!(changed.guest_id, g.guest_id);
    assert_eq!(changed.departure_date, Some(date(2025, 3, 6)));
    assert_eq!(changed.arrival_date, Some(date(2025, 3, 1)));
    assert_eq!(changed.status, pb::StayStatus::Booked as i32);
    assert_eq!(changed.tier, pb::Tier::VipGold as i32);

    // Replaying the change is not another change.
    let again = app.upsert_stay(extended).await;
    assert!(!again.changed);
    assert_eq!(app.events("stay", &stay_id).await.len(), 2);
    assert_eq!(app.count("stays").await, 1);

    // Nor is any other detail left unchanged ... but a new room is a change.
    let moved = app
        .upsert_stay(pb::Stay {
            room_number: "1510".into(),
            departure_date: Some(date(2025, 3, 6)),
            ..s
        })
        .await;
    assert!(moved.changed);
    let events = app.events("stay", &stay_id).await;
    assert_eq!(kinds(&events), vec!["booked", "changed", "changed"]);
    assert_eq!(events[2].sequence, 3);
}

#[tokio::test]
async fn check_out_emits_exactly_one_stay_checked_out_even_when_replayed() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let booked = stay(&g.guest_id, "sh-bund", "PMS-3001");
    let stay_id = app.upsert_stay(booked.clone()).await.stay.unwrap().stay_id;
    let checked_in = pb::Stay {
        status: pb::StayStatus::CheckedIn as i32,
        ..booked.clone()
    };
    assert!(app.upsert_stay(checked_in).await.changed);

    // The PMS does not say when; the server stamps the time once.
    let checked_out = pb::Stay {
        status: pb::StayStatus::CheckedOut as i32,
        ..booked.clone()
    };
    let before = chrono::Utc::now().timestamp();
    let first = app.upsert_stay(checked_out.clone()).await;
    assert!(first.changed);
    let first = first.stay.unwrap();
    let time = first.checked_out_time.expect("stamped");
    assert!((time.seconds - before).abs() <= 5);

    for _ in 0..3 {
        let replay = app.upsert_stay(checked_out.clone()).await;
        assert!(!replay.changed);
        assert_eq!(replay.stay.unwrap().checked_out_time, Some(time));
    }

    let events = app.events("stay", &stay_id).await;
    assert_eq!(kinds(&events), vec!["booked", "changed", "checked_out"]);
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, vec![1, 2, 3]);
    let Some(Payload::StayCheckedOut(out)) = &events[2].payload else {
        unreachable!()
    };
    assert_eq!(out.stay_id, stay_id);
    assert_eq!(out.guest_id, g.guest_id);
    assert_eq!(out.property_id, "sh-bund");
    assert_eq!(out.checked_out_time, Some(time));
    assert_eq!(out.tier, pb::Tier::VipGold as i32);
    assert_eq!(out.language, "zh-CN");
    assert_eq!(out.departure_date, Some(date(2025, 3, 4)));
    // Events carry no contact data.
    let bytes = format!("{events:?}");
    assert!(!bytes.contains(&email_of(&g)));
    assert!(!bytes.contains(&phone_of(&g)));

    // A corrected check-out time is a change, not a second check-out.
    let corrected = prost_types::Timestamp {
        seconds: before - 1800,
        nanos: 0,
    };
    let r = app
        .upsert_stay(pb::Stay {
            checked_out_time: Some(corrected),
            ..checked_out.clone()
        })
        .await;
    assert!(r.changed);
    assert_eq!(r.stay.unwrap().checked_out_time, Some(corrected));
    let events = app.events("stay", &stay_id).await;
    assert_eq!(
        kinds(&events),
        vec!["booked", "changed", "checked_out", "changed"]
    );
    assert_eq!(
        kinds(&events)
            .iter()
            .filter(|k| **k == "checked_out")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_stay_first_seen_checked_out_emits_one_check_out() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("hk-harbour", guest()).await;
    let at = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() - 600,
        nanos: 0,
    };
    let s = pb::Stay {
        status: pb::StayStatus::CheckedOut as i32,
        checked_out_time: Some(at),
        ..stay(&g.guest_id, "hk-harbour", "HK-77")
    };
    let first = app.upsert_stay(s.clone()).await;
    assert!(first.created);
    let stay_id = first.stay.unwrap().stay_id;
    assert!(!app.upsert_stay(s.clone()).await.changed);
    // The PMS replays it without the time: still the same stay, same time.
    let r = app
        .upsert_stay(pb::Stay {
            checked_out_time: None,
            ..s
        })
        .await;
    assert!(!r.changed);
    assert_eq!(r.stay.unwrap().checked_out_time, Some(at));
    assert_eq!(
        kinds(&app.events("stay", &stay_id).await),
        vec!["checked_out"]
    );
}

#[tokio::test]
async fn cancel_emits_stay_cancelled_once() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sz-bay", guest()).await;
    let booked = stay(&g.guest_id, "sz-bay", "SZ-9");
    let stay_id = app.upsert_stay(booked.clone()).await.stay.unwrap().stay_id;
    let cancelled = pb::Stay {
        status: pb::StayStatus::Cancelled as i32,
        ..booked
    };
    assert!(app.upsert_stay(cancelled.clone()).await.changed);
    assert!(!app.upsert_stay(cancelled).await.changed);
    let events = app.events("stay", &stay_id).await;
    assert_eq!(kinds(&events), vec!["booked", "cancelled"]);
    let Some(Payload::StayCancelled(c)) = &events[1].payload else {
        unreachable!()
    };
    assert_eq!(
        (
            c.stay_id.as_str(),
            c.guest_id.as_str(),
            c.property_id.as_str()
        ),
        (stay_id.as_str(), g.guest_id.as_str(), "sz-bay")
    );
}

#[tokio::test]
async fn list_stays_of_a_guest_and_of_a_property() {
    let app = TestApp::spawn().await;
    let a = app.create_guest("sh-bund", guest()).await;
    let b = app.create_guest("sh-bund", guest()).await;
    for i in 0..3 {
        app.upsert_stay(stay(&a.guest_id, "sh-bund", &format!("A-{i}")))
            .await;
    }
    app.upsert_stay(stay(&a.guest_id, "hz-lake", "A-HZ")).await;
    app.upsert_stay(stay(&b.guest_id, "sh-bund", "B-1")).await;
    let mut client = app.head_office();

    let of_a = client
        .list_stays(pb::ListStaysRequest {
            guest_id: a.guest_id.clone(),
            property_id: String::new(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(of_a.stays.len(), 4);
    assert!(of_a.stays.iter().all(|s| s.guest_id == a.guest_id));

    let at_bund = client
        .list_stays(pb::ListStaysRequest {
            guest_id: String::new(),
            property_id: "sh-bund".into(),
            page: page(2, ""),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(at_bund.stays.len(), 2);
    let rest = client
        .list_stays(pb::ListStaysRequest {
            guest_id: String::new(),
            property_id: "sh-bund".into(),
            page: page(2, &at_bund.next_page_token),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.stays.len(), 2);
    let mut ids: Vec<_> = at_bund
        .stays
        .iter()
        .chain(&rest.stays)
        .map(|s| s.stay_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);

    assert_invalid(
        client.list_stays(pb::ListStaysRequest::default()).await,
        "guest_id",
    );
}

#[tokio::test]
async fn a_stay_for_an_erased_guest_is_refused() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    app.head_office()
        .erase_guest(pb::EraseGuestRequest {
            guest_id: g.guest_id.clone(),
            reason: "guest asked".into(),
        })
        .await
        .unwrap();
    assert_code(
        app.head_office()
            .upsert_stay(pb::UpsertStayRequest {
                stay: Some(stay(&g.guest_id, "sh-bund", "E-1")),
            })
            .await,
        tonic::Code::FailedPrecondition,
    );
    assert_eq!(app.count("stays").await, 0);
}

#[tokio::test]
async fn undelivered_events_stay_in_the_outbox() {
    // No subscribers are configured: nothing is delivered and nothing is dropped.
    let app = TestApp::spawn_with("[outbox]\npoll_interval = \"50ms\"\n").await;
    let g = app.create_guest("sh-bund", guest()).await;
    let s = stay(&g.guest_id, "sh-bund", "OB-1");
    app.upsert_stay(s.clone()).await;
    app.upsert_stay(pb::Stay {
        status: pb::StayStatus::CheckedOut as i32,
        ..s
    })
    .await;
    let total = app.count("outbox").await;
    assert_eq!(total, 2, "booked, checked out");
    tokio::time::sleep(Duration::from_millis(200)).await;
    for subscriber in ["follow_up_scheduler", "metrics"] {
        assert_eq!(
            guestloop_outbox::pending(&app.pool, subscriber)
                .await
                .unwrap(),
            total
        );
    }
}

/// An event consumer that is down until told otherwise, then acknowledges everything.
#[derive(Clone, Default)]
struct FakeConsumer {
    up: Arc<AtomicBool>,
    calls: Arc<Mutex<u32>>,
    received: Arc<Mutex<Vec<EventEnvelope>>>,
}

#[tonic::async_trait]
impl EventIngestService for FakeConsumer {
    async fn deliver_events(
        &self,
        request: tonic::Request<DeliverEventsRequest>,
    ) -> Result<tonic::Response<DeliverEventsResponse>, tonic::Status> {
        *self.calls.lock().unwrap() += 1;
        if !self.up.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("consumer is down"));
        }
        let events = request.into_inner().events;
        let ids = events.iter().map(|e| e.event_id.clone()).collect();
        self.received.lock().unwrap().extend(events);
        Ok(tonic::Response::new(DeliverEventsResponse {
            acknowledged_event_ids: ids,
        }))
    }

    async fn get_guest_erasures(
        &self,
        _request: tonic::Request<guestloop_proto::events::v1::GetGuestErasuresRequest>,
    ) -> Result<tonic::Response<guestloop_proto::events::v1::GetGuestErasuresResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "this test consumer keeps no guest data",
        ))
    }

    async fn export_guest_data(
        &self,
        _request: tonic::Request<guestloop_proto::events::v1::ExportGuestDataRequest>,
    ) -> Result<tonic::Response<guestloop_proto::events::v1::ExportGuestDataResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "this test consumer keeps no guest data",
        ))
    }
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_outbox_keeps_events_until_the_consumer_takes_them() {
    let consumer = FakeConsumer::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let consumer_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EventIngestServiceServer::new(consumer.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let app = TestApp::spawn_with(&format!(
        "[peers]\nfollow_up_scheduler = \"http://{consumer_addr}\"\n\
         [outbox]\nsubscribers = [\"follow_up_scheduler\"]\npoll_interval = \"50ms\"\nmax_backoff = \"200ms\"\n"
    ))
    .await;

    let g = app.create_guest("sh-bund", guest()).await;
    let mut stay_ids = Vec::new();
    for (i, final_status) in [
        pb::StayStatus::CheckedOut,
        pb::StayStatus::Cancelled,
        pb::StayStatus::CheckedIn,
    ]
    .into_iter()
    .enumerate()
    {
        let s = stay(&g.guest_id, "sh-bund", &format!("D-{i}"));
        stay_ids.push(app.upsert_stay(s.clone()).await.stay.unwrap().stay_id);
        app.upsert_stay(pb::Stay {
            status: final_status as i32,
            ..s.clone()
        })
        .await;
        app.upsert_stay(pb::Stay {
            status: final_status as i32,
            departure_date: Some(date(2025, 3, 9)),
            ..s
        })
        .await;
    }
    let total = app.count("outbox").await;
    assert_eq!(
        total, 9,
        "per stay: booked, its final status, a changed departure"
    );

    // The consumer is down: the relay tries, fails, and the events wait.
    wait_for("the relay to try the consumer at least twice", async || {
        *consumer.calls.lock().unwrap() >= 2
    })
    .await;
    assert_eq!(
        guestloop_outbox::pending(&app.pool, "follow_up_scheduler")
            .await
            .unwrap(),
        total
    );
    let failures: i32 = sqlx::query_scalar(
        "SELECT failures FROM outbox_cursor WHERE subscriber = 'follow_up_scheduler'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(failures >= 1);

    // It comes back: everything is delivered, once, in order per stay.
    consumer.up.store(true, Ordering::SeqCst);
    wait_for("every event to be delivered", async || {
        guestloop_outbox::pending(&app.pool, "follow_up_scheduler")
            .await
            .unwrap()
            == 0
    })
    .await;
    let received = consumer.received.lock().unwrap().clone();
    assert_eq!(received.len() as i64, total);
    let mut per_stay: HashMap<String, Vec<i64>> = HashMap::new();
    for e in &received {
        per_stay
            .entry(e.aggregate_id.clone())
            .or_default()
            .push(e.sequence);
    }
    for id in &stay_ids {
        assert_eq!(per_stay[id], vec![1, 2, 3], "stay {id}");
    }
    // Events that arrive later are delivered too.
    app.upsert_stay(pb::Stay {
        status: pb::StayStatus::CheckedOut as i32,
        ..stay(&g.guest_id, "sh-bund", "D-late")
    })
    .await;
    wait_for("the late event to be delivered", async || {
        consumer.received.lock().unwrap().len() as i64 == total + 1
    })
    .await;
}

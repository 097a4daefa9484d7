//! The outbox against a real PostgreSQL and a real gRPC subscriber: events wait until they
//! are acknowledged, arrive in order per aggregate through failures and partial
//! acknowledgements, and two relay replicas deliver each event once.

use guestloop_config::{DatabaseSettings, Seconds};
use guestloop_outbox::{NewEvent, Relay, Subscriber};
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::events::v1::event_ingest_service_server::{
    EventIngestService, EventIngestServiceServer,
};
use guestloop_proto::events::v1::{DeliverEventsRequest, DeliverEventsResponse, GuestErased};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// A subscriber that fails its first `fail_first` calls and acknowledges at most
/// `ack_limit` events per call, recording every (aggregate, sequence) it acknowledges.
#[derive(Clone, Default)]
struct Recorder {
    fail_first: usize,
    ack_limit: usize,
    calls: Arc<Mutex<usize>>,
    acked: Arc<Mutex<Vec<(String, i64, String)>>>,
}

#[tonic::async_trait]
impl EventIngestService for Recorder {
    async fn deliver_events(
        &self,
        request: Request<DeliverEventsRequest>,
    ) -> Result<Response<DeliverEventsResponse>, Status> {
        let call = {
            let mut c = self.calls.lock().unwrap();
            *c += 1;
            *c
        };
        if call <= self.fail_first {
            return Err(Status::unavailable("subscriber restarting"));
        }
        let mut ids = Vec::new();
        for e in request.into_inner().events.into_iter().take(self.ack_limit) {
            self.acked.lock().unwrap().push((
                e.aggregate_id.clone(),
                e.sequence,
                e.event_id.clone(),
            ));
            ids.push(e.event_id);
        }
        Ok(Response::new(DeliverEventsResponse {
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

async fn serve(recorder: Recorder) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EventIngestServiceServer::new(recorder))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

async fn pool() -> PgPool {
    let db = guestloop_testkit::test_database().await;
    let url = db.service_url("outbox_test", "outbox_test_svc").await;
    let pool = guestloop_db::pool(&DatabaseSettings {
        url,
        schema: "outbox_test".into(),
        max_connections: 10,
        migrate_on_start: true,
        acquire_timeout: Seconds(Duration::from_secs(5)),
        ping_idle_after: Seconds(Duration::from_secs(1)),
    })
    .unwrap();
    guestloop_db::migrate(&pool, &[&guestloop_outbox::MIGRATOR])
        .await
        .unwrap();
    pool
}

/// An event of guest aggregate `aggregate`.
fn erased(aggregate: &str, guest_id: String) -> NewEvent {
    NewEvent {
        aggregate_type: "guest",
        aggregate_id: aggregate.into(),
        property_id: String::new(),
        payload: Payload::GuestErased(GuestErased { guest_id }),
    }
}

/// Writes one event in a transaction of its own.
async fn enqueue_one(pool: &PgPool, event: NewEvent) {
    let mut tx = pool.begin().await.unwrap();
    guestloop_outbox::enqueue(&mut tx, "test", event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Writes `n` events alternating between aggregates "a" and "b".
async fn enqueue(pool: &PgPool, n: usize) {
    for i in 0..n {
        let aggregate = if i % 2 == 0 { "a" } else { "b" };
        enqueue_one(pool, erased(aggregate, format!("g{i}"))).await;
    }
}

fn relay(pool: &PgPool, addr: &str, batch: u32) -> Relay {
    let client = guestloop_client::Connection::builder(addr)
        .connect_lazy()
        .unwrap()
        .event_ingest();
    Relay {
        pool: pool.clone(),
        subscribers: vec![Subscriber {
            name: "metrics".into(),
            client,
        }],
        poll_interval: Duration::from_millis(30),
        batch_size: batch,
        max_backoff: Duration::from_millis(200),
    }
}

async fn wait_for(recorder: &Recorder, n: usize) {
    for _ in 0..300 {
        if recorder.acked.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "only {} of {n} events arrived",
        recorder.acked.lock().unwrap().len()
    );
}

#[tokio::test]
async fn events_wait_then_arrive_in_order_through_failures() {
    let pool = pool().await;
    enqueue(&pool, 7).await;
    // No relay yet: everything is pending, nothing is lost.
    assert_eq!(
        guestloop_outbox::pending(&pool, "metrics").await.unwrap(),
        7
    );
    // The relay's gauges: the same count, and the oldest event's age.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let backlog = guestloop_outbox::backlog(&pool, "metrics").await.unwrap();
    assert_eq!(backlog.events, 7);
    assert!(
        (0.05..60.0).contains(&backlog.oldest_age_seconds),
        "{backlog:?}"
    );

    let recorder = Recorder {
        fail_first: 2,
        ack_limit: 2,
        ..Default::default()
    };
    let addr = serve(recorder.clone()).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let tasks = relay(&pool, &addr, 3).spawn(rx);
    wait_for(&recorder, 7).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }

    let acked = recorder.acked.lock().unwrap().clone();
    // Partial acknowledgements mean some events come again; order per aggregate holds
    // over the first delivery of each.
    let mut firsts: Vec<(String, i64)> = Vec::new();
    for (agg, seq, _) in &acked {
        if !firsts.contains(&(agg.clone(), *seq)) {
            firsts.push((agg.clone(), *seq));
        }
    }
    for agg in ["a", "b"] {
        let seqs: Vec<i64> = firsts
            .iter()
            .filter(|(a, _)| a == agg)
            .map(|(_, s)| *s)
            .collect();
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected, "aggregate {agg} in order");
    }
    assert_eq!(firsts.len(), 7);
    assert_eq!(
        guestloop_outbox::pending(&pool, "metrics").await.unwrap(),
        0
    );
    assert_eq!(
        guestloop_outbox::backlog(&pool, "metrics").await.unwrap(),
        guestloop_outbox::Backlog {
            events: 0,
            oldest_age_seconds: 0.0
        }
    );
    let (failures, error): (i32, Option<String>) = sqlx::query_as(
        "SELECT failures, last_error FROM outbox_cursor WHERE subscriber = 'metrics'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (failures, error),
        (0, None),
        "a delivery after failures clears them"
    );
    assert!(
        *recorder.calls.lock().unwrap() > 2,
        "the failed calls were retried"
    );
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once() {
    let pool = pool().await;
    enqueue(&pool, 40).await;
    let recorder = Recorder {
        ack_limit: usize::MAX,
        ..Default::default()
    };
    let addr = serve(recorder.clone()).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut tasks = relay(&pool, &addr, 5).spawn(rx.clone());
    tasks.extend(relay(&pool, &addr, 5).spawn(rx));
    wait_for(&recorder, 40).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = recorder.acked.lock().unwrap().clone();
    let mut ids: Vec<String> = acked.iter().map(|(_, _, id)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(acked.len(), 40, "no event delivered twice");
    assert_eq!(ids.len(), 40);
}

/// An event whose transaction took its id first but committed last still arrives: the
/// relay follows commit order, not id order.
#[tokio::test]
async fn an_event_committed_after_a_later_one_is_not_skipped() {
    let pool = pool().await;
    let event = |aggregate: &str| NewEvent {
        aggregate_type: "guest",
        aggregate_id: aggregate.into(),
        property_id: String::new(),
        payload: Payload::GuestErased(GuestErased {
            guest_id: aggregate.into(),
        }),
    };
    // Slow takes the smaller id and stays open while fast commits and is delivered.
    let mut slow = pool.begin().await.unwrap();
    guestloop_outbox::enqueue(&mut slow, "test", event("slow"))
        .await
        .unwrap();
    let mut fast = pool.begin().await.unwrap();
    guestloop_outbox::enqueue(&mut fast, "test", event("fast"))
        .await
        .unwrap();
    fast.commit().await.unwrap();
    let ids: Vec<(String, i64)> = sqlx::query_as("SELECT aggregate_id, id FROM outbox ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1, "only the committed event is visible");

    let recorder = Recorder {
        ack_limit: 10,
        ..Default::default()
    };
    let addr = serve(recorder.clone()).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let tasks = relay(&pool, &addr, 10).spawn(rx);
    wait_for(&recorder, 1).await;
    slow.commit().await.unwrap();
    wait_for(&recorder, 2).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let order: Vec<String> = recorder
        .acked
        .lock()
        .unwrap()
        .iter()
        .map(|(a, _, _)| a.clone())
        .collect();
    assert_eq!(order, ["fast", "slow"]);
    let (slow_id, fast_id): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT id FROM outbox WHERE aggregate_id = 'slow'),
                (SELECT id FROM outbox WHERE aggregate_id = 'fast')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(slow_id < fast_id, "the late commit held the smaller id");
}

/// Writers racing on the same aggregates while the relay runs: every event arrives once,
/// and each aggregate's events arrive in their sequence order (the sequencer numbers
/// committed events in id order, and an aggregate's writers draw ids one after another).
#[tokio::test]
async fn racing_writers_are_delivered_whole_and_in_order_per_aggregate() {
    let pool = pool().await;
    let recorder = Recorder {
        ack_limit: usize::MAX,
        ..Default::default()
    };
    let addr = serve(recorder.clone()).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let tasks = relay(&pool, &addr, 7).spawn(rx);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let aggregate = ["x", "y", "z"][(w + i) % 3];
                    enqueue_one(&pool, erased(aggregate, format!("w{w}-{i}"))).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    wait_for(&recorder, 200).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = recorder.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 200, "each event once");
    for agg in ["x", "y", "z"] {
        let seqs: Vec<i64> = acked
            .iter()
            .filter(|(a, _, _)| a == agg)
            .map(|(_, s, _)| *s)
            .collect();
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected, "aggregate {agg} in order");
    }
}

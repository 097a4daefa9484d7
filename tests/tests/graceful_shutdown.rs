//! R6, short version: SIGTERM under load, as a Kubernetes rollout sends it. The calls in
//! flight finish and are answered, new ones are refused (mostly UNAVAILABLE; clients retry
//! on another pod) and none of those was processed, the process exits 0 well inside
//! `grpc.shutdown_grace`, and every acknowledged item is in the database.

use guestloop_proto::feedback::v1 as fb;
use guestloop_testkit::TEST_CHAIN_TOML;
use sqlx::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Code;

const CLIENTS: usize = 8;
const GRACE: Duration = Duration::from_secs(10);

fn card(external_id: &str) -> fb::SubmitFeedbackRequest {
    guestloop_e2e::comment_card("rollout-cards", external_id, "Quiet room, good sleep.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_in_flight_calls_and_exits_zero() {
    let spec = guestloop_e2e::platform_spec(
        "rollout",
        "feedback-intake",
        TEST_CHAIN_TOML,
        BTreeMap::from([(
            "GUESTLOOP__GRPC__SHUTDOWN_GRACE".to_string(),
            format!("{}s", GRACE.as_secs()),
        )]),
    )
    .await;
    let (mut process, conn) = guestloop_e2e::start_alone(&spec, "feedback-intake").await;

    // (external id, feedback id) acknowledged; codes of the refusals.
    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let refused = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    // Every call that got no answer. Most are refused UNAVAILABLE; tonic reports a request
    // sent in the instant the server closed the connection as CANCELLED ("connection
    // closed"), and once in ~20 runs as INTERNAL. Whatever the code, the server must not
    // have processed any of them: a processed call is an answered call (checked below).
    let unanswered = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (mut api, acked, refused, unanswered) = (
            conn.feedback(),
            acked.clone(),
            refused.clone(),
            unanswered.clone(),
        );
        clients.push(tokio::spawn(async move {
            // Each client stops at its first refusal: the pod is gone for it.
            for i in 0.. {
                let external_id = format!("c{c}-{i}");
                let mut request = tonic::Request::new(card(&external_id));
                request.set_timeout(Duration::from_secs(30));
                match api.submit_feedback(request).await {
                    Ok(r) => acked
                        .lock()
                        .unwrap()
                        .push((external_id, r.into_inner().feedback.unwrap().feedback_id)),
                    Err(status) => {
                        unanswered.lock().unwrap().push(external_id);
                        *refused
                            .lock()
                            .unwrap()
                            .entry(format!("{:?}", status.code()))
                            .or_default() += 1;
                        return status.code();
                    }
                }
            }
            Code::Ok
        }));
    }
    // The load builds up (for longer in the long version) before SIGTERM.
    tokio::time::sleep(Duration::from_millis(1500) * guestloop_testkit::fault_scale()).await;
    let before = acked.lock().unwrap().len();
    let term_at = Instant::now();
    let status = process
        .shutdown(GRACE + Duration::from_secs(5))
        .await
        .unwrap()
        .expect("exited");
    let exited_after = term_at.elapsed();
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(30), c).await;
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let refused = std::mem::take(&mut *refused.lock().unwrap());

    assert!(before > 50, "too little load before SIGTERM: {before}");
    assert!(status.success(), "exit status {status:?}");
    assert!(exited_after < GRACE, "exit took {exited_after:?}");

    let admin_url = spec.cluster.admin_url(&spec.database);
    let mut db = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let stored: Vec<(String, String)> = sqlx::query_as(
        "SELECT external_id, id::text FROM feedback.feedback WHERE source = 'rollout-cards'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let stored: BTreeSet<_> = stored.into_iter().collect();
    let lost = acked.iter().filter(|a| !stored.contains(*a)).count();
    assert_eq!(lost, 0, "{lost} of {} acknowledged items lost", acked.len());
    // A call the server took in was answered: none of the unanswered ones was processed.
    let unanswered = std::mem::take(&mut *unanswered.lock().unwrap());
    let processed: Vec<&String> = unanswered
        .iter()
        .filter(|id| stored.iter().any(|(e, _)| e == *id))
        .collect();
    assert!(
        processed.is_empty(),
        "processed but never answered (cut by the shutdown): {processed:?}"
    );
    eprintln!(
        "R6: SIGTERM after {before} acknowledged; exit 0 after {exited_after:?}; {} acknowledged in all, 0 lost; refused {refused:?}",
        acked.len()
    );
}

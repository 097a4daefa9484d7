//! Nothing acknowledged is lost: the group-committed paths (feedback submission, the
//! access log of contact reads) are killed with SIGKILL under concurrent load, then every
//! acknowledged call is looked for in the database. A retry of a call whose answer was
//! lost in the crash is a replay, never a second copy.

use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_testkit::platform::{Platform, PlatformSpec};
use guestloop_testkit::{ServiceProcess, TEST_CHAIN_TOML};
use sqlx::Connection;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 8;
/// SIGKILLs in a run: 3, times the fault scale.
fn kills() -> usize {
    3 * guestloop_testkit::fault_scale() as usize
}

struct Fixture {
    spec: PlatformSpec,
    token: String,
    admin_url: String,
}

async fn fixture(name: &str) -> Fixture {
    let spec =
        guestloop_e2e::platform_spec(name, "feedback-intake", TEST_CHAIN_TOML, Default::default())
            .await;
    Fixture {
        token: guestloop_e2e::head_office_token(&spec.signing_key),
        admin_url: spec.cluster.admin_url(&spec.database),
        spec,
    }
}

async fn start(f: &Fixture, service: &str) -> ServiceProcess {
    Platform::start_one(&f.spec, service, true)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn client(f: &Fixture, p: &ServiceProcess) -> guestloop_client::Connection {
    guestloop_client::Connection::builder(p.endpoint())
        .token(&f.token)
        .connect_lazy()
        .unwrap()
}

fn card(external_id: &str) -> fb::SubmitFeedbackRequest {
    guestloop_e2e::comment_card(
        "crash-cards",
        external_id,
        "The pool was warm and the staff kind.",
    )
}

/// Lets the clients' load build up, SIGKILLs the service mid-stream, lets the clients see
/// the crash for a moment, then stops them.
async fn crash_under_load(
    process: &mut ServiceProcess,
    stop: &std::sync::atomic::AtomicBool,
    clients: Vec<tokio::task::JoinHandle<()>>,
) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    process.kill().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
}

/// What the clients saw: acknowledged (external id, feedback id) and calls whose answer
/// never came (the crash).
#[derive(Default)]
struct Seen {
    acked: Vec<(String, String)>,
    unknown: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_feedback() {
    let f = fixture("crash-feedback").await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    for round in 0..kills() {
        let mut process = start(&f, "feedback-intake").await;
        let conn = client(&f, &process);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (mut api, seen, stop) = (conn.feedback(), seen.clone(), stop.clone());
            clients.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let external_id = format!("r{round}-c{c}-{i}");
                    i += 1;
                    match api.submit_feedback(card(&external_id)).await {
                        Ok(r) => {
                            let id = r.into_inner().feedback.unwrap().feedback_id;
                            seen.lock().unwrap().acked.push((external_id, id));
                        }
                        Err(_) => {
                            seen.lock().unwrap().unknown.push(external_id);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }));
        }
        crash_under_load(&mut process, &stop, clients).await;
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.acked.len() > 100,
        "too little load to prove anything: {} acknowledged",
        seen.acked.len()
    );

    let mut db = sqlx::PgConnection::connect(&f.admin_url).await.unwrap();
    let stored: Vec<(String, String)> = sqlx::query_as(
        "SELECT external_id, id::text FROM feedback.feedback WHERE source = 'crash-cards'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let stored: BTreeSet<(String, String)> = stored.into_iter().collect();
    let lost: Vec<_> = seen.acked.iter().filter(|a| !stored.contains(a)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged submissions are not in the database, e.g. {:?}",
        lost.len(),
        seen.acked.len(),
        lost.first()
    );
    // Each stored item went out with its event, in the same transaction.
    let without_event: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM feedback.feedback f WHERE f.source = 'crash-cards' AND NOT EXISTS
           (SELECT 1 FROM feedback.outbox o WHERE o.aggregate_type = 'feedback'
              AND o.aggregate_id = f.id::text)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(without_event, 0, "feedback committed without its event");

    // A retry of every call whose answer was lost: a replay where it had committed, a new
    // item where it had not, and never a twin.
    let process = start(&f, "feedback-intake").await;
    let mut api = client(&f, &process).feedback();
    let committed: BTreeSet<&str> = stored.iter().map(|(e, _)| e.as_str()).collect();
    for external_id in &seen.unknown {
        let r = api
            .submit_feedback(card(external_id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.created,
            !committed.contains(external_id.as_str()),
            "retry of {external_id}"
        );
    }
    let twins: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT external_id FROM feedback.feedback
           WHERE source = 'crash-cards' GROUP BY external_id HAVING COUNT(*) > 1) t",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(twins, 0);
    eprintln!(
        "{} kills under {CLIENTS} clients: {} acknowledged, 0 lost; {} answers lost in the crash, retried without twins",
        kills(),
        seen.acked.len(),
        seen.unknown.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_leaves_every_answered_read_in_the_access_log() {
    let f = fixture("crash-access-log").await;
    let mut process = start(&f, "guest-profile").await;
    let conn = client(&f, &process);
    let guest_id = conn
        .guest_profile()
        .create_guest(gp::CreateGuestRequest {
            property_id: "sh-bund".into(),
            guest: Some(gp::Guest {
                family_name: "Crash".into(),
                contacts: Some(gp::Contacts {
                    email: "crash@guest.test".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap()
        .guest_id;
    let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (mut api, answered, stop) = (conn.guest_profile(), answered.clone(), stop.clone());
        let guest_id = guest_id.clone();
        clients.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let request = gp::GetGuestRequest {
                    guest_id: guest_id.clone(),
                };
                match api.get_guest(request).await {
                    Ok(_) => {
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    crash_under_load(&mut process, &stop, clients).await;
    let answered = answered.load(std::sync::atomic::Ordering::Relaxed);
    assert!(answered > 100, "too little load: {answered} reads answered");
    let mut db = sqlx::PgConnection::connect(&f.admin_url).await.unwrap();
    let logged: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM guest_profile.access_log
          WHERE guest_id = $1::uuid AND rpc LIKE '%/GetGuest'",
    )
    .bind(&guest_id)
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(
        logged as u64 >= answered,
        "{answered} reads answered but only {logged} in the access log"
    );
    eprintln!("SIGKILL under {CLIENTS} readers: {answered} reads answered, {logged} logged");
}

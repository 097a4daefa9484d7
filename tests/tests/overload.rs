//! R5, short version: far more calls in flight than the service admits
//! (`grpc.concurrency_limit` 8 here, 256 calls at once). The excess is refused at once with
//! RESOURCE_EXHAUSTED, the admitted calls are answered, memory stays bounded, and once the
//! flood stops every call is answered again.
//!
//! The first run failed: most calls died with transport errors ("broken pipe",
//! "connection closed"). h2 (0.4.20) closes a connection (GOAWAY ENHANCE_YOUR_CALM
//! "too_many_data_frames") once the small request bodies it holds unread pass a 25 KiB
//! budget — about 120 GetGuest requests — and 256 streams in flight on one connection did
//! that hundreds of times. `grpc.http2_max_concurrent_streams` is now 100 (clients queue the
//! rest on their side), and refusals read the request body before answering (`refuse.rs`).

use guestloop_proto::guestprofile::v1 as gp;
use guestloop_testkit::TEST_CHAIN_TOML;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Code;

const IN_FLIGHT: usize = 256;
/// How long the flood lasts: 3 s, times the fault scale.
fn flood() -> Duration {
    Duration::from_secs(3) * guestloop_testkit::fault_scale()
}

/// Peak resident memory of a process, MB (VmHWM).
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_excess_is_refused_at_once_and_the_service_recovers() {
    let spec = guestloop_e2e::platform_spec(
        "overload",
        "guest-profile",
        TEST_CHAIN_TOML,
        BTreeMap::from([
            (
                "GUESTLOOP__GRPC__CONCURRENCY_LIMIT".to_string(),
                "8".to_string(),
            ),
            (
                "RUST_LOG".to_string(),
                std::env::var("R5_SERVER_LOG").unwrap_or_else(|_| "info".into()),
            ),
        ]),
    )
    .await;
    let (mut process, conn) = guestloop_e2e::start_alone(&spec, "guest-profile").await;
    let guest_id = conn
        .guest_profile()
        .create_guest(gp::CreateGuestRequest {
            property_id: "sh-bund".into(),
            guest: Some(gp::Guest {
                given_name: "Flood".into(),
                family_name: "Test".into(),
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
    let idle_rss = peak_rss_mb(process.pid());

    // (code, latency) of every call of the flood.
    let seen = Arc::new(Mutex::new(Vec::<(Code, Duration)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (mut api, seen, stop, guest_id) = (
            conn.guest_profile(),
            seen.clone(),
            stop.clone(),
            guest_id.clone(),
        );
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let code = match api
                    .get_guest(gp::GetGuestRequest {
                        guest_id: guest_id.clone(),
                    })
                    .await
                {
                    Ok(_) => Code::Ok,
                    Err(status) => {
                        if status.code() != Code::ResourceExhausted
                            && std::env::var("R5_DEBUG").is_ok()
                        {
                            eprintln!("{status:?}");
                        }
                        status.code()
                    }
                };
                seen.lock().unwrap().push((code, started.elapsed()));
            }
        }));
    }
    tokio::time::sleep(flood()).await;
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.unwrap();
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let flood_rss = peak_rss_mb(process.pid());

    let mut codes = BTreeMap::<String, usize>::new();
    for (code, _) in &seen {
        *codes.entry(format!("{code:?}")).or_default() += 1;
    }
    let refused: Vec<Duration> = seen
        .iter()
        .filter(|(c, _)| *c == Code::ResourceExhausted)
        .map(|(_, d)| *d)
        .collect();
    let admitted = codes.get("Ok").copied().unwrap_or(0);
    assert!(
        codes.keys().all(|c| c == "Ok" || c == "ResourceExhausted"),
        "only answers and refusals: {codes:?}"
    );
    assert!(!refused.is_empty() && admitted > 0, "{codes:?}");
    let mut sorted = refused.clone();
    sorted.sort();
    let p99_refused = sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)];
    // A refusal costs no database work; on 2 busy cores it still comes back quickly.
    assert!(
        p99_refused < Duration::from_millis(250),
        "refusals p99 {p99_refused:?}"
    );
    assert!(
        flood_rss < 100.0,
        "peak RSS {flood_rss:.1} MB under the flood (idle {idle_rss:.1} MB)"
    );

    // The flood is over: every call is answered again.
    let mut api = conn.guest_profile();
    for _ in 0..20 {
        api.get_guest(gp::GetGuestRequest {
            guest_id: guest_id.clone(),
        })
        .await
        .unwrap();
    }
    eprintln!(
        "R5: {IN_FLIGHT} in flight for {:?} against a limit of 8: {codes:?}; refusals p99 {p99_refused:?}; peak RSS {flood_rss:.1} MB (idle {idle_rss:.1}); 20 of 20 answered after",
        flood()
    );
    let _ = process.stop(Duration::from_secs(10));
}

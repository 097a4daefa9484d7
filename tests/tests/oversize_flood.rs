//! R7, memory: a property's system that keeps sending messages over the size limit
//! (`grpc.max_message_bytes`, 4 MiB) — 6 MiB CreateGuest requests, 8 at a time, in waves —
//! gets RESOURCE_EXHAUSTED for each, and the service's resident memory does not grow from
//! wave to wave: an oversize body is refused from its length prefix and dropped, never
//! buffered whole or kept. Calls of normal size are answered between and after the waves.

use guestloop_proto::guestprofile::v1 as gp;
use guestloop_testkit::TEST_CHAIN_TOML;
use std::collections::BTreeMap;
use tonic::Code;

const WAVES: usize = 4;
const PER_WAVE: usize = 24;
const AT_ONCE: usize = 8;

/// Resident memory of a process now, MB (VmRSS).
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn guest(notes: String) -> gp::CreateGuestRequest {
    gp::CreateGuestRequest {
        property_id: "sh-bund".into(),
        guest: Some(gp::Guest {
            given_name: "Wei".into(),
            family_name: "Zhang".into(),
            notes,
            ..Default::default()
        }),
        idempotency_key: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_refused_without_memory_growth() {
    let spec = guestloop_e2e::platform_spec(
        "oversize-flood",
        "guest-profile",
        TEST_CHAIN_TOML,
        BTreeMap::new(),
    )
    .await;
    let (mut process, conn) = guestloop_e2e::start_alone(&spec, "guest-profile").await;
    let pid = process.pid();
    // Warm: a normal call, so the first wave does not pay for first-use allocations.
    conn.guest_profile()
        .create_guest(guest("likes a quiet room".into()))
        .await
        .expect("a normal call");
    let idle = rss_mb(pid);

    let oversize = "x".repeat(6 << 20);
    let mut after_wave = Vec::new();
    for _ in 0..WAVES {
        for _ in 0..PER_WAVE / AT_ONCE {
            let calls: Vec<_> = (0..AT_ONCE)
                .map(|_| {
                    let (mut api, notes) = (conn.guest_profile(), oversize.clone());
                    tokio::spawn(async move { api.create_guest(guest(notes)).await })
                })
                .collect();
            for call in calls {
                let status = call.await.unwrap().expect_err("an oversize call was taken");
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            }
        }
        conn.guest_profile()
            .create_guest(guest("between waves".into()))
            .await
            .expect("a normal call between the waves");
        after_wave.push(rss_mb(pid));
    }
    let first = after_wave[0];
    let last = *after_wave.last().unwrap();
    // Allocator slack, not growth: each wave sends 144 MiB; a leak or a kept buffer of
    // even one message per wave would show as 6 MiB a wave.
    assert!(
        last <= first + 4.0,
        "RSS grew from wave to wave: idle {idle:.1} MB, after each wave {after_wave:.1?}"
    );
    eprintln!(
        "R7 oversize: {} messages of 6 MiB ({AT_ONCE} at a time, {WAVES} waves) all RESOURCE_EXHAUSTED; RSS idle {idle:.1} MB, after each wave {after_wave:.1?} MB",
        WAVES * PER_WAVE
    );
    let _ = process.stop(std::time::Duration::from_secs(10));
}

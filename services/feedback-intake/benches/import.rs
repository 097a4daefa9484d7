//! Bulk-import benchmark: streams N items (default 10,000) through one ImportFeedback call
//! against a real PostgreSQL, guest-profile and feedback-intake, and reports items/s and
//! the process's peak memory. A tool, not a test: run it by hand,
//!
//!     cargo bench -p feedback-intake --bench import -- 10000
//!
//! Half the items name a guest by phone (a lookup at guest-profile), a tenth are
//! complaints (a case each), the rest plain comment cards.

use guestloop_proto::feedback::v1 as pb;
use guestloop_testkit::{TEST_CHAIN_TOML, keys, test_database};
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn settings_toml(url: &str, extra: &str) -> String {
    format!(
        "[grpc]\nlisten_addr = \"127.0.0.1:0\"\n[admin]\nlisten_addr = \"127.0.0.1:0\"\n[database]\nurl = \"{url}\"\nmigrate_on_start = true\n[auth]\npublic_key_path = \"{}\"\nsigning_key_path = \"{}\"\n{extra}",
        keys().public_key_path.display(),
        keys().signing_key_path.display()
    )
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let db = test_database().await;
    let gp_url = db.service_url("guest_profile", "guest_profile_svc").await;
    let fi_url = db.service_url("feedback", "feedback_svc").await;

    let gp_toml = settings_toml(&gp_url, "");
    let gp_layers: Vec<&str> = guest_profile::default_layers()
        .into_iter()
        .chain([TEST_CHAIN_TOML, gp_toml.as_str()])
        .collect();
    let gp = guest_profile::Application::build(
        guestloop_config::load_from_env(&gp_layers, None, std::iter::empty()).unwrap(),
    )
    .await
    .unwrap();
    let gp_addr = gp.grpc_addr();
    tokio::spawn(gp.run_until_stopped(std::future::pending()));

    let fi_toml = settings_toml(
        &fi_url,
        &format!("[peers]\nguest_profile = \"http://{gp_addr}\"\n"),
    );
    let fi_layers: Vec<&str> = feedback_intake::default_layers()
        .into_iter()
        .chain([TEST_CHAIN_TOML, fi_toml.as_str()])
        .collect();
    let fi = feedback_intake::Application::build(
        guestloop_config::load_from_env(&fi_layers, None, std::iter::empty()).unwrap(),
    )
    .await
    .unwrap();
    let fi_addr = fi.grpc_addr();
    tokio::spawn(fi.run_until_stopped(std::future::pending()));

    let conn = guestloop_client::Connection::builder(format!("http://{fi_addr}"))
        .token(&keys().head_office())
        .timeout(std::time::Duration::from_secs(3600))
        .connect_lazy()
        .unwrap();
    let items = (0..n).map(|i| pb::ImportFeedbackRequest {
        feedback: Some(pb::Feedback {
            property_id: "sh-bund".into(),
            channel: pb::FeedbackChannel::CommentCard as i32,
            source: "comment-cards".into(),
            external_id: format!("card-{i}"),
            text: if i % 3 == 0 {
                "房间很干净，服务很好".into()
            } else {
                "Breakfast was cold and the coffee machine was broken".into()
            },
            ..Default::default()
        }),
        guest: (i % 2 == 0).then(|| pb::GuestReference {
            phone: format!("+86138{:08}", i),
            ..Default::default()
        }),
        complaint: (i % 10 == 0).then(pb::CaseDetails::default),
        idempotency_key: String::new(),
    });
    let rss_before = peak_rss_kib();
    let started = Instant::now();
    let response = conn
        .feedback()
        .import_feedback(tokio_stream::iter(items))
        .await
        .expect("import")
        .into_inner();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {n} items in {secs:.1} s: {:.0} items/s; created {} replayed {} failed {} cases {}; peak RSS {} MiB (before the import {} MiB)",
        n as f64 / secs,
        response.created_count,
        response.replayed_count,
        response.failed_count,
        response.cases_opened_count,
        peak_rss_kib() / 1024,
        rss_before / 1024
    );
}

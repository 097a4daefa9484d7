//! A rolling upgrade as Kubernetes performs it (issue 12), with the previous release's real
//! binaries (tests/previous-release; `scripts/previous-release.sh` builds them and the test
//! script passes their folder as GUESTLOOP_PREVIOUS_BIN_DIR):
//!
//! 1. the previous release serves on its own schema, each service behind a proxy standing
//!    for its Kubernetes Service (peers and clients only know the proxies);
//! 2. this release's `migrate` runs while the old pods serve (the pre-upgrade Job);
//! 3. this release's pods start beside the old ones, as the chart starts them (no migration
//!    on start); all connections go to the new pods, then all to the old ones, while both
//!    releases' background work (relays, timers, deliveries) shares the schema;
//! 4. the old pods leave the endpoints, are sent SIGTERM and exit 0.
//!
//! The whole loop (check-outs, surveys through notification to a real SMTP server, cases,
//! escalation, metrics) is played in each of the four steps, so old and new processes call
//! each other, deliver each other's events and take each other's timers. At the end the chain's KPIs
//! count every answer, complaint and survey of the three phases exactly once: nothing an
//! old pod acknowledged was lost or applied twice across the overlap.

use guestloop_proto::common::v1::DateRange;
use guestloop_proto::metrics::v1 as mx;
use guestloop_testkit::platform::{Platform, PlatformSpec, SERVICES};
use guestloop_testkit::proxy::ServiceProxy;
use guestloop_testkit::scenario::{self, Endpoints, Played};
use guestloop_testkit::sinks;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const GUESTS_PER_PROPERTY: usize = 2;

fn previous_bin_dir() -> PathBuf {
    let dir = std::env::var_os("GUESTLOOP_PREVIOUS_BIN_DIR")
        .map(PathBuf::from)
        .expect(
            "GUESTLOOP_PREVIOUS_BIN_DIR is not set: run `bash scripts/previous-release.sh` and \
         set it to the folder it prints (scripts/test.sh does both)",
        );
    for (name, ..) in SERVICES {
        assert!(
            dir.join(name).is_file(),
            "{} missing: rerun scripts/previous-release.sh",
            dir.join(name).display()
        );
    }
    dir
}

async fn play(endpoints: &Endpoints, token: &str, seed: u64, phase: &str) -> Played {
    scenario::play(endpoints, token, GUESTS_PER_PROPERTY, seed)
        .await
        .unwrap_or_else(|e| panic!("{phase}: {e:#}"))
}

/// (CSAT answers, complaints, surveys sent within 48 h) the chain's KPIs count.
async fn chain_counts(metrics: &mut guestloop_client::MetricsClient, days: DateRange) -> [i64; 3] {
    let [csat, complaints, contacted] = scenario::chain_totals(
        metrics,
        days,
        &[
            mx::Kpi::Csat,
            mx::Kpi::ComplaintVolume,
            mx::Kpi::SatisfactionContactWithin48hRate,
        ],
    )
    .await
    .expect("GetKpis")[..] else {
        unreachable!("three KPIs asked")
    };
    [
        csat.sample_size,
        complaints.sample_size,
        contacted.numerator,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_new_pods_overlap_on_the_new_schema_and_nothing_is_lost() {
    let previous = previous_bin_dir();
    let smtp = sinks::smtp_sink();
    let mut proxies = BTreeMap::new();
    let mut extra_env = BTreeMap::new();
    for (name, _, peer) in SERVICES {
        let proxy = ServiceProxy::start().await.expect("a proxy");
        extra_env.insert(
            format!("GUESTLOOP__PEERS__{}", peer.to_uppercase()),
            proxy.endpoint(),
        );
        proxies.insert(name, proxy);
    }
    let new_spec = guestloop_e2e::platform_spec(
        "rolling-upgrade",
        "metrics",
        &scenario::config_toml(smtp.port),
        extra_env,
    )
    .await;
    let old_spec = PlatformSpec {
        bin_dir: previous.clone(),
        log_dir: new_spec.log_dir.join("previous"),
        ..new_spec.clone()
    };
    let endpoints = Endpoints {
        guest_profile: proxies["guest-profile"].endpoint(),
        feedback_intake: proxies["feedback-intake"].endpoint(),
        follow_up_scheduler: proxies["follow-up-scheduler"].endpoint(),
        notification: proxies["notification"].endpoint(),
        metrics: proxies["metrics"].endpoint(),
    };
    let token = guestloop_e2e::head_office_token(&new_spec.signing_key);

    // 1. The previous release, installed and serving.
    let mut old = Platform::start(&old_spec)
        .await
        .unwrap_or_else(|e| panic!("the previous release: {e:#}"));
    for s in &old.services {
        proxies[s.name.as_str()].set_backends(&[s.grpc_port]);
    }
    let first = play(&endpoints, &token, 11, "previous release alone").await;

    // 2. The pre-upgrade Job: this release migrates the schema under the old pods.
    for (name, ..) in SERVICES {
        let status = old.migrate(&new_spec, &new_spec.bin_dir, name).unwrap();
        assert!(status.success(), "{name}: migrate exited {status}");
    }

    // 3. New pods beside the old ones, started as the chart starts them.
    let mut new = Vec::new();
    for (name, ..) in SERVICES {
        let pod = old
            .replica_with_env(
                &new_spec,
                name,
                &BTreeMap::from([(
                    "GUESTLOOP__DATABASE__MIGRATE_ON_START".to_string(),
                    "false".to_string(),
                )]),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}, this release: {e:#}"));
        new.push(pod);
    }
    // Both releases serve at once: their workers, relays and timers share the schema the
    // whole time. Every connection (clients' and peers') first goes to the new pods, so old
    // pods call new ones; then to the old pods, so new pods call old ones.
    let route = |to_new: bool| {
        for pod in &new {
            let port = if to_new {
                pod.grpc_port
            } else {
                old.service(&pod.name).unwrap().grpc_port
            };
            proxies[pod.name.as_str()].set_backends(&[port]);
        }
        for proxy in proxies.values() {
            proxy.reset_connections();
        }
    };
    route(true);
    let second = play(&endpoints, &token, 12, "both releases, calls to the new").await;
    route(false);
    let third = play(&endpoints, &token, 13, "both releases, calls to the old").await;
    for pod in &new {
        let proxy = &proxies[pod.name.as_str()];
        let old_port = old.service(&pod.name).unwrap().grpc_port;
        eprintln!(
            "{}: connections to the previous release {}, to this one {}",
            pod.name,
            proxy.connections_to(old_port),
            proxy.connections_to(pod.grpc_port)
        );
    }

    // 4. The old pods leave the endpoints first, then get SIGTERM.
    for pod in &new {
        proxies[pod.name.as_str()].set_backends(&[pod.grpc_port]);
    }
    for s in old.services.iter_mut().rev() {
        let exit = s
            .shutdown(Duration::from_secs(30))
            .await
            .unwrap()
            .expect("exited");
        assert!(
            exit.success(),
            "{} (previous release): SIGTERM exit {exit}",
            s.name
        );
    }
    let fourth = play(&endpoints, &token, 14, "this release alone").await;

    // Every answer, complaint and survey of the three phases, counted once.
    let sum = |f: &dyn Fn(&scenario::PropertyPlay) -> i64| -> i64 {
        [&first, &second, &third, &fourth]
            .iter()
            .flat_map(|p| p.properties.values())
            .map(f)
            .sum()
    };
    let expected = [
        sum(&|p| p.answers.len() as i64),
        sum(&|p| p.cases.len() as i64),
        sum(&|p| p.consenting),
    ];
    eprintln!(
        "played in {:?} / {:?} / {:?} / {:?}; (answers, complaints, surveys) {expected:?}",
        first.elapsed, second.elapsed, third.elapsed, fourth.elapsed
    );
    assert!(expected.iter().all(|n| *n > 0), "{expected:?}");
    let days = DateRange {
        start_date: first.days().start_date,
        end_date: fourth.days().end_date,
    };
    let mut metrics = guestloop_client::Connection::builder(endpoints.metrics.clone())
        .token(&token)
        .connect_lazy()
        .unwrap()
        .metrics();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut counted = chain_counts(&mut metrics, days).await;
    while counted != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        counted = chain_counts(&mut metrics, days).await;
    }
    assert_eq!(
        counted, expected,
        "(answers, complaints, surveys) counted vs played"
    );
    for mut pod in new {
        let exit = pod
            .shutdown(Duration::from_secs(30))
            .await
            .unwrap()
            .expect("exited");
        assert!(exit.success(), "{}: SIGTERM exit {exit}", pod.name);
    }
}

//! What Kubernetes relies on at a pod's start (issue 12): a service started the way the
//! chart starts it (`database.migrate_on_start = false`) against a schema nobody migrated
//! yet stays out of the endpoints: health "" is NOT_SERVING, calls are refused
//! UNAVAILABLE, while the liveness name stays SERVING (a missing migration must not get
//! the pod restarted). Once `<service> migrate` has run, as the pre-upgrade Job does, it
//! reports SERVING by itself. `<service> health` (the `helm test` hook's command) says the
//! same through its exit code. Every service, one after another, in one database.

use guestloop_proto::guestprofile::v1 as gp;
use guestloop_testkit::TEST_CHAIN_TOML;
use guestloop_testkit::platform::{Platform, SERVICES};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;

/// guestloop_server::LIVENESS_SERVICE, as the chart's liveness probe asks for it.
const LIVENESS_SERVICE_NAME: &str = "guestloop.liveness";

async fn status(endpoint: &str, name: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .ok()?
        .connect()
        .await
        .ok()?;
    let response = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: name.to_string(),
        })
        .await
        .ok()?;
    Some(response.into_inner().status())
}

/// Exit code of `<service> health --addr <endpoint>`.
fn health_command(bin: &std::path::Path, endpoint: &str) -> Option<i32> {
    std::process::Command::new(bin)
        .args(["health", "--addr", endpoint, "--timeout-secs", "3"])
        .output()
        .expect("run the health command")
        .status
        .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmigrated_schema_keeps_every_service_out_of_the_endpoints_until_migrated() {
    let spec = guestloop_e2e::platform_spec(
        "readiness",
        "metrics",
        TEST_CHAIN_TOML,
        BTreeMap::from([(
            "GUESTLOOP__DATABASE__MIGRATE_ON_START".to_string(),
            "false".to_string(),
        )]),
    )
    .await;
    let token = guestloop_e2e::head_office_token(&spec.signing_key);
    for (name, schema, _) in SERVICES {
        let mut process = Platform::start_one(&spec, name, false)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let endpoint = process.endpoint();
        let bin = spec.bin_dir.join(name);

        // Up, answering health, alive, but not ready: the watcher checks every 2 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        while status(&endpoint, LIVENESS_SERVICE_NAME).await != Some(ServingStatus::Serving) {
            assert!(Instant::now() < deadline, "{name}: liveness never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            status(&endpoint, "").await,
            Some(ServingStatus::NotServing),
            "{name}: SERVING on an unmigrated schema"
        );
        assert_eq!(
            status(&endpoint, LIVENESS_SERVICE_NAME).await,
            Some(ServingStatus::Serving),
            "{name}: liveness must not follow the schema"
        );
        assert_eq!(health_command(&bin, &endpoint), Some(1), "{name}: health");
        if name == "guest-profile" {
            let conn = guestloop_client::Connection::builder(endpoint.clone())
                .token(&token)
                .connect_lazy()
                .unwrap();
            let refused = conn
                .guest_profile()
                .get_guest(gp::GetGuestRequest {
                    guest_id: uuid::Uuid::now_v7().to_string(),
                })
                .await
                .expect_err("a call before the migration");
            assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
        }

        // The Job's turn.
        let url = spec
            .cluster
            .bootstrap_service(&spec.database, schema, &format!("{schema}_svc"))
            .await
            .unwrap();
        let mut env = spec.extra_env.clone();
        env.insert("GUESTLOOP__DATABASE__URL".into(), url);
        let migrated =
            guestloop_testkit::process::run_migrate(&spec.bin_dir, name, &env, &spec.log_dir)
                .unwrap();
        assert!(migrated.success(), "{name}: migrate exited {migrated}");

        let deadline = Instant::now() + Duration::from_secs(10);
        while status(&endpoint, "").await != Some(ServingStatus::Serving) {
            assert!(
                Instant::now() < deadline,
                "{name}: not SERVING 10 s after the migration:\n{}",
                process.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(health_command(&bin, &endpoint), Some(0), "{name}: health");
        let exit = tokio::task::block_in_place(|| process.stop(Duration::from_secs(30)))
            .unwrap()
            .expect("exited");
        assert!(exit.success(), "{name}: SIGTERM exit {exit}");
    }
}

//! guest-profile and metrics, run from their binaries as in production, called by Python
//! grpcio: a real client that nobody here wrote. The client finds the API through server
//! reflection, checks grpc.health.v1, and uses no code generated from our protos. The suites
//! are tests/python/test_*.py; this test gives them servers, a database and tokens, and a
//! second guest-profile behind mutual TLS with certificates made for the run
//! (test_tls.py: grpcio's own TLS stack against ours).
//!
//! Needs the service binaries (`cargo build --bins`) and, on the first run, PyPI to
//! install tests/python/requirements.txt into a venv (see `guestloop_e2e::python_env`).

use guestloop_e2e::{bin_dir, python_dir, python_env};
use guestloop_testkit::{ServiceProcess, TEST_CHAIN_TOML, free_port, keys, test_database};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SERVICE: &str = "guest-profile";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_discovers_and_calls_guest_profile() {
    let started = Instant::now();
    let bin_dir = bin_dir(SERVICE).unwrap_or_else(|e| panic!("{e:#}"));
    // The venv (slow only the first time) gets ready while the service starts.
    let python = tokio::task::spawn_blocking(python_env);

    let db = test_database().await;
    let database_url = db.service_url("guest_profile", "guest_profile_svc").await;
    let work = std::env::temp_dir().join(format!(
        "guestloop-e2e-py-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&work).expect("work dir");
    let config = work.join("chain.toml");
    std::fs::write(&config, TEST_CHAIN_TOML).expect("write chain config");
    let keys = keys();
    let env = BTreeMap::from([
        ("GUESTLOOP_CONFIG".to_string(), config.display().to_string()),
        ("GUESTLOOP__DATABASE__URL".into(), database_url),
        (
            "GUESTLOOP__DATABASE__MIGRATE_ON_START".into(),
            "true".into(),
        ),
        (
            "GUESTLOOP__AUTH__PUBLIC_KEY_PATH".into(),
            keys.public_key_path.display().to_string(),
        ),
        (
            "GUESTLOOP__AUTH__SIGNING_KEY_PATH".into(),
            keys.signing_key_path.display().to_string(),
        ),
    ]);
    let mut service =
        ServiceProcess::start(&bin_dir, SERVICE, free_port(), free_port(), &env, &work)
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin_dir.join(SERVICE).display()));
    let mut metrics_env = env.clone();
    metrics_env.insert(
        "GUESTLOOP__DATABASE__URL".into(),
        db.service_url("metrics", "metrics_svc").await,
    );
    let mut metrics = ServiceProcess::start(
        &bin_dir,
        "metrics",
        free_port(),
        free_port(),
        &metrics_env,
        &work,
    )
    .unwrap_or_else(|e| panic!("starting metrics: {e}"));
    service
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    metrics
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let service_ready = started.elapsed();
    // The same service again behind mutual TLS, for tests/python/test_tls.py.
    let tls = TlsFiles::write(&work);
    let mut tls_env = env.clone();
    tls_env.extend(tls.server_env());
    let mut tls_service = ServiceProcess::start(
        &bin_dir,
        SERVICE,
        free_port(),
        free_port(),
        &tls_env,
        &work.join("tls"),
    )
    .unwrap_or_else(|e| panic!("starting {SERVICE} with TLS: {e}"));

    let python = python
        .await
        .expect("python_env task")
        .unwrap_or_else(|e| panic!("preparing the Python client: {e:#}"));
    let env_ready = started.elapsed();

    let mut pytest = tokio::process::Command::new(&python);
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir"])
        .arg(python_dir())
        .arg(python_dir())
        .current_dir(python_dir())
        .env(
            "GUESTLOOP_GUEST_PROFILE_ADDR",
            format!("127.0.0.1:{}", service.grpc_port),
        )
        .env(
            "GUESTLOOP_METRICS_ADDR",
            format!("127.0.0.1:{}", metrics.grpc_port),
        )
        .env(
            "GUESTLOOP_TOKEN_SERVICE",
            keys.token(guestloop_auth::Role::Service, &[], None),
        )
        .env(
            "GUESTLOOP_TLS_ADDR",
            format!("127.0.0.1:{}", tls_service.grpc_port),
        )
        .envs(tls.client_env())
        .env("GUESTLOOP_TOKEN_HEAD_OFFICE", keys.head_office())
        .env("GUESTLOOP_TOKEN_OTHER_PROPERTY", keys.staff("hk-harbour"))
        .env("GUESTLOOP_TOKEN_SAME_PROPERTY", keys.staff("sh-bund"))
        // Keep the source tree clean and the interpreter to the venv's own packages.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        // grpcio honours http(s)_proxy; the server is local.
        .env("no_grpc_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(180), pytest.output())
        .await
        .unwrap_or_else(|_| panic!("pytest did not finish in 180s\n{}", service.log_tail()))
        .expect("running pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    let stopped = service.stop(Duration::from_secs(10));
    let _ = metrics.stop(Duration::from_secs(10));
    let _ = tls_service.stop(Duration::from_secs(10));
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{stdout}{stderr}\n--- {SERVICE} log (tail) ---\n{}\n--- metrics log (tail) ---\n{}\n--- {SERVICE} with TLS, log (tail) ---\n{}",
        output.status,
        service.log_tail(),
        metrics.log_tail(),
        tls_service.log_tail()
    );
    println!("{stdout}{stderr}");
    println!(
        "service SERVING after {:.1}s, Python ready after {:.1}s, done after {:.1}s; {SERVICE} stopped: {stopped:?}",
        service_ready.as_secs_f64(),
        env_ready.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// A server certificate, a client CA and a client certificate it signed, written as PEM
/// files for one run.
struct TlsFiles {
    dir: std::path::PathBuf,
}

impl TlsFiles {
    fn write(work: &std::path::Path) -> Self {
        use guestloop_testkit::certs::{TestCa, Usage};
        let dir = work.join("tls");
        std::fs::create_dir_all(&dir).expect("tls dir");
        let server_ca = TestCa::new("Guestloop e2e server CA");
        let client_ca = TestCa::new("Guestloop e2e property-systems CA");
        let server = server_ca.issue("localhost", Usage::Server);
        let client = client_ca.issue("pms.sh-bund", Usage::Client);
        for (name, text) in [
            ("server-ca.crt", server_ca.pem()),
            ("tls.crt", server.cert_pem),
            ("tls.key", server.key_pem),
            ("client-ca.crt", client_ca.pem()),
            ("client.crt", client.cert_pem),
            ("client.key", client.key_pem),
        ] {
            std::fs::write(dir.join(name), text).expect("write a PEM file");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn server_env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "GUESTLOOP__GRPC__TLS__CERT_PATH".into(),
                self.path("tls.crt"),
            ),
            (
                "GUESTLOOP__GRPC__TLS__KEY_PATH".into(),
                self.path("tls.key"),
            ),
            (
                "GUESTLOOP__GRPC__TLS__CLIENT_CA_PATH".into(),
                self.path("client-ca.crt"),
            ),
        ])
    }

    fn client_env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("GUESTLOOP_TLS_CA".into(), self.path("server-ca.crt")),
            ("GUESTLOOP_TLS_CLIENT_CERT".into(), self.path("client.crt")),
            ("GUESTLOOP_TLS_CLIENT_KEY".into(), self.path("client.key")),
        ])
    }
}

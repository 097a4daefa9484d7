//! Helpers for the end-to-end tests in `tests/tests/`: the services run as separate
//! processes from their built binaries, and clients nobody here wrote (Python grpcio) call
//! them.
//!
//! Two things these tests need that `cargo test` does not provide by itself:
//!
//! * **The service binaries.** Cargo builds another package's binaries only for that
//!   package's own tests, so `cargo test -p guestloop-e2e` alone does not build
//!   `guest-profile`. Run `cargo build --bins` first (the test script does); [`bin_dir`]
//!   finds them next to the test executable and fails with that instruction when they are
//!   missing. The tests do not run cargo themselves: a nested cargo inside `cargo test`
//!   would contend for the build lock with whatever else builds on the machine, and would
//!   hide a slow rebuild inside a test's run time.
//! * **A Python with grpcio.** [`python_env`] keeps a venv with `tests/python/
//!   requirements.txt` installed from PyPI, and reinstalls it when that file changes.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `tests/python` folder: the pytest suite and its requirements.
pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// The folder with the service binaries: `$GUESTLOOP_BIN_DIR` if set, otherwise the
/// target folder this test executable was built into (`target/<profile>/deps/<test>` →
/// `target/<profile>`). Fails, saying what to run, when `required` is not there.
pub fn bin_dir(required: &str) -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("GUESTLOOP_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().context("locating the test executable")?;
            exe.parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .with_context(|| format!("no target folder above {}", exe.display()))?
        }
    };
    if !dir.join(required).is_file() {
        bail!(
            "{} is missing: these tests run the services from their binaries, which \
             `cargo test -p guestloop-e2e` does not build. Run `cargo build --bins` first, \
             with the same profile and CARGO_TARGET_DIR (or set GUESTLOOP_BIN_DIR).",
            dir.join(required).display()
        );
    }
    Ok(dir)
}

/// A Python interpreter with `tests/python/requirements.txt` installed, ready for
/// `python -m pytest`.
///
/// The venv lives at `$GUESTLOOP_PY_VENV` (default `~/.cache/guestloop/pyenv`) and is
/// kept between runs: the first run creates it and pip-installs the requirements from
/// PyPI (tens of seconds); later runs find a marker holding the hash of the requirements
/// file they were installed from and only check that the packages import. A changed
/// requirements file, a missing marker or a venv whose packages no longer import (say,
/// its base Python was removed) makes it start over. The venv is created from
/// `$GUESTLOOP_PYTHON`, default `python3`. Test processes that get here at the same time
/// take turns through a lock file next to the venv.
pub fn python_env() -> anyhow::Result<PathBuf> {
    let venv = match std::env::var_os("GUESTLOOP_PY_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => home_dir()?.join(".cache/guestloop/pyenv"),
    };
    let requirements_path = python_dir().join("requirements.txt");
    let requirements = std::fs::read(&requirements_path)
        .with_context(|| format!("reading {}", requirements_path.display()))?;
    let want = format!("{:016x}\n", fnv1a64(&requirements));
    let marker = venv.join(".guestloop-requirements-hash");
    let python = venv.join("bin/python");

    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let lock_path = venv.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;

    let installed = std::fs::read_to_string(&marker).is_ok_and(|have| have == want);
    if installed && imports_ok(&python) {
        return Ok(python);
    }

    eprintln!(
        "python_env: installing {} into {} (from PyPI; once per requirements change)",
        requirements_path.display(),
        venv.display()
    );
    let started = std::time::Instant::now();
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .with_context(|| format!("removing the stale venv {}", venv.display()))?;
    }
    let base = std::env::var("GUESTLOOP_PYTHON").unwrap_or_else(|_| "python3".into());
    let with_pip = run(Command::new(&base).args(["-m", "venv"]).arg(&venv));
    let mut install = match with_pip {
        Ok(()) => {
            let mut c = Command::new(&python);
            c.args(["-m", "pip"]);
            c
        }
        // Debian's python3 without python3-venv has no ensurepip: make the venv without
        // pip and install into it with the base interpreter's pip (pip >= 22.3).
        Err(no_ensurepip) => {
            let _ = std::fs::remove_dir_all(&venv);
            run(Command::new(&base)
                .args(["-m", "venv", "--without-pip"])
                .arg(&venv))
            .with_context(|| {
                format!("`{base} -m venv` failed even without pip ({no_ensurepip:#})")
            })?;
            let mut c = Command::new(&base);
            c.args(["-m", "pip", "--python"]).arg(&python);
            c
        }
    };
    run(install
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--requirement",
        ])
        .arg(&requirements_path))
    .context("pip install of tests/python/requirements.txt")?;
    if !imports_ok(&python) {
        bail!(
            "{} was installed but grpc, grpc_reflection, grpc_health, grpc_status or pytest \
             does not import",
            venv.display()
        );
    }
    std::fs::write(&marker, want).with_context(|| format!("writing {}", marker.display()))?;
    eprintln!(
        "python_env: ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(python)
}

/// Whether `python` runs and has the packages the suite imports.
fn imports_ok(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import grpc, grpc_reflection, grpc_health, grpc_status, google.rpc, pytest",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!(
            "{shown} failed ({status}):\n{}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    }
    Ok(())
}

fn home_dir() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set; set GUESTLOOP_PY_VENV to say where the venv goes")
}

/// FNV-1a, 64 bit: a stable content hash for the marker (std's hashers may change between
/// Rust releases, and a marker must mean the same thing next month).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// How one test starts its services: a fresh database in the run's cluster, a work folder
/// of its own (`config_toml` as the configuration file, fresh keys, logs), free ports,
/// `extra_env` for every service. Fails, saying what to build, when `required` is missing.
pub async fn platform_spec(
    name: &str,
    required: &str,
    config_toml: &str,
    extra_env: std::collections::BTreeMap<String, String>,
) -> guestloop_testkit::platform::PlatformSpec {
    let bin_dir = bin_dir(required).unwrap_or_else(|e| panic!("{e:#}"));
    let db = guestloop_testkit::test_database().await;
    let work = std::env::temp_dir().join(format!(
        "guestloop-e2e-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&work).expect("work folder");
    let config_file = work.join("guestloop.toml");
    std::fs::write(&config_file, config_toml).expect("configuration file");
    let (signing_key, public_key) =
        guestloop_testkit::platform::ensure_keys(&work.join("keys")).expect("keys");
    guestloop_testkit::platform::PlatformSpec {
        bin_dir,
        cluster: db.cluster,
        database: db.name,
        config_file,
        public_key,
        signing_key,
        log_dir: work.join("logs"),
        base_port: 0,
        extra_env,
    }
}

/// A head-office token signed with a platform's own key (`PlatformSpec::signing_key`).
pub fn head_office_token(signing_key: &Path) -> String {
    let key = guestloop_auth::SigningKey::from_file(&signing_key.to_string_lossy())
        .expect("the platform's signing key");
    guestloop_auth::TokenSigner::new(key, "guestloop")
        .issue(
            "e2e",
            guestloop_auth::Role::HeadOffice,
            vec![],
            None,
            std::time::Duration::from_secs(1800),
        )
        .expect("a token")
}

/// `service` started alone from `spec` (migrated, SERVING), and a head-office connection
/// to it: how the fault tests begin.
pub async fn start_alone(
    spec: &guestloop_testkit::platform::PlatformSpec,
    service: &str,
) -> (
    guestloop_testkit::ServiceProcess,
    guestloop_client::Connection,
) {
    let process = guestloop_testkit::platform::Platform::start_one(spec, service, true)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let conn = guestloop_client::Connection::builder(process.endpoint())
        .token(&head_office_token(&spec.signing_key))
        .connect_lazy()
        .expect("a lazy connection");
    (process, conn)
}

/// A comment card from `source` at sh-bund: the smallest SubmitFeedback that is stored and
/// opens no case, for load in the fault tests (each test its own `source`).
pub fn comment_card(
    source: &str,
    external_id: &str,
    text: &str,
) -> guestloop_proto::feedback::v1::SubmitFeedbackRequest {
    use guestloop_proto::feedback::v1 as fb;
    fb::SubmitFeedbackRequest {
        feedback: Some(fb::Feedback {
            property_id: "sh-bund".into(),
            channel: fb::FeedbackChannel::CommentCard as i32,
            source: source.into(),
            external_id: external_id.into(),
            language: "en".into(),
            text: text.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Polls `f` until it answers `Some`, at most `within`; panics naming `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a64_matches_the_reference_values() {
        assert_eq!(super::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

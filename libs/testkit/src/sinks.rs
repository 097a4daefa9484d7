//! Real provider endpoints for tests and the local demo, each a separate process: an SMTP
//! server (Python aiosmtpd) that stores every accepted mail, and an HTTP endpoint (Python
//! http.server) standing in for SMS / WeChat / push providers. The venv with aiosmtpd is
//! built once under ~/.cache/guestloop/pyenv-notify from PyPI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Pinned; the venv is rebuilt when this changes.
const PY_REQUIREMENTS: &str = "aiosmtpd==1.4.6\natpublic==9.0.0\nattrs==26.1.0\n";

/// A Python venv with aiosmtpd in ~/.cache/guestloop/pyenv-notify, built once (idempotent,
/// locked against parallel test binaries).
pub fn python() -> PathBuf {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    let venv = home.join(".cache/guestloop/pyenv-notify");
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(venv.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    let python = venv.join("bin/python");
    let marker = venv.join(".requirements");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == PY_REQUIREMENTS) && python.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 -m venv");
    assert!(ok.success(), "python3 -m venv failed");
    let reqs = venv.with_extension("requirements.txt");
    std::fs::write(&reqs, PY_REQUIREMENTS).unwrap();
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "-r"])
        .arg(&reqs)
        .status()
        .expect("pip install");
    assert!(ok.success(), "pip install aiosmtpd failed");
    std::fs::write(&marker, PY_REQUIREMENTS).unwrap();
    python
}

/// A Python sink process, killed when dropped.
pub struct Sink {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    script: PathBuf,
    args: Vec<String>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NEXT: AtomicU32 = AtomicU32::new(1);

pub fn next() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn spawn_sink(script: &str, args: &[String]) -> Sink {
    let dir = std::env::temp_dir().join(format!(
        "notify-sink-{}-{}-{}",
        std::process::id(),
        next(),
        script.trim_end_matches(".py")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let mut sink = Sink {
        child: None,
        port: 0,
        dir,
        script,
        args: args.to_vec(),
    };
    sink.start_again();
    sink
}

impl Sink {
    /// The provider goes down: the process is killed, its records stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The provider comes back at the same address (the first start takes any free port),
    /// with the records of its earlier life.
    pub fn start_again(&mut self) {
        self.stop();
        let port_file = self.dir.join("port");
        let _ = std::fs::remove_file(&port_file);
        let mut args = self.args.clone();
        if self.port != 0 {
            args.push(self.port.to_string());
        }
        let started = Instant::now();
        let child = Command::new(python())
            .arg(&self.script)
            .arg(&self.dir)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the sink");
        self.child = Some(child);
        self.port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().expect("port");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} did not start",
                self.script.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
    }

    /// How the HTTP provider answers from now on: "ok", "error", "slow" or "hang"
    /// (http_sink.py says what each does).
    pub fn set_mode(&self, mode: &str) {
        let tmp = self.dir.join("mode.tmp");
        std::fs::write(&tmp, mode).unwrap();
        std::fs::rename(&tmp, self.dir.join("mode")).unwrap();
    }
}

/// aiosmtpd: accepted mails land in `dir` as NNNNN.json; "bounce…@" recipients get 550.
pub fn smtp_sink() -> Sink {
    spawn_sink("smtp_sink.py", &[])
}

/// The HTTP provider endpoint: 500 for the first `fail_first` POSTs, then 200.
pub fn http_sink(fail_first: u32) -> Sink {
    spawn_sink("http_sink.py", &[fail_first.to_string()])
}

impl Sink {
    /// Every mail received so far, decoded by the sink (from, to, subject, body, raw).
    pub fn mails(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Every POST received so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

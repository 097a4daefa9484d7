//! Services as separate processes, as they run in production: started from their binaries
//! with configuration in the environment, logs to a file, ready when grpc.health.v1 says
//! SERVING, stopped with SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests and local runs).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[derive(Debug)]
pub struct ServiceProcess {
    pub name: String,
    pub grpc_port: u16,
    pub admin_port: u16,
    pub log_path: PathBuf,
    /// When the process was spawned.
    pub started_at: Instant,
    child: Child,
}

impl ServiceProcess {
    /// Starts `bin_dir/name serve` with `env` added to the inherited environment; stdout and
    /// stderr go to `log_dir/name.log`.
    pub fn start(
        bin_dir: &Path,
        name: &str,
        grpc_port: u16,
        admin_port: u16,
        env: &BTreeMap<String, String>,
        log_dir: &Path,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(log_dir)?;
        let log_path = log_dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let started_at = Instant::now();
        let child = Command::new(bin_dir.join(name))
            .arg("serve")
            .envs(env)
            .env(
                "GUESTLOOP__GRPC__LISTEN_ADDR",
                format!("127.0.0.1:{grpc_port}"),
            )
            .env(
                "GUESTLOOP__ADMIN__LISTEN_ADDR",
                format!("127.0.0.1:{admin_port}"),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Self {
            name: name.to_string(),
            grpc_port,
            admin_port,
            log_path,
            started_at,
            child,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Waits until the process reports SERVING, or fails with the tail of its log.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("{} exited with {status}:\n{}", self.name, self.log_tail());
            }
            if serving(&self.endpoint()).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "{} not SERVING after {timeout:?}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM, then wait up to `grace` before killing.
    pub fn stop(&mut self, grace: Duration) -> std::io::Result<Option<std::process::ExitStatus>> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait().map(Some)
    }

    /// SIGKILL, as a crash or the OOM killer would, and reap the process.
    pub fn kill(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.kill()?;
        self.child.wait()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.stop(Duration::from_secs(5));
        }
    }
}

/// Whether the server at `endpoint` answers grpc.health.v1 Check("") with SERVING.
pub async fn serving(endpoint: &str) -> bool {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let Ok(channel) = tonic::transport::Endpoint::from_shared(endpoint.to_string()) else {
        return false;
    };
    let Ok(channel) = channel
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status == ServingStatus::Serving as i32)
        .unwrap_or(false)
}

//! Services as separate processes, as they run in production: started from their binaries
//! with configuration in the environment, logs to a file, ready when grpc.health.v1 says
//! SERVING, stopped with SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 for a process started later to listen on, taken below the
/// kernel's ephemeral range. A port the kernel hands out for "port 0" lies in that range,
/// where every outgoing connection (a pool connecting to PostgreSQL, a service calling its
/// peer) also takes its local port, and one of them took a chosen port before the service
/// bound it: a CI run failed with "cannot bind admin.listen_addr: Address already in use".
/// Below the range only other listeners compete, and binding here checks for those.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Each process starts at its own offset, so concurrent test binaries rarely probe the
    // same ports; a port is checked by binding it either way.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let low = ephemeral_low().unwrap_or(32_768);
    if low > FIRST_PORT + 1_000 {
        let span = u32::from(low - FIRST_PORT);
        let _ = NEXT.compare_exchange(
            u32::MAX,
            std::process::id().wrapping_mul(7_919) % span,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        for _ in 0..span.min(2_000) {
            let port = FIRST_PORT + (NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The lowest port chosen from here (below it: well-known and registered services).
const FIRST_PORT: u16 = 20_000;

/// The first port of the kernel's ephemeral range (Linux).
fn ephemeral_low() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_lie_below_the_ephemeral_range_and_can_be_bound() {
        let low = super::ephemeral_low().unwrap_or(32_768);
        let ports: Vec<u16> = (0..50).map(|_| super::free_port()).collect();
        for p in &ports {
            assert!(
                (super::FIRST_PORT..low).contains(p),
                "{p} (ephemeral from {low})"
            );
            std::net::TcpListener::bind(("127.0.0.1", *p)).expect("bindable");
        }
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "handed out twice: {ports:?}");
    }
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
        self.terminate();
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.exited_or_killed(deadline)? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`stop`](Self::stop) without blocking the runtime while it waits: a service drains
    /// the connections its callers hold open, and on a one-thread runtime (or any thread
    /// the callers' connections run on) they can close them only while the thread is free.
    pub async fn shutdown(
        &mut self,
        grace: Duration,
    ) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.terminate();
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.exited_or_killed(deadline)? {
                return Ok(Some(status));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// The exit status if the process has ended; past `deadline`, SIGKILL and reap it.
    fn exited_or_killed(
        &mut self,
        deadline: Instant,
    ) -> std::io::Result<Option<std::process::ExitStatus>> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() < deadline {
            return Ok(None);
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

/// Runs `bin_dir/name migrate` with `env` and waits for it; output to
/// `log_dir/name-migrate.log`.
pub fn run_migrate(
    bin_dir: &Path,
    name: &str,
    env: &BTreeMap<String, String>,
    log_dir: &Path,
) -> std::io::Result<std::process::ExitStatus> {
    std::fs::create_dir_all(log_dir)?;
    let log = std::fs::File::create(log_dir.join(format!("{name}-migrate.log")))?;
    Command::new(bin_dir.join(name))
        .arg("migrate")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
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

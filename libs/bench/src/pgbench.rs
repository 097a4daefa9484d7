//! The database ceiling: pgbench running the same statement as the subject, at the same
//! concurrency, against the same PostgreSQL, with synchronous commit on.

use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// What one pgbench run measured.
#[derive(Debug, Clone, Copy)]
pub struct PgbenchRun {
    pub tps: f64,
    pub latency_avg_ms: f64,
}

/// Runs `script` with `clients` connections for `duration` (whole seconds, at least 1).
/// Awaited, not blocked on: the tool's one thread keeps serving its other connections.
pub async fn run(
    port: u16,
    database: &str,
    script: &Path,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<PgbenchRun> {
    let pgbench = guestloop_testkit::postgres::bindir()?.join("pgbench");
    let seconds = duration.as_secs().max(1).to_string();
    let clients = clients.to_string();
    let threads = "2";
    let out = Command::new(pgbench)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args([
            "-n", "-M", "prepared", "-c", &clients, "-j", threads, "-T", &seconds,
        ])
        .arg("-f")
        .arg(script)
        .arg(database)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        anyhow::bail!(
            "pgbench failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let number_after = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    Ok(PgbenchRun {
        tps: number_after("tps = ")
            .ok_or_else(|| anyhow::anyhow!("no tps in pgbench output: {text}"))?,
        latency_avg_ms: number_after("latency average = ").unwrap_or(0.0),
    })
}

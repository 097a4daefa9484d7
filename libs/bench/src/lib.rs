//! guestloop-bench: every hot path measured against its ceiling in the same run (issue 9).
//! It starts what it measures (a durable PostgreSQL of its own, the services' binaries),
//! warms up, alternates subject and ceiling round by round and reports the median ratio:
//! on a shared 2-core machine a ratio is stable where an absolute rate is not.

pub mod budget;
pub mod load;
pub mod pgbench;
pub mod procstat;
pub mod report;
pub mod scenarios;
pub mod stack;

use std::path::PathBuf;
use std::time::Duration;

/// How long and how often.
#[derive(Debug, Clone)]
pub struct Options {
    pub phase: Duration,
    pub warmup: Duration,
    pub repeats: usize,
    pub quick: bool,
    /// Items in one P3 import.
    pub import_items: usize,
    /// Due timers the P4 replicas fire per round.
    pub timers: usize,
    /// Feedback items over the year whose rollups P5 loads, and the chain's properties.
    pub kpi_feedback_items: u64,
    pub kpi_properties: u32,
    /// Extra environment for every service started.
    pub service_env: std::collections::BTreeMap<String, String>,
}

/// The environment every service runs with unless `--service-env` says otherwise: one
/// tokio worker thread, as in the chart's pods. Their CPU limit is one core
/// (`serviceDefaults.resources.limits.cpu`), and tokio sizes its runtime by
/// `available_parallelism`, which honours the container's CPU quota: one thread there. On
/// this tool's bare machine it would see every core, and measure a runtime no pod runs.
pub fn deployed_env() -> std::collections::BTreeMap<String, String> {
    [("TOKIO_WORKER_THREADS".to_string(), "1".to_string())].into()
}

impl Options {
    pub fn full() -> Self {
        Self {
            phase: Duration::from_secs(5),
            warmup: Duration::from_secs(2),
            repeats: 3,
            quick: false,
            import_items: 100_000,
            timers: 1_000_000,
            kpi_feedback_items: 10_000_000,
            kpi_properties: 300,
            service_env: deployed_env(),
        }
    }

    /// Every scenario for a second or so: proves the tool and the paths work, measures nothing.
    pub fn quick() -> Self {
        Self {
            phase: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            repeats: 1,
            quick: true,
            import_items: 2_000,
            timers: 2_000,
            kpi_feedback_items: 100_000,
            kpi_properties: 12,
            service_env: deployed_env(),
        }
    }
}

/// Runs the chosen scenarios and returns the report.
pub async fn run(
    bin_dir: &std::path::Path,
    work_dir: &std::path::Path,
    only: &[String],
    opts: &Options,
) -> anyhow::Result<report::Report> {
    let stack = stack::Stack::start(bin_dir, work_dir)?;
    let wanted = |id: &str| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(id));
    let result = async {
        let mut scenarios = Vec::new();
        let mut footprint = Vec::new();
        if wanted("p1") {
            eprintln!("P1 GetGuest vs health");
            scenarios.push(scenarios::p1_get_guest(&stack, opts).await?);
        }
        if wanted("p2") {
            eprintln!("P2 SubmitFeedback vs pgbench");
            scenarios.extend(scenarios::p2_submit_feedback(&stack, opts).await?);
        }
        if wanted("p3") {
            eprintln!("P3 ImportFeedback vs COPY");
            scenarios.push(scenarios::p3_import(&stack, opts).await?);
        }
        if wanted("p4") {
            eprintln!("P4 firing due timers vs a SQL claim loop");
            scenarios.extend(scenarios::p4_timers(&stack, opts).await?);
        }
        if wanted("p5") {
            eprintln!("P5 GetKpis for the chain over a year vs its aggregate SQL");
            scenarios.extend(scenarios::p5_kpis(&stack, opts).await?);
        }
        if wanted("p6") {
            eprintln!("P6 tracing exported vs not");
            scenarios.extend(scenarios::p6_tracing(&stack, opts).await?);
        }
        if wanted("p7") {
            eprintln!("P7 start-up and memory");
            footprint = scenarios::p7_footprint(&stack, opts).await?;
        }
        anyhow::Ok((scenarios, footprint))
    }
    .await;
    stack.stop();
    let (scenarios, footprint) = result?;
    // A path that answered nothing is broken, not slow: that fails the run (and CI).
    for sc in &scenarios {
        for (i, r) in sc.rounds.iter().enumerate() {
            if r.subject.summary.ok == 0 || r.ceiling.summary.calls_per_s <= 0.0 {
                anyhow::bail!(
                    "{} `{}` round {}: no successful call (errors: {:?})",
                    sc.id,
                    sc.subject,
                    i + 1,
                    r.subject.summary.errors
                );
            }
        }
    }
    Ok(report::Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        commit: git_commit(),
        machine: machine(),
        binaries: bin_dir.display().to_string(),
        service_env: opts.service_env.clone(),
        quick: opts.quick,
        phase_seconds: opts.phase.as_secs_f64(),
        repeats: opts.repeats,
        scenarios,
        footprint,
    })
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cores} cores ({cpu}), {mem_gb:.0} GiB")
}

/// Where the report goes.
pub fn write(report: &report::Report, out_dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let md = out_dir.join("latest.md");
    std::fs::write(&md, report.markdown())?;
    std::fs::write(
        out_dir.join("latest.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    std::fs::write(out_dir.join("latency.svg"), report.svg())?;
    Ok(md)
}

//! `guestloop-bench [--quick] [--only p1,…,p7] [--bin-dir DIR] [--out DIR]`: the
//! benchmark of issue 9; see lib.rs.

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Measure Guestloop's hot paths against their ceilings (docs/benchmarks)")]
struct Args {
    /// Every scenario for about a second: checks the tool and the paths, measures nothing.
    #[arg(long)]
    quick: bool,
    /// Scenario ids to run (p1 … p7); all when empty.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The service binaries to measure (release builds for real figures).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where the markdown, JSON and SVG go.
    #[arg(long, default_value = "docs/benchmarks")]
    out: PathBuf,
    /// Scratch space: the PostgreSQL cluster, configuration, service logs.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Extra environment for every service, KEY=VALUE (e.g. GUESTLOOP__GROUP_COMMIT__MAX_BATCH=1
    /// to measure without group commit). Services run with TOKIO_WORKER_THREADS=1 (one
    /// thread, as in the chart's one-core pods) unless this sets it.
    #[arg(long = "service-env", value_parser = parse_env)]
    service_env: Vec<(String, String)>,
    /// Keep the scratch space (service logs, the cluster's data) after the run.
    #[arg(long)]
    keep_work_dir: bool,
    /// Items in the P3 import (full run: 100,000).
    #[arg(long)]
    import_items: Option<usize>,
    /// Due timers per P4 round (full run: 1,000,000).
    #[arg(long)]
    timers: Option<usize>,
    /// Feedback items whose rollups P5 loads (full run: 10,000,000).
    #[arg(long)]
    kpi_items: Option<u64>,
    /// Seconds per measured phase (full runs).
    #[arg(long)]
    phase_seconds: Option<u64>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// The tool runs on one thread (tokio's current-thread runtime), load generator included.
/// On tokio's multi-thread runtime a closed loop paid a cross-thread wake-up and a write
/// per call: the health Check's ceiling ran at 100 % of the tool's CPU while the server
/// idled at 60 %, so P1's ceiling was the client's, not the server's (one thread: the
/// same Check at twice the rate, the server at 98 %; docs/benchmarks/README.md).
fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut opts = if args.quick {
        guestloop_bench::Options::quick()
    } else {
        guestloop_bench::Options::full()
    };
    opts.service_env.extend(args.service_env);
    if let Some(n) = args.import_items {
        opts.import_items = n;
    }
    if let Some(n) = args.timers {
        opts.timers = n;
    }
    if let Some(n) = args.kpi_items {
        opts.kpi_feedback_items = n;
    }
    if let Some(s) = args.phase_seconds {
        opts.phase = std::time::Duration::from_secs(s);
    }
    let work_dir = args.work_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("guestloop-bench-{}", std::process::id()))
    });
    let report = guestloop_bench::run(&args.bin_dir, &work_dir, &args.only, &opts).await;
    if !args.keep_work_dir {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    let report = report?;
    let md = guestloop_bench::write(&report, &args.out)?;
    print!("{}", report.markdown());
    eprintln!("report written to {}", md.display());
    Ok(())
}

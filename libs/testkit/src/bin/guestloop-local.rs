//! Runs the whole platform on this machine: its own PostgreSQL (data kept under the state
//! folder between runs), all five services as separate processes, and a token to call them
//! with. Ctrl-C stops everything.
//!
//! `--demo` plays the closed loop (testkit scenario.rs, the end-to-end test's scenario)
//! against a fresh `guestloop_demo` database, with a local SMTP server taking the guests'
//! mails, after 30 days of history (check-outs and survey answers, `--demo-days`); then it
//! prints the KPI table, works an improvement item through plan-do-check-act, and writes
//! the voice-of-customer reports of the chain, a region and two properties.

use clap::Parser;
use guestloop_auth::{Role, SigningKey, TokenSigner};
use guestloop_testkit::platform::{Platform, PlatformSpec, ensure_keys};
use guestloop_testkit::{Cluster, TEST_CHAIN_TOML};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Run Guestloop locally")]
struct Args {
    /// Where the service binaries are.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Where PostgreSQL data, keys, config and logs live.
    #[arg(long, default_value = ".local")]
    state_dir: PathBuf,
    #[arg(long, env = "GUESTLOOP_LOCAL_PG_PORT", default_value_t = 54320)]
    pg_port: u16,
    /// gRPC ports are BASE..BASE+4, admin (/metrics) ports BASE+100..BASE+104.
    #[arg(long, env = "GUESTLOOP_LOCAL_BASE_PORT", default_value_t = 50051)]
    base_port: u16,
    /// Start, print, and stop again (a smoke check).
    #[arg(long)]
    check: bool,
    /// Play the demo scenario (a fresh demo database, SLA durations in seconds).
    #[arg(long)]
    demo: bool,
    /// Guests per property in the demo.
    #[arg(long, default_value_t = 30)]
    demo_guests: usize,
    /// Days of history (check-outs and survey answers) the demo plays before today, so
    /// the report's 30-day lines have something to show.
    #[arg(long, default_value_t = 30)]
    demo_days: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.state_dir)?;
    let state = args.state_dir.canonicalize()?;
    let started = std::time::Instant::now();
    let cluster = Cluster::ensure(&state.join("pgdata"), args.pg_port, true)?;
    let (signing, public) = ensure_keys(&state.join("keys"))?;
    // The demo's mails go to a real SMTP server of its own.
    let smtp = args.demo.then(guestloop_testkit::sinks::smtp_sink);
    let database = if args.demo {
        "guestloop_demo"
    } else {
        "guestloop"
    };
    if args.demo {
        cluster.drop_database(database).await?;
    }
    let config_file = match &smtp {
        Some(sink) => {
            let f = state.join("demo.toml");
            std::fs::write(&f, guestloop_testkit::scenario::config_toml(sink.port))?;
            f
        }
        None => state.join("guestloop.toml"),
    };
    if !config_file.exists() {
        std::fs::write(
            &config_file,
            format!("# Local chain directory and standards; edit freely.\n{TEST_CHAIN_TOML}"),
        )?;
    }
    let spec = PlatformSpec {
        bin_dir: args.bin_dir.canonicalize()?,
        cluster: cluster.clone(),
        database: database.into(),
        config_file: config_file.clone(),
        public_key: public.clone(),
        signing_key: signing.clone(),
        log_dir: state.join("logs"),
        base_port: args.base_port,
        extra_env: std::env::vars()
            .filter(|(k, _)| k.starts_with("OTEL_") || k == "RUST_LOG")
            .collect(),
    };
    let mut platform = match Platform::start(&spec).await {
        Ok(p) => p,
        Err(e) => {
            let _ = cluster.stop();
            return Err(e);
        }
    };

    let signer = TokenSigner::new(
        SigningKey::from_file(&signing.to_string_lossy())?,
        "guestloop",
    );
    let token = signer
        .issue(
            "local-head-office",
            Role::HeadOffice,
            vec![],
            None,
            Duration::from_secs(12 * 3600),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "\nGuestloop is running ({:.1}s)\n",
        started.elapsed().as_secs_f64()
    );
    println!("  {:<22} {:<18} {:<24} log", "service", "gRPC", "metrics");
    for s in &platform.services {
        println!(
            "  {:<22} 127.0.0.1:{:<8} http://127.0.0.1:{}/metrics  {}",
            s.name,
            s.grpc_port,
            s.admin_port,
            s.log_path.display()
        );
    }
    println!(
        "\n  PostgreSQL   postgres://postgres@127.0.0.1:{}/{database}  (data: {})",
        cluster.port,
        cluster.data_dir.display()
    );
    println!("  Chain config {}", config_file.display());
    println!("\nHead-office token (12 h):\n{token}\n");
    println!(
        "Other roles: {} issue --key {} --role property-staff --property sh-bund",
        spec.bin_dir.join("guestloop-token").display(),
        signing.display()
    );
    println!(
        "Try: grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" 127.0.0.1:{} list\n",
        args.base_port
    );

    if args.demo
        && let Err(e) = demo(&platform, &token, &state, args.demo_guests, args.demo_days).await
    {
        eprintln!("the demo failed: {e:#}");
    }

    if !args.check {
        println!("Ctrl-C to stop.");
        guestloop_server_signal().await;
    }
    println!("stopping services and PostgreSQL ...");
    platform.stop();
    cluster.stop()?;
    Ok(())
}

async fn guestloop_server_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Plays the scenario, prints the KPI table and writes the report.
async fn demo(
    platform: &Platform,
    token: &str,
    state: &std::path::Path,
    guests: usize,
    days: i64,
) -> anyhow::Result<()> {
    use guestloop_proto::metrics::v1 as mx;
    use guestloop_testkit::scenario::{self, Endpoints, PROPERTIES};
    let endpoints = Endpoints::of(platform);
    let mut old_cases = Vec::new();
    if days > 0 {
        println!("Playing {days} days of history (check-outs and survey answers) ...");
        let h = guestloop_testkit::history::play(&endpoints, token, days, 6, 11).await?;
        println!(
            "  {} past stays, {} past answers, {} closed complaints from the old log",
            h.stays,
            h.answers,
            h.old_cases.len()
        );
        old_cases = h.old_cases;
    }
    println!(
        "Playing the demo: {} guests per property at {} properties ...",
        guests,
        PROPERTIES.len()
    );
    let played = scenario::play(&endpoints, token, guests, 7).await?;
    let mut metrics = guestloop_client::Connection::builder(endpoints.metrics.clone())
        .token(token)
        .connect_lazy()?
        .metrics();
    let chain = mx::Scope {
        level: mx::ScopeLevel::Chain as i32,
        id: String::new(),
    };
    let league = metrics
        .get_league_table(mx::GetLeagueTableRequest {
            scope: Some(chain.clone()),
            date_range: Some(played.days()),
            order_by: mx::LeagueTableOrder::SlaCompliance as i32,
        })
        .await?
        .into_inner();
    let pct = |v: &Option<mx::KpiValue>| {
        v.and_then(|v| v.value)
            .map(|x| format!("{:.1}%", x * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    let num = |v: &Option<mx::KpiValue>| {
        v.and_then(|v| v.value)
            .map(|x| format!("{x:.1}"))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "\nDemo played in {:.1}s: {} escalation hops.\n",
        played.elapsed.as_secs_f64(),
        played.hops
    );
    println!(
        "  {:<4} {:<20} {:>8} {:>8} {:>8} {:>8} {:>11}",
        "rank", "property", "SLA", "1st resp", "CSAT", "NPS", "cases/100"
    );
    for r in &league.rows {
        println!(
            "  {:<4} {:<20} {:>8} {:>8} {:>8} {:>8} {:>11}",
            r.rank,
            r.property_name,
            pct(&r.sla_compliance),
            pct(&r.first_response_within_sla),
            pct(&r.csat),
            num(&r.nps),
            num(&r.complaints_per_100_stays)
        );
    }
    println!("\nThe improvement board:");
    for line in guestloop_testkit::board_demo::play(&endpoints.metrics, token, &old_cases).await? {
        println!("  {line}");
    }
    let dir = state.join("reports");
    std::fs::create_dir_all(&dir)?;
    println!("\nVoice-of-customer reports (what the managers' morning mail holds):");
    let scopes = [
        (mx::ScopeLevel::Chain, "", "en"),
        (mx::ScopeLevel::Region, "east", "zh-CN"),
        (mx::ScopeLevel::Property, "sh-bund", "en"),
        (mx::ScopeLevel::Property, "hk-harbour", "zh-TW"),
    ];
    for (level, id, language) in scopes {
        let page = metrics
            .render_voice_of_customer_report(mx::RenderVoiceOfCustomerReportRequest {
                scope: Some(mx::Scope {
                    level: level as i32,
                    id: id.into(),
                }),
                report_date: scenario::today_range().start_date,
                top_issue_limit: 5,
                language: language.into(),
            })
            .await?
            .into_inner();
        let name = page
            .file_name
            .replace(".html", &format!("-{language}.html"));
        let path = dir.join(&name);
        std::fs::write(&path, &page.html)?;
        println!(
            "  {:>7} bytes, {:>2} charts, {:>2} sections: {}",
            page.html.len(),
            page.html.matches("<svg").count(),
            page.html.matches("<h2>").count(),
            path.display()
        );
    }
    println!();
    Ok(())
}

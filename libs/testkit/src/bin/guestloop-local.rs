//! Runs the whole platform on this machine: its own PostgreSQL (data kept under the state
//! folder between runs), all five services as separate processes, and a token to call them
//! with. Ctrl-C stops everything.

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.state_dir)?;
    let state = args.state_dir.canonicalize()?;
    let started = std::time::Instant::now();
    let cluster = Cluster::ensure(&state.join("pgdata"), args.pg_port, true)?;
    let (signing, public) = ensure_keys(&state.join("keys"))?;
    let config_file = state.join("guestloop.toml");
    if !config_file.exists() {
        std::fs::write(
            &config_file,
            format!("# Local chain directory and standards; edit freely.\n{TEST_CHAIN_TOML}"),
        )?;
    }
    let spec = PlatformSpec {
        bin_dir: args.bin_dir.canonicalize()?,
        cluster: cluster.clone(),
        database: "guestloop".into(),
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
        "\n  PostgreSQL   postgres://postgres@127.0.0.1:{}/guestloop  (data: {})",
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

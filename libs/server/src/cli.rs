//! The command line every service binary shares: `serve` (default), `migrate`, or
//! `health` (a grpc.health.v1 check of a running server, for `helm test` and for an SRE at a
//! pod's shell-less prompt), and an optional `--config` file.

use std::future::Future;
use std::path::PathBuf;

#[derive(Debug, clap::Parser)]
#[command(about = "A Guestloop service")]
pub struct Cli {
    /// TOML configuration file (otherwise GUESTLOOP_CONFIG, if set).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Serve gRPC until SIGTERM (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Ask a running server's grpc.health.v1 and exit 0 if it answers SERVING, 1 if not.
    Health(HealthArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// The server, as http://host:port or https://host:port.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// The health name to ask for ("" = the whole server).
    #[arg(long, default_value = "")]
    pub service: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
    /// PEM CA that signed the server's certificate (https; default: web PKI roots).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate and key, for a server that requires mutual TLS.
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

impl Cli {
    pub fn command(&self) -> Command {
        self.command.clone().unwrap_or(Command::Serve)
    }
}

/// What every service binary's `main` does: builds the runtime
/// ([`crate::scheduler::runtime`]), installs rustls's crypto provider, parses the command
/// line, and runs `migrate` or `serve` with telemetry whose last spans are flushed before
/// it returns ([`guestloop_telemetry::traced`]); `health` exits with its code. Each gets
/// the `--config` file.
pub fn run_service<E, M, S>(
    service_name: &'static str,
    migrate: impl FnOnce(Option<PathBuf>) -> M,
    serve: impl FnOnce(Option<PathBuf>) -> S,
) -> Result<(), E>
where
    M: Future<Output = Result<(), E>>,
    S: Future<Output = Result<(), E>>,
    E: From<std::io::Error> + From<guestloop_telemetry::TelemetryError>,
{
    crate::scheduler::runtime()?.block_on(async move {
        let cli = <Cli as clap::Parser>::parse();
        let _ = rustls::crypto::ring::default_provider().install_default();
        match cli.command() {
            Command::Health(args) => std::process::exit(health(&args).await),
            Command::Migrate => {
                guestloop_telemetry::traced(service_name, migrate(cli.config)).await
            }
            Command::Serve => guestloop_telemetry::traced(service_name, serve(cli.config)).await,
        }
    })
}

/// `<service> health`: prints the status and returns the process exit code (0 = SERVING).
pub async fn health(args: &HealthArgs) -> i32 {
    match health_status(args).await {
        Ok(status) => {
            println!("{}: {status:?}", args.addr);
            i32::from(status != tonic_health::pb::health_check_response::ServingStatus::Serving)
        }
        Err(e) => {
            eprintln!("{}: {e}", args.addr);
            1
        }
    }
}

async fn health_status(
    args: &HealthArgs,
) -> Result<tonic_health::pb::health_check_response::ServingStatus, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut builder = guestloop_client::Connection::builder(args.addr.clone())
        .timeout(std::time::Duration::from_secs(args.timeout_secs));
    if args.ca_cert.is_some() || args.client_cert.is_some() {
        let mut tls = ClientTlsConfig::new();
        tls = match &args.ca_cert {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => tls.with_webpki_roots(),
        };
        if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        builder = builder.tls(tls);
    }
    let conn = tokio::time::timeout(
        std::time::Duration::from_secs(args.timeout_secs),
        builder.connect(),
    )
    .await
    .map_err(|_| "no connection within the timeout".to_string())?
    .map_err(|e| format!("cannot connect: {e}"))?;
    let response = tonic_health::pb::health_client::HealthClient::new(conn.channel())
        .check(tonic_health::pb::HealthCheckRequest {
            service: args.service.clone(),
        })
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
    Ok(response.into_inner().status())
}

/// Settings enough to migrate: the database alone, so a migration Job needs no keys or
/// chain file.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MigrateSettings {
    pub database: guestloop_config::DatabaseSettings,
}

impl guestloop_config::Validate for MigrateSettings {
    fn validate(&self) -> Result<(), guestloop_config::ConfigError> {
        if self.database.url.trim().is_empty() {
            return Err(guestloop_config::ConfigError::invalid(
                "database.url",
                "is required",
            ));
        }
        Ok(())
    }
}

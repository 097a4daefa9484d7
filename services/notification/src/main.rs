//! The notification binary: `notification [serve]`, `notification migrate` or `notification health`.

use clap::Parser;
use guestloop_server::cli::{Cli, Command};
use notification::{Application, SERVICE_NAME, Settings};

fn main() -> anyhow::Result<()> {
    guestloop_server::scheduler::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command() {
        Command::Health(args) => std::process::exit(guestloop_server::cli::health(&args).await),
        Command::Migrate => {
            guestloop_telemetry::traced(SERVICE_NAME, async {
                notification::migrate(cli.config.as_deref()).await?;
                Ok::<_, anyhow::Error>(())
            })
            .await?;
        }
        Command::Serve => {
            guestloop_telemetry::traced(SERVICE_NAME, async {
                let settings = Settings::load(cli.config.as_deref())?;
                let app = Application::build(settings).await?;
                tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "notification listening");
                app.run_until_stopped(guestloop_server::signal()).await?;
                Ok::<_, anyhow::Error>(())
            })
            .await?;
        }
    }
    Ok(())
}

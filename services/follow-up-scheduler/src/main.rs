//! The follow-up-scheduler binary: `follow-up-scheduler [serve]` or `follow-up-scheduler migrate`.

use clap::Parser;
use follow_up_scheduler::{Application, SERVICE_NAME, Settings};
use guestloop_server::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _telemetry = guestloop_telemetry::init(SERVICE_NAME)?;
    match cli.command() {
        Command::Migrate => follow_up_scheduler::migrate(cli.config.as_deref()).await?,
        Command::Serve => {
            let settings = Settings::load(cli.config.as_deref())?;
            let app = Application::build(settings).await?;
            tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "follow-up-scheduler listening");
            app.run_until_stopped(guestloop_server::signal()).await?;
        }
    }
    Ok(())
}

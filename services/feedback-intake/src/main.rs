//! The feedback-intake binary: `feedback-intake [serve]`, `feedback-intake migrate` or `feedback-intake health`.

use feedback_intake::{Application, SERVICE_NAME, Settings};

fn main() -> anyhow::Result<()> {
    guestloop_server::cli::run_service(
        SERVICE_NAME,
        |config| async move {
            feedback_intake::migrate(config.as_deref()).await?;
            Ok::<_, anyhow::Error>(())
        },
        |config| async move {
            let settings = Settings::load(config.as_deref())?;
            let app = Application::build(settings).await?;
            tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "feedback-intake listening");
            app.run_until_stopped(guestloop_server::signal()).await?;
            Ok(())
        },
    )
}

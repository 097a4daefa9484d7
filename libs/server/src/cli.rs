//! The command line every service binary shares: `serve` (default) or `migrate`, and an
//! optional `--config` file.

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

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Command {
    /// Serve gRPC until SIGTERM (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

impl Cli {
    pub fn command(&self) -> Command {
        self.command.unwrap_or(Command::Serve)
    }
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

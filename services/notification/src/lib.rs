//! notification (PRODUCT.md). This crate starts, migrates its schema, and serves health,
//! reflection and metrics in the shared runtime; its API (proto/guestloop/notification/v1) is
//! implemented in issue 4.

use guestloop_config::{CommonSettings, ConfigError, Validate};
use guestloop_server::{ServiceRuntime, StartError};
use serde::Deserialize;
use std::future::Future;
use std::net::SocketAddr;

pub const SERVICE_NAME: &str = "notification";

/// This service's defaults, layered over the common ones.
pub const SERVICE_DEFAULTS: &str = r#"
[grpc]
listen_addr = "127.0.0.1:50054"
[admin]
listen_addr = "127.0.0.1:9104"
[database]
schema = "notification"
"#;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn migrators() -> [&'static sqlx::migrate::Migrator; 2] {
    [&guestloop_outbox::MIGRATOR, &MIGRATOR]
}

pub fn default_layers() -> [&'static str; 2] {
    [guestloop_config::COMMON_DEFAULTS, SERVICE_DEFAULTS]
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()
    }
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        guestloop_config::load(&default_layers(), file)
    }
}

/// `notification migrate`: applies the schema and exits.
pub async fn migrate(file: Option<&std::path::Path>) -> Result<(), StartError> {
    guestloop_server::migrate_command(&default_layers(), file, &migrators()).await
}

#[derive(Debug)]
pub struct Application {
    runtime: ServiceRuntime,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let runtime =
            ServiceRuntime::build(SERVICE_NAME, settings.common, &migrators(), &[]).await?;
        Ok(Self { runtime })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.runtime.listeners.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.runtime.listeners.admin_addr()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        self.runtime
            .serve(tonic::service::Routes::builder().routes(), shutdown)
            .await
    }
}

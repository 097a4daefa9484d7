//! What every service builds before it serves: listeners, the database pool (migrated when
//! configured), the token verifier and the service's own token source, health, and the
//! outbox relay to its subscribers. A service adds its gRPC services and calls
//! [`ServiceRuntime::serve`].

use crate::{Health, Listeners, ServerError};
use guestloop_auth::{
    AuthInterceptor, CallerLimit, ServiceTokens, SigningKey, TokenSigner, TokenVerifier,
    VerifyingKey,
};
use guestloop_client::Connection;
use guestloop_config::{CommonSettings, DatabaseSettings};
use guestloop_outbox::{Relay, Subscriber};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("auth.public_key_path: {0}")]
    PublicKey(#[source] guestloop_auth::KeyError),
    #[error("auth.previous_public_key_paths: {0}")]
    PreviousPublicKey(#[source] guestloop_auth::KeyError),
    #[error("auth.signing_key_path: {0}")]
    SigningKey(#[source] guestloop_auth::KeyError),
    #[error("peers.{0}: not a valid endpoint")]
    Peer(String),
    #[error(transparent)]
    Db(#[from] guestloop_db::DbError),
    #[error(transparent)]
    Config(#[from] guestloop_config::ConfigError),
}

#[derive(Debug)]
pub struct ServiceRuntime {
    pub service_name: &'static str,
    pub settings: CommonSettings,
    pub listeners: Listeners,
    pub pool: PgPool,
    pub auth: AuthInterceptor,
    /// Present when a signing key is configured; needed to call other services.
    pub service_tokens: Option<Arc<ServiceTokens>>,
    pub health: Health,
    /// Full method paths that get `grpc.long_request_timeout` (see [`crate::serve_with`]).
    pub long_running: Vec<String>,
    /// The migration versions this binary embeds: health stays NOT_SERVING until all are
    /// applied (`guestloop_db::Probe`).
    migrations: Vec<i64>,
    /// The personal data this service ages out ([`ServiceRuntime::retain`]).
    retention: Vec<guestloop_db::retention::Task>,
}

/// What `<service> migrate` does (a Kubernetes Job): loads only the database settings from
/// the service's default layers, the file and the environment, migrates, returns.
pub async fn migrate_command(
    default_layers: &[&str],
    file: Option<&std::path::Path>,
    migrators: &[&Migrator],
) -> Result<(), StartError> {
    let settings: crate::cli::MigrateSettings = guestloop_config::load(default_layers, file)?;
    migrate_database(&settings.database, migrators).await
}

async fn migrate_database(
    database: &DatabaseSettings,
    migrators: &[&Migrator],
) -> Result<(), StartError> {
    let pool = guestloop_db::pool(database)?;
    guestloop_db::migrate(&pool, migrators).await?;
    pool.close().await;
    Ok(())
}

impl ServiceRuntime {
    /// Binds, connects and (if `database.migrate_on_start`) migrates. `grpc_services` are
    /// the fully-qualified names reported in health.
    pub async fn build(
        service_name: &'static str,
        settings: CommonSettings,
        migrators: &[&Migrator],
        grpc_services: &[&str],
    ) -> Result<Self, StartError> {
        crate::alloc::purge_freed_memory_promptly();
        // The recorder first: what the service registers while it starts must be kept.
        let _ = crate::admin::prometheus();
        let mut verifier = TokenVerifier::new(
            VerifyingKey::from_file(&settings.auth.public_key_path)
                .map_err(StartError::PublicKey)?,
            settings.auth.issuer.clone(),
        )
        .with_audience(&settings.auth.audience);
        for path in &settings.auth.previous_public_key_paths {
            verifier = verifier
                .with_key(VerifyingKey::from_file(path).map_err(StartError::PreviousPublicKey)?);
        }
        let service_tokens = match &settings.auth.signing_key_path {
            Some(path) if !path.is_empty() => {
                let key = SigningKey::from_file(path).map_err(StartError::SigningKey)?;
                Some(Arc::new(ServiceTokens::new(
                    TokenSigner::new(key, settings.auth.issuer.clone())
                        .with_audience(settings.auth.audience.clone()),
                    service_name,
                )))
            }
            _ => None,
        };
        let pool = guestloop_db::pool(&settings.database)?;
        if settings.database.migrate_on_start {
            guestloop_db::migrate(&pool, migrators).await?;
        }
        let listeners = Listeners::bind(&settings.grpc, &settings.admin).await?;
        let health = Health::new(grpc_services).await;
        let auth = AuthInterceptor::new(verifier).with_caller_limit(CallerLimit::new(
            settings.auth.per_caller_rate,
            settings.auth.per_caller_burst,
        ));
        Ok(Self {
            service_name,
            settings,
            listeners,
            pool,
            auth,
            service_tokens,
            health,
            long_running: Vec::new(),
            migrations: migrators
                .iter()
                .flat_map(|m| m.iter())
                .filter(|m| m.migration_type.is_up_migration())
                .map(|m| m.version)
                .collect(),
            retention: Vec::new(),
        })
    }

    /// Runs the retention job (guestloop_db::retention) over these kinds of data beside the
    /// server; the service's migrations must include `guestloop_db::retention::MIGRATOR`.
    pub fn retain(&mut self, tasks: Vec<guestloop_db::retention::Task>) {
        self.retention = tasks;
    }

    /// A lazy connection to a peer, authenticated as this service.
    pub fn peer(&self, name: &str) -> Result<Option<Connection>, StartError> {
        let Some(endpoint) = self.settings.peers.get(name) else {
            return Ok(None);
        };
        let mut builder = Connection::builder(endpoint);
        if let Some(tokens) = &self.service_tokens {
            let tokens = tokens.clone();
            builder = builder.token_fn(move || tokens.token());
        }
        builder
            .connect_lazy()
            .map(Some)
            .map_err(|_| StartError::Peer(name.to_string()))
    }

    /// The services this outbox delivers to (`outbox.subscribers`), with their clients.
    pub fn subscribers(&self) -> Result<Vec<Subscriber>, StartError> {
        let mut subscribers = Vec::new();
        for name in &self.settings.outbox.subscribers {
            if let Some(conn) = self.peer(name)? {
                subscribers.push(Subscriber {
                    name: name.clone(),
                    client: conn.event_ingest(),
                });
            }
        }
        Ok(subscribers)
    }

    fn relay(&self) -> Result<Relay, StartError> {
        Ok(Relay {
            pool: self.pool.clone(),
            subscribers: self.subscribers()?,
            poll_interval: self.settings.outbox.poll_interval.as_duration(),
            batch_size: self.settings.outbox.batch_size,
            max_backoff: self.settings.outbox.max_backoff.as_duration(),
        })
    }

    /// Serves until `shutdown`, with health following the database and the outbox relay
    /// running beside the server.
    pub async fn serve(
        mut self,
        routes: tonic::service::Routes,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let relay = self.relay()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut relay_tasks = relay.spawn(stop_rx.clone());
        if !self.retention.is_empty() {
            let job = guestloop_db::retention::Job {
                pool: self.pool.clone(),
                chain: Arc::new(self.settings.chain.clone()),
                settings: self.settings.retention.clone(),
                tasks: std::mem::take(&mut self.retention),
            };
            relay_tasks.push(tokio::spawn(job.run(stop_rx)));
        }
        let probe = guestloop_db::Probe::new(&self.pool).requiring(self.migrations.clone());
        let watcher = self.health.watch(Duration::from_secs(2), move || {
            let probe = probe.clone();
            async move { probe.check().await }
        });
        // Started: what building the service freed goes back now, and what later bursts
        // free within a second of going quiet (alloc.rs).
        crate::alloc::release_freed_memory();
        let releaser = tokio::spawn(crate::alloc::release_freed_memory_periodically(
            crate::alloc::IDLE_RELEASE_INTERVAL,
        ));
        let result = crate::serve_with(
            self.listeners,
            &self.settings.grpc,
            self.service_name,
            routes,
            self.health,
            &self.long_running,
            shutdown,
        )
        .await;
        let _ = stop_tx.send(true);
        watcher.abort();
        releaser.abort();
        for task in relay_tasks {
            let _ = task.await;
        }
        self.pool.close().await;
        result.map_err(StartError::from)
    }
}

//! grpc.health.v1 for a service: SERVING while it can do its job, NOT_SERVING while its
//! database is unreachable or while it drains for shutdown. A separate liveness name stays
//! SERVING through database outages, so Kubernetes does not restart pods the database
//! took down with it.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthReporter;

/// How long one dependency probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The health name a liveness probe asks for: NOT_SERVING only while draining.
pub const LIVENESS_SERVICE: &str = "guestloop.liveness";

#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    server: HealthServer<tonic_health::server::HealthService>,
    names: Arc<Vec<String>>,
    draining: watch::Sender<bool>,
    /// The watcher's last probe failed: calls are refused at once (`gate.rs`).
    dependency_down: Arc<crate::gate::DependencySignal>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("names", &self.names)
            .finish()
    }
}

impl Health {
    /// Health for these fully-qualified gRPC service names (and "" for the whole server),
    /// all NOT_SERVING until [`Health::set_ready`].
    pub async fn new(names: &[&str]) -> Self {
        let reporter = HealthReporter::new();
        let server = HealthServer::new(tonic_health::server::HealthService::from_health_reporter(
            reporter.clone(),
        ));
        let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        all.push(String::new());
        for n in &all {
            reporter
                .set_service_status(n.as_str(), ServingStatus::NotServing)
                .await;
        }
        reporter
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let (draining, _) = watch::channel(false);
        Self {
            reporter,
            server,
            names: Arc::new(all),
            draining,
            dependency_down: Default::default(),
        }
    }

    /// The gRPC service names this health reports on (not "" or liveness).
    pub fn service_names(&self) -> impl Iterator<Item = String> + '_ {
        self.names.iter().filter(|n| !n.is_empty()).cloned()
    }

    pub(crate) fn dependency_down(&self) -> Arc<crate::gate::DependencySignal> {
        self.dependency_down.clone()
    }

    pub(crate) fn server(&self) -> HealthServer<tonic_health::server::HealthService> {
        self.server.clone()
    }

    /// Marks every name SERVING or NOT_SERVING (ignored once draining has begun).
    pub async fn set_ready(&self, ready: bool) {
        if *self.draining.borrow() {
            return;
        }
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for n in self.names.iter() {
            self.reporter.set_service_status(n.as_str(), status).await;
        }
    }

    pub(crate) async fn draining(&self) {
        self.draining.send_replace(true);
        for n in self.names.iter() {
            self.reporter
                .set_service_status(n.as_str(), ServingStatus::NotServing)
                .await;
        }
        self.reporter
            .set_service_status(LIVENESS_SERVICE, ServingStatus::NotServing)
            .await;
    }

    pub(crate) async fn wait_draining(&self) {
        let mut rx = self.draining.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    /// Keeps health in step with `probe` (e.g. a database ping), checking every `every`,
    /// until shutdown begins.
    pub fn watch<F, Fut>(&self, every: Duration, probe: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let health = self.clone();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                if *health.draining.borrow() {
                    return;
                }
                // A probe that cannot answer in time counts as down: the flip to
                // NOT_SERVING (and to failing fast) must not wait for a connect timeout.
                // (The database probe bounds its own connect and query at 1 s each.)
                let ok = tokio::time::timeout(PROBE_TIMEOUT, probe())
                    .await
                    .unwrap_or(false);
                health.dependency_down.set_down(!ok);
                metrics::gauge!("guestloop_dependency_up").set(if ok { 1.0 } else { 0.0 });
                if last != Some(ok) {
                    if ok {
                        tracing::info!("dependencies reachable: SERVING");
                    } else {
                        tracing::warn!("a dependency is unreachable: NOT_SERVING");
                    }
                    health.set_ready(ok).await;
                    last = Some(ok);
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

//! The five services as one platform on this machine: their schemas and roles in one
//! database, their ports, and the environment each process gets (database URL, keys,
//! peers). Used by the local runner and by the cross-service tests in tests/.

use crate::postgres::Cluster;
use crate::process::{ServiceProcess, free_port};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// (binary, schema, peer config key) of every service.
pub const SERVICES: [(&str, &str, &str); 5] = [
    ("guest-profile", "guest_profile", "guest_profile"),
    ("feedback-intake", "feedback", "feedback_intake"),
    ("follow-up-scheduler", "followup", "follow_up_scheduler"),
    ("notification", "notification", "notification"),
    ("metrics", "metrics", "metrics"),
];

/// Who receives whose events (outbox.subscribers, as peer config keys): stays and consent
/// drive the scheduler's plan; cases its SLA clocks; WeChat feedback notification's channel
/// window; guest erasures and merges reach every service that keeps guest data; metrics
/// rolls everything up.
pub const SUBSCRIBERS: [(&str, &str); 4] = [
    (
        "guest-profile",
        "follow_up_scheduler,notification,feedback_intake,metrics",
    ),
    (
        "feedback-intake",
        "follow_up_scheduler,notification,metrics",
    ),
    ("follow-up-scheduler", "metrics"),
    ("notification", "metrics"),
];

/// How to start the platform.
#[derive(Debug, Clone)]
pub struct PlatformSpec {
    pub bin_dir: PathBuf,
    pub cluster: Cluster,
    pub database: String,
    pub config_file: PathBuf,
    pub public_key: PathBuf,
    pub signing_key: PathBuf,
    pub log_dir: PathBuf,
    /// First gRPC port; service i listens on base + i (0 = pick free ports).
    pub base_port: u16,
    /// Extra environment for every service (e.g. OTEL_EXPORTER_OTLP_ENDPOINT).
    pub extra_env: BTreeMap<String, String>,
}

impl PlatformSpec {
    /// What every service process gets: the extra environment, the configuration file,
    /// one tokio worker, migrate-on-start and the keys.
    fn common_env(&self) -> BTreeMap<String, String> {
        let mut env = self.extra_env.clone();
        env.insert(
            "GUESTLOOP_CONFIG".into(),
            self.config_file.display().to_string(),
        );
        // One tokio worker, so the current-thread scheduler, as a pod with the chart's one
        // CPU runs (guestloop_server::scheduler), unless the caller says otherwise.
        env.entry("TOKIO_WORKER_THREADS".into())
            .or_insert_with(|| "1".into());
        // Migrating on start unless the caller says otherwise (as Kubernetes does).
        env.entry("GUESTLOOP__DATABASE__MIGRATE_ON_START".into())
            .or_insert_with(|| "true".into());
        env.insert(
            "GUESTLOOP__AUTH__PUBLIC_KEY_PATH".into(),
            self.public_key.display().to_string(),
        );
        env.insert(
            "GUESTLOOP__AUTH__SIGNING_KEY_PATH".into(),
            self.signing_key.display().to_string(),
        );
        env
    }
}

#[derive(Debug)]
pub struct Platform {
    pub services: Vec<ServiceProcess>,
    /// The environment each service was started with, for replicas.
    envs: BTreeMap<String, BTreeMap<String, String>>,
}

impl Platform {
    /// Bootstraps every schema, starts every service (migrating on start) and waits until
    /// all report SERVING.
    pub async fn start(spec: &PlatformSpec) -> anyhow::Result<Self> {
        spec.cluster.create_database(&spec.database).await?;
        let mut urls = BTreeMap::new();
        for (name, schema, _) in SERVICES {
            let role = format!("{schema}_svc");
            urls.insert(
                name,
                spec.cluster
                    .bootstrap_service(&spec.database, schema, &role)
                    .await?,
            );
        }
        let ports: Vec<(u16, u16)> = (0..SERVICES.len())
            .map(|i| {
                if spec.base_port == 0 {
                    (free_port(), free_port())
                } else {
                    let i = i as u16;
                    (spec.base_port + i, spec.base_port + 100 + i)
                }
            })
            .collect();
        let mut common = spec.common_env();
        // Peers the caller set (e.g. a proxy standing for a Kubernetes Service) win.
        for (i, (_, _, peer)) in SERVICES.iter().enumerate() {
            common
                .entry(format!("GUESTLOOP__PEERS__{}", peer.to_uppercase()))
                .or_insert_with(|| format!("http://127.0.0.1:{}", ports[i].0));
        }
        let mut services = Vec::new();
        let mut envs = BTreeMap::new();
        for (i, (name, _, _)) in SERVICES.iter().enumerate() {
            let mut env = common.clone();
            env.insert("GUESTLOOP__DATABASE__URL".into(), urls[name].clone());
            if let Some((_, subscribers)) = SUBSCRIBERS.iter().find(|(n, _)| n == name) {
                env.entry("GUESTLOOP__OUTBOX__SUBSCRIBERS".into())
                    .or_insert_with(|| subscribers.to_string());
            }
            env.entry("OTEL_SERVICE_NAME".into())
                .or_insert_with(|| name.to_string());
            services.push(ServiceProcess::start(
                &spec.bin_dir,
                name,
                ports[i].0,
                ports[i].1,
                &env,
                &spec.log_dir,
            )?);
            envs.insert(name.to_string(), env);
        }
        for s in &mut services {
            s.wait_ready(Duration::from_secs(60)).await?;
        }
        Ok(Self { services, envs })
    }

    /// Another replica of one of the platform's services: the same database, peers and
    /// subscriptions, its own ports; SERVING when this returns. The caller owns it.
    pub async fn replica(&self, spec: &PlatformSpec, name: &str) -> anyhow::Result<ServiceProcess> {
        self.replica_with_env(spec, name, &BTreeMap::new()).await
    }

    /// [`Platform::replica`] with `overrides` over the service's environment, and from
    /// `spec.bin_dir` (which may hold another release's binaries).
    pub async fn replica_with_env(
        &self,
        spec: &PlatformSpec,
        name: &str,
        overrides: &BTreeMap<String, String>,
    ) -> anyhow::Result<ServiceProcess> {
        let mut env = self
            .envs
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("no service {name}"))?
            .clone();
        env.extend(overrides.clone());
        let env = &env;
        let port = free_port();
        // Its own log, beside the first one's rather than over it.
        let log_dir = spec.log_dir.join(format!("replica-{port}"));
        let mut process =
            ServiceProcess::start(&spec.bin_dir, name, port, free_port(), env, &log_dir)?;
        process.wait_ready(Duration::from_secs(60)).await?;
        Ok(process)
    }

    /// Starts one service alone (no peers, no subscribers) with its schema bootstrapped,
    /// as the platform would start it; waits for SERVING unless `wait` is false.
    pub async fn start_one(
        spec: &PlatformSpec,
        name: &str,
        wait: bool,
    ) -> anyhow::Result<ServiceProcess> {
        let (_, schema, _) = SERVICES
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| anyhow::anyhow!("no service {name}"))?;
        spec.cluster.create_database(&spec.database).await?;
        let url = spec
            .cluster
            .bootstrap_service(&spec.database, schema, &format!("{schema}_svc"))
            .await?;
        let mut env = spec.common_env();
        env.insert("GUESTLOOP__DATABASE__URL".into(), url);
        let mut process = ServiceProcess::start(
            &spec.bin_dir,
            name,
            free_port(),
            free_port(),
            &env,
            &spec.log_dir,
        )?;
        if wait {
            process.wait_ready(Duration::from_secs(60)).await?;
        }
        Ok(process)
    }

    /// The environment `name` was started with (database URL, peers, keys, config).
    pub fn env(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.envs.get(name)
    }

    /// Runs `bin_dir/name migrate` with `name`'s environment, as the chart's pre-upgrade
    /// Job does; its output goes to `log_dir/name-migrate.log`.
    pub fn migrate(
        &self,
        spec: &PlatformSpec,
        bin_dir: &Path,
        name: &str,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let env = self
            .env(name)
            .ok_or_else(|| anyhow::anyhow!("no service {name}"))?;
        Ok(crate::process::run_migrate(
            bin_dir,
            name,
            env,
            &spec.log_dir,
        )?)
    }

    pub fn service(&self, name: &str) -> Option<&ServiceProcess> {
        self.services.iter().find(|s| s.name == name)
    }

    /// SIGTERM to every service, in reverse order of start.
    pub fn stop(&mut self) {
        for s in self.services.iter_mut().rev() {
            let _ = s.stop(Duration::from_secs(25));
        }
    }
}

/// Writes a key pair into `dir` unless one is there; returns (signing, public) paths.
pub fn ensure_keys(dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let (signing, public) = (dir.join("jwt-signing.pem"), dir.join("jwt-public.pem"));
    if !signing.exists() || !public.exists() {
        let (private_pem, public_pem) = guestloop_auth::generate_key_pair_pem();
        std::fs::write(&signing, private_pem)?;
        std::fs::write(&public, public_pem)?;
    }
    Ok((signing, public))
}

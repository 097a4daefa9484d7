//! What the benchmark measures runs here, started by the benchmark itself: a durable
//! PostgreSQL of its own (fsync and synchronous commit on, as in production) and the
//! services' release binaries as separate processes (testkit's `Platform::start_one`),
//! each scenario in a fresh database.

use guestloop_testkit::platform::{Platform, PlatformSpec};
use guestloop_testkit::{Cluster, ServiceProcess, TEST_CHAIN_TOML, TestKeys, free_port, keys};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug)]
pub struct Stack {
    pub cluster: Cluster,
    pub work_dir: PathBuf,
    pub bin_dir: PathBuf,
    config: PathBuf,
    pub keys: &'static TestKeys,
}

/// A service process and how long it took from its start to answer SERVING.
#[derive(Debug)]
pub struct Started {
    pub process: ServiceProcess,
    pub serving_after: Duration,
}

impl Stack {
    pub fn start(bin_dir: &Path, work_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(work_dir)?;
        let work_dir = work_dir.canonicalize()?;
        let cluster = Cluster::ensure(&work_dir.join("pg"), free_port(), true)?;
        let config = work_dir.join("chain.toml");
        std::fs::write(&config, TEST_CHAIN_TOML)?;
        Ok(Self {
            cluster,
            bin_dir: bin_dir.canonicalize()?,
            work_dir,
            config,
            keys: keys(),
        })
    }

    /// A fresh, empty database.
    pub async fn fresh_database(&self, name: &str) -> anyhow::Result<()> {
        self.cluster.drop_database(name).await?;
        self.cluster.create_database(name).await?;
        Ok(())
    }

    /// Starts `service` against `database` (it migrates on start) and waits for SERVING,
    /// polled every 5 ms so start-up time is measured finely.
    pub async fn service(
        &self,
        service: &str,
        database: &str,
        extra_env: &BTreeMap<String, String>,
    ) -> anyhow::Result<Started> {
        self.service_with_config(service, database, extra_env, &self.config)
            .await
    }

    /// Like [`Stack::service`] with another chain configuration file (P5's large chain).
    pub async fn service_with_config(
        &self,
        service: &str,
        database: &str,
        extra_env: &BTreeMap<String, String>,
        config: &Path,
    ) -> anyhow::Result<Started> {
        let spec = PlatformSpec {
            bin_dir: self.bin_dir.clone(),
            cluster: self.cluster.clone(),
            database: database.into(),
            config_file: config.to_path_buf(),
            public_key: self.keys.public_key_path.clone(),
            signing_key: self.keys.signing_key_path.clone(),
            log_dir: self.work_dir.join("logs"),
            base_port: 0,
            extra_env: extra_env.clone(),
        };
        let mut process = Platform::start_one(&spec, service, false).await?;
        let endpoint = process.endpoint();
        while !guestloop_testkit::process::serving(&endpoint).await {
            if let Some(status) = process.exited() {
                anyhow::bail!("{service} exited with {status}:\n{}", process.log_tail());
            }
            if process.started_at.elapsed() > Duration::from_secs(60) {
                anyhow::bail!(
                    "{service} (pid {}) not SERVING after 60 s; log {}:\n{}",
                    process.pid(),
                    process.log_path.display(),
                    process.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Started {
            serving_after: process.started_at.elapsed(),
            process,
        })
    }

    pub fn stop(&self) {
        let _ = self.cluster.stop();
    }
}

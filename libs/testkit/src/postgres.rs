//! A PostgreSQL cluster of our own: `initdb` and `pg_ctl` run as the `postgres` user when we
//! are root (initdb refuses root), with the data folder kept where the caller says. Tests
//! share one cluster per run and take a fresh database each; the local runner keeps its
//! cluster between runs.

use guestloop_db::sqlx::{self, Connection, Executor, PgConnection};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL binaries not found (looked for pg_config and /usr/lib/postgresql/*/bin)")]
    NoBinaries,
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("sql: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A running cluster reachable on 127.0.0.1 with trust authentication for local roles.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub port: u16,
    pub data_dir: PathBuf,
}

/// Where this machine's PostgreSQL binaries are (pgbench, psql, pg_ctl).
pub fn bindir() -> Result<PathBuf, PgError> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| PgError::NoBinaries)?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().ok_or(PgError::NoBinaries)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root.
fn run_pg(tool: &str, args: &[&str]) -> Result<std::process::Output, PgError> {
    let path = bindir()?.join(tool);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args).current_dir("/");
    Ok(cmd.output()?)
}

fn check(command: &str, out: std::process::Output) -> Result<(), PgError> {
    if out.status.success() {
        Ok(())
    } else {
        Err(PgError::Command {
            command: command.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

impl Cluster {
    /// Initialises `data_dir` if it is new, and starts the server on `port` unless it is
    /// already running. `durable = false` turns off fsync for fast throwaway test clusters.
    pub fn ensure(data_dir: &Path, port: u16, durable: bool) -> Result<Self, PgError> {
        std::fs::create_dir_all(data_dir)?;
        let data_dir = data_dir.canonicalize()?;
        let dir = data_dir.to_string_lossy().to_string();
        // A running server is left alone: chown -R over a live data directory races with
        // the server deleting its own files (seen in CI: "changing ownership of
        // …/pg_internal.init: No such file or directory").
        if data_dir.join("postmaster.pid").exists()
            && run_pg("pg_ctl", &["-D", &dir, "status"])?.status.success()
        {
            return Ok(Self { port, data_dir });
        }
        if is_root() {
            check(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres", &dir])
                    .output()?,
            )?;
        }
        if !data_dir.join("PG_VERSION").exists() {
            check(
                "initdb",
                run_pg(
                    "initdb",
                    &[
                        "-D",
                        &dir,
                        "-U",
                        "postgres",
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--no-instructions",
                    ],
                )?,
            )?;
        }
        let running = run_pg("pg_ctl", &["-D", &dir, "status"])?.status.success();
        if !running {
            let mut opts =
                format!("-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c max_connections=400");
            if !durable {
                opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
            }
            let log = format!("{dir}/server.log");
            check(
                "pg_ctl start",
                run_pg(
                    "pg_ctl",
                    &[
                        "-D", &dir, "-o", &opts, "-l", &log, "-w", "-t", "60", "start",
                    ],
                )?,
            )?;
        }
        Ok(Self { port, data_dir })
    }

    pub fn stop(&self) -> Result<(), PgError> {
        let dir = self.data_dir.to_string_lossy().to_string();
        check(
            "pg_ctl stop",
            run_pg("pg_ctl", &["-D", &dir, "-m", "fast", "-w", "stop"])?,
        )
    }

    /// Stops the server the way a crash or a failover does: no checkpoint, every connection
    /// cut (`pg_ctl stop -m immediate`). [`Cluster::ensure`] starts it again.
    pub fn stop_immediate(&self) -> Result<(), PgError> {
        let dir = self.data_dir.to_string_lossy().to_string();
        check(
            "pg_ctl stop -m immediate",
            run_pg("pg_ctl", &["-D", &dir, "-m", "immediate", "-w", "stop"])?,
        )
    }

    /// URL of `database` as the superuser.
    pub fn admin_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `database` if missing.
    pub async fn create_database(&self, database: &str) -> Result<(), PgError> {
        let mut conn = PgConnection::connect(&self.admin_url("postgres")).await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(database)
                .fetch_optional(&mut conn)
                .await?;
        if exists.is_none() {
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .await?;
        }
        Ok(())
    }

    /// Drops `database` if it exists (the demo starts from an empty one each run).
    pub async fn drop_database(&self, database: &str) -> Result<(), PgError> {
        let mut conn = PgConnection::connect(&self.admin_url("postgres")).await?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
        )))
        .await?;
        Ok(())
    }

    /// Creates the service's role and schema in `database` and returns the URL the service
    /// connects with (as its own role).
    pub async fn bootstrap_service(
        &self,
        database: &str,
        schema: &str,
        role: &str,
    ) -> Result<String, PgError> {
        // Roles are cluster-wide and concurrent tests race to create and alter the same
        // one. Advisory locks are per database, so the lock is taken in `postgres`.
        let mut guard = PgConnection::connect(&self.admin_url("postgres")).await?;
        let lock: i64 = 0x6775_6573_746c;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(lock)
            .execute(&mut guard)
            .await?;
        let mut conn = PgConnection::connect(&self.admin_url(database)).await?;
        for statement in guestloop_db::bootstrap_sql(schema, role, None) {
            conn.execute(sqlx::AssertSqlSafe(statement)).await?;
        }
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(lock)
            .execute(&mut guard)
            .await?;
        Ok(format!(
            "postgres://{role}@127.0.0.1:{}/{database}",
            self.port
        ))
    }
}

/// A fresh database in the shared test cluster.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub cluster: Cluster,
    pub name: String,
}

impl TestDatabase {
    /// Bootstraps a service's role and schema here and returns its connection URL.
    pub async fn service_url(&self, schema: &str, role: &str) -> String {
        self.cluster
            .bootstrap_service(&self.name, schema, role)
            .await
            .expect("bootstrap service role and schema")
    }
}

/// The run's shared cluster: `GUESTLOOP_TEST_PG_DIR` / `GUESTLOOP_TEST_PG_PORT` if set (the
/// test script sets them), otherwise a folder under the system temp dir.
fn shared_cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = std::env::var("GUESTLOOP_TEST_PG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir().join("guestloop-test-pg"));
        let port = std::env::var("GUESTLOOP_TEST_PG_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(55432);
        // Test binaries may run in parallel: one initialises, the others wait.
        std::fs::create_dir_all(dir.parent().unwrap_or(Path::new("/tmp"))).expect("temp dir");
        let lock_path = dir.with_extension("lock");
        let lock = std::fs::File::create(&lock_path).expect("create lock file");
        lock.lock().expect("lock the test cluster");
        let cluster =
            Cluster::ensure(&dir, port, false).expect("start the test PostgreSQL cluster");
        lock.unlock().expect("unlock");
        cluster
    })
}

/// A fresh, empty database in the shared test cluster.
pub async fn test_database() -> TestDatabase {
    let cluster = shared_cluster().clone();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    cluster
        .create_database(&name)
        .await
        .expect("create test database");
    TestDatabase { cluster, name }
}

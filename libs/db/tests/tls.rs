//! TLS to PostgreSQL, through the services' own pool (`guestloop_db::pool`) and nothing but
//! `database.url`: a cluster of its own with `ssl = on` that refuses every TCP connection
//! without TLS (pg_hba: `hostssl` only). With `sslmode=verify-full` and the right CA the
//! pool connects and the session is encrypted; another CA, no TLS, and — after the server's
//! certificate is swapped for an expired one and reloaded — an expired certificate are
//! each refused.

use guestloop_config::{DatabaseSettings, Seconds};
use guestloop_testkit::certs::{TestCa, Usage};
use guestloop_testkit::{Cluster, free_port};
use std::path::Path;
use std::time::Duration;

/// Writes `contents` as a file the `postgres` user owns and alone may read (PostgreSQL
/// refuses a key others can read).
fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _ = std::process::Command::new("chown")
        .args(["postgres:postgres"])
        .arg(path)
        .status();
}

fn settings(url: String) -> DatabaseSettings {
    DatabaseSettings {
        url,
        schema: "public".into(),
        max_connections: 1,
        migrate_on_start: false,
        acquire_timeout: Seconds(Duration::from_secs(5)),
        ping_idle_after: Seconds(Duration::from_secs(1)),
    }
}

/// Whether the pool for `url` gets a connection, and if so whether its session is TLS.
async fn connect(url: String) -> Result<bool, String> {
    let pool = guestloop_db::pool(&settings(url)).map_err(|e| e.to_string())?;
    let ssl: Result<bool, _> =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await;
    pool.close().await;
    ssl.map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_pool_speaks_tls_to_postgresql_and_refuses_what_it_cannot_verify() {
    let dir = std::env::temp_dir().join(format!("guestloop-pg-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (data, port) = (dir.join("data"), free_port());
    let cluster = Cluster::ensure(&data, port, false).expect("a cluster of its own");

    let ca = TestCa::new("Guestloop test database CA");
    let server = ca.issue("127.0.0.1", Usage::Server);
    write_private(&data.join("server.crt"), &server.cert_pem);
    write_private(&data.join("server.key"), &server.key_pem);
    let conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
    std::fs::write(
        data.join("postgresql.conf"),
        format!("{conf}\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"),
    )
    .unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    cluster.stop().unwrap();
    let cluster = Cluster::ensure(&data, port, false).expect("restarted with TLS");

    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let other_ca_file = dir.join("other-ca.pem");
    std::fs::write(&other_ca_file, TestCa::new("someone else").pem()).unwrap();
    let url = |query: &str| format!("postgres://postgres@127.0.0.1:{port}/postgres?{query}");
    let verify = |ca: &Path| {
        url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            ca.to_string_lossy()
        ))
    };

    assert_eq!(
        connect(verify(&ca_file)).await,
        Ok(true),
        "verify-full with the database's CA"
    );
    let other = connect(verify(&other_ca_file)).await;
    assert!(other.is_err(), "another CA's server was trusted: {other:?}");
    let plain = connect(url("sslmode=disable")).await;
    assert!(plain.is_err(), "a connection without TLS got in: {plain:?}");

    // The server's certificate expires: swapped and reloaded (no restart), it is refused.
    let expired = ca.issue_expired("127.0.0.1", Usage::Server);
    write_private(&data.join("server.crt"), &expired.cert_pem);
    write_private(&data.join("server.key"), &expired.key_pem);
    let admin = connect(url("sslmode=require")).await;
    assert_eq!(admin, Ok(true), "require (no verification) still connects");
    let pool = guestloop_db::pool(&settings(url("sslmode=require"))).unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stale = connect(verify(&ca_file)).await;
    assert!(
        stale.is_err(),
        "an expired certificate was trusted: {stale:?}"
    );

    eprintln!(
        "refused: another CA: {}; without TLS: {}; expired: {}",
        other.unwrap_err(),
        plain.unwrap_err(),
        stale.unwrap_err()
    );
    let _ = cluster.stop_immediate();
    let _ = std::fs::remove_dir_all(&dir);
}

//! How the hot paths hold their database connections, against a real PostgreSQL: a batch
//! worker keeps one backend from batch to batch while work keeps coming and gives it back
//! to the pool after `hold_connection` idle; a backend that dies under a worker costs one
//! failed batch and the next runs on a new one; the pool tests a connection only when it
//! sat idle `ping_idle_after` or longer.

use guestloop_config::{DatabaseSettings, Seconds};
use guestloop_db::group::{BatchSettings, GroupCommit, GroupError};
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;

const SCHEMA: &str = "reuse_test";

#[derive(Debug)]
enum TestError {
    Db(#[allow(dead_code)] sqlx::Error),
    Group(GroupError),
}

impl From<GroupError> for TestError {
    fn from(e: GroupError) -> Self {
        Self::Group(e)
    }
}

/// The services' own pool (`guestloop_db::pool`) on a database of its own, and the URL to
/// reach the same role from outside it.
async fn pool(max_connections: u32, ping_idle_after: Duration) -> (PgPool, String) {
    let db = guestloop_testkit::test_database().await;
    let url = db.service_url(SCHEMA, "reuse_test_svc").await;
    let pool = guestloop_db::pool(&DatabaseSettings {
        url: url.clone(),
        schema: SCHEMA.into(),
        max_connections,
        migrate_on_start: false,
        acquire_timeout: Seconds(Duration::from_secs(5)),
        ping_idle_after: Seconds(ping_idle_after),
    })
    .unwrap();
    (pool, url)
}

/// The backend a group-committed call ran on.
async fn backend(group: &GroupCommit) -> Result<i32, TestError> {
    group
        .run(|conn| {
            Box::pin(async move {
                sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(TestError::Db)
            })
        })
        .await
}

/// Ends backend `pid` from a connection of its own, as an operator or a failover would.
async fn terminate(url: &str, pid: i32) {
    let mut admin = PgConnection::connect(url).await.unwrap();
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(ended, "backend {pid} ended");
    admin.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_worker_keeps_its_backend_while_busy_and_gives_it_back_when_idle() {
    let (pool, url) = pool(4, Duration::from_secs(1)).await;
    let group = GroupCommit::start(
        "test",
        pool.clone(),
        BatchSettings {
            workers: 1,
            hold_connection: Seconds(Duration::from_millis(300)),
            ..BatchSettings::default()
        },
    );

    let first = backend(&group).await.unwrap();
    for call in 0..20 {
        assert_eq!(backend(&group).await.unwrap(), first, "call {call}");
    }
    assert_eq!(
        pool.num_idle(),
        pool.size() as usize - 1,
        "held by the worker"
    );

    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(pool.num_idle(), pool.size() as usize, "back in the pool");

    // The backend dies under the worker: that batch fails, the next runs on a new one.
    let held = backend(&group).await.unwrap();
    terminate(&url, held).await;
    assert!(matches!(
        backend(&group).await,
        Err(TestError::Group(GroupError::Commit(_)))
    ));
    let next = backend(&group).await.unwrap();
    assert_ne!(next, held);

    // Given back within hold_connection, so closing the pool does not wait on the worker.
    tokio::time::timeout(Duration::from_secs(3), pool.close())
        .await
        .expect("the pool closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_tests_only_connections_idle_past_ping_idle_after() {
    // (ping_idle_after, idle before the next statement, whether that statement succeeds
    // after its backend was ended meanwhile)
    let cases = [
        (Duration::ZERO, Duration::ZERO, true),
        (Duration::from_millis(200), Duration::from_millis(500), true),
        (Duration::from_secs(30), Duration::ZERO, false),
    ];
    for (ping_idle_after, idle, survives) in cases {
        let (pool, url) = pool(1, ping_idle_after).await;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
        terminate(&url, pid).await;
        tokio::time::sleep(idle).await;
        let next: Result<i32, _> = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await;
        assert_eq!(
            next.is_ok(),
            survives,
            "ping_idle_after {ping_idle_after:?}, idle {idle:?}: {next:?}"
        );
        // Either way the pool recovers by itself: the broken connection is closed when it
        // comes back, and the next statement gets a new backend.
        let after: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_ne!(after, pid);
        pool.close().await;
    }
}

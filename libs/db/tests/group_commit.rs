//! Group commit against a real PostgreSQL: a call is answered only once its work is
//! committed; a failing call rolls back alone; a full queue refuses at once; a panicking
//! call does not stop the workers.

use guestloop_db::group::{BatchSettings, GroupCommit, GroupError};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

#[derive(Debug)]
enum TestError {
    Db(sqlx::Error),
    Group(GroupError),
}

impl From<GroupError> for TestError {
    fn from(e: GroupError) -> Self {
        Self::Group(e)
    }
}

async fn pool() -> PgPool {
    let db = guestloop_testkit::test_database().await;
    let url = db.service_url("group_test", "group_test_svc").await;
    let pool = PgPoolOptions::new()
        .max_connections(6)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql("SET search_path = group_test")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE items (id INT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

async fn insert(group: &GroupCommit, id: i32) -> Result<i32, TestError> {
    group
        .run(move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO items (id) VALUES ($1)")
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(TestError::Db)?;
                Ok(id)
            })
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answer_follows_its_commit_and_a_failure_rolls_back_alone() {
    let pool = pool().await;
    let group = GroupCommit::start("test", pool.clone(), BatchSettings::default());
    // Ids 0..10 exist already, so every tenth call below fails on the primary key.
    for id in 0..10 {
        insert(&group, id * 10).await.unwrap();
    }
    let mut calls = Vec::new();
    for id in 0..100 {
        let (group, pool) = (group.clone(), pool.clone());
        calls.push(tokio::spawn(async move {
            let answer = insert(&group, id).await;
            // Acknowledged means committed: another connection sees it at once.
            let visible: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM items WHERE id = $1)")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            if let Err(e) = &answer {
                // The call's own error, not the batch's.
                assert!(
                    matches!(e, TestError::Db(db) if db
                        .as_database_error()
                        .is_some_and(|d| d.is_unique_violation())),
                    "call {id}: {e:?}"
                );
            }
            (id, answer.is_ok(), visible)
        }));
    }
    let mut ok = 0;
    for call in calls {
        let (id, answered_ok, visible) = call.await.unwrap();
        assert_eq!(answered_ok, id % 10 != 0, "call {id}");
        assert!(visible, "row {id} is there (inserted now or before)");
        ok += i64::from(answered_ok);
    }
    assert_eq!(ok, 90);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        rows, 100,
        "the failed calls' neighbours in their batches committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_a_panic_stops_nothing() {
    let pool = pool().await;
    let group = GroupCommit::start(
        "test",
        pool.clone(),
        BatchSettings {
            workers: 1,
            max_batch: 1,
            queue: 1,
            ..BatchSettings::default()
        },
    );
    // One slow call holds the only worker; one more waits in the queue; the next is refused.
    let slow = {
        let group = group.clone();
        tokio::spawn(async move {
            group
                .run(|conn| {
                    Box::pin(async move {
                        sqlx::raw_sql("SELECT pg_sleep(0.5)")
                            .execute(&mut *conn)
                            .await
                            .map_err(TestError::Db)?;
                        Ok::<(), TestError>(())
                    })
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = {
        let group = group.clone();
        tokio::spawn(async move { insert(&group, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    let refused = insert(&group, 2).await;
    assert!(
        matches!(refused, Err(TestError::Group(GroupError::Overloaded))),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "refused at once"
    );
    slow.await.unwrap().unwrap();
    assert_eq!(queued.await.unwrap().unwrap(), 1);

    let panicked: Result<(), TestError> = group
        .run(|_conn| Box::pin(async move { panic!("a bug in one call") }))
        .await;
    assert!(
        matches!(panicked, Err(TestError::Group(GroupError::Closed))),
        "{panicked:?}"
    );
    assert_eq!(insert(&group, 3).await.unwrap(), 3, "the worker lives on");
}

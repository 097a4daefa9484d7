//! sqlx enters the span that was current when it made a row stream once per row (three
//! times through a pool: its streams nest); `untraced` reads the same rows without entering
//! it. Counted with a subscriber layer that counts span enters, against a real PostgreSQL.

use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::Instrument;
use tracing::instrument::WithSubscriber;
use tracing::span::Id;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const ROWS: usize = 2_000;

struct CountEnters(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for CountEnters {
    fn on_enter(&self, _: &Id, _: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

async fn read(pool: &PgPool) -> usize {
    sqlx::query_scalar::<_, i32>("SELECT generate_series(1, $1)")
        .bind(ROWS as i32)
        .fetch_all(pool)
        .await
        .expect("read rows")
        .len()
}

#[tokio::test]
async fn a_read_of_many_rows_enters_the_callers_span_per_row_unless_untraced() {
    let db = guestloop_testkit::test_database().await;
    let pool = PgPool::connect(&db.cluster.admin_url(&db.name))
        .await
        .expect("connect");
    // (case, read untraced?, fewest enters, most enters)
    let cases: [(&str, bool, usize, usize); 2] = [
        ("plain sqlx read", false, ROWS, usize::MAX),
        ("untraced read", true, 1, 20),
    ];
    for (case, untraced, fewest, most) in cases {
        let enters = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(CountEnters(enters.clone()));
        let pool = pool.clone();
        let rows = async move {
            let span = tracing::info_span!("rpc");
            async {
                if untraced {
                    guestloop_db::untraced(read(&pool)).await
                } else {
                    read(&pool).await
                }
            }
            .instrument(span)
            .await
        }
        .with_subscriber(subscriber)
        .await;
        let entered = enters.load(Ordering::Relaxed);
        assert_eq!(rows, ROWS, "{case}: every row read");
        assert!(
            (fewest..=most).contains(&entered),
            "{case}: the caller's span entered {entered} times for {ROWS} rows, \
             expected {fewest}..={most}"
        );
    }
}

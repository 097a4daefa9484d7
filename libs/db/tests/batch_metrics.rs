//! A batcher reports every batch on /metrics under its own name: how many items it held
//! and how long it took to write. The SRE reads how full group commit runs from these.

use guestloop_db::batch::{BatchSettings, Batcher};
use metrics_exporter_prometheus::PrometheusBuilder;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};

#[tokio::test]
async fn each_batch_records_its_items_and_its_time_under_the_batchers_name() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // The batches below never touch the database; the pool is never connected.
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("lazy pool");
    let gate = Arc::new(Semaphore::new(0));
    let (seen, mut started) = mpsc::unbounded_channel();
    let held = gate.clone();
    let batcher = metrics::with_local_recorder(&recorder, || {
        Batcher::start(
            "probe",
            pool,
            BatchSettings {
                workers: 1,
                ..BatchSettings::default()
            },
            move |batch: Vec<oneshot::Sender<usize>>, _lease| {
                let (gate, seen) = (held.clone(), seen.clone());
                Box::pin(async move {
                    let _ = seen.send(batch.len());
                    gate.acquire().await.expect("gate").forget();
                    let n = batch.len();
                    for caller in batch {
                        let _ = caller.send(n);
                    }
                })
            },
        )
    });
    let submit = || {
        let (tx, rx) = oneshot::channel();
        batcher.submit(tx).expect("queued");
        rx
    };

    // One item alone, held in its batch while five more queue behind it: two batches.
    let first = submit();
    assert_eq!(started.recv().await, Some(1));
    let rest: Vec<_> = (0..5).map(|_| submit()).collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.add_permits(2);
    assert_eq!(started.recv().await, Some(5));
    assert_eq!(first.await.expect("answered"), 1);
    for answer in rest {
        assert_eq!(answer.await.expect("answered"), 5);
    }

    let body = handle.render();
    let value = |series: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{body}"))
    };
    assert_eq!(value("guestloop_batch_items_count{batcher=\"probe\"}"), 2.0);
    assert_eq!(value("guestloop_batch_items_sum{batcher=\"probe\"}"), 6.0);
    assert_eq!(
        value("guestloop_batch_seconds_count{batcher=\"probe\"}"),
        2.0
    );
    // The first batch was held 50 ms before it could answer.
    assert!(
        value("guestloop_batch_seconds_sum{batcher=\"probe\"}") >= 0.05,
        "{body}"
    );
}

//! The spans a process makes just before it exits reach the collector when the process
//! runs on a current-thread runtime (a one-CPU pod), and the flush does not wait out its
//! timeout: the exporter's connection runs on that runtime's only thread, so the flush
//! must not block it. Its own test binary: `init` installs the process-wide subscriber.

use guestloop_testkit::otlp::TraceReceiver;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn the_last_spans_reach_the_collector_from_a_current_thread_runtime() {
    // The collector runs on a thread of its own, as a real one runs in a process of its own.
    let (collector, addr) = TraceReceiver::start_on_own_thread(true).unwrap();

    let service = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = format!("http://{addr}");
    let started = Instant::now();
    service.block_on(async {
        let telemetry =
            guestloop_telemetry::init_exporting_to("flush-test", Some(&endpoint)).unwrap();
        tracing::info_span!("the_last_span").in_scope(|| tracing::info!("exiting"));
        telemetry.shutdown().await;
    });
    let took = started.elapsed();

    assert_eq!(collector.spans(), 1, "exported spans");
    let senders: Vec<BTreeSet<String>> =
        collector.traces.lock().unwrap().values().cloned().collect();
    assert_eq!(senders, [BTreeSet::from(["flush-test".to_string()])]);
    // The flush gives up after 5 s; a blocked connection would take all of them.
    assert!(took < Duration::from_secs(3), "the flush took {took:?}");
}

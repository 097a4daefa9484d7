//! A quiet process gives freed memory back too (alloc.rs): mimalloc purges only when it
//! frees another page, so what is freed last before a service goes idle stays resident
//! unless the service asks. Both ways of asking are checked here: at once (at start) and
//! periodically (after a burst).

use guestloop_server::alloc;
use std::time::Duration;

mod common;

use common::{allocate_96_mb, rss_mb};

/// Allocates 96 MB in 2 KB blocks, touches every page, frees them all and then does
/// nothing for `quiet`: the resident memory before, with the blocks, and after.
fn burst_then_quiet(quiet: Duration) -> (f64, f64, f64) {
    let before = rss_mb();
    let blocks = allocate_96_mb();
    let peak = rss_mb();
    drop(std::hint::black_box(blocks));
    std::thread::sleep(quiet);
    (before, peak, rss_mb())
}

/// One test in this binary, so nothing else allocates while it measures; the two cases run
/// in turn.
#[test]
fn an_idle_process_gives_freed_memory_back() {
    alloc::purge_freed_memory_promptly();

    // At once: freed, then released without waiting for anything.
    let (before, peak, _) = burst_then_quiet(Duration::from_millis(50));
    assert!(
        peak - before > 80.0,
        "allocated {before:.1} -> {peak:.1} MB"
    );
    alloc::release_freed_memory();
    let after = rss_mb();
    assert!(
        after - before < 0.5 * (peak - before),
        "RSS {before:.1} MB, {peak:.1} with the blocks, {after:.1} after releasing them"
    );

    // Periodically: a runtime with the releaser running, a burst, then quiet for three of
    // its intervals.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let interval = Duration::from_millis(100);
    let releaser = runtime.spawn(alloc::release_freed_memory_periodically(interval));
    let (before, peak, after) = burst_then_quiet(3 * interval);
    releaser.abort();
    assert!(
        peak - before > 80.0,
        "allocated {before:.1} -> {peak:.1} MB"
    );
    assert!(
        after - before < 0.5 * (peak - before),
        "RSS {before:.1} MB, {peak:.1} with the blocks, {after:.1} after {:?} of quiet",
        3 * interval
    );
}

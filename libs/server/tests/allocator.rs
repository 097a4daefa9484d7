//! The allocator returns freed memory to the system soon (alloc.rs): after a burst of
//! small allocations is freed, the process's resident memory falls back within 100 ms,
//! not after mimalloc v3's default second.

use guestloop_server::alloc;

mod common;

use common::{allocate_96_mb, rss_mb};

/// One test in this binary, so nothing else allocates while it measures.
#[test]
fn freed_memory_leaves_the_process_soon() {
    // Index 15 is the purge delay: mimalloc v3's default for it, 1000 ms, and no other
    // option defaults to 1000.
    assert!(std::env::var_os(alloc::PURGE_DELAY_ENV).is_none());
    assert_eq!(
        alloc::purge_delay_ms(),
        1000,
        "option 15 is not the purge delay"
    );
    alloc::purge_freed_memory_promptly();
    assert_eq!(alloc::purge_delay_ms(), alloc::PURGE_DELAY_MS);

    let before = rss_mb();
    let blocks = allocate_96_mb();
    let peak = rss_mb();
    assert!(
        peak - before > 80.0,
        "allocated {before:.1} -> {peak:.1} MB"
    );
    drop(blocks);
    // mimalloc purges expired pages on its own allocation paths: give it work, as a
    // service's next calls would (1 MB of the same small blocks every 5 ms).
    for _ in 0..20 {
        let churn: Vec<Vec<u8>> = (0..512).map(|i| vec![i as u8; 2048]).collect();
        drop(std::hint::black_box(churn));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let after = rss_mb();
    assert!(
        after - before < 0.5 * (peak - before),
        "RSS {before:.1} MB, {peak:.1} with the blocks, {after:.1} 100 ms after freeing them"
    );
}

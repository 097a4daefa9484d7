//! The process's allocator for every service (and whatever else links this crate): mimalloc
//! instead of glibc malloc. Under load glibc's malloc/free/consolidate were ~15 % of a
//! service's CPU (perf, P1 and P2 in docs/benchmarks), and its per-thread arenas kept
//! freed memory resident after a burst.

// The one place in the workspace with `unsafe`: calls into mimalloc's C API.
#![allow(unsafe_code)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (include/mimalloc.h); the Rust
/// bindings name no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The purge delay services run with, in milliseconds.
pub const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// The environment variable mimalloc reads the same option from.
pub const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Freed memory goes back to the system after 10 ms (mimalloc v2's default) instead of
/// mimalloc v3's one second, unless `MIMALLOC_PURGE_DELAY` says otherwise. P3, a 100,000
/// item import, peaked at 89–96 MB of RSS with 1,000 ms, 80 MB with 100, 68 MB with 10
/// and 60 MB with 0, at the same speed; but 0 costs the hot paths CPU (GetGuest 23 → 26–28
/// µs of guest-profile per call: pages purged at once fault in again), 10 does not (22.5–23
/// µs). docs/benchmarks/README.md has the runs.
pub fn purge_freed_memory_promptly() {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores the value; mimalloc reads the option each time it
    // decides whether to purge, and any value is valid (0 = at once, -1 = never).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

/// The purge delay in force, in milliseconds.
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: reads an option; any index below `_mi_option_last` is valid.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

/// How often an idle service hands freed memory back ([`release_freed_memory_periodically`]).
pub const IDLE_RELEASE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Hands back to the system every freed page mimalloc still holds, delay or not. mimalloc
/// purges only when it frees a page, so what a service frees last before going quiet stays
/// resident: feedback-intake built its classifier's tables at start (300,000 allocations,
/// 5 MB at peak) and then sat idle at 15 MB of anonymous memory, 7 MB with this (P7).
pub fn release_freed_memory() {
    collect(true);
}

/// mimalloc's collection: this thread's empty pages freed, then the arenas (which every
/// thread shares) purged, all of their freed pages if `force`, else those past the delay.
fn collect(force: bool) {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(force) };
}

/// Every `interval`, hands back what was freed more than the purge delay ago, for as long
/// as the task runs: after a burst (an import's answer, a GetKpis over a year) the service
/// goes back to its idle footprint within a second instead of at its next burst. Unlike
/// [`release_freed_memory`] it leaves recently freed pages alone, so a busy service does
/// not fault them in again.
pub async fn release_freed_memory_periodically(interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        collect(false);
    }
}

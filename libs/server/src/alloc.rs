//! The process's allocator for every service (and whatever else links this crate): mimalloc
//! instead of glibc malloc. Under load glibc's malloc/free/consolidate were ~15 % of a
//! service's CPU (perf, P1 and P2 in docs/benchmarks), and its per-thread arenas kept
//! freed memory resident after a burst.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

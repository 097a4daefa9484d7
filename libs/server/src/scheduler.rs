//! The tokio runtime a service binary runs on. Tokio sizes its worker pool by the CPU the
//! container may use (`TOKIO_WORKER_THREADS`, else `available_parallelism`, which honours
//! the cgroup quota), so a pod limited to one CPU gets one worker. One worker runs on the
//! current-thread scheduler instead of a one-thread multi-thread pool: the multi-thread
//! scheduler runs a task woken by the running task next (its LIFO slot), so every response
//! a stream task finishes wakes the connection task at once and goes out in a write of its
//! own; the current-thread scheduler runs woken tasks in order, so the responses finished
//! by one database batch leave in one write per connection. guestloop-bench P1 (A/B/A/B):
//! 1.0 → 0.09 `writev` per GetGuest, guest-profile 30 → 25 µs of CPU per call, 34.0 →
//! 39.3 % of the health ceiling (docs/benchmarks/README.md).

use std::num::NonZeroUsize;
use tokio::runtime::{Builder, Runtime};

/// The runtime for this process: current-thread when it has one worker, else multi-thread.
pub fn runtime() -> std::io::Result<Runtime> {
    let available = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let workers = workers(
        std::env::var("TOKIO_WORKER_THREADS").ok().as_deref(),
        available,
    );
    build(workers)
}

/// Tokio's rule: `TOKIO_WORKER_THREADS`, else the CPUs this process may use. A value that
/// is not a positive number falls back to the CPUs here (tokio itself would panic on it).
fn workers(env: Option<&str>, available: usize) -> usize {
    env.and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(available)
}

fn build(workers: usize) -> std::io::Result<Runtime> {
    if workers == 1 {
        Builder::new_current_thread().enable_all().build()
    } else {
        Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn the_worker_count_follows_tokio_s_rule() {
        let cases = [
            (None, 4, 4),
            (Some("1"), 4, 1),
            (Some(" 3 "), 1, 3),
            (Some("0"), 2, 2),
            (Some("many"), 2, 2),
            (Some(""), 1, 1),
        ];
        for (env, available, expected) in cases {
            assert_eq!(workers(env, available), expected, "{env:?}, {available}");
        }
    }

    #[test]
    fn one_worker_runs_the_current_thread_scheduler() {
        for (workers, flavor) in [
            (1, RuntimeFlavor::CurrentThread),
            (2, RuntimeFlavor::MultiThread),
        ] {
            let runtime = build(workers).unwrap();
            assert_eq!(runtime.handle().runtime_flavor(), flavor, "{workers}");
            assert_eq!(runtime.metrics().num_workers(), workers);
            // Timers and sockets work on both: a service needs both drivers.
            let port = runtime.block_on(async {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                listener.local_addr().unwrap().port()
            });
            assert_ne!(port, 0);
        }
    }
}

//! What every test needs: a real PostgreSQL (a throwaway cluster started as the `postgres`
//! user, shared by the tests of one run, with a fresh database per test), the service role
//! and schema bootstrapped in it, signing keys and tokens, and a small test chain.

pub mod authz;
pub mod board_demo;
pub mod certs;
mod chain;
pub mod grpc;
pub mod history;
mod keys;
pub mod layers;
pub mod otlp;
pub mod platform;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod scenario;
mod scrape;
pub mod sinks;

pub use chain::TEST_CHAIN_TOML;
pub use keys::{TestKeys, keys};
pub use layers::{calling_service_layer, service_layer};
pub use postgres::{Cluster, TestDatabase, test_database};
pub use process::{ServiceProcess, free_port};
pub use scrape::{scrape, sum_of};

/// How much longer the fault tests run: 1 in the README's test command (seconds each),
/// more for the long versions (`scripts/faults-long.sh` sets `GUESTLOOP_FAULT_SCALE`), which
/// multiply their kills, outages, floods and load by it.
pub fn fault_scale() -> u32 {
    std::env::var("GUESTLOOP_FAULT_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

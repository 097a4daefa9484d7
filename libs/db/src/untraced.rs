//! Reading many rows without paying the caller's span once per row.
//!
//! sqlx builds its row streams with `try_stream!`, which instruments the producer with the
//! span current when the stream is made (`in_current_span`): a query through a pool nests
//! three such streams, so every row enters and leaves the caller's RPC span three times. With
//! this platform's subscriber (EnvFilter's scope, the JSON layer, OpenTelemetry's context
//! and end time) an enter and exit costs a few hundred nanoseconds: on GetKpis for a chain's
//! year it was 28 % of the metrics service's CPU (`perf`, docs/benchmarks).
//!
//! `untraced` polls a read with no subscriber, so the streams it makes capture no span. The
//! price: what sqlx would log about that one statement (its debug line, the slow-statement
//! warning) is not logged; the caller's span still times the RPC and its errors are still
//! returned to the caller.

use std::future::Future;
use tracing::instrument::{WithDispatch, WithSubscriber};
use tracing::subscriber::NoSubscriber;

/// `read`, polled without a subscriber: for statements that return many rows.
pub fn untraced<F: Future>(read: F) -> WithDispatch<F> {
    read.with_subscriber(NoSubscriber::default())
}

//! The admin port: Prometheus `/metrics` in the text format. A tiny HTTP/1.1 responder is
//! enough for a scraper and lets tests bind it on port 0 like the gRPC port.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Buckets of every `*_seconds` histogram: RPC and provider latencies, from 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of every `*_lag_seconds` histogram: how late a business clock's work ran (a
/// timer fired, a message picked up) after it was due. The clocks are minutes and hours
/// (15 min for an urgent complaint's first response), so the bounds reach an hour; with
/// the latency buckets every lag past 10 s fell into +Inf and no quantile or alert could
/// tell 11 s from 30 min.
const LAG_BUCKETS: [f64; 15] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// Buckets of every `*_items` histogram: items per batch of a batcher (guestloop_db::batch),
/// powers of two up to the largest `max_batch` configured (1,024, imports).
const ITEM_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

fn builder() -> PrometheusBuilder {
    // The exporter tries its matchers in sorted order: "_lag_seconds" sorts before
    // "_seconds", so a lag histogram gets the lag buckets (tested below).
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_lag_seconds".into()), &LAG_BUCKETS)
        .expect("buckets are non-empty")
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
        .expect("buckets are non-empty")
        .set_buckets_for_metric(Matcher::Suffix("_items".into()), &ITEM_BUCKETS)
        .expect("buckets are non-empty")
}

/// The process-wide recorder, installed on first use (several services in one test process
/// share it). [`crate::ServiceRuntime::build`] calls it first thing, so that what a service
/// registers while it starts (the series it shows at zero before their first event) is
/// recorded rather than dropped by the no-op recorder.
pub(crate) fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = builder().install_recorder().unwrap_or_else(|_| {
                // Another recorder is already installed: keep a private one for rendering.
                PrometheusBuilder::new().build_recorder().handle()
            });
            register_server_metrics();
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// HELP lines for the series every service exports, and the refusal counters at zero from
/// the start: a counter that appears only at its first increment loses that increment to
/// `rate()`/`increase()` (there is no earlier sample), and an alert on a series that does
/// not exist yet cannot tell "none" from "not scraped".
fn register_server_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "grpc_server_requests_total",
        "gRPC calls answered, by service, method and status code (health and reflection included)"
    );
    describe_histogram!(
        "grpc_server_request_duration_seconds",
        Unit::Seconds,
        "Time from a call's arrival to its answer (streams: to the response headers), by service and method"
    );
    describe_counter!(
        "grpc_server_shed_total",
        "Calls refused RESOURCE_EXHAUSTED because grpc.concurrency_limit calls were in flight"
    );
    describe_counter!(
        "grpc_server_refused_dependency_down_total",
        "Calls answered UNAVAILABLE because the database was unreachable"
    );
    describe_counter!(
        "grpc_server_rate_limited_total",
        "Calls refused RESOURCE_EXHAUSTED by the per-caller rate limit (auth.per_caller_rate)"
    );
    describe_counter!(
        "grpc_tls_handshake_failures_total",
        "TLS handshakes on the gRPC listener that failed"
    );
    describe_counter!(
        "grpc_tls_reloads_total",
        "Reloads of the gRPC listener's certificate and key, by outcome"
    );
    describe_gauge!(
        "guestloop_dependency_up",
        "1 while the service's dependency probe (its database, migrated) succeeds, 0 while it fails (NOT_SERVING)"
    );
    for name in [
        "grpc_server_shed_total",
        "grpc_server_refused_dependency_down_total",
        "grpc_server_rate_limited_total",
        "grpc_tls_handshake_failures_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// The recorder keeps every histogram sample until a render or an upkeep folds it into the
/// buckets, and `install_recorder` starts no upkeep: between two scrapes (or forever, with
/// no scraper) memory grew by ~1 MB/s at 20k calls/s (P7 in docs/benchmarks). A thread of
/// its own, because the recorder may be installed before any runtime exists.
fn spawn_upkeep(handle: PrometheusHandle) {
    let _ = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
}

const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut read = 0;
            while read < buf.len() {
                match stream.read(&mut buf[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..read]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match path {
                "/metrics" => ("200 OK", handle.render()),
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lag_histograms_reach_an_hour_latencies_stop_at_ten_seconds_batches_at_1024_items() {
        let recorder = super::builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("x_lag_seconds").record(42.0);
            metrics::histogram!("x_duration_seconds").record(0.02);
            metrics::histogram!("x_batch_items").record(5.0);
        });
        let body = handle.render();
        assert!(
            body.contains("x_lag_seconds_bucket{le=\"3600\"} 1"),
            "{body}"
        );
        assert!(body.contains("x_lag_seconds_bucket{le=\"30\"} 0"), "{body}");
        assert!(
            !body.contains("x_lag_seconds_bucket{le=\"0.001\"}"),
            "{body}"
        );
        assert!(
            body.contains("x_duration_seconds_bucket{le=\"0.025\"} 1"),
            "{body}"
        );
        assert!(
            !body.contains("x_duration_seconds_bucket{le=\"3600\"}"),
            "{body}"
        );
        assert!(body.contains("x_batch_items_bucket{le=\"8\"} 1"), "{body}");
        assert!(body.contains("x_batch_items_bucket{le=\"4\"} 0"), "{body}");
        assert!(
            body.contains("x_batch_items_bucket{le=\"1024\"} 1"),
            "{body}"
        );
    }
}

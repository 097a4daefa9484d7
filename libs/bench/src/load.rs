//! The load generator: calls spread over several HTTP/2 connections (one tonic channel
//! serialises on one connection and caps out long before a server does), either closed
//! loop (a fixed number of calls in flight, each started when the last one ended) or open
//! loop (calls started on a fixed schedule whatever the server does, latency counted from
//! the scheduled start, so a stalled server cannot hide its stall: no coordinated omission).

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// One call of the subject: given a connection and a sequence number unique in the run.
pub type Call =
    Arc<dyn Fn(Channel, u64) -> BoxFuture<'static, Result<(), tonic::Status>> + Send + Sync>;

/// Every call ever made by this process gets its own number, so calls that must be
/// unique (an external id) stay unique across phases.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// `n` separate HTTP/2 connections to `endpoint`.
pub async fn channels(endpoint: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let channel = Endpoint::from_shared(endpoint.to_string())?
            .tcp_nodelay(true)
            .http2_adaptive_window(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect()
            .await?;
        out.push(channel);
    }
    Ok(out)
}

/// One connection for a long streaming call (a bulk import): no per-call time limit.
pub async fn bulk_channel(endpoint: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(endpoint.to_string())?
        .tcp_nodelay(true)
        .http2_adaptive_window(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?)
}

/// What one phase of load saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: u64,
    /// Failed calls by gRPC code name (client-side overflow of the open loop is `client_overflow`).
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Latencies of successful calls, microseconds.
    pub latency: Histogram<u64>,
}

/// The figures a report keeps of an [`Outcome`].
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub calls_per_s: f64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub mean_ms: f64,
}

impl Outcome {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
            latency: histogram(),
        }
    }

    fn merge(&mut self, other: &Outcome) {
        self.ok += other.ok;
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
    }

    fn record(&mut self, result: Result<(), tonic::Status>, latency: Duration) {
        match result {
            Ok(()) => {
                self.ok += 1;
                self.latency.saturating_record(latency.as_micros() as u64);
            }
            Err(status) => *self.errors.entry(code_name(status.code())).or_default() += 1,
        }
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn summary(&self) -> Summary {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        Summary {
            calls_per_s: self.rate(),
            ok: self.ok,
            errors: self.errors.clone(),
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            mean_ms: self.latency.mean() / 1000.0,
        }
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn code_name(code: tonic::Code) -> String {
    format!("{code:?}")
}

/// `concurrency` calls in flight over `channels` for `duration`.
pub async fn closed_loop(
    channels: &[Channel],
    concurrency: usize,
    duration: Duration,
    call: Call,
) -> Outcome {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let channel = channels[i % channels.len()].clone();
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut out = Outcome::new();
            while Instant::now() < deadline {
                let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                let result = call(channel.clone(), seq).await;
                out.record(result, t0.elapsed());
            }
            out
        }));
    }
    let mut total = Outcome::new();
    for w in workers {
        if let Ok(out) = w.await {
            total.merge(&out);
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Calls started at `rate` per second for `duration`, each timed from when it was due.
/// At most `max_in_flight` are outstanding; a call due beyond that is counted as
/// `client_overflow` rather than queued (the server is past saturation by then).
pub async fn open_loop(
    channels: &[Channel],
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    call: Call,
) -> Outcome {
    let total_calls = (rate * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-9));
    let in_flight = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let mut overflow = 0u64;
    for i in 0..total_calls {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        if in_flight.load(Ordering::Relaxed) >= max_in_flight as u64 {
            overflow += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let channel = channels[i as usize % channels.len()].clone();
        let (call, tx, in_flight) = (call.clone(), tx.clone(), in_flight.clone());
        tokio::spawn(async move {
            let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let result = call(channel, seq).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send((result, due.elapsed()));
        });
    }
    drop(tx);
    let mut out = Outcome::new();
    while let Some((result, latency)) = rx.recv().await {
        out.record(result, latency);
    }
    if overflow > 0 {
        out.errors.insert("client_overflow".into(), overflow);
    }
    // Offered over `duration`; the tail of calls still in flight at its end is waited for.
    out.elapsed = duration;
    out
}

/// Adds the bearer token to a request.
pub fn authorized<T>(
    message: T,
    bearer: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    request
}

//! Per-call time limits: the caller's `grpc-timeout` or the server's own limit, whichever is
//! shorter. The deadline is put on the request so handlers can pass what is left of it to
//! the calls they make; a call that runs out answers DEADLINE_EXCEEDED.

use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// When the current call must be answered by; found in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

impl Deadline {
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    limit: Duration,
    long_limit: Duration,
    /// Full method paths ("/pkg.Service/Method") that get `long_limit` instead.
    long_running: Arc<HashSet<String>>,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            long_limit: limit,
            long_running: Arc::default(),
        }
    }

    /// Methods such as a bulk import that may legitimately run longer than `limit`.
    pub fn with_long_running(mut self, long_limit: Duration, methods: &[String]) -> Self {
        self.long_limit = long_limit;
        self.long_running = Arc::new(methods.iter().cloned().collect());
        self
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            limit: self.limit,
            long_limit: self.long_limit,
            long_running: self.long_running.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
    limit: Duration,
    long_limit: Duration,
    long_running: Arc<HashSet<String>>,
}

impl<S, B, R> tower::Service<http::Request<B>> for DeadlineService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let server_limit = if self.long_running.contains(request.uri().path()) {
            self.long_limit
        } else {
            self.limit
        };
        let limit = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(server_limit, |t| t.min(server_limit));
        request
            .extensions_mut()
            .insert(Deadline(Instant::now() + limit));
        let future = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, future).await {
                Ok(result) => result,
                Err(_) => Ok(tonic::Status::deadline_exceeded("deadline exceeded").into_http()),
            }
        })
    }
}

/// Parses the gRPC wire format: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wire_timeouts() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
    }
}

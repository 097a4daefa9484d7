//! Fail fast while the database is known to be down. Once the health watcher's probe has
//! failed, a call would only wait for a connection until `database.acquire_timeout` and
//! then fail; this answers UNAVAILABLE at once instead, so clients back off or go to
//! another replica, and the service holds no queue of doomed calls. Health and reflection
//! pass. Draining for shutdown does not close the gate: in-flight clients finish.

use futures::FutureExt;
use futures::future::{BoxFuture, Either};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

#[derive(Debug, Clone)]
pub struct DependencyGateLayer {
    down: Arc<AtomicBool>,
}

impl DependencyGateLayer {
    pub(crate) fn new(down: Arc<AtomicBool>) -> Self {
        Self { down }
    }
}

impl<S> tower::Layer<S> for DependencyGateLayer {
    type Service = DependencyGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DependencyGate {
            inner,
            down: self.down.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DependencyGate<S> {
    inner: S,
    down: Arc<AtomicBool>,
}

impl<S, B, R> tower::Service<http::Request<B>> for DependencyGate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Send + 'static,
    B: http_body::Body + Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    // No allocation on the open path: this sits in front of every call.
    type Future = Either<BoxFuture<'static, Result<Self::Response, Self::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if self.down.load(Ordering::Relaxed) && !request.uri().path().starts_with("/grpc.") {
            metrics::counter!("grpc_server_refused_dependency_down_total").increment(1);
            let status =
                tonic::Status::unavailable("the database is unreachable; retry with backoff");
            return Either::Left(Box::pin(
                crate::refuse::refuse(request.into_body(), status).map(Ok),
            ));
        }
        Either::Right(self.inner.call(request))
    }
}

//! Fail fast while the database is known to be down. Once the health watcher's probe has
//! failed, a call would only wait for a connection until `database.acquire_timeout` and
//! then fail; this answers UNAVAILABLE at once instead, so clients back off or go to
//! another replica, and the service holds no queue of doomed calls. Health and reflection
//! pass. Draining for shutdown does not close the gate: in-flight clients finish.
//!
//! Calls already in flight when the probe fails are answered UNAVAILABLE at that moment
//! too. Before, they waited for a connection until the acquire timeout — twice over for a
//! call queued behind a group-commit batch that was itself waiting (4.0–4.6 s with a 2 s
//! timeout in the outage test; ~10 s with the default 5 s). An unanswered call is not an
//! acknowledged one: if its transaction did commit after all, the client's retry with the
//! same key is a replay.

use futures::FutureExt;
use futures::future::{BoxFuture, Either};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::sync::Notify;

/// Whether the database is down, as the health watcher last saw it, and a wake-up for the
/// calls in flight when it goes down.
#[derive(Debug, Default)]
pub(crate) struct DependencySignal {
    down: AtomicBool,
    went_down: Arc<Notify>,
}

impl DependencySignal {
    pub(crate) fn set_down(&self, down: bool) {
        let was = self.down.swap(down, Ordering::AcqRel);
        if down && !was {
            self.went_down.notify_waiters();
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }
}

#[derive(Debug, Clone)]
pub struct DependencyGateLayer {
    signal: Arc<DependencySignal>,
}

impl DependencyGateLayer {
    pub(crate) fn new(signal: Arc<DependencySignal>) -> Self {
        Self { signal }
    }
}

impl<S> tower::Layer<S> for DependencyGateLayer {
    type Service = DependencyGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DependencyGate {
            inner,
            signal: self.signal.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DependencyGate<S> {
    inner: S,
    signal: Arc<DependencySignal>,
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
    type Future =
        Either<BoxFuture<'static, Result<Self::Response, Self::Error>>, Guarded<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let exempt = request.uri().path().starts_with("/grpc.");
        if self.signal.is_down() && !exempt {
            metrics::counter!("grpc_server_refused_dependency_down_total").increment(1);
            let status =
                tonic::Status::unavailable("the database is unreachable; retry with backoff");
            return Either::Left(Box::pin(
                crate::refuse::refuse(request.into_body(), status).map(Ok),
            ));
        }
        let went_down = (!exempt).then(|| self.signal.went_down.clone().notified_owned());
        Either::Right(Guarded {
            inner: self.inner.call(request),
            went_down,
            signal: self.signal.clone(),
        })
    }
}

pin_project_lite::pin_project! {
    /// An admitted call, answered UNAVAILABLE if the database goes down before it is.
    pub struct Guarded<F> {
        #[pin]
        inner: F,
        #[pin]
        went_down: Option<tokio::sync::futures::OwnedNotified>,
        signal: Arc<DependencySignal>,
    }
}

impl<F, R, E> Future for Guarded<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
    R: Default,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out);
        }
        let Some(went_down) = this.went_down.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        // Polling registers the wake-up; the flag covers a flip just before that.
        if went_down.poll(cx).is_ready() || this.signal.is_down() {
            metrics::counter!("grpc_server_refused_dependency_down_total").increment(1);
            let status = tonic::Status::unavailable(
                "the database became unreachable during the call; retry with backoff",
            );
            return Poll::Ready(Ok(status.into_http()));
        }
        Poll::Pending
    }
}

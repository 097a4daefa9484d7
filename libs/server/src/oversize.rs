//! A request message over the size limit answers RESOURCE_EXHAUSTED, gRPC's code for it.
//! tonic refuses such a message while decoding with OUT_OF_RANGE (in the trailers of a
//! unary call, or in the headers of a trailers-only answer); this layer turns exactly that
//! refusal, recognised by tonic's own message, into RESOURCE_EXHAUSTED, so clients' retry
//! policies and our metrics see the right code. Handlers' own OUT_OF_RANGE answers are left
//! alone.

use futures::TryFutureExt;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

#[derive(Debug, Clone, Copy, Default)]
pub struct OversizeLayer;

impl<S> tower::Layer<S> for OversizeLayer {
    type Service = Oversize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Oversize { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Oversize<S> {
    inner: S,
}

type Wrap<R> = fn(http::Response<R>) -> http::Response<OversizeTrailers<R>>;

impl<S, B, R> tower::Service<http::Request<B>> for Oversize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = http::Response<OversizeTrailers<R>>;
    type Error = S::Error;
    type Future = futures::future::MapOk<S::Future, Wrap<R>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.inner.call(request).map_ok(wrap as Wrap<R>)
    }
}

fn wrap<R>(mut response: http::Response<R>) -> http::Response<OversizeTrailers<R>> {
    rewrite(response.headers_mut());
    response.map(|inner| OversizeTrailers { inner })
}

pin_project_lite::pin_project! {
    /// The response body, with its trailers checked on the way out.
    pub struct OversizeTrailers<B> {
        #[pin]
        inner: B,
    }
}

impl<B: Body> Body for OversizeTrailers<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx).map(|frame| {
            frame.map(|result| {
                result.map(|frame| match frame.into_trailers() {
                    Ok(mut trailers) => {
                        rewrite(&mut trailers);
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// OUT_OF_RANGE with tonic's "too large" message becomes RESOURCE_EXHAUSTED.
fn rewrite(map: &mut HeaderMap) {
    let out_of_range = map
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    let too_large = out_of_range
        && map
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            // grpc-message is percent-encoded; tonic encodes spaces too.
            .is_some_and(|m| m.replace("%20", " ").starts_with(TONIC_TOO_LARGE));
    if too_large {
        map.insert(
            "grpc-status",
            HeaderValue::from(tonic::Code::ResourceExhausted as i32),
        );
    }
}

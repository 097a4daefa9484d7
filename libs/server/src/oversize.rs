//! A request message over the size limit answers RESOURCE_EXHAUSTED, gRPC's code for it.
//! tonic refuses such a message while decoding with OUT_OF_RANGE (in the trailers of a
//! unary call, or in the headers of a trailers-only answer); this layer turns exactly that
//! refusal, recognised by tonic's own message, into RESOURCE_EXHAUSTED, so clients' retry
//! policies and our metrics see the right code. Handlers' own OUT_OF_RANGE answers are left
//! alone. A message nested deeper than prost decodes (100 levels) is the same kind of
//! refusal — too much of something, not a fault of ours — but tonic answers it INTERNAL
//! like any decode error; that one, recognised by prost's message, becomes
//! RESOURCE_EXHAUSTED too.

use futures::TryFutureExt;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";
const PROST_TOO_DEEP: &str = "recursion limit reached";

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

/// OUT_OF_RANGE with tonic's "too large" message, and INTERNAL with prost's "recursion
/// limit", become RESOURCE_EXHAUSTED.
fn rewrite(map: &mut HeaderMap) {
    let code = map.get("grpc-status").map(|v| v.as_bytes());
    if !matches!(code, Some(b"11") | Some(b"13")) {
        return;
    }
    // grpc-message is percent-encoded; tonic encodes spaces too.
    let message = map
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let refused = match code {
        Some(b"11") => message.starts_with(TONIC_TOO_LARGE),
        _ => message.contains(PROST_TOO_DEEP),
    };
    if refused {
        map.insert(
            "grpc-status",
            HeaderValue::from(tonic::Code::ResourceExhausted as i32),
        );
    }
}

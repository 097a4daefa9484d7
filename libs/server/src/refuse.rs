//! Refusing a call without breaking its connection. Answering before the request's body is
//! read makes HTTP/2 reset the stream, and the client's DATA frames already on the wire then
//! land on a closed stream; h2 counts those and, past its limit, closes the whole connection
//! (GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames") — every admitted call on it fails too.
//! Seen in the overload test: 256 calls in flight on one connection against a limit of 8
//! broke the connection hundreds of times in 3 s; with the stream limit lowered to 100 but
//! no drain, 3 of 3 runs still broke it. A refusal therefore reads (and drops) the small
//! unary body first, bounded in bytes and time.

use http_body::Body;
use std::pin::pin;
use std::time::Duration;

/// Bytes read at most before answering anyway (a unary request is far smaller).
const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Time waited at most for the rest of a body.
const DRAIN_MAX_WAIT: Duration = Duration::from_millis(200);

/// Reads `body` to its end (or the bounds above), then answers `status`.
pub(crate) async fn refuse<B: Body, R: Default>(
    body: B,
    status: tonic::Status,
) -> http::Response<R> {
    let _ = tokio::time::timeout(DRAIN_MAX_WAIT, drain(body)).await;
    status.into_http()
}

async fn drain<B: Body>(body: B) {
    let mut body = pin!(body);
    let mut read = 0usize;
    while read < DRAIN_MAX_BYTES {
        match std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read += bytes::Buf::remaining(data);
                }
            }
            _ => return,
        }
    }
}

//! The span exporter the batch processor hands its batches to: each batch encoded once
//! (encode.rs) and sent as OTLP/gRPC `TraceService/Export` over a lazily connected tonic
//! channel, with the settings of the OpenTelemetry exporter it replaces:
//! `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (ms, default 10 s) bounds each attempt,
//! `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` (`k=v,k2=v2`, values percent-decoded) go with
//! every request, and a transient failure is tried again up to three times (100, 200,
//! 400 ms apart) within the timeout.

use super::encode::{self, EncodedResource};
use bytes::{Buf, BufMut, Bytes};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
];

pub struct OtlpSpanExporter {
    channel: Channel,
    headers: MetadataMap,
    timeout: Duration,
    resource: EncodedResource,
    stopped: AtomicBool,
}

impl std::fmt::Debug for OtlpSpanExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers often carry a collector's credentials: never printed.
        f.debug_struct("OtlpSpanExporter")
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl OtlpSpanExporter {
    /// An exporter to `endpoint` (e.g. `http://otel-collector:4317`), configured from the
    /// environment. Connects on first use; must be called inside a Tokio runtime.
    pub fn from_env(endpoint: &str) -> Result<Self, String> {
        let timeout = env_millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| env_millis("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .unwrap_or(Duration::from_secs(10));
        let mut headers = MetadataMap::new();
        for var in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Ok(list) = std::env::var(var) {
                add_headers(&mut headers, &list).map_err(|e| format!("{var}: {e}"))?;
            }
        }
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| format!("OTLP endpoint {endpoint:?}: {e}"))?
            .timeout(timeout)
            .connect_timeout(timeout)
            .connect_lazy();
        Ok(OtlpSpanExporter {
            channel,
            headers,
            timeout,
            resource: EncodedResource::default(),
            stopped: AtomicBool::new(false),
        })
    }

    async fn send(&self, body: Bytes) -> Result<(), Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.headers.clone();
        request.set_timeout(self.timeout);
        grpc.unary(request, PathAndQuery::from_static(EXPORT), PreEncoded)
            .await
            .map(|_| ())
    }
}

impl SpanExporter for OtlpSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.stopped.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let mut buf = Vec::with_capacity(batch.len() * 256);
        encode::export_request(&batch, &self.resource, &mut buf);
        drop(batch);
        let body = Bytes::from(buf);
        let started = Instant::now();
        let mut delays = RETRY_DELAYS.iter();
        loop {
            let status = match self.send(body.clone()).await {
                Ok(()) => return Ok(()),
                Err(status) => status,
            };
            match delays.next() {
                Some(delay)
                    if transient(status.code()) && started.elapsed() + *delay < self.timeout =>
                {
                    // The batch processor runs exports on a thread of its own.
                    std::thread::sleep(*delay);
                }
                // The message is left out: a collector may echo credentials in it.
                _ => {
                    return Err(OTelSdkError::InternalFailure(format!(
                        "OTLP export of spans failed: {:?}",
                        status.code()
                    )));
                }
            }
        }
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = EncodedResource::new(resource);
    }
}

/// What OTLP's exporter specification calls retryable.
fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss
    )
}

fn env_millis(var: &str) -> Option<Duration> {
    let ms: u64 = std::env::var(var).ok()?.trim().parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// `k=v,k2=v2` as OTLP's exporters read it: pairs trimmed, values percent-decoded. An
/// error names the entry or the key, never a value (values are often credentials).
fn add_headers(headers: &mut MetadataMap, list: &str) -> Result<(), String> {
    let pairs = list.split(',').map(str::trim).filter(|p| !p.is_empty());
    for (n, pair) in pairs.enumerate() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("entry {} is not key=value", n + 1))?;
        let key: AsciiMetadataKey = key
            .trim()
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| format!("{:?} is not a header name", key.trim()))?;
        let value: AsciiMetadataValue =
            percent_decode(value.trim())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("the value of {key} is not a header value"))?;
        headers.insert(key, value);
    }
    Ok(())
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// A gRPC codec whose request is already protobuf and whose response is skipped (an
/// `ExportTraceServiceResponse` says at most how many spans the collector rejected).
#[derive(Debug, Clone, Copy, Default)]
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        PreEncoded
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

#[cfg(test)]
mod tests;

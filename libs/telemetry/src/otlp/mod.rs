//! OTLP/gRPC export of finished spans, written for the cost per span at 100 % export:
//! `encode` turns a batch into the request's protobuf bytes, `export` sends them.

mod encode;
mod export;

pub use export::OtlpSpanExporter;

//! The receiver reads what OpenTelemetry's own generated client sends: every span counted,
//! each trace id with the services that sent spans of it, whatever else the spans carry.

use guestloop_testkit::otlp::TraceReceiver;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A span with a full set of attributes (strings, numbers, booleans), as services send.
fn span(trace: u8, n: u8) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![n; 8],
        name: "feedback.v1.FeedbackIntakeService/SubmitFeedback".into(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: vec![
            attribute("rpc.method", any_value::Value::StringValue("Submit".into())),
            attribute("rpc.grpc.status_code", any_value::Value::IntValue(0)),
            attribute("sampled", any_value::Value::BoolValue(true)),
        ],
        ..Default::default()
    }
}

fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                attribute("host.name", any_value::Value::StringValue("pod-1".into())),
                attribute(
                    "service.name",
                    any_value::Value::StringValue(service.into()),
                ),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn counts_spans_and_follows_traces_across_services() {
    let cases = [(false, 0usize), (true, 2)];
    for (keep_traces, traces_kept) in cases {
        let (receiver, addr) = TraceReceiver::start(keep_traces).await.unwrap();
        let mut client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        client
            .export(ExportTraceServiceRequest {
                resource_spans: vec![
                    resource_spans("feedback-intake", vec![span(1, 1), span(1, 2), span(2, 3)]),
                    resource_spans("metrics", vec![span(1, 4)]),
                ],
            })
            .await
            .unwrap();
        client
            .export(ExportTraceServiceRequest {
                resource_spans: vec![resource_spans("notification", vec![span(2, 5)])],
            })
            .await
            .unwrap();
        assert_eq!(receiver.spans(), 5, "keep_traces {keep_traces}");
        let traces = receiver.traces.lock().unwrap().clone();
        assert_eq!(traces.len(), traces_kept, "keep_traces {keep_traces}");
        if keep_traces {
            let services = |t: u8| -> Vec<String> {
                traces[&format!("{t:02x}").repeat(16)]
                    .iter()
                    .cloned()
                    .collect()
            };
            assert_eq!(services(1), ["feedback-intake", "metrics"]);
            assert_eq!(services(2), ["feedback-intake", "notification"]);
        }
    }
}

//! The per-RPC Prometheus series: calls by service, method and gRPC code
//! (`grpc_server_requests_total`) and latency by service and method
//! (`grpc_server_request_duration_seconds`).
//!
//! Each method's handles are registered once and kept here, so a call records with one map
//! look-up instead of building two metric keys (three strings, a code name, two label
//! lists, two registry look-ups) every time: about 4 % of guest-profile's CPU per GetGuest
//! (guestloop-bench P1, docs/benchmarks/README.md).
//!
//! The method comes from the request's path, which the caller chooses. Only the methods
//! this process serves (read from the API's descriptors at start) get series of their own;
//! any other path is counted as `service="unknown", method="unknown"`, whatever it was
//! answered (UNIMPLEMENTED, or UNAUTHENTICATED, RESOURCE_EXHAUSTED and UNAVAILABLE from the
//! layers that answer before the method is looked up), so that a caller cannot grow
//! /metrics by inventing method names.

use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The label a path gets when it is no method of this process.
const UNKNOWN: &str = "unknown";

/// gRPC's status codes are 0 (OK) to 16 (UNAUTHENTICATED); anything else is UNKNOWN (2),
/// as tonic reads it.
const CODES: usize = 17;
const UNKNOWN_CODE: usize = 2;

/// One method's series, registered the first time a call records into them, so /metrics
/// lists only the methods called and the codes they answered.
pub(crate) struct MethodSeries {
    service: String,
    method: String,
    requests: [OnceLock<Counter>; CODES],
    duration: OnceLock<Histogram>,
}

impl MethodSeries {
    fn new(service: &str, method: &str) -> Self {
        Self {
            service: service.to_string(),
            method: method.to_string(),
            requests: std::array::from_fn(|_| OnceLock::new()),
            duration: OnceLock::new(),
        }
    }

    /// Records one call that ended with gRPC status `code`.
    pub(crate) fn record(&self, code: i32, elapsed: Duration) {
        let code = usize::try_from(code)
            .ok()
            .filter(|c| *c < CODES)
            .unwrap_or(UNKNOWN_CODE);
        self.requests[code]
            .get_or_init(|| {
                let name = format!("{:?}", tonic::Code::from_i32(code as i32));
                metrics::counter!("grpc_server_requests_total", &self.labels(Some(name)))
            })
            .increment(1);
        self.duration
            .get_or_init(|| {
                metrics::histogram!("grpc_server_request_duration_seconds", &self.labels(None))
            })
            .record(elapsed.as_secs_f64());
    }

    /// service, method and, for the call counter, the code.
    fn labels(&self, code: Option<String>) -> Vec<(&'static str, String)> {
        let mut labels = vec![
            ("service", self.service.clone()),
            ("method", self.method.clone()),
        ];
        labels.extend(code.map(|c| ("code", c)));
        labels
    }
}

/// The series of every method this process serves, known from the start, so a call looks
/// its method up without a lock; cheap to clone.
#[derive(Clone)]
pub struct RpcMetrics {
    inner: Arc<Registered>,
}

struct Registered {
    /// By full path ("/pkg.Service/Method").
    methods: HashMap<Box<str>, Arc<MethodSeries>>,
    unknown: Arc<MethodSeries>,
}

impl std::fmt::Debug for RpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcMetrics")
            .field("methods", &self.inner.methods.len())
            .finish()
    }
}

impl RpcMetrics {
    /// Series for these full method paths; every other path is counted as unknown.
    pub fn new(served: impl IntoIterator<Item = String>) -> Self {
        let methods = served
            .into_iter()
            .map(|path| {
                let (service, method) = split_path(&path);
                let series = Arc::new(MethodSeries::new(service, method));
                (path.into_boxed_str(), series)
            })
            .collect();
        Self {
            inner: Arc::new(Registered {
                methods,
                unknown: Arc::new(MethodSeries::new(UNKNOWN, UNKNOWN)),
            }),
        }
    }

    /// The series a call to `path` records into, looked up when the call starts so the
    /// call need not keep its path until it ends.
    pub(crate) fn method(&self, path: &str) -> Arc<MethodSeries> {
        let inner = &self.inner;
        Arc::clone(inner.methods.get(path).unwrap_or(&inner.unknown))
    }
}

/// "/pkg.Service/Method" → ("pkg.Service", "Method").
pub(crate) fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

/// The full paths of every method of these services (full names, "pkg.Service"), as the
/// encoded descriptor sets describe them.
pub(crate) fn methods_of(services: &[String], descriptor_sets: &[&[u8]]) -> Vec<String> {
    use prost::Message;
    let mut paths = Vec::new();
    for set in descriptor_sets {
        // Compiled into the binary: one that does not decode is a broken build, and
        // counting every call as unknown would hide it.
        let set = prost_types::FileDescriptorSet::decode(*set)
            .expect("a compiled-in descriptor set decodes");
        for file in &set.file {
            for service in &file.service {
                let full = match file.package() {
                    "" => service.name().to_string(),
                    package => format!("{package}.{}", service.name()),
                };
                if services.contains(&full) {
                    paths.extend(
                        service
                            .method
                            .iter()
                            .map(|m| format!("/{full}/{}", m.name())),
                    );
                }
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    const SVC: &str = "guestloop.guestprofile.v1.GuestProfileService";
    const GET: &str = "/guestloop.guestprofile.v1.GuestProfileService/GetGuest";

    /// The /metrics text after recording `calls` (path, code) with a fresh recorder, for a
    /// process that serves GetGuest only.
    fn render(calls: &[(&str, i32)]) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let rpc = RpcMetrics::new([GET.to_string()]);
            for (path, code) in calls {
                rpc.method(path).record(*code, Duration::from_millis(1));
            }
        });
        handle.render()
    }

    fn count(body: &str, service: &str, method: &str, code: &str) -> Option<u64> {
        let series = format!(
            "grpc_server_requests_total{{service=\"{service}\",method=\"{method}\",code=\"{code}\"}}"
        );
        body.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map(|v| v.trim().parse().unwrap())
    }

    #[test]
    fn calls_are_counted_by_method_and_code() {
        let body = render(&[(GET, 0), (GET, 0), (GET, 5), (GET, 0), (GET, 99), (GET, -1)]);
        // (code, count): a code outside gRPC's is UNKNOWN, as tonic reads it.
        let cases = [
            ("Ok", Some(3)),
            ("NotFound", Some(1)),
            ("Unknown", Some(2)),
            ("Internal", None),
        ];
        for (code, want) in cases {
            assert_eq!(count(&body, SVC, "GetGuest", code), want, "{code}\n{body}");
        }
        let latency = format!(
            "grpc_server_request_duration_seconds_count{{service=\"{SVC}\",method=\"GetGuest\"}} 6"
        );
        assert!(body.contains(&latency), "{body}");
    }

    #[test]
    fn paths_this_process_does_not_serve_are_one_unknown_series() {
        // Invented methods, under an invented service and under a served one, answered as
        // the layers before the method look-up answer them.
        let invented: Vec<String> = (0..300)
            .flat_map(|n| [format!("/made.Up/Method{n}"), format!("/{SVC}/Invented{n}")])
            .collect();
        let codes = [12, 16, 8, 14];
        let calls: Vec<(&str, i32)> = invented
            .iter()
            .zip(codes.iter().cycle())
            .map(|(p, c)| (p.as_str(), *c))
            .chain([(GET, 0)])
            .collect();
        let body = render(&calls);
        // (service, method, code, count)
        let cases = [
            ("unknown", "unknown", "Unimplemented", Some(150)),
            ("unknown", "unknown", "Unauthenticated", Some(150)),
            ("unknown", "unknown", "ResourceExhausted", Some(150)),
            ("unknown", "unknown", "Unavailable", Some(150)),
            (SVC, "GetGuest", "Ok", Some(1)),
            ("made.Up", "Method0", "Unimplemented", None),
            (SVC, "Invented1", "Unauthenticated", None),
        ];
        for (service, method, code, want) in cases {
            let got = count(&body, service, method, code);
            assert_eq!(got, want, "{service}/{method} {code}\n{body}");
        }
        let series = body
            .lines()
            .filter(|l| l.starts_with("grpc_server_requests_total{"))
            .count();
        assert_eq!(series, 5, "{body}");
    }

    #[test]
    fn the_served_methods_come_from_the_descriptors() {
        let services = [
            "guestloop.guestprofile.v1.GuestProfileService".to_string(),
            "grpc.health.v1.Health".to_string(),
            "not.a.Service".to_string(),
        ];
        let sets = [
            guestloop_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ];
        let methods = methods_of(&services, &sets);
        // (path, served)
        let cases = [
            (GET, true),
            (
                "/guestloop.guestprofile.v1.GuestProfileService/CreateGuest",
                true,
            ),
            ("/grpc.health.v1.Health/Check", true),
            ("/grpc.health.v1.Health/Watch", true),
            (
                "/guestloop.feedback.v1.FeedbackIntakeService/SubmitFeedback",
                false,
            ),
            ("/not.a.Service/Anything", false),
        ];
        for (path, served) in cases {
            assert_eq!(
                methods.iter().any(|m| m == path),
                served,
                "{path}: {methods:?}"
            );
        }
    }

    #[test]
    fn splits_grpc_paths() {
        // (path, service, method)
        let cases = [
            (GET, SVC, "GetGuest"),
            ("/no-method", "no-method", ""),
            ("", "", ""),
        ];
        for (path, service, method) in cases {
            assert_eq!(split_path(path), (service, method), "{path}");
        }
    }
}

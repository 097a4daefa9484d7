//! The per-RPC Prometheus series: calls by service, method and gRPC code
//! (`grpc_server_requests_total`) and latency by service and method
//! (`grpc_server_request_duration_seconds`).
//!
//! Each method's handles are registered once and kept here, so a call records with one map
//! look-up instead of building two metric keys (three strings, a code name, two label
//! lists, two registry look-ups) every time: about 4 % of guest-profile's CPU per GetGuest
//! (guestloop-bench P1, docs/benchmarks/README.md).
//!
//! The method comes from the request's path, which the caller chooses. A path no service
//! here answers (UNIMPLEMENTED) is counted under `service="unknown", method="unknown"`, and
//! so is any path past [`MAX_METHODS`] distinct ones, so that a caller cannot grow /metrics
//! without bound by inventing method names.

use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// Methods with series of their own at most; far more than the services here expose.
pub const MAX_METHODS: usize = 256;

/// The label a path gets when it is no method of this process (or one too many).
const UNKNOWN: &str = "unknown";

/// gRPC's status codes are 0 (OK) to 16 (UNAUTHENTICATED).
const CODES: usize = 17;
const UNIMPLEMENTED: i32 = 12;

/// One method's series; a code's counter is registered the first time a call ends with it,
/// so /metrics lists only the codes a method has answered.
struct MethodSeries {
    service: String,
    method: String,
    requests: [OnceLock<Counter>; CODES],
    duration: Histogram,
}

impl MethodSeries {
    fn new(service: &str, method: &str) -> Self {
        let labels = [
            ("service", service.to_string()),
            ("method", method.to_string()),
        ];
        Self {
            service: service.to_string(),
            method: method.to_string(),
            requests: std::array::from_fn(|_| OnceLock::new()),
            duration: metrics::histogram!("grpc_server_request_duration_seconds", &labels),
        }
    }

    fn record(&self, code: i32, elapsed: Duration) {
        self.requests(code).increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }

    fn requests(&self, code: i32) -> Counter {
        let Some(slot) = usize::try_from(code)
            .ok()
            .and_then(|c| self.requests.get(c))
        else {
            // Not a gRPC code: counted as it came, without a handle kept for it.
            return self.counter(&format!("Unknown({code})"));
        };
        slot.get_or_init(|| self.counter(&format!("{:?}", tonic::Code::from_i32(code))))
            .clone()
    }

    fn counter(&self, code: &str) -> Counter {
        let labels = [
            ("service", self.service.clone()),
            ("method", self.method.clone()),
            ("code", code.to_string()),
        ];
        metrics::counter!("grpc_server_requests_total", &labels)
    }
}

/// Every method's series this process has recorded; cheap to clone.
#[derive(Clone, Default)]
pub struct RpcMetrics {
    inner: Arc<Registered>,
}

#[derive(Default)]
struct Registered {
    methods: RwLock<HashMap<Box<str>, Arc<MethodSeries>>>,
    unknown: OnceLock<Arc<MethodSeries>>,
}

impl std::fmt::Debug for RpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let methods = self
            .inner
            .methods
            .read()
            .map(|m| m.len())
            .unwrap_or_default();
        f.debug_struct("RpcMetrics")
            .field("methods", &methods)
            .finish()
    }
}

impl RpcMetrics {
    /// Records one call to `path` ("/pkg.Service/Method") that ended with `code`.
    pub fn record(&self, path: &str, code: i32, elapsed: Duration) {
        self.series(path, code).record(code, elapsed);
    }

    fn series(&self, path: &str, code: i32) -> Arc<MethodSeries> {
        let known = self
            .inner
            .methods
            .read()
            .ok()
            .and_then(|m| m.get(path).cloned());
        if let Some(series) = known {
            return series;
        }
        if code == UNIMPLEMENTED {
            return self.unknown();
        }
        let Ok(mut methods) = self.inner.methods.write() else {
            return self.unknown();
        };
        if let Some(series) = methods.get(path) {
            return series.clone();
        }
        if methods.len() >= MAX_METHODS {
            return self.unknown();
        }
        let (service, method) = split_path(path);
        let series = Arc::new(MethodSeries::new(service, method));
        methods.insert(path.into(), series.clone());
        series
    }

    fn unknown(&self) -> Arc<MethodSeries> {
        self.inner
            .unknown
            .get_or_init(|| Arc::new(MethodSeries::new(UNKNOWN, UNKNOWN)))
            .clone()
    }
}

/// "/pkg.Service/Method" → ("pkg.Service", "Method").
pub fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    /// The /metrics text after recording `calls` (path, code) with a fresh recorder.
    fn render(calls: &[(&str, i32)], max: usize) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let rpc = RpcMetrics::default();
            for (path, code) in calls {
                rpc.record(path, *code, Duration::from_millis(1));
            }
            assert!(rpc.inner.methods.read().unwrap().len() <= max);
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
        const GET: &str = "/guestloop.guestprofile.v1.GuestProfileService/GetGuest";
        const SVC: &str = "guestloop.guestprofile.v1.GuestProfileService";
        let body = render(&[(GET, 0), (GET, 0), (GET, 5), (GET, 0), (GET, 99)], 1);
        // (method, code, count)
        let cases = [
            ("GetGuest", "Ok", Some(3)),
            ("GetGuest", "NotFound", Some(1)),
            ("GetGuest", "Unknown(99)", Some(1)),
            ("GetGuest", "Internal", None),
        ];
        for (method, code, want) in cases {
            assert_eq!(
                count(&body, SVC, method, code),
                want,
                "{method} {code}\n{body}"
            );
        }
        assert!(
            body.contains(&format!(
                "grpc_server_request_duration_seconds_count{{service=\"{SVC}\",method=\"GetGuest\"}} 5"
            )),
            "{body}"
        );
    }

    #[test]
    fn invented_methods_do_not_grow_the_series() {
        let invented: Vec<String> = (0..MAX_METHODS + 10)
            .map(|n| format!("/made.Up/Method{n}"))
            .collect();
        let mut calls: Vec<(&str, i32)> = invented.iter().map(|p| (p.as_str(), 12)).collect();
        // Past the bound, even methods that answer are counted as unknown.
        calls.extend(invented.iter().map(|p| (p.as_str(), 0)));
        let body = render(&calls, MAX_METHODS);
        let unknown = (MAX_METHODS + 10) as u64;
        assert_eq!(
            count(&body, "unknown", "unknown", "Unimplemented"),
            Some(unknown)
        );
        assert_eq!(count(&body, "unknown", "unknown", "Ok"), Some(10));
        assert_eq!(count(&body, "made.Up", "Method0", "Ok"), Some(1));
        assert_eq!(count(&body, "made.Up", "Method0", "Unimplemented"), None);
        let series = body
            .lines()
            .filter(|l| l.starts_with("grpc_server_requests_total{"))
            .count();
        assert_eq!(series, MAX_METHODS + 2, "{body}");
    }

    #[test]
    fn splits_grpc_paths() {
        // (path, service, method)
        let cases = [
            (
                "/guestloop.guestprofile.v1.GuestProfileService/GetGuest",
                "guestloop.guestprofile.v1.GuestProfileService",
                "GetGuest",
            ),
            ("/no-method", "no-method", ""),
            ("", "", ""),
        ];
        for (path, service, method) in cases {
            assert_eq!(split_path(path), (service, method), "{path}");
        }
    }
}

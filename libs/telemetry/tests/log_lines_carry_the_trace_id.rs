//! A log line written inside a request's span carries the request's trace id, with the
//! subscriber `init` installs (the order of its layers decides whether the id is filled in
//! before the line is written). The lines go to the process's stdout, so the test runs
//! itself again as a child process and reads what the child wrote.

use std::process::Command;

const CHILD: &str = "GUESTLOOP_TELEMETRY_TEST_CHILD";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
fn a_line_inside_a_request_span_carries_the_callers_trace_id() {
    if std::env::var_os(CHILD).is_some() {
        let _telemetry = guestloop_telemetry::init_exporting_to("log-test", None).unwrap();
        // As the request layer (guestloop-server's context.rs) makes it.
        let span = tracing::info_span!(
            "grpc",
            rpc.method = "GetGuest",
            property_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        guestloop_telemetry::propagation::set_parent_from_traceparent(
            &span,
            &format!("00-{TRACE_ID}-00f067aa0ba902b7-01"),
        );
        span.record("property_id", "sh-bund");
        span.in_scope(|| tracing::warn!("inside the request"));
        tracing::warn!("outside any request");
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_line_inside_a_request_span_carries_the_callers_trace_id",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let line = |message: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no line {message:?} in {stdout}"))
    };
    let inside = line("inside the request");
    assert_eq!(inside["span"]["trace_id"], TRACE_ID, "{inside}");
    assert_eq!(inside["span"]["property_id"], "sh-bund", "{inside}");
    assert!(line("outside any request").get("span").is_none());
}

//! The building blocks every service's error enum maps onto `tonic::Status`: field
//! violations for INVALID_ARGUMENT (as `google.rpc.BadRequest` details), and an internal
//! error that is logged here and never shown to the caller.

pub mod parse;

#[cfg(test)]
mod fuzz_tests;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One bad field in a request, named by its proto path ("guest.contacts.email").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// All the bad fields found in one request; parsing collects them so a caller sees every
/// problem at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldViolations(pub Vec<FieldViolation>);

impl FieldViolations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.add(field, description);
        v
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records the error of `result` under `field` and returns its value, if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(description) => {
                self.add(field, description);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when no violation was recorded.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, FieldViolations> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|v| v.field.as_str())
    }
}

impl std::fmt::Display for FieldViolations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for FieldViolations {}

/// What a rejection echoes back is bounded: a field path or a description can carry the
/// client's own text (a map key, an unknown language tag), and an answer whose headers
/// outgrow the client's HTTP/2 header-list limit (16 KiB in hyper) makes the client tear
/// down the whole connection, failing every other call on it (R8, found by
/// tests/tests/request_decoding.rs: one SendMessage with a 70 000-character variable name).
/// Each text is cut to `ECHO_BYTES`, the details list `DETAIL_VIOLATIONS` violations and the
/// message `MESSAGE_VIOLATIONS`, which keeps the answer under 12 KiB even percent-encoded.
const ECHO_BYTES: usize = 100;
const DETAIL_VIOLATIONS: usize = 16;
const MESSAGE_VIOLATIONS: usize = 5;

/// `s` cut to at most `ECHO_BYTES` bytes at a character boundary, marked with "…" if cut.
fn clip(s: &str) -> String {
    if s.len() <= ECHO_BYTES {
        return s.to_string();
    }
    let mut end = ECHO_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` listing the field violations (the first
/// 16, each text cut to 100 bytes; see `ECHO_BYTES`).
pub fn invalid_argument(violations: &FieldViolations) -> Status {
    let mut details = ErrorDetails::new();
    for v in violations.0.iter().take(DETAIL_VIOLATIONS) {
        details.add_bad_request_violation(clip(&v.field), clip(&v.description));
    }
    let mut message: Vec<String> = violations
        .0
        .iter()
        .take(MESSAGE_VIOLATIONS)
        .map(|v| format!("{}: {}", clip(&v.field), clip(&v.description)))
        .collect();
    if violations.0.len() > MESSAGE_VIOLATIONS {
        message.push(format!(
            "and {} more",
            violations.0.len() - MESSAGE_VIOLATIONS
        ));
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {}", message.join("; ")),
        details,
    )
}

/// NOT_FOUND for an object that does not exist *or* is outside the caller's scope: the two
/// answer the same, so a caller learns nothing about other properties' data.
pub fn not_found(kind: &str) -> Status {
    Status::not_found(format!("{kind} not found"))
}

/// INTERNAL for a failure the caller cannot act on. The cause is logged with the request's
/// trace; the caller sees only that something failed on our side.
pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Status {
    let mut chain = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = %chain, "internal error");
    Status::internal("internal error")
}

/// UNAVAILABLE for a dependency that is down (database, a peer service); retryable.
pub fn unavailable(what: &str, cause: &(dyn std::error::Error + 'static)) -> Status {
    tracing::warn!(error = %cause, dependency = what, "dependency unavailable");
    Status::unavailable(format!("{what} unavailable, retry later"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field() {
        let mut v = FieldViolations::new();
        v.add("guest.contacts.email", "is not an email address");
        v.add("guest.birthday", "is not a real date");
        let status = invalid_argument(&v);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|f| f.field.clone())
            .collect();
        assert_eq!(fields, ["guest.contacts.email", "guest.birthday"]);
    }

    #[test]
    fn what_a_rejection_echoes_is_bounded() {
        let mut v = FieldViolations::new();
        for i in 0..60 {
            v.add(
                format!("message.variables[{}]", "字".repeat(70_000)),
                format!("`{i}` {}", "x".repeat(70_000)),
            );
        }
        let status = invalid_argument(&v);
        // grpc-message is percent-encoded (at most 3 bytes a byte), the details base64.
        let header_bytes = status.message().len() * 3 + status.details().len() * 4 / 3;
        assert!(header_bytes < 12 * 1024, "{header_bytes} bytes of headers");
        let details = status.get_error_details();
        let fields = &details.bad_request().unwrap().field_violations;
        assert_eq!(fields.len(), DETAIL_VIOLATIONS);
        assert!(fields[0].field.starts_with("message.variables[字"));
        assert!(status.message().ends_with("and 55 more"));
    }

    #[test]
    fn internal_hides_the_cause() {
        let cause = std::io::Error::other("password authentication failed for user x");
        let status = internal(&cause);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("password"));
    }
}

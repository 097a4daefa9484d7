//! The building blocks every service's error enum maps onto `tonic::Status`: field
//! violations for INVALID_ARGUMENT (as `google.rpc.BadRequest` details), and an internal
//! error that is logged here and never shown to the caller.

pub mod parse;

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

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` listing every field violation.
pub fn invalid_argument(violations: &FieldViolations) -> Status {
    let mut details = ErrorDetails::new();
    for v in &violations.0 {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {violations}"),
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
    fn internal_hides_the_cause() {
        let cause = std::io::Error::other("password authentication failed for user x");
        let status = internal(&cause);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("password"));
    }
}

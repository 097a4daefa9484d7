//! Everything that can go wrong in metrics, and the ONE place it becomes a gRPC status.

use guestloop_errors::FieldViolations;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    /// Missing, or outside the caller's scope: the two answer the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The object is not in the state the call needs (e.g. moved by someone else).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(&'static str),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for MetricsError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(e)
            }
            other => Self::Database(other),
        }
    }
}

impl From<MetricsError> for Status {
    fn from(e: MetricsError) -> Self {
        match &e {
            MetricsError::Invalid(v) => guestloop_errors::invalid_argument(v),
            MetricsError::NotFound(kind) => guestloop_errors::not_found(kind),
            MetricsError::PermissionDenied(why) => Status::permission_denied(*why),
            MetricsError::FailedPrecondition(why) => Status::failed_precondition(why.clone()),
            MetricsError::AlreadyExists(why) => Status::already_exists(*why),
            MetricsError::Unavailable(cause) => guestloop_errors::unavailable("database", cause),
            MetricsError::Database(cause) => guestloop_errors::internal(cause),
        }
    }
}

pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

pub fn invalid(field: &str, description: impl Into<String>) -> MetricsError {
    MetricsError::Invalid(FieldViolations::single(field, description))
}

//! Everything that can go wrong in follow-up-scheduler, and the ONE place it becomes a gRPC
//! status.

use guestloop_errors::FieldViolations;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    /// Missing, or outside the caller's scope: the two answer the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The timer's state does not allow the change (e.g. replacing a timer while it fires).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for SchedulerError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(e)
            }
            other => Self::Database(other),
        }
    }
}

impl From<SchedulerError> for Status {
    fn from(e: SchedulerError) -> Self {
        match &e {
            SchedulerError::Invalid(v) => guestloop_errors::invalid_argument(v),
            SchedulerError::NotFound(kind) => guestloop_errors::not_found(kind),
            SchedulerError::FailedPrecondition(why) => Status::failed_precondition(why.clone()),
            SchedulerError::PermissionDenied(why) => Status::permission_denied(*why),
            SchedulerError::Unavailable(cause) => guestloop_errors::unavailable("database", cause),
            SchedulerError::Database(cause) => guestloop_errors::internal(cause),
        }
    }
}

pub type Result<T, E = SchedulerError> = std::result::Result<T, E>;

pub fn invalid(field: &str, description: impl Into<String>) -> SchedulerError {
    SchedulerError::Invalid(FieldViolations::single(field, description))
}

//! Everything that can go wrong in guest-profile, and the ONE place it becomes a gRPC status.

use guestloop_errors::FieldViolations;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum GuestProfileError {
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    /// Missing, or outside the caller's scope: the two are indistinguishable to the caller.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("not allowed: {0}")]
    PermissionDenied(&'static str),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("access log: {0}")]
    AccessLog(#[from] guestloop_db::batch::GroupError),
}

impl From<sqlx::Error> for GuestProfileError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(e)
            }
            other => Self::Database(other),
        }
    }
}

impl From<GuestProfileError> for Status {
    fn from(e: GuestProfileError) -> Self {
        match &e {
            GuestProfileError::Invalid(v) => guestloop_errors::invalid_argument(v),
            GuestProfileError::NotFound(kind) => guestloop_errors::not_found(kind),
            GuestProfileError::PermissionDenied(what) => Status::permission_denied(*what),
            GuestProfileError::FailedPrecondition(why) => Status::failed_precondition(why.clone()),
            GuestProfileError::Unavailable(cause) => {
                guestloop_errors::unavailable("database", cause)
            }
            GuestProfileError::Database(cause) => guestloop_errors::internal(cause),
            // Nothing is answered unless its read was logged.
            GuestProfileError::AccessLog(guestloop_db::batch::GroupError::Overloaded) => {
                Status::resource_exhausted("too many reads waiting for the access log")
            }
            GuestProfileError::AccessLog(cause) => guestloop_errors::unavailable("database", cause),
        }
    }
}

pub type Result<T, E = GuestProfileError> = std::result::Result<T, E>;

/// A single-field violation, for the common case.
pub fn invalid(field: &str, description: impl Into<String>) -> GuestProfileError {
    GuestProfileError::Invalid(FieldViolations::single(field, description))
}

//! Everything that can go wrong in notification, and the ONE place it becomes a gRPC status.

use guestloop_errors::FieldViolations;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    /// Missing, or outside the caller's scope: the two answer the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("not allowed: {0}")]
    PermissionDenied(&'static str),
    /// The message's state does not allow the change (e.g. cancelling a sent message).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// guest-profile could not answer (its code).
    #[error("guest-profile answered {0:?}")]
    Peer(tonic::Code),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for NotificationError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(e)
            }
            other => Self::Database(other),
        }
    }
}

impl From<NotificationError> for Status {
    fn from(e: NotificationError) -> Self {
        match &e {
            NotificationError::Invalid(v) => guestloop_errors::invalid_argument(v),
            NotificationError::NotFound(kind) => guestloop_errors::not_found(kind),
            NotificationError::PermissionDenied(what) => Status::permission_denied(*what),
            NotificationError::FailedPrecondition(why) => Status::failed_precondition(why.clone()),
            NotificationError::Unavailable(cause) => {
                guestloop_errors::unavailable("database", cause)
            }
            NotificationError::Database(cause) => guestloop_errors::internal(cause),
            NotificationError::Peer(code) => Status::unavailable(format!(
                "guest-profile could not say whether the caller may see the guest ({code:?}); retry"
            )),
        }
    }
}

pub type Result<T, E = NotificationError> = std::result::Result<T, E>;

pub fn invalid(field: &str, description: impl Into<String>) -> NotificationError {
    NotificationError::Invalid(FieldViolations::single(field, description))
}

//! Everything that can go wrong in feedback-intake, and the ONE place it becomes a gRPC
//! status.

use guestloop_errors::FieldViolations;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    /// Missing, or outside the caller's scope: the two answer the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("not allowed: {0}")]
    PermissionDenied(&'static str),
    /// An illegal lifecycle move or a change the case's state does not allow.
    #[error("{0}")]
    FailedPrecondition(String),
    /// `expected_version` did not match: someone else changed the case first.
    #[error("the case changed since version {expected}; it is at {actual}")]
    Aborted { expected: i64, actual: i64 },
    #[error("{0}")]
    ResourceExhausted(String),
    /// guest-profile did not answer; the caller may retry.
    #[error("guest-profile unavailable")]
    GuestProfile(#[source] tonic::Status),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The shared transaction did not commit, or too many calls wait for one.
    #[error("group commit: {0}")]
    GroupCommit(#[from] guestloop_db::batch::GroupError),
}

impl From<sqlx::Error> for FeedbackError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(e)
            }
            other => Self::Database(other),
        }
    }
}

impl From<FeedbackError> for Status {
    fn from(e: FeedbackError) -> Self {
        match &e {
            FeedbackError::Invalid(v) => guestloop_errors::invalid_argument(v),
            FeedbackError::NotFound(kind) => guestloop_errors::not_found(kind),
            FeedbackError::PermissionDenied(what) => Status::permission_denied(*what),
            FeedbackError::FailedPrecondition(why) => Status::failed_precondition(why.clone()),
            FeedbackError::Aborted { .. } => Status::aborted(e.to_string()),
            FeedbackError::ResourceExhausted(why) => Status::resource_exhausted(why.clone()),
            FeedbackError::GuestProfile(cause) => {
                guestloop_errors::unavailable("guest-profile", cause)
            }
            FeedbackError::Unavailable(cause) => guestloop_errors::unavailable("database", cause),
            FeedbackError::Database(cause) => guestloop_errors::internal(cause),
            FeedbackError::GroupCommit(guestloop_db::batch::GroupError::Overloaded) => {
                Status::resource_exhausted("too many submissions waiting to commit")
            }
            FeedbackError::GroupCommit(cause) => guestloop_errors::unavailable("database", cause),
        }
    }
}

impl FeedbackError {
    /// The error with its causes, for a log line or an event consumer's answer (which is no
    /// gRPC status: the relay only logs it and retries).
    pub fn describe(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

pub type Result<T, E = FeedbackError> = std::result::Result<T, E>;

pub fn invalid(field: &str, description: impl Into<String>) -> FeedbackError {
    FeedbackError::Invalid(FieldViolations::single(field, description))
}

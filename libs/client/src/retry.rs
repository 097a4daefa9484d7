//! Retrying a call that failed with UNAVAILABLE (server restarting, connection reset), with
//! exponential backoff and full jitter. Only UNAVAILABLE is retried: other codes mean the
//! request itself must change, and a retry of a non-idempotent call needs an idempotency key.

use rand::Rng;
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `n` (1-based retry count): random in [0, min(max, base·2ⁿ)].
    pub fn backoff(&self, n: u32) -> Duration {
        let cap = self.base.saturating_mul(1 << n.min(16)).min(self.max);
        let millis = rand::rng().random_range(0..=cap.as_millis() as u64);
        Duration::from_millis(millis)
    }
}

/// Calls `f` until it succeeds, fails with a code other than UNAVAILABLE, or runs out of
/// attempts.
pub async fn with_retry<T, F, Fut>(policy: RetryPolicy, mut f: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f().await {
            Err(status)
                if status.code() == tonic::Code::Unavailable && attempt < policy.attempts =>
            {
                tokio::time::sleep(policy.backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_millis(800),
        };
        for n in 1..12 {
            assert!(p.backoff(n) <= Duration::from_millis(800));
        }
    }

    #[tokio::test]
    async fn retries_unavailable_only() {
        let p = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<(), _> = with_retry(p, || {
            calls += 1;
            async { Err(tonic::Status::unavailable("down")) }
        })
        .await;
        assert_eq!(r.unwrap_err().code(), tonic::Code::Unavailable);
        assert_eq!(calls, 3);
        let mut calls = 0;
        let r: Result<(), _> = with_retry(p, || {
            calls += 1;
            async { Err(tonic::Status::invalid_argument("bad")) }
        })
        .await;
        assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(calls, 1);
    }
}

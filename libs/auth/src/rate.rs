//! A rate limit per caller (the token's subject: one property system, one staff member), so
//! one property's runaway integration cannot take the capacity the others need. A token
//! bucket per subject: `rate` calls a second on average, bursts up to `burst`. Platform
//! services calling each other are not limited here (their load follows the guests').

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Subjects remembered at most; past that, buckets idle for a minute are forgotten (a full
/// bucket is what a new one starts with, so forgetting an idle one changes nothing).
const MAX_CALLERS: usize = 100_000;
const IDLE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct CallerLimit {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl CallerLimit {
    /// `None` when `rate` is 0 (no limit). A `burst` of 0 means twice the rate.
    pub fn new(rate: f64, burst: u32) -> Option<Self> {
        if rate <= 0.0 {
            return None;
        }
        let burst = if burst == 0 {
            (rate * 2.0).max(1.0)
        } else {
            f64::from(burst)
        };
        Some(Self {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one call from `caller`'s bucket; false when it is empty.
    pub fn admit(&self, caller: &str) -> bool {
        self.admit_at(caller, Instant::now())
    }

    fn admit_at(&self, caller: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            buckets.retain(|_, b| now.duration_since(b.at) < IDLE);
        }
        let bucket = buckets.entry(caller.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_bucket_that_refills_at_the_rate() {
        let limit = CallerLimit::new(10.0, 5).unwrap();
        let t0 = Instant::now();
        let admitted = (0..20)
            .filter(|_| limit.admit_at("pms.sh-bund", t0))
            .count();
        assert_eq!(admitted, 5, "a burst of 5");
        // Another caller is untouched by the first one's flood.
        assert!(limit.admit_at("pms.hz-lake", t0));
        // 10 calls/s: after 300 ms, three more.
        let t1 = t0 + Duration::from_millis(300);
        let admitted = (0..20)
            .filter(|_| limit.admit_at("pms.sh-bund", t1))
            .count();
        assert_eq!(admitted, 3);
        // A long pause refills to the burst, not beyond it.
        let t2 = t1 + Duration::from_secs(60);
        let admitted = (0..20)
            .filter(|_| limit.admit_at("pms.sh-bund", t2))
            .count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn zero_rate_is_no_limit_and_zero_burst_is_twice_the_rate() {
        assert!(CallerLimit::new(0.0, 10).is_none());
        let limit = CallerLimit::new(3.0, 0).unwrap();
        let t0 = Instant::now();
        assert_eq!((0..20).filter(|_| limit.admit_at("x", t0)).count(), 6);
    }
}

//! Retrying what may succeed later (rate limits, server errors, timeouts, lost connections)
//! with exponential backoff and full jitter, and never what will not (auth, permission, quota).

use std::time::Duration;

/// How many times to try, and how long to wait between tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 means no retry).
    pub max_attempts: u32,
    /// The ceiling of the first wait; each later ceiling doubles.
    pub base_delay: Duration,
    /// The largest wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after `attempt` failures: a random time up to the
    /// doubled ceiling ("full jitter", so that many workers do not retry in step), but never less
    /// than what the provider asked for in `retry-after`, up to a minute.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        let jittered = ceiling.mul_f64(fastrand::f64());
        match retry_after {
            Some(asked) => jittered.max(asked.min(Duration::from_secs(60))),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_capped_and_honour_retry_after() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            assert!(policy.delay(1, None) <= Duration::from_millis(250));
            assert!(policy.delay(3, None) <= Duration::from_secs(1));
            assert!(policy.delay(30, None) <= Duration::from_secs(8));
            assert!(policy.delay(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
            assert!(policy.delay(1, Some(Duration::from_secs(600))) <= Duration::from_secs(60));
        }
    }
}

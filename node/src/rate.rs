//! A token bucket, per intake source and per user token: refilled at the configured rate, one
//! second deep, so a caller may spend its per-second allowance at once but not more, on average
//! or in a burst.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub fn new(per_second: f64) -> TokenBucket {
        assert!(per_second > 0.0, "a rate is positive");
        TokenBucket { per_second, tokens: per_second, refilled_at: Instant::now() }
    }

    /// Whether the bucket has refilled completely by `now`: its owner spent nothing for as long
    /// as a refill takes, and a new bucket would be the same.
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.per_second
    }

    /// Takes `count` tokens, or none and says how long until there are enough.
    pub fn take(&mut self, count: usize, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        self.refilled_at = now;
        let wanted = count as f64;
        if wanted <= self.tokens {
            self.tokens -= wanted;
            return Ok(());
        }
        let missing = wanted - self.tokens;
        Err(Duration::from_secs_f64((missing / self.per_second).max(0.001)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_rate_and_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100.0);
        assert!(bucket.take(100, start).is_ok());
        let wait = bucket.take(1, start).expect_err("empty");
        assert!(wait <= Duration::from_millis(11), "{wait:?}");
        assert!(bucket.take(50, start + Duration::from_millis(500)).is_ok());
        assert!(bucket.take(101, start + Duration::from_secs(10)).is_err(), "never deeper than a second");
    }

    #[test]
    fn a_bucket_is_full_once_a_refill_has_passed_unspent() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0);
        assert!(bucket.is_full(start));
        bucket.take(5, start).expect("tokens");
        assert!(!bucket.is_full(start + Duration::from_millis(400)));
        assert!(bucket.is_full(start + Duration::from_millis(500)));
    }
}

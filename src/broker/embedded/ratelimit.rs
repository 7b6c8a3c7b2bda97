//! Per-key token buckets, as the broker's rate limiters (spec §1.8).

use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug)]
pub struct Limiter {
    rate_per_sec: f64,
    burst: f64,
    buckets: HashMap<String, (f64, Instant)>,
}

impl Limiter {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        Limiter {
            rate_per_sec,
            burst: f64::from(burst),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key`; false when the bucket is empty.
    pub fn allow(&mut self, key: &str, now: Instant) -> bool {
        match self.buckets.get_mut(key) {
            None => {
                self.buckets
                    .insert(key.to_string(), (self.burst - 1.0, now));
                true
            }
            Some((tokens, last)) => {
                let elapsed = now.saturating_duration_since(*last).as_secs_f64();
                *tokens = (*tokens + elapsed * self.rate_per_sec).min(self.burst);
                *last = now;
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let mut l = Limiter::new(5.0, 10);
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(l.allow("ip", t0), "request {i}");
        }
        assert!(!l.allow("ip", t0));
        assert!(l.allow("other", t0));
        assert!(l.allow("ip", t0 + Duration::from_millis(250)));
        assert!(!l.allow("ip", t0 + Duration::from_millis(260)));
    }

    #[test]
    fn app_auth_limiter_allows_three_then_one_per_six_seconds() {
        let mut l = Limiter::new(10.0 / 60.0, 3);
        let t0 = Instant::now();
        assert!(l.allow("c", t0) && l.allow("c", t0) && l.allow("c", t0));
        assert!(!l.allow("c", t0 + Duration::from_secs(3)));
        assert!(l.allow("c", t0 + Duration::from_millis(6300)));
        assert!(!l.allow("c", t0 + Duration::from_millis(6400)));
    }
}

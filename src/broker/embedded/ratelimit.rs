//! Per-key token buckets, as the broker's rate limiters (spec §1.8).
//!
//! Unlike the real broker's, buckets do not live forever: a bucket that has
//! refilled to its burst behaves exactly like no bucket (a new key starts
//! with `burst − 1` after its first request, as a full bucket does), so such
//! buckets are dropped, amortized. Keys are kept as 16 bytes of their
//! SHA-256, whatever their length. Memory is then bounded by the request
//! rate times the refill time, not by how many keys were ever seen.

use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug)]
pub struct Limiter {
    rate_per_sec: f64,
    burst: f64,
    buckets: HashMap<[u8; 16], (f64, Instant)>,
    next_purge: usize,
}

impl Limiter {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        Limiter {
            rate_per_sec,
            burst: f64::from(burst),
            buckets: HashMap::new(),
            next_purge: 1024,
        }
    }

    /// How many buckets are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Takes one token for `key`; false when the bucket is empty.
    pub fn allow(&mut self, key: &str, now: Instant) -> bool {
        if self.buckets.len() >= self.next_purge {
            let (rate, burst) = (self.rate_per_sec, self.burst);
            self.buckets.retain(|_, (tokens, last)| {
                let elapsed = now.saturating_duration_since(*last).as_secs_f64();
                *tokens + elapsed * rate < burst
            });
            self.next_purge = (self.buckets.len() * 2).max(1024);
        }
        match self.buckets.get_mut(&super::short_key(key)) {
            None => {
                self.buckets
                    .insert(super::short_key(key), (self.burst - 1.0, now));
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
    fn refilled_buckets_are_dropped_without_changing_answers() {
        let mut l = Limiter::new(5.0, 10);
        let t0 = Instant::now();
        // 50,000 distinct keys, 5,000 every ten seconds: without eviction
        // all would be kept; buckets refilled since are dropped instead.
        let mut t = t0;
        for batch in 0..10 {
            t = t0 + Duration::from_secs(10 * batch);
            for i in 0..5000 {
                assert!(l.allow(&format!("b{batch}-{i}"), t));
            }
        }
        assert!(l.len() <= 16_384, "{} buckets kept", l.len());
        // An evicted key gets exactly its full burst again.
        for i in 0..10 {
            assert!(l.allow("b0-1", t), "request {i}");
        }
        assert!(!l.allow("b0-1", t));
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

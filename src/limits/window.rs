//! A sliding window counter made of fixed buckets (60 per window), so "at most
//! N in the last 60 s / 24 h" costs O(buckets) memory whatever the traffic,
//! and can be persisted as a short list.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Buckets per window: the window slides in steps of window/60.
const BUCKETS_PER_WINDOW: u64 = 60;
const FORMAT_VERSION: u32 = 1;

/// Counts events over the last `window_ms`, in buckets of `bucket_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateWindow {
    #[serde(rename = "v")]
    version: u32,
    window_ms: u64,
    bucket_ms: u64,
    /// (bucket start in ms since epoch, count), oldest first.
    buckets: VecDeque<(u64, u64)>,
    #[serde(skip)]
    total: u64,
}

impl RateWindow {
    pub fn new(window: Duration) -> Self {
        let window_ms = (window.as_millis() as u64).max(BUCKETS_PER_WINDOW);
        RateWindow {
            version: FORMAT_VERSION,
            window_ms,
            bucket_ms: window_ms / BUCKETS_PER_WINDOW,
            buckets: VecDeque::new(),
            total: 0,
        }
    }

    /// Restores a persisted window, adopting the configured length (the limit
    /// may have changed since it was written). `None` for unreadable data.
    pub fn restore(bytes: &[u8], window: Duration) -> Option<Self> {
        let stored: RateWindow = serde_json::from_slice(bytes).ok()?;
        if stored.version != FORMAT_VERSION {
            return None;
        }
        let mut fresh = RateWindow::new(window);
        for (start, count) in stored.buckets {
            fresh.add_at(start, count);
        }
        Some(fresh)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some(&(start, count)) = self.buckets.front() {
            if start + self.window_ms <= now_ms {
                self.total -= count;
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    fn add_at(&mut self, at_ms: u64, n: u64) {
        let start = at_ms - at_ms % self.bucket_ms;
        match self.buckets.back_mut() {
            Some((last, count)) if *last == start => *count += n,
            Some((last, _)) if *last > start => {
                // Out of order (clock went back): fold into the newest bucket.
                if let Some((_, count)) = self.buckets.back_mut() {
                    *count += n;
                }
            }
            _ => self.buckets.push_back((start, n)),
        }
        self.total += n;
    }

    /// Events in the window ending now.
    pub fn count(&mut self, now_ms: u64) -> u64 {
        self.expire(now_ms);
        self.total
    }

    /// Records `n` events now, whatever the limit.
    pub fn add(&mut self, now_ms: u64, n: u64) {
        self.expire(now_ms);
        self.add_at(now_ms, n);
    }

    /// Records one event if fewer than `limit` are in the window; otherwise
    /// says how long until one slot frees up.
    pub fn try_acquire(&mut self, now_ms: u64, limit: u64) -> Result<(), Duration> {
        self.expire(now_ms);
        if self.total < limit {
            self.add_at(now_ms, 1);
            return Ok(());
        }
        Err(self.time_until_below(now_ms, limit))
    }

    /// How long until fewer than `limit` events remain in the window.
    pub fn time_until_below(&mut self, now_ms: u64, limit: u64) -> Duration {
        self.expire(now_ms);
        let mut remaining = self.total;
        for &(start, count) in &self.buckets {
            if remaining < limit {
                break;
            }
            remaining -= count;
            if remaining < limit {
                let frees_at = start + self.window_ms;
                return Duration::from_millis(frees_at.saturating_sub(now_ms).max(1));
            }
        }
        if remaining < limit {
            Duration::ZERO
        } else {
            Duration::from_millis(self.window_ms)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn admits_up_to_limit_then_reports_wait() {
        let mut w = RateWindow::new(MIN);
        let t0 = 1_000_000;
        for i in 0..3 {
            assert!(w.try_acquire(t0 + i * 1000, 3).is_ok());
        }
        let wait = w.try_acquire(t0 + 5000, 3).unwrap_err();
        // The first event (bucket at t0) leaves the window at t0 + 60 s.
        assert_eq!(wait, Duration::from_millis(55_000));
        assert_eq!(w.count(t0 + 5000), 3);
    }

    #[test]
    fn slides() {
        let mut w = RateWindow::new(MIN);
        let t0 = 10_000_000;
        w.add(t0, 5);
        w.add(t0 + 30_000, 2);
        assert_eq!(w.count(t0 + 59_000), 7);
        assert_eq!(w.count(t0 + 60_000), 2);
        assert_eq!(w.count(t0 + 90_000), 0);
    }

    #[test]
    fn zero_limit_never_admits() {
        let mut w = RateWindow::new(MIN);
        assert!(w.try_acquire(5_000_000, 0).is_err());
    }

    #[test]
    fn survives_a_round_trip() {
        let mut w = RateWindow::new(MIN);
        w.add(20_000_000, 4);
        let restored = RateWindow::restore(&w.to_bytes(), MIN).unwrap();
        let mut restored = restored;
        assert_eq!(restored.count(20_000_500), 4);
        assert!(RateWindow::restore(b"garbage", MIN).is_none());
    }
}

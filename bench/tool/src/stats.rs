//! Percentiles over recorded latencies, and the JSON the commands print.

use std::fmt::Write;
use std::time::Duration;

/// Latencies in microseconds.
#[derive(Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `p50`, `p90`, `p99`, `p999`, `max` in ms, as JSON fields named
    /// `{prefix}_p50_ms` and so on.
    pub fn write_fields(&mut self, prefix: &str, json: &mut Json) {
        self.0.sort_unstable();
        for (name, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999)] {
            json.float(&format!("{prefix}_{name}_ms"), self.quantile_ms(q));
        }
        let max = self.0.last().copied().unwrap_or(0);
        json.float(&format!("{prefix}_max_ms"), max as f64 / 1000.0);
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let index = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[index.min(self.0.len() - 1)] as f64 / 1000.0
    }
}

/// A flat JSON object built field by field (numbers and plain strings only).
pub struct Json(String);

impl Json {
    pub fn new() -> Self {
        Json(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{key}\":");
    }

    pub fn int(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = write!(self.0, "{value}");
    }

    pub fn float(&mut self, key: &str, value: f64) {
        self.key(key);
        let _ = write!(self.0, "{value:.3}");
    }

    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

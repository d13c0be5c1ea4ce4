//! The usage log: one JSON record per line in daily files
//! `log_dir/usage-YYYY-MM-DD.jsonl` (UTC days of the records' times),
//! appended by the DiskWriter and read back by the admin usage query, which
//! opens only the days its time range touches.
//!
//! Usage records are not kept in sled as well: a sled value per record, and
//! still one per batch, made sled's memory and files grow with traffic
//! (150 MB of resident memory and 186 MB of database after 136,000
//! requests; BENCHMARKS.md, hot spot 1), and the files hold the same
//! records. Records that older versions put in sled's `usage` tree are also
//! in their day's file.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

use super::StorageError;

/// One usage record on its way to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLine {
    /// RFC 3339, UTC, milliseconds (as the finish step writes it).
    pub time: String,
    pub request_id: String,
    /// The record as one line of JSON.
    pub json: String,
}

impl UsageLine {
    /// `YYYY-MM-DD`: which daily file the record goes to.
    pub fn day(&self) -> &str {
        self.time.get(..10).unwrap_or("unknown")
    }
}

/// The file of one day.
pub fn file_name(day: &str) -> String {
    format!("usage-{day}.jsonl")
}

/// How record times are written: RFC 3339, UTC, milliseconds, which sorts
/// as text.
pub fn time_key(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Every line of the days that can hold records in `[from, to)` (`None`:
/// open on that side), day by day. The caller cuts the exact range by each
/// record's own time.
pub fn read_days(
    log_dir: &Path,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<Vec<u8>>, StorageError> {
    let first = from.map(|t| t.format("%Y-%m-%d").to_string());
    let last = to.map(|t| t.format("%Y-%m-%d").to_string());
    let entries = match std::fs::read_dir(log_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut days: Vec<String> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let day = name.strip_prefix("usage-")?.strip_suffix(".jsonl")?;
            Some(day.to_string())
        })
        .filter(|day| first.as_ref().is_none_or(|f| day >= f))
        .filter(|day| last.as_ref().is_none_or(|l| day <= l))
        .collect();
    days.sort();
    let mut lines = Vec::new();
    for day in days {
        let bytes = std::fs::read(log_dir.join(file_name(&day))).map_err(io)?;
        lines.extend(
            bytes
                .split(|b| *b == b'\n')
                .filter(|line| !line.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    Ok(lines)
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Backend(e.to_string())
}

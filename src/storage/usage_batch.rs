//! How usage records sit in the `usage` tree: one value per batch the
//! UsageLogger hands over, not one per request, because a sled insert per
//! request was a tenth of the gateway's CPU under load (BENCHMARKS.md, hot
//! spot 1).
//!
//! - **Key**: the batch's earliest record time (RFC 3339, UTC, milliseconds,
//!   which sorts as text), `/`, and that record's request id.
//! - **Value**: the line [`BATCH_V1`], then one JSON record per line.
//! - **Span**: the records of one value lie within [`MAX_BATCH_SPAN`] of
//!   its key's time (a batch spread wider is stored as several values), so
//!   records from time T on are all in values keyed from T − span on.
//!
//! Before batching, each record was its own value (a JSON object) under
//! `{time}/{request_id}`. Those keys sort the same way and [`decode`] reads
//! such a value as a batch of one, so old data needs no migration.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

/// The first line of a batch value: the encoding and its version.
pub const BATCH_V1: &[u8] = b"aigate-usage-batch/1\n";

/// The most record time one stored value spans.
pub const MAX_BATCH_SPAN: TimeDelta = TimeDelta::seconds(10);

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
    /// `YYYY-MM-DD`: which daily JSONL file the record goes to.
    pub fn day(&self) -> &str {
        self.time.get(..10).unwrap_or("unknown")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("usage value in an unknown format (starts with {0:?})")]
pub struct UnknownFormat(pub String);

/// The key a time sorts at; records and batches at or after `time` have
/// keys at or after it.
pub fn time_key(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Where a scan must start to find every record at or after `from`.
pub fn scan_start(from: DateTime<Utc>) -> String {
    time_key(from.checked_sub_signed(MAX_BATCH_SPAN).unwrap_or(from))
}

/// The (key, value) pairs that store `lines`: sorted by time, cut wherever
/// a value would span more than [`MAX_BATCH_SPAN`].
pub fn encode(lines: &[UsageLine]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut sorted: Vec<&UsageLine> = lines.iter().collect();
    sorted.sort_by(|a, b| a.time.cmp(&b.time));
    let mut values = Vec::new();
    let mut chunk: Vec<&UsageLine> = Vec::new();
    let mut chunk_start: Option<DateTime<Utc>> = None;
    for line in sorted {
        let time = parse(&line.time);
        let fits = match (chunk_start, time) {
            (Some(start), Some(time)) => time - start <= MAX_BATCH_SPAN,
            _ => chunk.is_empty(),
        };
        if !fits {
            values.push(encode_chunk(&chunk));
            chunk.clear();
        }
        if chunk.is_empty() {
            chunk_start = time;
        }
        chunk.push(line);
    }
    if !chunk.is_empty() {
        values.push(encode_chunk(&chunk));
    }
    values
}

fn parse(time: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One value; `chunk` is sorted and not empty.
fn encode_chunk(chunk: &[&UsageLine]) -> (Vec<u8>, Vec<u8>) {
    let key = match chunk.first() {
        Some(first) => format!("{}/{}", first.time, first.request_id),
        None => String::new(),
    };
    let size = BATCH_V1.len() + chunk.iter().map(|l| l.json.len() + 1).sum::<usize>();
    let mut value = Vec::with_capacity(size);
    value.extend_from_slice(BATCH_V1);
    for line in chunk {
        value.extend_from_slice(line.json.as_bytes());
        value.push(b'\n');
    }
    (key.into_bytes(), value)
}

/// The JSON records in one stored value, in time order.
pub fn decode(value: &[u8]) -> Result<Vec<&[u8]>, UnknownFormat> {
    if let Some(lines) = value.strip_prefix(BATCH_V1) {
        return Ok(lines
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .collect());
    }
    if value.first() == Some(&b'{') {
        // One record, as stored before batching.
        return Ok(vec![value]);
    }
    let start = value.get(..24).unwrap_or(value);
    Err(UnknownFormat(String::from_utf8_lossy(start).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: &str, id: &str) -> UsageLine {
        UsageLine {
            time: time.into(),
            request_id: id.into(),
            json: format!(r#"{{"time":"{time}","request_id":"{id}"}}"#),
        }
    }

    #[test]
    fn a_batch_is_one_value_keyed_by_its_earliest_record() {
        let lines = [
            line("2025-01-31T12:00:01.500Z", "b"),
            line("2025-01-31T12:00:01.000Z", "a"),
        ];
        let values = encode(&lines);
        assert_eq!(values.len(), 1);
        let (key, value) = &values[0];
        assert_eq!(key, b"2025-01-31T12:00:01.000Z/a");
        let records = decode(value).unwrap();
        assert_eq!(
            records,
            [lines[1].json.as_bytes(), lines[0].json.as_bytes()]
        );
    }

    #[test]
    fn a_batch_wider_than_the_span_is_cut() {
        let lines = [
            line("2025-01-31T12:00:00.000Z", "a"),
            line("2025-01-31T12:00:10.000Z", "b"),
            line("2025-01-31T12:00:10.001Z", "c"),
            line("2025-01-31T13:00:00.000Z", "d"),
        ];
        let keys: Vec<String> = encode(&lines)
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "2025-01-31T12:00:00.000Z/a",
                "2025-01-31T12:00:10.001Z/c",
                "2025-01-31T13:00:00.000Z/d"
            ]
        );
    }

    #[test]
    fn old_single_records_are_read_and_unknown_values_named() {
        let old = br#"{"time":"2025-01-31T12:00:00.000Z","request_id":"x"}"#;
        assert_eq!(decode(old).unwrap(), [&old[..]]);
        assert!(decode(b"aigate-usage-batch/9\n{}").is_err());
        assert_eq!(encode(&[]), Vec::<(Vec<u8>, Vec<u8>)>::new());
    }

    #[test]
    fn the_scan_starts_one_span_early() {
        let from = parse("2025-01-31T12:00:00Z").unwrap();
        assert_eq!(time_key(from), "2025-01-31T12:00:00.000Z");
        assert_eq!(scan_start(from), "2025-01-31T11:59:50.000Z");
        assert_eq!(line("2025-01-31T12:00:00.000Z", "a").day(), "2025-01-31");
    }
}

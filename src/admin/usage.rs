//! `GET /admin/api/usage`: usage records by user, endpoint, model and time
//! range, with totals per user, per endpoint and overall. The records come
//! from the daily JSONL files through the DiskWriter (file reads block, so
//! never on a worker), after the UsageLogger has handed over what it
//! buffers, so a request that just finished is counted. The DiskWriter
//! returns the whole days the range touches; the exact range is applied
//! here, to each record's own time.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::error::AdminError;
use crate::state::AppState;
use crate::storage::usage_log::time_key;
use crate::storage::writer::QueryUsage;
use crate::users::model::{glob_matches, Totals};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// The query string; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// The user id (a usage record's `client`).
    pub user: Option<String>,
    pub endpoint: Option<String>,
    /// A model name or glob (`gpt-4o*`).
    pub model: Option<String>,
    /// Inclusive; RFC 3339 or Unix seconds.
    pub from: Option<String>,
    /// Exclusive; RFC 3339 or Unix seconds.
    pub to: Option<String>,
    /// Records returned (the newest), default 100, at most 10000. Totals
    /// count every matching record.
    pub limit: Option<usize>,
}

/// One stored record: the fields filtered and summed are typed; the rest
/// is passed through as stored, so records written by newer code (or by the
/// Realtime relay) keep every field.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UsageRow {
    pub time: String,
    pub request_id: String,
    #[serde(default)]
    pub client: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct UsageTotals {
    pub overall: Totals,
    pub by_user: BTreeMap<String, Totals>,
    /// Records that never reached an endpoint are under `"-"`.
    pub by_endpoint: BTreeMap<String, Totals>,
}

#[derive(Debug, Serialize)]
pub struct UsageReport {
    /// Oldest first; the newest `limit` of the matching records.
    pub records: Vec<UsageRow>,
    /// Matching records in all (`records` may hold fewer).
    pub matched: usize,
    pub totals: UsageTotals,
}

/// RFC 3339, or Unix seconds.
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, AdminError> {
    let text = text.trim();
    let parsed = match text.parse::<i64>() {
        Ok(secs) => DateTime::from_timestamp(secs, 0),
        Err(_) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    };
    parsed.ok_or_else(|| {
        AdminError::BadRequest(format!(
            "{field}: expected an RFC 3339 time (2025-01-31T12:00:00Z) or Unix seconds, got '{text}'"
        ))
    })
}

/// `[from, to)` as record times (RFC 3339, UTC, milliseconds: they compare
/// as text); `None` leaves that side open.
#[derive(Debug, Default)]
pub struct TimeRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl TimeRange {
    pub fn new(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Self {
        TimeRange {
            from: from.map(time_key),
            to: to.map(time_key),
        }
    }

    fn contains(&self, time: &str) -> bool {
        self.from.as_deref().is_none_or(|from| time >= from)
            && self.to.as_deref().is_none_or(|to| time < to)
    }
}

/// The stored records that parse and lie in `range`, oldest first.
pub fn rows_in_range(values: Vec<Vec<u8>>, range: &TimeRange) -> Vec<UsageRow> {
    let mut rows: Vec<UsageRow> = values
        .into_iter()
        .filter_map(|v| match serde_json::from_slice::<UsageRow>(&v) {
            Ok(row) => Some(row),
            Err(e) => {
                log::warn!("unreadable usage record skipped: {e}");
                None
            }
        })
        .filter(|row| range.contains(&row.time))
        .collect();
    // Batches may overlap in time by a little; the report wants time order.
    rows.sort_by(|a, b| a.time.cmp(&b.time));
    rows
}

fn add(totals: &mut Totals, row: &UsageRow) {
    totals.requests += 1;
    totals.prompt_tokens += row.prompt_tokens;
    totals.completion_tokens += row.completion_tokens;
    totals.cost_usd += row.cost_usd.unwrap_or(0.0);
}

impl UsageQuery {
    fn matches(&self, row: &UsageRow) -> bool {
        self.user.as_ref().is_none_or(|u| *u == row.client)
            && self
                .endpoint
                .as_ref()
                .is_none_or(|e| row.endpoint.as_ref() == Some(e))
            && self.model.as_ref().is_none_or(|pattern| {
                row.model
                    .as_deref()
                    .is_some_and(|m| glob_matches(pattern, m))
            })
    }
}

/// Filters, sums and keeps the newest `limit` of the records (oldest first
/// in, oldest first out).
pub fn report(query: &UsageQuery, rows: impl Iterator<Item = UsageRow>) -> UsageReport {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let mut totals = UsageTotals::default();
    let mut records = std::collections::VecDeque::new();
    let mut matched = 0;
    for row in rows.filter(|r| query.matches(r)) {
        matched += 1;
        add(&mut totals.overall, &row);
        add(totals.by_user.entry(row.client.clone()).or_default(), &row);
        let endpoint = row.endpoint.clone().unwrap_or_else(|| "-".into());
        add(totals.by_endpoint.entry(endpoint).or_default(), &row);
        records.push_back(row);
        if records.len() > limit {
            records.pop_front();
        }
    }
    UsageReport {
        records: records.into(),
        matched,
        totals,
    }
}

/// `GET /admin/api/usage?user=&endpoint=&model=&from=&to=&limit=`.
pub async fn query(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let query = web::Query::<UsageQuery>::from_query(req.query_string())
        .map_err(|e| AdminError::BadRequest(format!("Bad query string: {e}")))?
        .into_inner();
    let from = query
        .from
        .as_deref()
        .map(|t| parse_time("from", t))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|t| parse_time("to", t))
        .transpose()?;
    state.usage.flush().await?;
    let values = state
        .writer
        .send(QueryUsage { from, to })
        .await
        .map_err(|e| AdminError::Internal(format!("DiskWriter is unavailable: {e}")))??;
    let rows = rows_in_range(values, &TimeRange::new(from, to));
    Ok(HttpResponse::Ok().json(report(&query, rows.into_iter())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(time: &str, client: &str, endpoint: Option<&str>, model: &str, tokens: u64) -> UsageRow {
        serde_json::from_value(json!({
            "time": time, "request_id": format!("req-{time}"), "client": client,
            "endpoint": endpoint, "model": model, "prompt_tokens": tokens,
            "completion_tokens": 1, "cost_usd": 0.5, "status": 200
        }))
        .unwrap()
    }

    #[test]
    fn times_parse_as_rfc3339_or_unix_seconds() {
        let a = parse_time("from", "1700000000").unwrap();
        let b = parse_time("from", "2023-11-14T22:13:20Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(time_key(a), "2023-11-14T22:13:20.000Z");
        let e = parse_time("to", "yesterday").unwrap_err();
        assert!(e.to_string().starts_with("to: expected"), "{e}");
    }

    #[test]
    fn rows_are_cut_to_the_range_and_put_in_time_order() {
        let value =
            |time: &str| serde_json::to_vec(&json!({"time": time, "request_id": time})).unwrap();
        let values = vec![
            value("2025-01-31T12:00:09.000Z"),
            value("2025-01-31T11:59:59.999Z"),
            value("2025-01-31T12:00:01.000Z"),
            b"not json".to_vec(),
            value("2025-01-31T12:00:10.000Z"),
        ];
        let range = TimeRange::new(
            Some(parse_time("from", "2025-01-31T12:00:00Z").unwrap()),
            Some(parse_time("to", "2025-01-31T12:00:10Z").unwrap()),
        );
        let times: Vec<String> = rows_in_range(values, &range)
            .into_iter()
            .map(|r| r.time)
            .collect();
        assert_eq!(
            times,
            ["2025-01-31T12:00:01.000Z", "2025-01-31T12:00:09.000Z"]
        );
    }

    #[test]
    fn filters_totals_and_keeps_the_newest() {
        let rows = vec![
            row("t1", "u-a", Some("e1"), "gpt-4o", 10),
            row("t2", "u-b", Some("e1"), "gpt-4o-mini", 20),
            row("t3", "u-a", Some("e2"), "claude-3", 30),
            row("t4", "u-a", None, "gpt-4o", 40),
        ];
        let query = UsageQuery {
            user: Some("u-a".into()),
            limit: Some(2),
            ..UsageQuery::default()
        };
        let report = report(&query, rows.clone().into_iter());
        assert_eq!(report.matched, 3);
        let times: Vec<&str> = report.records.iter().map(|r| r.time.as_str()).collect();
        assert_eq!(times, ["t3", "t4"]);
        assert_eq!(report.totals.overall.requests, 3);
        assert_eq!(report.totals.overall.prompt_tokens, 80);
        assert_eq!(report.totals.overall.completion_tokens, 3);
        assert!((report.totals.overall.cost_usd - 1.5).abs() < 1e-9);
        assert_eq!(report.totals.by_endpoint["-"].prompt_tokens, 40);
        assert_eq!(report.totals.by_endpoint["e1"].requests, 1);

        let query = UsageQuery {
            model: Some("gpt-4o*".into()),
            endpoint: Some("e1".into()),
            ..UsageQuery::default()
        };
        let report = super::report(&query, rows.into_iter());
        assert_eq!(report.matched, 2);
        assert_eq!(report.totals.by_user.len(), 2);
        // Fields not typed here pass through.
        assert_eq!(report.records[0].rest["status"], 200);
    }
}

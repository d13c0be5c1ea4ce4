//! Golden files: the exact request(s) an upstream received and the exact
//! answer the client got, as readable text (pretty JSON bodies, one stream
//! event per line), compared line by line with a diff on mismatch.
//! `UPDATE_GOLDEN=1` rewrites them instead.
//!
//! The normaliser touches only what is genuinely random or clock-bound:
//! - ids the gateway generates: `chatcmpl-`, `msg_`, `toolu_`, `call_`
//!   followed by 16 or more letters/digits become `<prefix>#N`, numbered by
//!   first appearance so equal ids stay visibly equal. Ids from the fixtures
//!   all contain `fx` between separators and are never touched;
//! - `created` fields within a day of now become `"<now>"`;
//! - SigV4: the credential-scope date, the signature and `x-amz-date`;
//! - transport headers (host, content-length, user-agent, accept-encoding,
//!   connection, date) are left out of requests.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::common::fake_providers::Seen;

const TRANSPORT_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "user-agent",
    "accept-encoding",
    "connection",
    "date",
    "te",
    "transfer-encoding",
];

/// One upstream request as golden text.
pub fn request_text(n: usize, seen: &Seen) -> String {
    let mut out = format!("## upstream request {n} (authenticated as {})\n", seen.key);
    let query = match seen.query.is_empty() {
        true => String::new(),
        false => format!("?{}", seen.query),
    };
    out.push_str(&format!("{} {}{query}\n", seen.method, seen.path));
    let mut headers: Vec<(String, String)> = seen
        .headers
        .iter()
        .filter(|(name, _)| !TRANSPORT_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), header_value(name, value)))
        .collect();
    headers.sort();
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    out.push('\n');
    out.push_str(&body_text(&seen.body));
    out
}

fn header_value(name: &str, value: &str) -> String {
    match name {
        "x-amz-date" => "<amz-date>".into(),
        "authorization" if value.starts_with("AWS4-HMAC-SHA256") => value
            .split(", ")
            .map(|part| {
                if let Some(credential) = part.strip_prefix("AWS4-HMAC-SHA256 Credential=") {
                    let mut scope: Vec<&str> = credential.split('/').collect();
                    if scope.len() > 1 {
                        scope[1] = "<date>";
                    }
                    format!("AWS4-HMAC-SHA256 Credential={}", scope.join("/"))
                } else if part.starts_with("Signature=") {
                    "Signature=<signature>".into()
                } else {
                    part.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => value.to_string(),
    }
}

/// A JSON body pretty-printed (keys sorted), anything else as text.
pub fn body_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            normalise_created(&mut value);
            format!("{}\n", serde_json::to_string_pretty(&value).unwrap())
        }
        Err(_) => format!("{}\n", String::from_utf8_lossy(body)),
    }
}

/// An SSE body as one line per event: `event-name: {json}` or `data: …`.
pub fn stream_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let mut out = String::new();
    for event in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let mut name = None;
        let mut data = Vec::new();
        for line in event.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.trim_start().to_string());
            } else {
                data.push(format!("<unexpected line {line:?}>"));
            }
        }
        let data = data.join("\n");
        let data = match serde_json::from_str::<Value>(&data) {
            Ok(mut value) => {
                normalise_created(&mut value);
                value.to_string()
            }
            Err(_) => data,
        };
        out.push_str(&format!("{}: {data}\n", name.as_deref().unwrap_or("data")));
    }
    out
}

fn normalise_created(value: &mut Value) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let recent = item.as_u64().is_some_and(|t| t.abs_diff(now) < 86_400);
                if key == "created" && recent {
                    *item = Value::String("<now>".into());
                } else {
                    normalise_created(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise_created),
        _ => {}
    }
}

/// Replaces gateway-generated ids (see the module docs).
pub fn normalise_ids(text: &str) -> String {
    const PREFIXES: &[&str] = &["chatcmpl-", "msg_", "toolu_", "call_"];
    let mut numbers: HashMap<String, usize> = HashMap::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for prefix in PREFIXES {
            if let Some(after) = rest.strip_prefix(prefix) {
                let run = after
                    .find(|c: char| !c.is_ascii_alphanumeric())
                    .unwrap_or(after.len());
                if run >= 16 {
                    let id = &rest[..prefix.len() + run];
                    let next = numbers.len() + 1;
                    let n = *numbers.entry(id.to_string()).or_insert(next);
                    out.push_str(&format!("{prefix}#{n}"));
                    rest = &rest[prefix.len() + run..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/matrix/golden")
}

/// Compares `actual` with the golden file `name` (under golden/), or
/// rewrites it when `UPDATE_GOLDEN=1`.
pub fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    let actual = normalise_ids(actual);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "golden file {} is missing: run `UPDATE_GOLDEN=1 cargo test --test translation_matrix` and review it",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from what the gateway did (- golden, + now):\n{}",
            path.display(),
            diff(&expected, &actual)
        );
    }
}

/// A line diff (longest common subsequence), changed lines with one line of
/// context.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = match a[i] == b[j] {
                true => lcs[i + 1][j + 1] + 1,
                false => lcs[i + 1][j].max(lcs[i][j + 1]),
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let changed: Vec<bool> = lines.iter().map(|(tag, _)| *tag != ' ').collect();
    let near = |k: usize| {
        changed[k.saturating_sub(1)..(k + 2).min(changed.len())]
            .iter()
            .any(|c| *c)
    };
    lines
        .iter()
        .enumerate()
        .filter(|(k, _)| near(*k))
        .map(|(_, (tag, line))| format!("{tag} {line}\n"))
        .collect()
}

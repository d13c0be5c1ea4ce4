//! The DiskWriter's usage path: batches land in the JSONL file and the usage
//! tree, a time-range query reads them back across batches and a reopen, and
//! records stored one per key before batching are still read.

use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::*;
use crate::storage::SledStore;

fn line(time: &str, id: &str) -> UsageLine {
    UsageLine {
        time: time.into(),
        request_id: id.into(),
        json: format!(r#"{{"time":"{time}","request_id":"{id}"}}"#),
    }
}

fn at(time: &str) -> Option<DateTime<Utc>> {
    Some(
        DateTime::parse_from_rfc3339(time)
            .unwrap()
            .with_timezone(&Utc),
    )
}

fn writer(store: &Arc<SledStore>, logs: &std::path::Path) -> Addr<DiskWriter> {
    let store: Arc<dyn StateStore> = store.clone();
    let logs = logs.to_path_buf();
    SyncArbiter::start(1, move || DiskWriter::new(store.clone(), logs.clone()))
}

async fn ids(writer: &Addr<DiskWriter>, from: &str, to: &str) -> Vec<String> {
    let query = QueryUsage {
        from: if from.is_empty() { None } else { at(from) },
        to: if to.is_empty() { None } else { at(to) },
    };
    writer
        .send(query)
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|v| serde_json::from_slice::<serde_json::Value>(v).unwrap()["request_id"].to_string())
        .map(|id| id.trim_matches('"').to_string())
        .collect()
}

#[actix_web::test]
async fn batches_are_one_value_each_and_ranges_read_around_them() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let store = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    // One record stored the old way: a JSON value under `{time}/{id}`.
    let old = line("2025-01-31T11:00:00.000Z", "old");
    let old_key = b"2025-01-31T11:00:00.000Z/old".to_vec();
    let put_old = StoreOp::Put(old_key, old.json.into_bytes());
    store.apply(Tree::Usage, vec![put_old]).unwrap();
    let writer = writer(&store, &logs);
    for batch in [
        vec![
            line("2025-01-31T12:00:00.000Z", "a1"),
            line("2025-01-31T12:00:00.500Z", "a2"),
        ],
        vec![line("2025-01-31T12:00:05.000Z", "b1")],
        // Across midnight: two JSONL files, one batch.
        vec![
            line("2025-01-31T23:59:59.900Z", "c1"),
            line("2025-02-01T00:00:00.100Z", "c2"),
        ],
    ] {
        let append = AppendUsage { records: batch };
        writer.send(append).await.unwrap().unwrap();
    }
    writer.send(Flush).await.unwrap().unwrap();
    let stored = store.load_all(Tree::Usage).unwrap();
    assert_eq!(stored.len(), 4, "the old record and 3 batches");
    let day = |d: &str| std::fs::read_to_string(logs.join(format!("usage-{d}.jsonl"))).unwrap();
    assert_eq!(day("2025-01-31").lines().count(), 4);
    assert_eq!(day("2025-02-01").lines().count(), 1);

    let all = ["old", "a1", "a2", "b1", "c1", "c2"];
    assert_eq!(ids(&writer, "", "").await, all);
    assert_eq!(ids(&writer, "", "2025-01-31T12:00:00Z").await, ["old"]);
    // a2 is in range but in a batch keyed before `from`: the scan starts early.
    let around = ids(&writer, "2025-01-31T12:00:00.200Z", "2025-01-31T12:00:05Z").await;
    assert_eq!(around, ["a1", "a2"], "candidates; the caller cuts a1");
    // A late range reads nothing older than one batch span before it.
    assert_eq!(ids(&writer, "2025-02-01T00:00:00Z", "").await, ["c1", "c2"]);
    assert!(ids(&writer, "2025-02-02T00:00:00Z", "").await.is_empty());
}

//! The DiskWriter's usage path: records land in their day's JSONL file
//! (a batch across midnight in two), nothing goes to sled, and a time-range
//! query reads back exactly the days it touches.

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
async fn usage_goes_to_daily_files_only_and_reads_back_by_day() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let store = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    let writer = {
        let store: Arc<dyn StateStore> = store.clone();
        let logs = logs.clone();
        SyncArbiter::start(1, move || DiskWriter::new(store.clone(), logs.clone()))
    };
    assert!(ids(&writer, "", "").await.is_empty(), "no files yet");
    for batch in [
        vec![line("2025-01-30T08:00:00.000Z", "a1")],
        vec![
            line("2025-01-31T12:00:00.000Z", "b1"),
            line("2025-01-31T12:00:00.500Z", "b2"),
        ],
        // Across midnight: two files.
        vec![
            line("2025-01-31T23:59:59.900Z", "c1"),
            line("2025-02-01T00:00:00.100Z", "c2"),
        ],
    ] {
        let append = AppendUsage { records: batch };
        writer.send(append).await.unwrap().unwrap();
    }
    writer.send(Flush).await.unwrap().unwrap();
    let day = |d: &str| std::fs::read_to_string(logs.join(format!("usage-{d}.jsonl"))).unwrap();
    assert_eq!(day("2025-01-31").lines().count(), 3);
    assert_eq!(day("2025-02-01").lines().count(), 1);
    for tree in [
        Tree::Counters,
        Tree::Blacklist,
        Tree::Users,
        Tree::UpstreamKeys,
    ] {
        assert!(store.load_all(tree).unwrap().is_empty(), "{tree:?}");
    }

    assert_eq!(ids(&writer, "", "").await, ["a1", "b1", "b2", "c1", "c2"]);
    // Whole days around the range; the admin query cuts it exactly.
    let jan_31 = ids(&writer, "2025-01-31T12:00:00.200Z", "2025-01-31T13:00:00Z").await;
    assert_eq!(jan_31, ["b1", "b2", "c1"]);
    assert_eq!(ids(&writer, "", "2025-01-30T23:00:00Z").await, ["a1"]);
    assert_eq!(ids(&writer, "2025-02-01T00:00:00Z", "").await, ["c2"]);
    assert!(ids(&writer, "2025-02-02T00:00:00Z", "").await.is_empty());
}

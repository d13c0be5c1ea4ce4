//! DiskWriter: the one actor allowed to block on disk. It runs on its own
//! thread (`SyncArbiter`), takes batches from the stateful actors and usage
//! lines from the UsageLogger, and appends usage to daily JSONL files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;

use super::{StateStore, StorageError, StoreOp, Tree};

// ---- messages ----

/// Apply a batch of writes to one tree.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct WriteBatch {
    pub tree: Tree,
    pub ops: Vec<StoreOp>,
}

/// Append usage records: each is (sled key, JSON line, day "YYYY-MM-DD").
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct AppendUsage {
    pub records: Vec<(Vec<u8>, String, String)>,
}

/// Make everything written so far durable.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct Flush;

/// Check that the store answers.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct Ping;

// ---- actor ----

pub struct DiskWriter {
    store: Arc<dyn StateStore>,
    log_dir: PathBuf,
    /// The open JSONL file and the day it is for.
    usage_file: Option<(String, File)>,
}

impl DiskWriter {
    pub fn new(store: Arc<dyn StateStore>, log_dir: PathBuf) -> Self {
        DiskWriter {
            store,
            log_dir,
            usage_file: None,
        }
    }

    fn usage_file(&mut self, day: &str) -> Result<&mut File, StorageError> {
        let reopen = !matches!(&self.usage_file, Some((open_day, _)) if open_day == day);
        if reopen {
            std::fs::create_dir_all(&self.log_dir).map_err(io)?;
            let path = self.log_dir.join(format!("usage-{day}.jsonl"));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io)?;
            self.usage_file = Some((day.to_string(), file));
        }
        match &mut self.usage_file {
            Some((_, file)) => Ok(file),
            None => Err(StorageError::Backend("usage file not open".into())),
        }
    }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Backend(e.to_string())
}

impl Actor for DiskWriter {
    type Context = SyncContext<Self>;
}

/// Writes the batch as one sled batch.
impl Handler<WriteBatch> for DiskWriter {
    type Result = Result<(), StorageError>;
    fn handle(&mut self, msg: WriteBatch, _: &mut Self::Context) -> Self::Result {
        if msg.ops.is_empty() {
            return Ok(());
        }
        self.store.apply(msg.tree, msg.ops)
    }
}

/// Stores the records in the usage tree and appends their lines to the day's
/// JSONL file (grouped so a batch crossing midnight lands in both files).
impl Handler<AppendUsage> for DiskWriter {
    type Result = Result<(), StorageError>;
    fn handle(&mut self, msg: AppendUsage, _: &mut Self::Context) -> Self::Result {
        let mut ops = Vec::with_capacity(msg.records.len());
        let mut pending = String::new();
        let mut pending_day: Option<String> = None;
        for (key, line, day) in msg.records {
            if pending_day.as_deref() != Some(day.as_str()) {
                if let Some(previous) = pending_day.take() {
                    self.usage_file(&previous)?
                        .write_all(pending.as_bytes())
                        .map_err(io)?;
                    pending.clear();
                }
                pending_day = Some(day);
            }
            pending.push_str(&line);
            pending.push('\n');
            ops.push(StoreOp::Put(key, line.into_bytes()));
        }
        if let Some(day) = pending_day {
            self.usage_file(&day)?
                .write_all(pending.as_bytes())
                .map_err(io)?;
        }
        self.store.apply(Tree::Usage, ops)
    }
}

/// Flushes sled and the open usage file.
impl Handler<Flush> for DiskWriter {
    type Result = Result<(), StorageError>;
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        if let Some((_, file)) = &mut self.usage_file {
            file.flush().map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        self.store.flush()
    }
}

/// Answers whether the store responds.
impl Handler<Ping> for DiskWriter {
    type Result = Result<(), StorageError>;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        self.store.ping()
    }
}

/// Usage records (their JSON values) whose keys lie in `[from, to)`, oldest
/// first; `None` leaves that side open. Keys start with the record's RFC 3339
/// time, so the bounds are times formatted the same way. For the admin API.
#[derive(Message)]
#[rtype(result = "Result<Vec<Vec<u8>>, StorageError>")]
pub struct QueryUsage {
    pub from: Option<Vec<u8>>,
    pub to: Option<Vec<u8>>,
}

/// Reads the usage tree and keeps the keys in range.
// The store trait has no range scan yet, so this reads the tree and filters.
impl Handler<QueryUsage> for DiskWriter {
    type Result = Result<Vec<Vec<u8>>, StorageError>;
    fn handle(&mut self, msg: QueryUsage, _: &mut Self::Context) -> Self::Result {
        let in_range = |key: &[u8]| {
            msg.from.as_deref().is_none_or(|from| key >= from)
                && msg.to.as_deref().is_none_or(|to| key < to)
        };
        Ok(self
            .store
            .load_all(Tree::Usage)?
            .into_iter()
            .filter(|(key, _)| in_range(key))
            .map(|(_, value)| value)
            .collect())
    }
}

//! DiskWriter: the one actor allowed to block on disk. It runs on its own
//! thread (`SyncArbiter`), takes batches from the stateful actors and usage
//! lines from the UsageLogger, and appends usage to daily JSONL files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::usage_log::{self, UsageLine};
use super::{StateStore, StorageError, StoreOp, Tree};

// ---- messages ----

/// Apply a batch of writes to one tree.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct WriteBatch {
    pub tree: Tree,
    pub ops: Vec<StoreOp>,
}

/// Append usage records to their days' JSONL files (see [`usage_log`]).
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct AppendUsage {
    pub records: Vec<UsageLine>,
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
            let path = self.log_dir.join(usage_log::file_name(day));
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

/// Appends the records' lines to their day's JSONL file (grouped so a batch
/// crossing midnight lands in both files).
impl Handler<AppendUsage> for DiskWriter {
    type Result = Result<(), StorageError>;
    fn handle(&mut self, msg: AppendUsage, _: &mut Self::Context) -> Self::Result {
        let mut pending = String::new();
        let mut pending_day: Option<&str> = None;
        for record in &msg.records {
            let day = record.day();
            if pending_day != Some(day) {
                if let Some(previous) = pending_day.take() {
                    self.usage_file(previous)?
                        .write_all(pending.as_bytes())
                        .map_err(io)?;
                    pending.clear();
                }
                pending_day = Some(day);
            }
            pending.push_str(&record.json);
            pending.push('\n');
        }
        if let Some(day) = pending_day {
            self.usage_file(day)?
                .write_all(pending.as_bytes())
                .map_err(io)?;
        }
        Ok(())
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

/// Usage records (one JSON value each) of the days that can hold records
/// in `[from, to)` (`None`: open on that side); the caller cuts the range
/// by each record's time. For the admin API.
#[derive(Message)]
#[rtype(result = "Result<Vec<Vec<u8>>, StorageError>")]
pub struct QueryUsage {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Reads the daily files (here, so reads follow every append handed over
/// before the query).
impl Handler<QueryUsage> for DiskWriter {
    type Result = Result<Vec<Vec<u8>>, StorageError>;
    fn handle(&mut self, msg: QueryUsage, _: &mut Self::Context) -> Self::Result {
        usage_log::read_days(&self.log_dir, msg.from, msg.to)
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;

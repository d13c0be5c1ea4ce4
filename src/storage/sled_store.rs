//! The embedded default backend: one sled database under `data_dir/db`, one
//! sled `Tree` per [`Tree`], opened in low-space mode (sled can otherwise use
//! far more disk than its data).

use std::path::Path;

use super::{Entries, StateStore, StorageError, StoreOp, Tree};

pub struct SledStore {
    db: sled::Db,
}

impl SledStore {
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::LowSpace)
            // sled's default page cache is 1 GiB, which resident memory
            // would grow into as usage records accumulate.
            .cache_capacity(8 << 20)
            .open()
            .map_err(|e| StorageError::Open {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(SledStore { db })
    }

    /// Like [`SledStore::open`], but a lock held by a store this process
    /// just closed (sled releases it from a background thread) is waited
    /// for, up to `wait`; a lock still held after that belongs to another
    /// process.
    pub fn open_patiently(dir: &Path, wait: std::time::Duration) -> Result<Self, StorageError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match Self::open(dir) {
                Err(StorageError::Open { message, .. })
                    if message.contains("lock") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn tree(&self, tree: Tree) -> Result<sled::Tree, StorageError> {
        self.db.open_tree(tree.name()).map_err(backend)
    }
}

fn backend(e: sled::Error) -> StorageError {
    StorageError::Backend(e.to_string())
}

impl StateStore for SledStore {
    fn load_all(&self, tree: Tree) -> Result<Entries, StorageError> {
        self.tree(tree)?
            .iter()
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend))
            .collect()
    }

    fn apply(&self, tree: Tree, ops: Vec<StoreOp>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                StoreOp::Put(k, v) => batch.insert(k, v),
                StoreOp::Delete(k) => batch.remove(k),
            }
        }
        self.tree(tree)?.apply_batch(batch).map_err(backend)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }

    fn ping(&self) -> Result<(), StorageError> {
        self.db.get(b"__ping").map(|_| ()).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .apply(
                    Tree::Counters,
                    vec![
                        StoreOp::Put(b"a".to_vec(), b"1".to_vec()),
                        StoreOp::Put(b"b".to_vec(), b"2".to_vec()),
                        StoreOp::Delete(b"a".to_vec()),
                    ],
                )
                .unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.load_all(Tree::Counters).unwrap(),
            vec![(b"b".to_vec(), b"2".to_vec())]
        );
        assert!(store.load_all(Tree::Blacklist).unwrap().is_empty());
        store.ping().unwrap();
    }
}

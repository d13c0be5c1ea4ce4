//! Where state outlives the process. Actors never call storage directly on
//! their event loop: they hand batches to the [`writer::DiskWriter`], a
//! `SyncArbiter` actor on its own thread, because sled calls block.
//!
//! The [`StateStore`] trait keeps the backend replaceable (sled by default;
//! a shared store for several instances can stand in).

pub mod redis;
pub mod sled_store;
pub mod usage_log;
pub mod writer;

pub use sled_store::SledStore;

/// The named collections the gateway keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tree {
    /// Endpoint RPM/RPD windows, keyed `endpoint_id/rpm|rpd`.
    Counters,
    /// Per-IP error windows and bans, keyed by IP.
    Blacklist,
    /// Users, keyed by id.
    Users,
    /// Upstream keys added at runtime, encrypted, keyed by endpoint and id.
    UpstreamKeys,
}

impl Tree {
    pub fn name(&self) -> &'static str {
        match self {
            Tree::Counters => "counters",
            Tree::Blacklist => "blacklist",
            Tree::Users => "users",
            Tree::UpstreamKeys => "upstream_keys",
        }
    }
}

/// One write in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage error: {0}")]
    Backend(String),
    #[error("could not open the data directory {path}: {message}")]
    Open { path: String, message: String },
}

/// Every (key, value) of a tree.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A key-value backend with named trees. Calls may block.
pub trait StateStore: Send + Sync + 'static {
    fn load_all(&self, tree: Tree) -> Result<Entries, StorageError>;
    fn apply(&self, tree: Tree, ops: Vec<StoreOp>) -> Result<(), StorageError>;
    fn flush(&self) -> Result<(), StorageError>;
    /// A cheap round trip proving the store answers.
    fn ping(&self) -> Result<(), StorageError>;
}

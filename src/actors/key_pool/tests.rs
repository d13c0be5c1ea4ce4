//! KeyPool unit tests: lending rules (disabled, exhausted), the admin
//! messages, and runtime keys surviving a restart through the DiskWriter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix::prelude::*;

use super::*;
use crate::config::{from_toml_str, CliOverrides};
use crate::storage::{Entries, StateStore, StorageError};

/// A store that outlives the "process" (the pool and its writer) in memory.
#[derive(Default)]
struct MemoryStore(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl StateStore for MemoryStore {
    fn load_all(&self, tree: Tree) -> Result<Entries, StorageError> {
        assert_eq!(tree, Tree::UpstreamKeys);
        Ok(self.0.lock().unwrap().clone().into_iter().collect())
    }
    fn apply(&self, tree: Tree, ops: Vec<StoreOp>) -> Result<(), StorageError> {
        assert_eq!(tree, Tree::UpstreamKeys);
        let mut map = self.0.lock().unwrap();
        for op in ops {
            match op {
                StoreOp::Put(k, v) => map.insert(k, v),
                StoreOp::Delete(k) => map.remove(&k),
            };
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn ping(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

fn endpoints(toml: &str) -> Vec<EndpointConfig> {
    from_toml_str(toml, &BTreeMap::new(), &CliOverrides::default())
        .unwrap()
        .endpoints
}

const TWO: &str = r#"
[[endpoints]]
id = "a"
provider = "openai"
base_url = "http://127.0.0.1:9"
keys = ["sk-config-aaaa"]
[[endpoints]]
id = "b"
provider = "openai"
base_url = "http://127.0.0.1:9"
"#;

fn vault(byte: u8) -> Vault {
    Vault::from_bytes([byte; 32]).unwrap()
}

fn pool(vault: Option<Vault>) -> KeyPoolHandle {
    KeyPool::restore(&endpoints(TWO), &Vec::new(), vault, None).start()
}

/// Leases by endpoint id, the index given as the first config's ("a" = 0):
/// after a reconfigure the id must win over a stale index.
async fn lent(pool: &KeyPoolHandle, endpoint: &str, times: usize) -> Vec<String> {
    let stale_index = usize::from(endpoint == "b");
    let mut ids = Vec::new();
    for _ in 0..times {
        match pool.acquire(stale_index, endpoint).await.unwrap() {
            Ok(lease) => {
                ids.push(lease.key.expose().to_string());
                pool.report(lease, KeyOutcome::Unused);
            }
            Err(NoKey::NoneUsable) => ids.push("none".into()),
            Err(e) => panic!("{e:?}"),
        }
    }
    ids
}

#[actix_web::test]
async fn adding_needs_a_master_key() {
    let pool = pool(None);
    let err = pool.add_key("a", Secret::new("sk-new-1111"), None).await;
    assert_eq!(err, Err(KeyAdminError::NoMasterKey));
    assert!(KeyAdminError::NoMasterKey
        .to_string()
        .contains("AIGATE_MASTER_KEY"));
}

#[actix_web::test]
async fn added_keys_are_lent_listed_and_removable() {
    let pool = pool(Some(vault(1)));
    let added = pool
        .add_key("b", Secret::new("sk-runtime-bbbb"), None)
        .await
        .unwrap();
    assert_eq!(added.hint, "…bbbb");
    assert_eq!(added.id, key_id_of("b", "sk-runtime-bbbb"));
    assert_eq!(lent(&pool, "b", 2).await, ["sk-runtime-bbbb"; 2]);
    let again = pool
        .add_key("b", Secret::new("sk-runtime-bbbb"), None)
        .await;
    assert!(matches!(again, Err(KeyAdminError::Duplicate { .. })));
    let unknown = pool.add_key("zz", Secret::new("sk-x"), None).await;
    assert_eq!(unknown, Err(KeyAdminError::UnknownEndpoint("zz".into())));
    let blank = pool.add_key("b", Secret::new(" sk-x"), None).await;
    assert!(matches!(blank, Err(KeyAdminError::Invalid(_))));

    let all = pool.list_keys(None).await.unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|k| (k.endpoint.as_str(), k.source.as_str(), k.state.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("a", "config", "active"), ("b", "runtime", "active")]
    );
    assert_eq!(pool.list_keys(Some("b")).await.unwrap().len(), 1);
    assert!(pool.list_keys(Some("zz")).await.is_err());

    let config_id = all[0].id.clone();
    let refused = pool.remove_key("a", &config_id).await;
    assert!(matches!(refused, Err(KeyAdminError::ConfigKey { .. })));
    assert!(refused.unwrap_err().to_string().contains("config file"));

    // A lease out while its key is removed comes back harmlessly.
    let lease = pool.acquire(1, "b").await.unwrap().unwrap();
    pool.remove_key("b", &added.id).await.unwrap();
    pool.report(
        lease,
        KeyOutcome::Success {
            latency: Duration::from_millis(5),
        },
    );
    assert_eq!(lent(&pool, "b", 1).await, ["none"]);
    assert!(pool.list_keys(Some("b")).await.unwrap().is_empty());
}

#[actix_web::test]
async fn a_disabled_key_is_never_lent() {
    let pool = pool(Some(vault(1)));
    pool.add_key("a", Secret::new("sk-runtime-2222"), None)
        .await
        .unwrap();
    let config_id = key_id_of("a", "sk-config-aaaa");
    let info = pool.set_key_disabled("a", &config_id, true).await.unwrap();
    assert_eq!(info.state, "disabled");
    assert_eq!(lent(&pool, "a", 4).await, ["sk-runtime-2222"; 4]);
    let status = pool.snapshot().await.unwrap();
    assert_eq!(status[0][0].state, "disabled");
    assert_eq!(status[0][0].id, "…aaaa");

    let runtime_id = key_id_of("a", "sk-runtime-2222");
    pool.set_key_disabled("a", &runtime_id, true).await.unwrap();
    assert_eq!(lent(&pool, "a", 2).await, ["none"; 2]);
    pool.set_key_disabled("a", &config_id, false).await.unwrap();
    assert_eq!(lent(&pool, "a", 2).await, ["sk-config-aaaa"; 2]);
}

#[actix_web::test]
async fn a_key_over_its_budget_leaves_the_pool() {
    let pool = pool(Some(vault(1)));
    let capped = pool
        .add_key("b", Secret::new("sk-capped-cccc"), Some(1.0))
        .await
        .unwrap();
    pool.add_key("b", Secret::new("sk-free-dddd"), None)
        .await
        .unwrap();
    let invalid = pool.add_key("b", Secret::new("sk-e"), Some(-1.0)).await;
    assert!(matches!(invalid, Err(KeyAdminError::Invalid(_))));

    pool.spend(1, &capped.id, 0.6);
    pool.spend(1, &capped.id, f64::NAN);
    let keys = pool.list_keys(Some("b")).await.unwrap();
    assert_eq!((keys[0].state.as_str(), keys[0].spent_usd), ("active", 0.6));
    assert_eq!(keys[0].budget_usd, Some(1.0));
    let both = lent(&pool, "b", 2).await;
    assert!(both.contains(&"sk-capped-cccc".to_string()), "{both:?}");

    // Through a lease: charged to the key lent, found by the lease's position.
    let lease = loop {
        let lease = pool.acquire(1, "b").await.unwrap().unwrap();
        if *lease.stable_id == *capped.id {
            break lease;
        }
    };
    pool.spend_lease(&lease, 0.15);
    let stale = KeyLease {
        key_index: 7,
        ..lease.clone()
    };
    pool.spend_lease(&stale, 0.05);
    let keys = pool.list_keys(Some("b")).await.unwrap();
    assert!(
        (keys[0].spent_usd - 0.8).abs() < 1e-9,
        "{}",
        keys[0].spent_usd
    );
    assert_eq!(keys[1].spent_usd, 0.0);

    pool.spend(1, &capped.id, 0.2);
    let keys = pool.list_keys(Some("b")).await.unwrap();
    assert_eq!(keys[0].state, "exhausted");
    assert_eq!(pool.snapshot().await.unwrap()[1][0].state, "exhausted");
    assert_eq!(lent(&pool, "b", 4).await, ["sk-free-dddd"; 4]);
}

#[actix_web::test]
async fn runtime_keys_survive_a_restart_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let start = |vault: Option<Vault>| {
        let stored = store.load_all(Tree::UpstreamKeys).unwrap();
        let (store, logs) = (store.clone(), dir.path().to_path_buf());
        let writer = SyncArbiter::start(1, move || DiskWriter::new(store.clone(), logs.clone()));
        KeyPool::restore(&endpoints(TWO), &stored, vault, Some(writer)).start()
    };

    let pool = start(Some(vault(1)));
    let kept = pool
        .add_key("b", Secret::new("sk-kept-eeee"), Some(2.0))
        .await
        .unwrap();
    let gone = pool
        .add_key("b", Secret::new("sk-gone-ffff"), None)
        .await
        .unwrap();
    pool.set_key_disabled("b", &gone.id, true).await.unwrap();
    pool.remove_key("b", &gone.id).await.unwrap();
    pool.spend(1, &kept.id, 0.5);
    pool.persist().await.unwrap();
    let on_disk = store.0.lock().unwrap().clone();
    assert_eq!(on_disk.len(), 1, "the removed key is deleted");
    let bytes: Vec<u8> = on_disk
        .into_iter()
        .flat_map(|(k, v)| [k, v])
        .flatten()
        .collect();
    assert!(!bytes.windows(7).any(|w| w == b"sk-kept" || w == b"sk-gone"));
    drop(pool);

    let pool = start(Some(vault(1)));
    let keys = pool.list_keys(Some("b")).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].id.as_str(), keys[0].spent_usd, keys[0].budget_usd),
        (kept.id.as_str(), 0.5, Some(2.0))
    );
    assert_eq!(lent(&pool, "b", 1).await, ["sk-kept-eeee"]);
    drop(pool);

    // Another master key: the record is kept and listed, but never lent.
    let pool = start(Some(vault(2)));
    let keys = pool.list_keys(Some("b")).await.unwrap();
    assert_eq!(keys[0].state, "locked");
    assert_eq!(lent(&pool, "b", 1).await, ["none"]);
    let disable = pool.set_key_disabled("b", &kept.id, true).await;
    assert!(matches!(disable, Err(KeyAdminError::NotLoaded { .. })));
}

#[actix_web::test]
async fn reconfigure_follows_endpoint_ids() {
    let pool = pool(Some(vault(1)));
    let added = pool
        .add_key("b", Secret::new("sk-runtime-9999"), None)
        .await
        .unwrap();
    let lease = pool.acquire(0, "a").await.unwrap().unwrap();
    pool.report(lease, KeyOutcome::Revoked { status: 401 });
    assert_eq!(lent(&pool, "a", 1).await, ["none"]);

    // "b" moves first, "a" second; the revoked config key gets another chance.
    let swapped: Vec<EndpointConfig> = endpoints(TWO).into_iter().rev().collect();
    pool.reconfigure(swapped).await.unwrap();
    assert_eq!(lent(&pool, "b", 1).await, ["sk-runtime-9999"]);
    assert_eq!(lent(&pool, "a", 1).await, ["sk-config-aaaa"]);

    // Without "b" its runtime key is parked; with "b" back, it returns.
    pool.reconfigure(endpoints(TWO).into_iter().take(1).collect())
        .await
        .unwrap();
    let keys = pool.list_keys(Some("b")).await.unwrap();
    assert_eq!(
        (keys[0].id.as_str(), keys[0].state.as_str()),
        (added.id.as_str(), "orphaned")
    );
    pool.reconfigure(endpoints(TWO)).await.unwrap();
    assert_eq!(lent(&pool, "b", 1).await, ["sk-runtime-9999"]);
}

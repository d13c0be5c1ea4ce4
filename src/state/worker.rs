//! Worker: one per HTTP worker thread, what a proxied request starts from.
//!
//! A reference count or lock that requests on two cores write in turn moves
//! its cache line from one core to the other each time (on the benchmark's
//! VM, the instructions right after such atomic operations held about 5 %
//! of the gateway's CPU samples). Taking the shared [`AppState`] out of
//! actix's app data and the config snapshot out of its lock costs a dozen
//! of them a request: the state's count, the snapshot lock's, the
//! snapshot's count, each up and down again. A request instead borrows the
//! state through its worker's handle, whose own count only this thread
//! touches, and shares the worker's copy of the snapshot by `Rc`. (On the
//! 2-core benchmark VM this made no difference that could be measured:
//! BENCHMARKS.md, hot spot 17. The traffic it removes grows with cores.)
//!
//! The worker keeps the snapshot until the state's generation moves (a
//! reload bumps it after swapping the snapshot in); checking it is a read
//! of a value that only a reload writes, so the cache line stays shared. A
//! worker that serves no request after a reload keeps the previous
//! snapshot alive until its next request; the rate windows of an endpoint
//! that the reload removed are still persisted each second meanwhile.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::web;

use super::{AppState, Live};

/// A request's handle on a config snapshot: counted on its own thread
/// (`Rc`), over the worker's one count of the shared snapshot (`Arc`).
#[allow(clippy::redundant_allocation)] // the second count is the point
pub type LiveRef = Rc<Arc<Live>>;

pub struct Worker {
    state: web::Data<AppState>,
    http: awc::Client,
    /// The snapshot and the generation it was taken at.
    live: RefCell<Option<(u64, LiveRef)>>,
}

impl Worker {
    pub fn new(state: web::Data<AppState>, http: awc::Client) -> Self {
        Worker {
            state,
            http,
            live: RefCell::new(None),
        }
    }

    pub fn state(&self) -> &web::Data<AppState> {
        &self.state
    }

    /// This worker's upstream HTTP client.
    pub fn http(&self) -> &awc::Client {
        &self.http
    }

    /// The current config snapshot, as [`AppState::live`] returns it. Take
    /// it once per request and keep it.
    pub fn live(&self) -> LiveRef {
        let generation = self.state.generation();
        let mut cached = self.live.borrow_mut();
        match &*cached {
            Some((at, live)) if *at == generation => live.clone(),
            _ => {
                // Read the snapshot after the generation: a reload swaps
                // first, then bumps, so this one is at least as new.
                let live = Rc::new(self.state.live());
                *cached = Some((generation, live.clone()));
                live
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(path: &std::path::Path, data_dir: &std::path::Path, endpoints: &[&str]) {
        let mut toml = format!("[server]\ndata_dir = {data_dir:?}\n");
        for id in endpoints {
            toml += &format!("[[endpoints]]\nid = \"{id}\"\nprovider = \"mock\"\n");
        }
        std::fs::write(path, toml).unwrap();
    }

    #[actix_web::test]
    async fn keeps_its_snapshot_until_a_reload_moves_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aigate.toml");
        write_config(&path, dir.path(), &["a"]);
        let config =
            crate::config::load(Some(&path), &Default::default(), &Default::default()).unwrap();
        let state = web::Data::new(AppState::start(config).unwrap());
        let worker = Worker::new(state.clone(), awc::Client::default());

        let first = worker.live();
        assert!(
            Rc::ptr_eq(&first, &worker.live()),
            "same generation, same copy"
        );
        assert!(Arc::ptr_eq(&first, &state.live()));

        write_config(&path, dir.path(), &["a", "b"]);
        state.reload().await.unwrap();
        let second = worker.live();
        assert!(
            Arc::ptr_eq(&second, &state.live()),
            "the reload is seen at once"
        );
        assert_eq!(second.config.endpoints.len(), 2);
        assert_eq!(first.config.endpoints.len(), 1, "the old copy is untouched");
    }
}

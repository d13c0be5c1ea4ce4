//! Endpoint prices already looked up under one config snapshot. Resolving
//! a price walks three layers and matches globs and the built-in families
//! by string (about 2,600 instructions); the answer for an endpoint and an
//! upstream model cannot change until a reload, which builds a new snapshot
//! with a new memo. Each endpoint remembers at most
//! [`MODELS_PER_ENDPOINT`] model names (clients choose them), later ones are
//! resolved every time.
//!
//! The answers are kept per thread: one table behind a lock would be taken
//! by every request on every worker in turn, and its cache line would move
//! between the cores each time (see `state::worker`). A thread keeps the
//! table of the last memo it served; a request on another snapshot starts
//! that thread's table over.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::HashMap;

use super::{endpoint_price, Price};
use crate::config::Config;

pub const MODELS_PER_ENDPOINT: usize = 256;

pub struct PriceMemo {
    /// Tells this memo's table from another's in a thread's slot.
    id: u64,
    endpoints: usize,
}

/// Per endpoint, what its upstream models cost.
type Table = Vec<HashMap<Box<str>, Option<Price>>>;

thread_local! {
    static KNOWN: RefCell<Option<(u64, Table)>> = const { RefCell::new(None) };
}

impl PriceMemo {
    pub fn new(endpoints: usize) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        PriceMemo {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            endpoints,
        }
    }

    /// [`endpoint_price`], remembered. `config` must be the snapshot this
    /// memo was built for.
    pub fn endpoint_price(&self, config: &Config, endpoint: usize, model: &str) -> Option<Price> {
        if endpoint >= self.endpoints {
            return endpoint_price(config, endpoint, model);
        }
        self.with_table(|table| {
            let known = &mut table[endpoint];
            if let Some(price) = known.get(model) {
                return *price;
            }
            let price = endpoint_price(config, endpoint, model);
            if known.len() < MODELS_PER_ENDPOINT {
                known.insert(model.into(), price);
            }
            price
        })
    }

    /// Runs `f` on this thread's table for this memo, started over if the
    /// thread's table was another memo's.
    fn with_table<T>(&self, f: impl FnOnce(&mut Table) -> T) -> T {
        KNOWN.with(|slot| {
            let mut slot = slot.borrow_mut();
            let table = match &mut *slot {
                Some((id, table)) if *id == self.id => table,
                other => {
                    let fresh = (0..self.endpoints).map(|_| HashMap::default()).collect();
                    &mut other.insert((self.id, fresh)).1
                }
            };
            f(table)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config() -> Config {
        let toml = "[[endpoints]]\nid = \"a\"\nprovider = \"mock\"\n\
                    prices = { \"house-*\" = { input = 1.0, output = 2.0 } }";
        crate::config::from_toml_str(toml, &Default::default(), &Default::default()).unwrap()
    }

    #[test]
    fn remembers_what_the_layers_answer_and_stays_bounded() {
        let config = config();
        let memo = PriceMemo::new(config.endpoints.len());
        for model in ["house-1", "gpt-4o", "unknown-model", "house-1"] {
            assert_eq!(
                memo.endpoint_price(&config, 0, model),
                endpoint_price(&config, 0, model),
                "{model}"
            );
        }
        assert_eq!(memo.with_table(|t| t[0].len()), 3);
        for i in 0..MODELS_PER_ENDPOINT + 10 {
            let model = format!("house-{i}");
            assert_eq!(
                memo.endpoint_price(&config, 0, &model).map(|p| p.input),
                Some(1.0)
            );
        }
        assert_eq!(memo.with_table(|t| t[0].len()), MODELS_PER_ENDPOINT);
        // An index the memo does not know is resolved, not refused.
        assert_eq!(
            memo.endpoint_price(&config, 7, "gpt-4o"),
            endpoint_price(&config, 7, "gpt-4o")
        );
        assert!(endpoint_price(&config, 7, "gpt-4o").is_some());
    }

    #[test]
    fn two_snapshots_on_one_thread_keep_their_own_answers() {
        let cheap = config();
        let dear = crate::config::from_toml_str(
            "[[endpoints]]\nid = \"a\"\nprovider = \"mock\"\n\
             prices = { \"house-*\" = { input = 5.0, output = 6.0 } }",
            &Default::default(),
            &Default::default(),
        )
        .unwrap();
        let (old, new) = (PriceMemo::new(1), PriceMemo::new(1));
        for _ in 0..3 {
            let input = |memo: &PriceMemo, config| {
                memo.endpoint_price(config, 0, "house-1").map(|p| p.input)
            };
            assert_eq!(input(&old, &cheap), Some(1.0));
            assert_eq!(input(&new, &dear), Some(5.0));
        }
    }
}

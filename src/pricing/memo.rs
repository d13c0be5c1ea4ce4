//! Endpoint prices already looked up under one config snapshot. Resolving
//! a price walks three layers and matches globs and the built-in families
//! by string (about 2,600 instructions); the answer for an endpoint and an
//! upstream model cannot change until a reload, which builds a new snapshot
//! with an empty memo. Each endpoint remembers at most
//! [`MODELS_PER_ENDPOINT`] model names (clients choose them), later ones are
//! resolved every time.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{endpoint_price, Price};
use crate::actors::lock;
use crate::config::Config;

pub const MODELS_PER_ENDPOINT: usize = 256;

pub struct PriceMemo {
    /// One per endpoint, same order as `config.endpoints`.
    endpoints: Vec<Mutex<HashMap<Box<str>, Option<Price>>>>,
}

impl PriceMemo {
    pub fn new(endpoints: usize) -> Self {
        PriceMemo {
            endpoints: (0..endpoints).map(|_| Mutex::default()).collect(),
        }
    }

    /// [`endpoint_price`], remembered. `config` must be the snapshot this
    /// memo was built for.
    pub fn endpoint_price(&self, config: &Config, endpoint: usize, model: &str) -> Option<Price> {
        let Some(known) = self.endpoints.get(endpoint) else {
            return endpoint_price(config, endpoint, model);
        };
        if let Some(price) = lock(known).get(model) {
            return *price;
        }
        let price = endpoint_price(config, endpoint, model);
        let mut known = lock(known);
        if known.len() < MODELS_PER_ENDPOINT {
            known.insert(model.into(), price);
        }
        price
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
        assert_eq!(lock(&memo.endpoints[0]).len(), 3);
        for i in 0..MODELS_PER_ENDPOINT + 10 {
            let model = format!("house-{i}");
            assert_eq!(
                memo.endpoint_price(&config, 0, &model).map(|p| p.input),
                Some(1.0)
            );
        }
        assert_eq!(lock(&memo.endpoints[0]).len(), MODELS_PER_ENDPOINT);
        // An index the memo does not know is resolved, not refused.
        assert_eq!(
            memo.endpoint_price(&config, 7, "gpt-4o"),
            endpoint_price(&config, 7, "gpt-4o")
        );
        assert!(endpoint_price(&config, 7, "gpt-4o").is_some());
    }
}

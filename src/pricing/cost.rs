//! What one request cost: the price of the upstream model on the endpoint
//! that answered, applied to the tokens the upstream reported.

use super::defaults::default_price;
use super::Price;
use crate::config::Config;
use crate::stream::usage::TokenUsage;

/// The price of `model` (the upstream name) on endpoint `endpoint` (an index
/// into `config.endpoints`): the endpoint's `prices`, else the config's
/// `[pricing]`, else the built-in defaults; `None` when none knows it.
pub fn endpoint_price(config: &Config, endpoint: usize, model: &str) -> Option<Price> {
    config
        .endpoints
        .get(endpoint)
        .and_then(|e| e.prices.get(model))
        .or_else(|| config.pricing.get(model))
        .or_else(|| default_price(model))
}

/// USD for a request to `model` on `endpoint` that used `usage`; 0 when the
/// model has no price.
pub fn request_cost(config: &Config, endpoint: usize, model: &str, usage: &TokenUsage) -> f64 {
    endpoint_price(config, endpoint, model).map_or(0.0, |price| price.cost(usage))
}

impl Price {
    /// USD for `usage`. `prompt_tokens` includes the cached ones, so:
    /// `((prompt − cached) × input + cached × cached_input + completion ×
    /// output) / 1e6`, with `cached_input` falling back to `input`. The sum
    /// is taken in per-1M units and divided once, so exact inputs give the
    /// correctly rounded result.
    pub fn cost(&self, usage: &TokenUsage) -> f64 {
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let fresh = usage.prompt_tokens - cached;
        let per_million = fresh as f64 * self.input
            + cached as f64 * self.cached_input.unwrap_or(self.input)
            + usage.completion_tokens as f64 * self.output;
        per_million / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, completion: u64, cached: u64) -> TokenUsage {
        TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
        }
    }

    #[test]
    fn known_prices_exactly() {
        let gpt_4o = default_price("gpt-4o").unwrap();
        // 1,000 × $2.50/1M + 500 × $10/1M = $0.0025 + $0.005
        assert_eq!(gpt_4o.cost(&usage(1_000, 500, 0)), 0.0075);
        // 8 fresh × 2.50 + 3 cached × 1.25 + 7 × 10 = 93.75 per 1M
        assert_eq!(gpt_4o.cost(&usage(11, 7, 3)), 93.75 / 1e6);
        let sonnet = default_price("claude-sonnet-4-20250514").unwrap();
        // 1M prompt of which 400k cached: 600k × 3 + 400k × 0.30 + 2k × 15
        assert_eq!(sonnet.cost(&usage(1_000_000, 2_000, 400_000)), 1.95);
        let small = default_price("text-embedding-3-small").unwrap();
        assert_eq!(small.cost(&usage(1_000_000, 0, 0)), 0.02);
    }

    #[test]
    fn cached_tokens_without_a_cache_price_are_input() {
        let price = Price::new(2.0, 4.0, None);
        assert_eq!(
            price.cost(&usage(100, 10, 40)),
            price.cost(&usage(100, 10, 0))
        );
        // More cached than prompt (a confused upstream) counts the prompt once.
        let price = Price::new(2.0, 4.0, Some(1.0));
        assert_eq!(price.cost(&usage(10, 0, 50)), 10.0 / 1e6);
        assert_eq!(price.cost(&TokenUsage::default()), 0.0);
    }
}

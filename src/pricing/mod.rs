//! Prices of models and what a request cost.
//!
//! Every usage record carries its cost in USD, and the `cost` and `quota`
//! selection strategies prefer cheaper endpoints, so the gateway needs a price
//! for the model each endpoint is sent. A [`Price`] is USD per 1M tokens
//! (input, output, and cached input where it differs). Prices come from three
//! layers, the most specific first: an endpoint's `prices`, the config's
//! `[pricing]`, then the built-in defaults of `defaults.rs`. Within a layer a
//! model name matches an exact entry first, then the longest matching glob
//! (`*` matches any run of characters).
//!
//! A model no layer knows costs 0: its records carry `cost_usd = 0` and the
//! strategies sort it after every priced endpoint. That is documented rather
//! than an error, because a gateway must not refuse traffic for a missing
//! price.
//!
//! Layout:
//! - `mod.rs`: [`Price`], [`PriceTable`] and name matching.
//! - `defaults.rs`: the built-in list prices, dated.
//! - `cost.rs`: the layered lookup for an endpoint and the arithmetic.
//! - `memo.rs`: lookups remembered per config snapshot.

mod cost;
mod defaults;
mod memo;

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use cost::{endpoint_price, request_cost};
pub use defaults::{default_price, DEFAULT_PRICES};
pub use memo::PriceMemo;

use crate::users::model::glob_matches;

/// USD per 1M tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Prompt tokens read from a cache; `None` = billed as `input`.
    pub cached_input: Option<f64>,
}

impl Price {
    pub const fn new(input: f64, output: f64, cached_input: Option<f64>) -> Self {
        Price {
            input,
            output,
            cached_input,
        }
    }

    /// What the `cost` strategy sorts by: input + output per 1M tokens.
    pub fn sort_key(&self) -> f64 {
        self.input + self.output
    }
}

/// Model name or glob → price: the config's `[pricing]` or an endpoint's
/// `prices`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    entries: BTreeMap<String, Price>,
}

impl PriceTable {
    pub fn new(entries: BTreeMap<String, Price>) -> Self {
        PriceTable { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The price for `model`, from this table only (see [`find`]).
    pub fn get(&self, model: &str) -> Option<Price> {
        find(self.entries.iter().map(|(k, v)| (k.as_str(), *v)), model)
    }
}

/// The price of `model` among `entries` (pattern, price): an exact pattern
/// first, then the longest glob that matches. The name as given is tried
/// first, then its [`canonical`] form.
pub fn find<'a, I>(entries: I, model: &str) -> Option<Price>
where
    I: Iterator<Item = (&'a str, Price)> + Clone,
{
    let canonical = canonical(model);
    match_name(entries.clone(), model).or_else(|| match canonical {
        Cow::Owned(name) => match_name(entries, &name),
        Cow::Borrowed(_) => None,
    })
}

fn match_name<'a, I>(entries: I, name: &str) -> Option<Price>
where
    I: Iterator<Item = (&'a str, Price)> + Clone,
{
    if let Some((_, price)) = entries.clone().find(|(p, _)| *p == name) {
        return Some(price);
    }
    entries
        .filter(|(pattern, _)| pattern.contains('*') && glob_matches(pattern, name))
        // Longest pattern wins; on equal length the first listed.
        .fold(
            None,
            |best: Option<(usize, Price)>, (pattern, price)| match best {
                Some((len, _)) if len >= pattern.len() => best,
                _ => Some((pattern.len(), price)),
            },
        )
        .map(|(_, price)| price)
}

/// Bedrock regions put before a model id (`us.anthropic.claude-…`).
const CROSS_REGION_PREFIXES: [&str; 8] = [
    "us.", "eu.", "apac.", "au.", "jp.", "ca.", "global.", "us-gov.",
];

/// Provider spellings of a model reduced to its plain name, lowercased:
/// `models/gemini-2.5-pro` and `google/gemini-2.5-pro` → `gemini-2.5-pro`;
/// Bedrock's `us.anthropic.claude-3-5-sonnet-20240620-v1:0` →
/// `claude-3-5-sonnet-20240620-v1:0`; Vertex's `claude-sonnet-4@20250514` →
/// `claude-sonnet-4-20250514`.
pub fn canonical(model: &str) -> Cow<'_, str> {
    let mut name = model.rsplit('/').next().unwrap_or(model);
    if let Some(rest) = CROSS_REGION_PREFIXES
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
    {
        name = rest;
    }
    if let Some(rest) = name.strip_prefix("anthropic.") {
        name = rest;
    }
    let needs_change = name.len() != model.len()
        || name.contains('@')
        || name.chars().any(|c| c.is_ascii_uppercase());
    match needs_change {
        true => Cow::Owned(name.replace('@', "-").to_ascii_lowercase()),
        false => Cow::Borrowed(model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, f64)]) -> PriceTable {
        PriceTable::new(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), Price::new(*v, *v, None)))
                .collect(),
        )
    }

    #[test]
    fn exact_beats_glob_and_longest_glob_wins() {
        let t = table(&[("gpt-4o", 1.0), ("gpt-4o*", 2.0), ("gpt-4o-mini*", 3.0)]);
        assert_eq!(t.get("gpt-4o").unwrap().input, 1.0);
        assert_eq!(t.get("gpt-4o-2024-08-06").unwrap().input, 2.0);
        assert_eq!(t.get("gpt-4o-mini-2024-07-18").unwrap().input, 3.0);
        assert_eq!(t.get("gpt-4.1"), None);
        assert!(PriceTable::default().get("gpt-4o").is_none());
    }

    #[test]
    fn provider_spellings_are_canonicalised() {
        assert_eq!(canonical("gpt-4o"), Cow::Borrowed("gpt-4o"));
        assert_eq!(canonical("models/gemini-2.5-pro"), "gemini-2.5-pro");
        assert_eq!(
            canonical("us.anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "claude-3-5-sonnet-20240620-v1:0"
        );
        assert_eq!(
            canonical("anthropic.claude-3-haiku-20240307-v1:0"),
            "claude-3-haiku-20240307-v1:0"
        );
        assert_eq!(
            canonical("claude-sonnet-4@20250514"),
            "claude-sonnet-4-20250514"
        );
        assert_eq!(canonical("GPT-4o"), "gpt-4o");
    }

    #[test]
    fn the_name_as_given_is_tried_before_its_canonical_form() {
        let t = table(&[("openai/gpt-4o", 9.0), ("gpt-4o", 1.0)]);
        assert_eq!(t.get("openai/gpt-4o").unwrap().input, 9.0);
        assert_eq!(t.get("azure/gpt-4o").unwrap().input, 1.0);
    }
}

//! Built-in list prices, so that costs and the `cost` strategy work before
//! an operator writes a `[pricing]` table.
//!
//! Each entry names a model *family*: it prices the name itself and every
//! name that continues it after a `-` (dated snapshots `gpt-4o-2024-08-06`,
//! `claude-sonnet-4-20250514`, previews, Bedrock's `…-v1:0` suffix), and the
//! longest family wins (`gpt-4o-mini-2024-07-18` is `gpt-4o-mini`, not
//! `gpt-4o`). `gpt-5.5` does not continue `gpt-5` (no `-`), so a new minor
//! version is unknown (cost 0) until it is listed here or in the config,
//! rather than silently priced as its predecessor.
//!
//! USD per 1M tokens: input, output, cached input (cache reads; `None` =
//! billed as input). Standard tier, short-context rates: the >200K-token
//! rates of Gemini 2.5 Pro / 1.5 Pro and the batch discounts are not
//! modelled, nor Anthropic's cache *writes* (billed here as input).
//!
//! Checked 2026-11-22 against the providers' published price lists
//! (OpenAI API pricing as read 2026-11-05, Anthropic's model pricing table,
//! Google's Gemini API pricing) and GitHub's Copilot per-token price table.

use std::borrow::Cow;

use super::{canonical, Price};

const fn p(input: f64, output: f64, cached_input: Option<f64>) -> Price {
    Price::new(input, output, cached_input)
}

/// Family → price. Order does not matter; the longest family wins.
pub static DEFAULT_PRICES: &[(&str, Price)] = &[
    // OpenAI
    ("gpt-4o", p(2.50, 10.00, Some(1.25))),
    ("gpt-4o-mini", p(0.15, 0.60, Some(0.075))),
    // Realtime models, text tokens (audio tokens cost more and are not
    // told apart in the usage the gateway reads).
    ("gpt-4o-realtime", p(5.00, 20.00, Some(2.50))),
    ("gpt-4o-mini-realtime", p(0.60, 2.40, Some(0.30))),
    ("gpt-realtime", p(4.00, 16.00, Some(0.40))),
    ("gpt-4.1", p(2.00, 8.00, Some(0.50))),
    ("gpt-4.1-mini", p(0.40, 1.60, Some(0.10))),
    ("gpt-4.1-nano", p(0.10, 0.40, Some(0.025))),
    ("gpt-5", p(1.25, 10.00, Some(0.125))),
    ("gpt-5-mini", p(0.25, 2.00, Some(0.025))),
    ("gpt-5-nano", p(0.05, 0.40, Some(0.005))),
    ("gpt-5-pro", p(15.00, 120.00, None)),
    ("gpt-5.1", p(1.25, 10.00, Some(0.125))),
    ("gpt-5.2", p(1.75, 14.00, Some(0.175))),
    ("gpt-5.3", p(1.75, 14.00, Some(0.175))),
    ("gpt-5.4", p(2.50, 15.00, Some(0.25))),
    ("gpt-5.4-mini", p(0.75, 4.50, Some(0.075))),
    ("gpt-5.4-nano", p(0.20, 1.25, Some(0.02))),
    ("gpt-5.5", p(5.00, 30.00, Some(0.50))),
    ("o1", p(15.00, 60.00, Some(7.50))),
    ("o1-mini", p(1.10, 4.40, Some(0.55))),
    ("o3", p(2.00, 8.00, Some(0.50))),
    ("o3-mini", p(1.10, 4.40, Some(0.55))),
    ("o3-pro", p(20.00, 80.00, None)),
    ("o4-mini", p(1.10, 4.40, Some(0.275))),
    ("gpt-4", p(30.00, 60.00, None)),
    ("gpt-4-turbo", p(10.00, 30.00, None)),
    ("gpt-3.5-turbo", p(0.50, 1.50, None)),
    ("text-embedding-3-small", p(0.02, 0.0, None)),
    ("text-embedding-3-large", p(0.13, 0.0, None)),
    ("text-embedding-ada-002", p(0.10, 0.0, None)),
    // Anthropic (Bedrock and Vertex ids reach these through `canonical`)
    ("claude-3-haiku", p(0.25, 1.25, Some(0.03))),
    ("claude-3-sonnet", p(3.00, 15.00, Some(0.30))),
    ("claude-3-opus", p(15.00, 75.00, Some(1.50))),
    ("claude-3-5-haiku", p(0.80, 4.00, Some(0.08))),
    ("claude-3-5-sonnet", p(3.00, 15.00, Some(0.30))),
    ("claude-3-7-sonnet", p(3.00, 15.00, Some(0.30))),
    ("claude-haiku-4-5", p(1.00, 5.00, Some(0.10))),
    // Sonnet 4, 4.5 and 4.6 share a price.
    ("claude-sonnet-4", p(3.00, 15.00, Some(0.30))),
    // Opus 4 and 4.1; from 4.5 on Opus costs less.
    ("claude-opus-4", p(15.00, 75.00, Some(1.50))),
    ("claude-opus-4-5", p(5.00, 25.00, Some(0.50))),
    ("claude-opus-4-6", p(5.00, 25.00, Some(0.50))),
    ("claude-opus-4-7", p(5.00, 25.00, Some(0.50))),
    ("claude-opus-4-8", p(5.00, 25.00, Some(0.50))),
    // Google
    ("gemini-1.5-pro", p(1.25, 5.00, Some(0.3125))),
    ("gemini-1.5-flash", p(0.075, 0.30, Some(0.01875))),
    ("gemini-1.5-flash-8b", p(0.0375, 0.15, Some(0.01))),
    ("gemini-2.0-flash", p(0.10, 0.40, Some(0.025))),
    ("gemini-2.0-flash-lite", p(0.075, 0.30, None)),
    ("gemini-2.5-pro", p(1.25, 10.00, Some(0.125))),
    ("gemini-2.5-flash", p(0.30, 2.50, Some(0.03))),
    ("gemini-2.5-flash-lite", p(0.10, 0.40, Some(0.01))),
    ("gemini-3-pro", p(2.00, 12.00, Some(0.20))),
    ("gemini-3.1-pro", p(2.00, 12.00, Some(0.20))),
    ("gemini-3-flash", p(0.50, 3.00, None)),
];

/// The built-in price of `model`: its longest listed family, trying the
/// name as given and then its canonical form.
pub fn default_price(model: &str) -> Option<Price> {
    longest_family(model).or_else(|| match canonical(model) {
        Cow::Owned(name) => longest_family(&name),
        Cow::Borrowed(_) => None,
    })
}

/// An exact name is its own longest family, so no separate exact pass.
fn longest_family(name: &str) -> Option<Price> {
    DEFAULT_PRICES
        .iter()
        .filter(|(family, _)| {
            name.strip_prefix(family)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
        .max_by_key(|(family, _)| family.len())
        .map(|(_, price)| *price)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(model: &str) -> Option<(f64, f64, Option<f64>)> {
        default_price(model).map(|p| (p.input, p.output, p.cached_input))
    }

    #[test]
    fn families_cover_snapshots_and_the_longest_family_wins() {
        assert_eq!(io("gpt-4o"), Some((2.50, 10.00, Some(1.25))));
        assert_eq!(io("gpt-4o-2024-08-06"), io("gpt-4o"));
        assert_eq!(io("gpt-4o-mini-2024-07-18"), io("gpt-4o-mini"));
        assert_eq!(
            io("gpt-4.1-nano-2025-04-14"),
            Some((0.10, 0.40, Some(0.025)))
        );
        assert_eq!(io("gpt-5-mini-2025-08-07"), Some((0.25, 2.00, Some(0.025))));
        assert_eq!(io("o4-mini-2025-04-16"), Some((1.10, 4.40, Some(0.275))));
        assert_eq!(io("text-embedding-3-small"), Some((0.02, 0.0, None)));
        assert_eq!(io("claude-opus-4-1-20250805"), io("claude-opus-4"));
        assert_eq!(io("claude-opus-4-5-20251101"), Some((5.0, 25.0, Some(0.5))));
        assert_eq!(
            io("claude-sonnet-4-5-20250929"),
            Some((3.0, 15.0, Some(0.3)))
        );
        assert_eq!(
            io("gemini-2.5-flash-lite-preview-06-17"),
            io("gemini-2.5-flash-lite")
        );
    }

    #[test]
    fn a_family_does_not_swallow_other_versions() {
        assert_eq!(io("gpt-4o"), io("gpt-4o-audio-preview"));
        assert_eq!(
            io("gpt-4o-realtime-preview-2024-12-17"),
            Some((5.0, 20.0, Some(2.5)))
        );
        assert_ne!(io("gpt-4.1"), io("gpt-4o"));
        assert_eq!(io("gpt-5.6-terra"), None);
        assert_eq!(io("gpt-40"), None);
        assert_eq!(io("llama-3.1-70b"), None);
    }

    #[test]
    fn cloud_ids_map_to_the_claude_and_gemini_entries() {
        let sonnet_35 = io("claude-3-5-sonnet-20240620");
        assert!(sonnet_35.is_some());
        assert_eq!(io("anthropic.claude-3-5-sonnet-20240620-v1:0"), sonnet_35);
        assert_eq!(
            io("us.anthropic.claude-3-5-sonnet-20240620-v1:0"),
            sonnet_35
        );
        assert_eq!(
            io("eu.anthropic.claude-3-5-sonnet-20240620-v1:0"),
            sonnet_35
        );
        assert_eq!(io("claude-3-5-sonnet@20240620"), sonnet_35);
        assert_eq!(
            io("global.anthropic.claude-haiku-4-5-20251001-v1:0"),
            Some((1.0, 5.0, Some(0.1)))
        );
        assert_eq!(io("models/gemini-2.5-pro"), io("gemini-2.5-pro"));
        assert_eq!(
            io("publishers/google/models/gemini-2.0-flash-001"),
            io("gemini-2.0-flash")
        );
    }

    #[test]
    fn every_price_is_finite_and_not_negative() {
        for (family, price) in DEFAULT_PRICES {
            let values = [price.input, price.output, price.cached_input.unwrap_or(0.0)];
            assert!(
                values.iter().all(|v| v.is_finite() && *v >= 0.0),
                "{family}"
            );
            assert!(!family.contains('*'), "{family}: families are not globs");
        }
    }
}

//! `[pricing]` and an endpoint's `prices`: model (exact name or glob with
//! `*`) → `{ input, output, cached_input }` in USD per 1M tokens. Both
//! override the built-in prices of [`crate::pricing`]; an endpoint's own
//! table beats `[pricing]`.
//!
//! ```toml
//! [pricing]
//! "gpt-4o" = { input = 2.5, output = 10, cached_input = 1.25 }
//! "my-finetune-*" = { input = 3, output = 12 }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::validate::invalid;
use super::ConfigError;
use crate::pricing::{Price, PriceTable};

/// One model's prices as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrice {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
}

/// Model pattern → prices, as written.
pub(crate) type RawPrices = BTreeMap<String, RawPrice>;

/// Checks a price table; `at` is its key path (`pricing`,
/// `endpoints[0].prices`), errors read `pricing."gpt-4o".input: …`.
pub(crate) fn validate(at: &str, raw: &RawPrices) -> Result<PriceTable, ConfigError> {
    let mut entries = BTreeMap::new();
    for (model, price) in raw {
        let model_path = format!("{at}.\"{model}\"");
        let pattern = model.trim();
        if pattern.is_empty() {
            return Err(invalid(model_path, "expected a model name or glob"));
        }
        let amount = |key: &str, value: f64| match value.is_finite() && value >= 0.0 {
            true => Ok(value),
            false => Err(invalid(
                format!("{model_path}.{key}"),
                "expected a number >= 0",
            )),
        };
        let checked = Price::new(
            amount("input", price.input)?,
            amount("output", price.output)?,
            price
                .cached_input
                .map(|v| amount("cached_input", v))
                .transpose()?,
        );
        entries.insert(pattern.to_owned(), checked);
    }
    Ok(PriceTable::new(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RawPrices, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn integers_and_floats_are_both_numbers() {
        let raw = parse(
            r#""gpt-4o" = { input = 2.5, output = 10, cached_input = 1.25 }
"ft-*" = { input = 3, output = 12 }"#,
        )
        .unwrap();
        let table = validate("pricing", &raw).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table.get("gpt-4o"), Some(Price::new(2.5, 10.0, Some(1.25))));
        assert_eq!(table.get("ft-42"), Some(Price::new(3.0, 12.0, None)));
    }

    #[test]
    fn errors_name_the_key_path() {
        let raw = parse(r#""gpt-4o" = { input = -1, output = 10 }"#).unwrap();
        let err = validate("pricing", &raw).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pricing.\"gpt-4o\".input: expected a number >= 0"
        );
        let raw = parse(r#""m" = { input = 1, output = 1, cached_input = nan }"#).unwrap();
        let err = validate("endpoints[2].prices", &raw).unwrap_err();
        assert_eq!(
            err.to_string(),
            "endpoints[2].prices.\"m\".cached_input: expected a number >= 0"
        );
        let raw = parse(r#""  " = { input = 1, output = 1 }"#).unwrap();
        assert!(validate("pricing", &raw).is_err());
    }

    #[test]
    fn unknown_and_missing_keys_are_refused() {
        assert!(parse(r#""m" = { input = 1, output = 1, cache_write = 2 }"#).is_err());
        assert!(parse(r#""m" = { input = 1 }"#).is_err());
    }
}

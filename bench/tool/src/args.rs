//! The command line: `--key value` pairs; `--header` may repeat.

use std::collections::HashMap;
use std::str::FromStr;

pub struct Args {
    values: HashMap<String, String>,
    headers: Vec<(String, String)>,
}

impl Args {
    pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut values = HashMap::new();
        let mut headers = Vec::new();
        while let Some(flag) = argv.next() {
            let key = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --key, got {flag}"))?;
            let value = argv
                .next()
                .ok_or_else(|| format!("--{key} needs a value"))?;
            if key == "header" {
                let (name, v) = value
                    .split_once(':')
                    .ok_or_else(|| format!("--header {value}: expected 'name: value'"))?;
                headers.push((name.trim().to_string(), v.trim().to_string()));
            } else {
                values.insert(key.to_string(), value);
            }
        }
        Ok(Args { values, headers })
    }

    pub fn text(&self, key: &str) -> Result<&str, String> {
        self.values
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("--{key} is required"))
    }

    pub fn text_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.values.get(key).map_or(default, String::as_str)
    }

    pub fn number<T: FromStr>(&self, key: &str, default: Option<T>) -> Result<T, String> {
        match self.values.get(key) {
            Some(v) => v.parse().map_err(|_| format!("--{key} {v}: not a number")),
            None => default.ok_or_else(|| format!("--{key} is required")),
        }
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

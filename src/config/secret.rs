//! A key or token that must never reach a log line, a status page or an error.
//!
//! `Secret` prints `*****` through `Debug`, `Display` and `Serialize`; the only
//! way to the text is the explicit [`Secret::expose`]. It has no `PartialEq` on
//! purpose: comparing client keys is done in constant time by the auth code.
//! This file also resolves the `env:NAME` / `file:PATH` references a key may be
//! written as in the config file.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

const MASK: &str = "*****";

/// A secret string (an upstream API key or a client key).
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value that is already resolved (no `env:`/`file:` lookup).
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret text itself; call only where the value is actually sent.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short, safe label for logs and status pages: `…` and the last 4 chars.
    pub fn key_id(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        format!("…{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

/// Resolves one configured key: `env:NAME` reads the (injected) environment,
/// `file:PATH` reads a file and trims it, anything else is the literal key.
/// The error is the message part of a `key.path: message` config error.
pub(crate) fn resolve(reference: &str, env: &BTreeMap<String, String>) -> Result<Secret, String> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        let name = name.trim();
        match env.get(name) {
            Some(value) if !value.trim().is_empty() => value.trim().to_owned(),
            Some(_) => return Err(format!("environment variable {name} is empty")),
            None => return Err(format!("environment variable {name} is not set")),
        }
    } else if let Some(path) = reference.strip_prefix("file:") {
        let path = path.trim();
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read key file {path}: {err}"))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("key file {path} is empty"));
        }
        text.to_owned()
    } else if reference.trim().is_empty() {
        return Err("expected a non-empty key".to_owned());
    } else {
        reference.trim().to_owned()
    };
    Ok(Secret::new(value))
}

/// Whether `a` and `b` hold the same bytes, in a time that depends on their
/// length only, not on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_serialize_are_masked() {
        let secret = Secret::new("sk-very-secret-1234");
        assert_eq!(format!("{secret:?}"), "*****");
        assert_eq!(format!("{secret}"), "*****");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"*****\"");
        assert_eq!(format!("{:?}", vec![secret.clone()]), "[*****]");
        assert_eq!(secret.expose(), "sk-very-secret-1234");
    }

    #[test]
    fn key_id_shows_only_the_tail() {
        assert_eq!(Secret::new("sk-abcdef1234").key_id(), "…1234");
        assert_eq!(Secret::new("ab").key_id(), "…ab");
        assert_eq!(Secret::new("").key_id(), "…");
        assert_eq!(Secret::new("ключик").key_id(), "…ючик");
    }

    #[test]
    fn resolves_literals_env_and_files() {
        let env = BTreeMap::from([("K".to_owned(), " from-env \n".to_owned())]);
        assert_eq!(resolve("sk-lit", &env).unwrap().expose(), "sk-lit");
        assert_eq!(resolve("env:K", &env).unwrap().expose(), "from-env");
        let err = resolve("env:MISSING", &env).unwrap_err();
        assert_eq!(err, "environment variable MISSING is not set");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.txt");
        std::fs::write(&path, "sk-from-file\n").unwrap();
        let reference = format!("file:{}", path.display());
        assert_eq!(resolve(&reference, &env).unwrap().expose(), "sk-from-file");
        let missing = format!("file:{}", dir.path().join("nope").display());
        let err = resolve(&missing, &env).unwrap_err();
        assert!(err.contains("nope"), "{err}");
        assert!(resolve("  ", &env).is_err());
    }
}

//! The human-readable summary printed by `aigate check-config`.
//!
//! It shows what the gateway will do, and how many keys each endpoint has,
//! but never a key, not even a `key_id`: the output is meant to be pasted.

use std::fmt::Write;

use super::runtime::{Config, EndpointConfig, Limit};

impl Config {
    /// A multi-line description of the effective configuration.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let source = self.source.as_ref().map_or_else(
            || "(no file; defaults and environment)".to_owned(),
            |p| p.display().to_string(),
        );
        let line = |out: &mut String, label: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{label:<12} {value}");
        };
        line(&mut out, "config", &source);
        line(&mut out, "listen", &self.server.listen);
        line(&mut out, "workers", &self.server.workers);
        line(&mut out, "data dir", &self.server.data_dir.display());
        line(
            &mut out,
            "log",
            &format!(
                "{} in {}",
                self.log.level.as_str().to_ascii_lowercase(),
                self.log.dir.display()
            ),
        );
        line(&mut out, "strategy", &self.routing.strategy.as_str());
        let auth = format!(
            "{} client key(s), passthrough {}, anonymous {}",
            self.auth.client_keys.len(),
            on_off(self.auth.passthrough),
            on_off(self.auth.allow_anonymous)
        );
        line(&mut out, "auth", &auth);
        let ip_limit = match self.limits.ip_requests {
            Some(n) => format!("{n} per {}s", self.limits.ip_interval.as_secs()),
            None => "off".to_owned(),
        };
        line(&mut out, "ip limit", &ip_limit);
        let ip_errors = match self.limits.ip_error_threshold {
            Some(n) => format!(
                "block after {n} in {}s",
                self.limits.ip_error_window.as_secs()
            ),
            None => "off".to_owned(),
        };
        line(&mut out, "ip errors", &ip_errors);
        line(&mut out, "attempts", &self.limits.max_attempts);
        let _ = writeln!(out, "endpoints    {}", self.endpoints.len());
        for endpoint in &self.endpoints {
            describe_endpoint(&mut out, endpoint);
        }
        out
    }
}

fn describe_endpoint(out: &mut String, e: &EndpointConfig) {
    let state = if e.enabled { "enabled" } else { "disabled" };
    let url = if e.base_url.is_empty() {
        "(none)"
    } else {
        &e.base_url
    };
    let _ = writeln!(
        out,
        "  - {} ({}): {} {}, {}",
        e.id,
        e.name,
        e.provider.as_str(),
        url,
        state
    );
    let models = if e.models.is_empty() {
        "any".to_owned()
    } else {
        e.models.join(", ")
    };
    let _ = writeln!(
        out,
        "      {} key(s), models {}, rpm {}, rpd {}, weight {}",
        e.keys.len(),
        models,
        limit(e.rpm),
        limit(e.rpd),
        e.weight
    );
    if !e.model_mapping.is_empty() {
        let pairs: Vec<String> = e
            .model_mapping
            .iter()
            .map(|(from, to)| format!("{from} -> {to}"))
            .collect();
        let _ = writeln!(out, "      mapping {}", pairs.join(", "));
    }
    if let Some(prefix) = &e.route_prefix {
        let _ = writeln!(out, "      prefix {prefix}");
    }
    if !e.hosts.is_empty() {
        let _ = writeln!(out, "      hosts {}", e.hosts.join(", "));
    }
}

fn limit(limit: Limit) -> String {
    match limit {
        Limit::Unlimited => "unlimited".to_owned(),
        Limit::Max(0) => "0 (disabled)".to_owned(),
        Limit::Max(n) => n.to_string(),
    }
}

fn on_off(flag: bool) -> &'static str {
    if flag {
        "on"
    } else {
        "off"
    }
}

//! The endpoints grouped the way [`super::route`] asks for them, built once
//! with the config (and so again whenever a config is loaded), so a request
//! costs the endpoints that match it rather than all of them: with a
//! thousand endpoints a scan per request was a third of the CPU
//! (BENCHMARKS.md, hot spot 4).
//!
//! It only groups; the rules stay in `route.rs`, which also keeps the plain
//! scan for the cases the index does not cover (a Host that reserves
//! endpoints, which are few; a config whose endpoint list was changed after
//! the index was built).

use foldhash::HashMap;

use super::route::is_open;
use crate::config::{EndpointConfig, ProviderKind};

/// The routing view of one endpoint list. Every list is in config order.
#[derive(Debug, Clone, Default)]
pub struct RouteIndex {
    /// How many endpoints it was built from.
    endpoints: usize,
    /// The distinct route prefixes, in the order they first appear.
    prefixes: Vec<String>,
    /// Lowercased `Host` → the endpoints reserved for it (open or not).
    by_host: HashMap<String, Vec<usize>>,
    /// Open endpoints without `hosts`: all of them (a call without prefix
    /// reaches every one).
    unreserved: Scope,
    /// Open endpoints without `hosts`, by route prefix.
    unreserved_by_prefix: HashMap<String, Scope>,
}

/// The open endpoints one call can reach before model and provider kind are
/// looked at.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub open: Vec<usize>,
    /// Model name (in `models` or a `model_mapping` key) → endpoints naming it.
    pub listing: HashMap<String, Vec<usize>>,
    /// Endpoints that take any model (`models = []`).
    pub catch_all: Vec<usize>,
    /// The provider kinds among `open`, each once.
    pub kinds: Vec<ProviderKind>,
}

impl Scope {
    fn add(&mut self, index: usize, endpoint: &EndpointConfig) {
        self.open.push(index);
        for model in endpoint.models.iter().chain(endpoint.model_mapping.keys()) {
            let listed = self.listing.entry(model.clone()).or_default();
            // A model both in `models` and mapped is one listing.
            if listed.last() != Some(&index) {
                listed.push(index);
            }
        }
        if endpoint.models.is_empty() {
            self.catch_all.push(index);
        }
        if !self.kinds.contains(&endpoint.provider) {
            self.kinds.push(endpoint.provider);
        }
    }
}

impl RouteIndex {
    pub fn build(endpoints: &[EndpointConfig]) -> RouteIndex {
        let mut index = RouteIndex {
            endpoints: endpoints.len(),
            ..RouteIndex::default()
        };
        for (i, endpoint) in endpoints.iter().enumerate() {
            if let Some(prefix) = &endpoint.route_prefix {
                if !index.prefixes.contains(prefix) {
                    index.prefixes.push(prefix.clone());
                }
            }
            for host in &endpoint.hosts {
                let reserved = index.by_host.entry(host.clone()).or_default();
                if reserved.last() != Some(&i) {
                    reserved.push(i);
                }
            }
            if !endpoint.hosts.is_empty() || !is_open(endpoint) {
                continue;
            }
            index.unreserved.add(i, endpoint);
            if let Some(prefix) = &endpoint.route_prefix {
                let scope = index.unreserved_by_prefix.entry(prefix.clone());
                scope.or_default().add(i, endpoint);
            }
        }
        index
    }

    /// Whether it was built from this endpoint list (same length: lists are
    /// replaced whole, with their index, when a config is loaded).
    pub fn fits(&self, endpoints: &[EndpointConfig]) -> bool {
        self.endpoints == endpoints.len()
    }

    /// Whether any endpoint is reserved for a host.
    pub fn reserves_hosts(&self) -> bool {
        !self.by_host.is_empty()
    }

    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// The endpoints reserved for `host` (lowercased; with or without its
    /// port), in config order; empty when the host reserves none.
    pub fn reserved_for(&self, host: &str) -> Vec<usize> {
        let bare = host.split(':').next().unwrap_or(host);
        let with_port = self.by_host.get(host).map_or(&[][..], Vec::as_slice);
        let without = match bare == host {
            true => &[][..],
            false => self.by_host.get(bare).map_or(&[][..], Vec::as_slice),
        };
        merge(with_port, without)
    }

    /// The unreserved scope a call with `prefix` reaches (`None` if no
    /// endpoint is there).
    pub fn unreserved(&self, prefix: Option<&str>) -> Option<&Scope> {
        match prefix {
            None => Some(&self.unreserved),
            Some(prefix) => self.unreserved_by_prefix.get(prefix),
        }
    }
}

/// Two ascending lists of indexes as one, without repeats.
pub fn merge(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => {
                i += 1;
                j += 1;
                x
            }
            (Some(&x), Some(&y)) if x < y => {
                i += 1;
                x
            }
            (Some(_), Some(&y)) | (None, Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, None) => break,
        };
        merged.push(next);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_toml_str, Config};
    use crate::pipeline::route::{self, candidates_for, classify, scan, HTTP};
    use crate::realtime::dial::REALTIME;

    #[test]
    fn merge_keeps_order_and_drops_repeats() {
        assert_eq!(merge(&[0, 3, 5], &[1, 3, 9]), [0, 1, 3, 5, 9]);
        assert_eq!(merge(&[], &[2]), [2]);
        assert_eq!(merge(&[4], &[]), [4]);
        assert!(merge(&[], &[]).is_empty());
    }

    /// Every routing feature at once: listed and mapped models, catch-alls
    /// of several dialects, prefixes, hosts with and without a port,
    /// endpoints closed by `enabled` or a zero limit.
    fn mixed() -> Config {
        let endpoint = |id: &str, provider: &str, more: &str| {
            let url = match provider {
                "openai_compatible" | "anthropic" => "base_url = \"http://127.0.0.1:9\"\n",
                "bedrock" => "region = \"us-east-1\"\n",
                _ => "",
            };
            format!("[[endpoints]]\nid = \"{id}\"\nprovider = \"{provider}\"\n{url}{more}\n")
        };
        let toml = [
            endpoint("oa", "openai", r#"models = ["gpt-a", "gpt-b"]"#),
            endpoint("any-oa", "openai_compatible", ""),
            endpoint("ant", "anthropic", r#"models = ["claude-a"]"#),
            endpoint(
                "any-ant",
                "anthropic",
                r#"model_mapping = { "alias" = "claude-a" }"#,
            ),
            endpoint("gem", "gemini", r#"models = ["gem-a", "gpt-a"]"#),
            endpoint("any-gem", "gemini", ""),
            endpoint(
                "map",
                "openai_compatible",
                "models = [\"gpt-b\"]\nmodel_mapping = { \"gpt-b\" = \"b2\", \"alias\" = \"x\" }",
            ),
            endpoint(
                "team",
                "openai_compatible",
                "models = [\"gpt-a\"]\nroute_prefix = \"/team\"",
            ),
            endpoint("team-any", "anthropic", "route_prefix = \"/team\""),
            endpoint("lab", "bedrock", "route_prefix = \"/lab/x\""),
            endpoint("off", "openai", "models = [\"gpt-a\"]\nenabled = false"),
            endpoint("zero", "openai_compatible", "rpm = 0"),
            endpoint("vip", "openai", "hosts = [\"vip.example.com\"]"),
            endpoint(
                "vip-port",
                "anthropic",
                "hosts = [\"vip.example.com:8443\", \"VIP.example.com\"]\nmodels = [\"claude-a\"]",
            ),
            endpoint(
                "vip-team",
                "openai_compatible",
                "hosts = [\"team.example.com\"]\nroute_prefix = \"/team\"\nenabled = false",
            ),
            endpoint("mock", "mock", r#"models = ["mock-a"]"#),
        ]
        .concat();
        from_toml_str(&toml, &Default::default(), &Default::default()).unwrap()
    }

    #[test]
    fn the_index_answers_what_a_scan_answers() {
        let config = mixed();
        let paths = [
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/messages",
            "/v1/messages/count_tokens",
            "/v1/files",
            "/v1/realtime",
            "/team/v1/chat/completions",
            "/team/v1/messages",
            "/lab/x/v1/chat/completions",
        ];
        let hosts = [
            "localhost:6543",
            "vip.example.com",
            "VIP.example.com:8443",
            "vip.example.com:1",
            "team.example.com",
            "",
        ];
        let models = [
            None,
            Some("gpt-a"),
            Some("gpt-b"),
            Some("claude-a"),
            Some("alias"),
            Some("gem-a"),
            Some("mock-a"),
            Some("unknown"),
        ];
        let mut answered = 0;
        for path in paths {
            let call = classify(path, &config).unwrap();
            for host in hosts {
                for model in models {
                    for fit in [HTTP, REALTIME] {
                        let indexed = candidates_for(&config, &call, host, model, fit);
                        let scanned = scan(&config, &call, host, model, fit);
                        assert_eq!(
                            format!("{indexed:?}"),
                            format!("{scanned:?}"),
                            "{path} host={host} model={model:?}"
                        );
                        answered += usize::from(indexed.is_ok());
                    }
                }
            }
        }
        assert!(
            answered > 100,
            "the grid exercises real answers: {answered}"
        );
    }

    #[test]
    fn order_and_catch_all_dialect_rules_hold() {
        let config = mixed();
        let ids = |path: &str, host: &str, model: &str| -> Vec<&str> {
            let call = classify(path, &config).unwrap();
            route::candidates(&config, &call, host, Some(model))
                .unwrap()
                .into_iter()
                .map(|i| config.endpoints[i].id.as_str())
                .collect()
        };
        // Listed and mapped in config order, plus OpenAI-dialect catch-alls.
        assert_eq!(
            ids("/v1/chat/completions", "h", "gpt-b"),
            ["oa", "any-oa", "map"]
        );
        assert_eq!(
            ids("/v1/chat/completions", "h", "alias"),
            ["any-oa", "any-ant", "map"]
        );
        // A call without prefix reaches prefixed endpoints too.
        assert_eq!(
            ids("/v1/messages", "h", "claude-a"),
            ["ant", "any-ant", "team-any"]
        );
        assert_eq!(ids("/team/v1/messages", "h", "new"), ["team-any"]);
        // Only a Bedrock endpoint behind /lab/x: it takes any model.
        assert_eq!(ids("/lab/x/v1/chat/completions", "h", "new"), ["lab"]);
        assert_eq!(
            ids("/v1/chat/completions", "vip.example.com:8443", "claude-a"),
            ["vip", "vip-port"]
        );
    }

    #[test]
    fn a_changed_endpoint_list_is_routed_by_a_scan_until_reindexed() {
        let mut config = mixed();
        config.endpoints.truncate(2);
        assert!(!config.route_index.fits(&config.endpoints));
        let call = classify("/v1/chat/completions", &config).unwrap();
        let scanned = route::candidates(&config, &call, "h", Some("gpt-a")).unwrap();
        assert_eq!(scanned, [0, 1]);
        config.reindex();
        assert!(config.route_index.fits(&config.endpoints));
        assert_eq!(
            route::candidates(&config, &call, "h", Some("gpt-a")).unwrap(),
            scanned
        );
    }
}

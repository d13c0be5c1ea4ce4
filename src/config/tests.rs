//! End-to-end tests of the config pipeline: text + environment + CLI → Config.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

const FULL: &str = r#"
[server]
listen = "127.0.0.1:6543"
workers = 0
data_dir = "data"
trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]
max_body_mb = 32
connect_timeout_secs = 10
request_timeout_secs = 600
[auth]
client_keys = ["fk-demo"]
passthrough = false
allow_anonymous = false
force_anonymous = false
[limits]
ip_requests = 100
ip_interval_secs = 60
ip_error_threshold = 10
ip_error_window_secs = 86400
max_attempts = 3
[routing]
strategy = "random"
[log]
level = "info"
dir = "logs"
[[endpoints]]
id = "openai"
name = "OpenAI"
provider = "openai"
base_url = "https://api.openai.com/"
keys = ["env:OPENAI_KEY_REF", "sk-literal-9876"]
rpm = -1
rpd = -1
enabled = true
models = []
model_mapping = {}
weight = 1
route_prefix = ""
hosts = []
latency_ms = 0
[[endpoints]]
id = "claude"
provider = "anthropic"
rpm = 0
models = ["claude-x"]
model_mapping = { "gpt-4o" = "claude-y" }
route_prefix = "team/"
hosts = ["API.Example.com:8443"]
anthropic_version = "2023-06-01"
"#;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn no_cli() -> CliOverrides {
    CliOverrides::default()
}

fn full_env() -> BTreeMap<String, String> {
    env(&[("OPENAI_KEY_REF", "sk-from-env-1234")])
}

#[test]
fn full_example_parses() {
    let config = from_toml_str(FULL, &full_env(), &no_cli()).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:6543");
    assert!(config.server.workers >= 1);
    assert_eq!(
        config.server.trusted_proxies[1].to_string(),
        "192.168.1.1/32"
    );
    assert_eq!(config.server.max_body_bytes, 32 * 1024 * 1024);
    assert_eq!(config.server.request_timeout, Duration::from_secs(600));
    assert_eq!(config.auth.client_keys[0].expose(), "fk-demo");
    assert_eq!(config.limits.ip_requests, Some(100));
    assert_eq!(config.limits.max_attempts, 3);
    assert_eq!(config.routing.strategy, Strategy::Random);
    assert_eq!(config.log.dir, std::path::PathBuf::from("data/logs"));
    let openai = &config.endpoints[0];
    assert_eq!(openai.base_url, "https://api.openai.com");
    assert_eq!(openai.keys[0].expose(), "sk-from-env-1234");
    assert_eq!(openai.keys[1].expose(), "sk-literal-9876");
    assert_eq!(
        (openai.rpm, openai.route_prefix.as_deref()),
        (Limit::Unlimited, None)
    );
    let claude = &config.endpoints[1];
    assert_eq!(claude.name, "claude");
    assert_eq!(claude.provider, ProviderKind::Anthropic);
    assert_eq!(claude.base_url, "https://api.anthropic.com");
    assert_eq!(claude.rpm, Limit::Max(0));
    assert_eq!(claude.route_prefix.as_deref(), Some("/team"));
    assert_eq!(claude.hosts, vec!["api.example.com:8443"]);
    assert!(claude.serves("claude-x") && claude.serves("gpt-4o") && !claude.serves("other"));
    assert_eq!(claude.upstream_model("gpt-4o"), "claude-y");
    assert_eq!(claude.upstream_model("claude-x"), "claude-x");
    assert!(openai.serves("anything"));
}

#[test]
fn defaults_when_sections_are_missing() {
    let config = from_toml_str("", &env(&[]), &no_cli()).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:6543");
    assert_eq!(config.server.data_dir, std::path::PathBuf::from("data"));
    assert_eq!(config.server.connect_timeout, Duration::from_secs(10));
    assert!(config.auth.client_keys.is_empty() && !config.auth.passthrough);
    assert_eq!(config.limits.ip_interval, Duration::from_secs(60));
    assert_eq!(config.limits.ip_error_threshold, Some(10));
    assert_eq!(config.limits.ip_error_window, Duration::from_secs(86_400));
    assert_eq!(config.log.level, log::LevelFilter::Info);
    assert!(config.endpoints.is_empty() && config.source.is_none());

    let minimal = "[[endpoints]]\nid = \"m\"\nprovider = \"mock\"\n";
    let config = from_toml_str(minimal, &env(&[]), &no_cli()).unwrap();
    let mock = &config.endpoints[0];
    assert_eq!((mock.weight, mock.enabled, mock.latency_ms), (1, true, 0));
    assert_eq!((mock.rpm, mock.rpd), (Limit::Unlimited, Limit::Unlimited));
    assert_eq!(mock.base_url, "");
    assert_eq!(mock.anthropic_version, "2023-06-01");
}

#[test]
fn secrets_never_reach_debug_or_summary() {
    let config = from_toml_str(FULL, &full_env(), &no_cli()).unwrap();
    let summary = config.summary();
    let debug = format!("{config:?}");
    for text in [&summary, &debug] {
        for secret in [
            "sk-from-env-1234",
            "sk-literal-9876",
            "fk-demo",
            "1234",
            "9876",
        ] {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
    }
    assert!(
        summary.contains("openai") && summary.contains("2 key(s)"),
        "{summary}"
    );
    assert!(
        summary.contains("prefix /team") && summary.contains("rpm 0 (disabled)"),
        "{summary}"
    );
}

#[test]
fn load_reads_an_explicit_file_or_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aigate.toml");
    std::fs::write(&path, "[routing]\nstrategy = \"weighted\"\n").unwrap();
    let config = load(Some(&path), &env(&[]), &no_cli()).unwrap();
    assert_eq!(config.routing.strategy, Strategy::Weighted);
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    let err = load(Some(&dir.path().join("nope.toml")), &env(&[]), &no_cli()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.toml"));
}

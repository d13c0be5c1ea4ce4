//! Tests of the environment overrides and of CLI > env > file precedence.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_env(text: &str, pairs: &[(&str, &str)]) -> Config {
    from_toml_str(text, &env(pairs), &CliOverrides::default()).unwrap()
}

fn env_error(text: &str, pairs: &[(&str, &str)]) -> String {
    from_toml_str(text, &env(pairs), &CliOverrides::default())
        .unwrap_err()
        .to_string()
}

fn exposed(keys: &[Secret]) -> Vec<&str> {
    keys.iter().map(Secret::expose).collect()
}

#[test]
fn server_and_auth_legacy_variables() {
    let text = "[server]\nlisten = \"0.0.0.0:1\"\n[auth]\nclient_keys = [\"fk-file\"]\n";
    let config = with_env(
        text,
        &[
            ("PROXY_PORT", "9000"),
            ("BASE_PATH", "/srv/gw"),
            ("FORWARD_KEY", " a, ,b "),
        ],
    );
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.server.data_dir, PathBuf::from("/srv/gw"));
    assert_eq!(config.log.dir, PathBuf::from("/srv/gw/logs"));
    assert_eq!(exposed(&config.auth.client_keys), vec!["a", "b"]);
    let err = env_error("", &[("PROXY_PORT", "70000")]);
    assert_eq!(err, "PROXY_PORT: expected a port number");
}

#[test]
fn provider_keys_create_or_replace_endpoints() {
    let config = with_env(
        "",
        &[
            ("OPENAI_API_KEY", "sk-1,sk-2"),
            ("CLAUDE_API_HOST", "claude.example.com/"),
        ],
    );
    let openai = &config.endpoints[0];
    assert_eq!(
        (openai.id.as_str(), openai.provider),
        ("openai", ProviderKind::OpenAi)
    );
    assert_eq!(openai.base_url, "https://api.openai.com");
    assert_eq!(exposed(&openai.keys), vec!["sk-1", "sk-2"]);
    let anthropic = &config.endpoints[1];
    assert_eq!(anthropic.provider, ProviderKind::Anthropic);
    assert_eq!(anthropic.base_url, "https://claude.example.com");
    assert!(anthropic.keys.is_empty());

    let file =
        "[[endpoints]]\nid = \"openai\"\nprovider = \"openai\"\nkeys = [\"sk-file\"]\nrpm = 5\n";
    let config = with_env(
        file,
        &[
            ("OPENAI_API_KEY", "sk-env"),
            ("OPENAI_BASE_URL", "http://local:8080/"),
            ("OPENAI_API_HOST", "ignored.example.com"),
            ("ANTHROPIC_API_KEY", "ak-1"),
            ("ANTHROPIC_BASE_URL", "https://proxy.example.com"),
        ],
    );
    assert_eq!(config.endpoints.len(), 2);
    let openai = &config.endpoints[0];
    assert_eq!(exposed(&openai.keys), vec!["sk-env"]);
    assert_eq!(openai.base_url, "http://local:8080");
    assert_eq!(openai.rpm, Limit::Max(5));
    assert_eq!(config.endpoints[1].base_url, "https://proxy.example.com");
    assert_eq!(exposed(&config.endpoints[1].keys), vec!["ak-1"]);
}

#[test]
fn legacy_limit_variables_convert_milliseconds() {
    let config = with_env(
        "",
        &[
            ("RATE_LIMIT_REQUESTS", "-1"),
            ("RATE_LIMIT_INTERVAL", "1500"),
            ("IP_ERROR_THRESHOLD", "3"),
            ("ERROR_WINDOW", "1"),
        ],
    );
    assert_eq!(config.limits.ip_requests, None);
    assert_eq!(config.limits.ip_interval, Duration::from_secs(2));
    assert_eq!(config.limits.ip_error_threshold, Some(3));
    assert_eq!(config.limits.ip_error_window, Duration::from_secs(1));
    assert_eq!(
        with_env("", &[("ERROR_WINDOW", "0")])
            .limits
            .ip_error_window,
        Duration::from_secs(1)
    );
    let err = env_error("", &[("RATE_LIMIT_INTERVAL", "soon")]);
    assert_eq!(
        err,
        "RATE_LIMIT_INTERVAL: expected a number of milliseconds"
    );
    assert_eq!(
        env_error("", &[("RATE_LIMIT_REQUESTS", "x")]),
        "RATE_LIMIT_REQUESTS: expected an integer"
    );
}

#[test]
fn extra_endpoints_pair_up_by_position() {
    let config = with_env(
        "",
        &[
            ("EXTRA_BASE_URL", "https://a.example.com/, http://b.local:1"),
            ("EXTRA_ROUTE_PREFIX", "team-a,/team-b/"),
            ("EXTRA_API_KEY", ",kb"),
        ],
    );
    let ids: Vec<&str> = config.endpoints.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec!["extra1", "extra2"]);
    let (a, b) = (&config.endpoints[0], &config.endpoints[1]);
    assert_eq!(a.provider, ProviderKind::OpenAiCompatible);
    assert_eq!(
        (a.base_url.as_str(), a.route_prefix.as_deref()),
        ("https://a.example.com", Some("/team-a"))
    );
    assert!(a.keys.is_empty());
    assert_eq!(
        (b.base_url.as_str(), b.route_prefix.as_deref()),
        ("http://b.local:1", Some("/team-b"))
    );
    assert_eq!(exposed(&b.keys), vec!["kb"]);

    let err = env_error(
        "",
        &[
            ("EXTRA_BASE_URL", "http://a,http://b"),
            ("EXTRA_ROUTE_PREFIX", "a"),
        ],
    );
    assert!(
        err.starts_with("EXTRA_ROUTE_PREFIX: expected one item per EXTRA_BASE_URL item (2), got 1"),
        "{err}"
    );
    let err = env_error(
        "",
        &[
            ("EXTRA_BASE_URL", "http://a"),
            ("EXTRA_ROUTE_PREFIX", "a"),
            ("EXTRA_API_KEY", "k1,k2"),
        ],
    );
    assert!(err.starts_with("EXTRA_API_KEY: "), "{err}");
}

#[test]
fn generic_aigate_variables_cover_every_section() {
    let config = with_env(
        "",
        &[
            ("AIGATE_SERVER_LISTEN", "127.0.0.2:7000"),
            ("AIGATE_SERVER_WORKERS", "3"),
            ("AIGATE_SERVER_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ("AIGATE_SERVER_MAX_BODY_MB", "1"),
            ("AIGATE_AUTH_CLIENT_KEYS", "k1,k2"),
            ("AIGATE_AUTH_PASSTHROUGH", "1"),
            ("AIGATE_LIMITS_MAX_ATTEMPTS", "5"),
            ("AIGATE_LIMITS_IP_REQUESTS", "-1"),
            ("AIGATE_ROUTING_STRATEGY", "least_latency"),
            ("AIGATE_LOG_LEVEL", "debug"),
            ("AIGATE_LOG_DIR", "/var/log/aigate"),
        ],
    );
    assert_eq!(config.server.listen.to_string(), "127.0.0.2:7000");
    assert_eq!(config.server.workers, 3);
    assert_eq!(config.server.trusted_proxies.len(), 2);
    assert_eq!(config.server.max_body_bytes, 1024 * 1024);
    assert_eq!(exposed(&config.auth.client_keys), vec!["k1", "k2"]);
    assert!(config.auth.passthrough);
    assert_eq!(config.limits.max_attempts, 5);
    assert_eq!(config.limits.ip_requests, None);
    assert_eq!(config.routing.strategy, Strategy::LeastLatency);
    assert_eq!(config.log.level, log::LevelFilter::Debug);
    assert_eq!(config.log.dir, PathBuf::from("/var/log/aigate"));

    assert_eq!(
        env_error("", &[("AIGATE_SERVER_WORKERS", "many")]),
        "AIGATE_SERVER_WORKERS: expected an integer"
    );
    assert!(env_error("", &[("AIGATE_AUTH_PASSTHROUGH", "maybe")])
        .starts_with("AIGATE_AUTH_PASSTHROUGH: expected"));
    assert!(env_error("", &[("AIGATE_ROUTING_STRATEGY", "best")])
        .starts_with("AIGATE_ROUTING_STRATEGY: expected one of"));
    assert!(env_error("", &[("AIGATE_SERVER_LISTEN", "x")])
        .starts_with("AIGATE_SERVER_LISTEN: expected"));
    assert!(env_error("", &[("AIGATE_SERVER_TRUSTED_PROXIES", "a.b")])
        .starts_with("AIGATE_SERVER_TRUSTED_PROXIES:"));
    // Range checks still apply, reported against the key.
    let err = env_error("", &[("AIGATE_LIMITS_MAX_ATTEMPTS", "0")]);
    assert_eq!(err, "limits.max_attempts: expected an integer >= 1");
}

#[test]
fn empty_values_count_as_unset() {
    let config = with_env(
        "[auth]\nclient_keys = [\"fk\"]\n",
        &[("FORWARD_KEY", " "), ("AIGATE_SERVER_WORKERS", "")],
    );
    assert_eq!(exposed(&config.auth.client_keys), vec!["fk"]);
    assert!(config.endpoints.is_empty());
}

#[test]
fn cli_beats_env_beats_file() {
    let file = "[server]\nlisten = \"127.0.0.1:1000\"\ndata_dir = \"file-dir\"\n";
    let vars = env(&[("PROXY_PORT", "2000"), ("BASE_PATH", "env-dir")]);
    let none = CliOverrides::default();
    let config = from_toml_str(file, &env(&[]), &none).unwrap();
    assert_eq!(config.server.listen.port(), 1000);
    assert_eq!(config.server.data_dir, PathBuf::from("file-dir"));

    let config = from_toml_str(file, &vars, &none).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:2000");
    assert_eq!(config.server.data_dir, PathBuf::from("env-dir"));

    let cli = CliOverrides {
        listen: Some("127.0.0.1:3000".parse().unwrap()),
        data_dir: Some(PathBuf::from("cli-dir")),
    };
    let config = from_toml_str(file, &vars, &cli).unwrap();
    assert_eq!(config.server.listen.port(), 3000);
    assert_eq!(config.server.data_dir, PathBuf::from("cli-dir"));
    assert_eq!(config.log.dir, PathBuf::from("cli-dir/logs"));
}

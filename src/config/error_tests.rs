//! Tests that bad configs fail with a message naming the key to fix.

use std::collections::BTreeMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn error(text: &str, vars: &[(&str, &str)]) -> String {
    from_toml_str(text, &env(vars), &CliOverrides::default())
        .unwrap_err()
        .to_string()
}

fn no_cli() -> CliOverrides {
    CliOverrides::default()
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let err = error("[server]\nlisten_on = \"x\"\n", &[]);
    assert!(
        err.starts_with("server.listen_on: unknown field `listen_on`"),
        "{err}"
    );
    let err = error(
        "[[endpoints]]\nid = \"a\"\nprovider = \"mock\"\nrmp = 3\n",
        &[],
    );
    assert!(
        err.starts_with("endpoints[0].rmp: unknown field `rmp`"),
        "{err}"
    );
    let err = error("[extra]\n", &[]);
    assert!(err.contains("unknown field `extra`"), "{err}");
}

#[test]
fn range_and_type_errors_name_the_key() {
    let two = "[[endpoints]]\nid = \"a\"\nprovider = \"mock\"\n[[endpoints]]\nid = \"b\"\nprovider = \"mock\"\n";
    let err = error(&format!("{two}rpm = -2\n"), &[]);
    assert_eq!(err, "endpoints[1].rpm: expected an integer >= -1");
    let err = error(&format!("{two}rpm = \"x\"\n"), &[]);
    assert_eq!(
        err,
        "endpoints[1].rpm: invalid type: string \"…\", expected i64"
    );
    let err = error(&format!("{two}weight = 0\n"), &[]);
    assert_eq!(err, "endpoints[1].weight: expected an integer >= 1");
    let err = error(&format!("{two}route_prefix = \"/v1/\"\n"), &[]);
    assert!(err.starts_with("endpoints[1].route_prefix: "), "{err}");
    assert_eq!(
        error("[limits]\nmax_attempts = 0\n", &[]),
        "limits.max_attempts: expected an integer >= 1"
    );
    assert_eq!(
        error("[limits]\nip_requests = -5\n", &[]),
        "limits.ip_requests: expected an integer >= -1"
    );
    assert_eq!(
        error("[server]\nmax_body_mb = 0\n", &[]),
        "server.max_body_mb: expected an integer > 0"
    );
    assert!(error("[server]\nlisten = \"nope\"\n", &[]).starts_with("server.listen: expected"));
    assert!(error("[routing]\nstrategy = \"best\"\n", &[])
        .starts_with("routing.strategy: expected one of"));
    assert!(error("[log]\nlevel = \"loud\"\n", &[]).starts_with("log.level: expected one of"));
    let err = error(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"bad\"]\n",
        &[],
    );
    assert!(
        err.starts_with("server.trusted_proxies[1]: expected"),
        "{err}"
    );
    let err = error(
        "[[endpoints]]\nid = \"c\"\nprovider = \"openai_compatible\"\n",
        &[],
    );
    assert_eq!(
        err,
        "endpoints[0].base_url: required for provider openai_compatible"
    );
    let err = error("[[endpoints]]\nid = \"bad id\"\nprovider = \"mock\"\n", &[]);
    assert!(err.starts_with("endpoints[0].id: expected"), "{err}");
    let err = error("[[endpoints]]\nid = \"x\"\nprovider = \"palm\"\n", &[]);
    assert!(
        err.starts_with("endpoints[0].provider: expected one of"),
        "{err}"
    );
}

#[test]
fn invalid_toml_includes_the_parser_message() {
    let err = error("[server\nlisten = 1", &[]);
    assert!(
        err.starts_with("invalid TOML: TOML parse error at line 1"),
        "{err}"
    );
}

#[test]
fn errors_never_quote_a_value_back() {
    let secret = "sk-secret-leak-1234";
    for text in [
        format!("[[endpoints]]\nid = \"a\"\nprovider = \"openai\"\nkeys = \"{secret}\"\n"),
        format!("[[endpoints]]\nid = \"a\"\nprovider = \"openai\"\nrpm = \"{secret}\"\n"),
        format!("[[endpoints]]\nid = \"a\"\nkeys = [{secret}]\n"),
    ] {
        let err = error(&text, &[]);
        assert!(!err.contains("leak"), "{err}");
        assert!(
            err.contains("endpoints[0]") || err.contains("line 3"),
            "{err}"
        );
    }
}

#[test]
fn duplicate_ids_are_refused() {
    let text = "[[endpoints]]\nid = \"openai\"\nprovider = \"mock\"\n\
                [[endpoints]]\nid = \"other\"\nprovider = \"mock\"\n\
                [[endpoints]]\nid = \"openai\"\nprovider = \"mock\"\n";
    assert_eq!(error(text, &[]), "endpoints[2].id: duplicate id \"openai\"");
}

#[test]
fn key_references_resolve_or_name_their_path() {
    let err = error(
        "[[endpoints]]\nid = \"o\"\nprovider = \"openai\"\nkeys = [\"env:NOPE_KEY\"]\n",
        &[],
    );
    assert_eq!(
        err,
        "endpoints[0].keys[0]: environment variable NOPE_KEY is not set"
    );

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("client.key");
    std::fs::write(&key_file, "  fk-from-file\n").unwrap();
    let text = format!(
        "[auth]\nclient_keys = [\"file:{}\", \"env:CK\"]\n",
        key_file.display()
    );
    let config = from_toml_str(&text, &env(&[("CK", "fk-env")]), &no_cli()).unwrap();
    let keys: Vec<&str> = config.auth.client_keys.iter().map(Secret::expose).collect();
    assert_eq!(keys, vec!["fk-from-file", "fk-env"]);

    let missing = dir.path().join("missing.key");
    let err = error(
        &format!("[auth]\nclient_keys = [\"file:{}\"]\n", missing.display()),
        &[],
    );
    assert!(
        err.starts_with("auth.client_keys[0]: cannot read key file"),
        "{err}"
    );
    assert!(err.contains("missing.key"), "{err}");
}

#[test]
fn anonymous_needs_loopback_or_force() {
    let open = "[server]\nlisten = \"0.0.0.0:6543\"\n[auth]\nallow_anonymous = true\n";
    assert!(error(open, &[]).starts_with("auth.allow_anonymous: refused"));
    let forced = format!("{open}force_anonymous = true\n");
    assert!(
        from_toml_str(&forced, &env(&[]), &no_cli())
            .unwrap()
            .auth
            .allow_anonymous
    );
    let local = "[auth]\nallow_anonymous = true\n";
    assert!(from_toml_str(local, &env(&[]), &no_cli()).is_ok());
}

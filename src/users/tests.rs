//! The per-user rules, driven through `admission` directly.

use std::net::IpAddr;
use std::time::Duration;

use super::admission::{admit, charge, Ask, Refusal, Used, UserState};
use super::model::{Period, Quota, Role, User, USER_FORMAT_VERSION};

const T0: u64 = 1_795_361_400_000; // ms, 2026-11-22 15:30 UTC

fn user() -> User {
    serde_json::from_value(serde_json::json!({
        "v": USER_FORMAT_VERSION, "id": "u1", "name": "n", "key_hash": "00", "key_hint": "abcd",
        "role": "user", "enabled": true, "created_at": 0
    }))
    .unwrap()
}

fn ask(model: &str, estimate: u64, now_ms: u64) -> Ask<'_> {
    Ask {
        ip: "192.0.2.1".parse().unwrap(),
        model: Some(model),
        prompt_estimate: estimate,
        max_prompt_tokens: None,
        ip_window: Duration::from_secs(86_400),
        now_ms,
    }
}

fn used(prompt: u64, completion: u64) -> Used {
    Used {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cost_usd: 0.0,
        counted: true,
    }
}

#[test]
fn quota_per_model_family_with_refresh() {
    let mut u = user();
    u.quotas = vec![Quota {
        models: "gpt-4o*".into(),
        tokens: 100,
        period: Period::Daily,
    }];
    let mut state = UserState::new(u);
    let r = admit(&mut state, &ask("gpt-4o-mini", 10, T0)).unwrap();
    charge(&mut state, &r, used(40, 60), T0);
    match admit(&mut state, &ask("gpt-4o", 10, T0 + 1000)) {
        Err(Refusal::Quota {
            models, refresh_at, ..
        }) => {
            assert_eq!(models, "gpt-4o*");
            assert_eq!(refresh_at, Some(1_795_392_000));
        }
        other => panic!("{other:?}"),
    }
    // Other families are not limited by it.
    assert!(admit(&mut state, &ask("claude-3", 10, T0 + 1000)).is_ok());
    // The next day it starts over.
    assert!(admit(&mut state, &ask("gpt-4o", 10, 1_795_392_000_000 + 5)).is_ok());
}

#[test]
fn reservations_stop_parallel_overrun() {
    let mut u = user();
    u.tpm = Some(100);
    let mut state = UserState::new(u);
    // Two parallel requests of 60 estimated tokens: the second is refused
    // because 60 are reserved and 60 more would pass the limit... only once
    // the reserved total reaches the limit.
    let first = admit(&mut state, &ask("m", 60, T0)).unwrap();
    let second = admit(&mut state, &ask("m", 60, T0));
    assert!(second.is_ok(), "below the limit when it started");
    assert!(matches!(
        admit(&mut state, &ask("m", 60, T0)),
        Err(Refusal::Tpm { .. })
    ));
    charge(&mut state, &first, used(60, 10), T0);
    charge(&mut state, &second.unwrap(), used(60, 10), T0);
    assert_eq!(state.reserved_tpm, 0);
    assert!(matches!(
        admit(&mut state, &ask("m", 1, T0 + 1)),
        Err(Refusal::Tpm { .. })
    ));
    assert!(admit(&mut state, &ask("m", 1, T0 + 61_000)).is_ok());
}

#[test]
fn rpm_and_concurrency() {
    let mut u = user();
    u.rpm = Some(2);
    u.max_concurrent = Some(1);
    let mut state = UserState::new(u);
    let r = admit(&mut state, &ask("m", 1, T0)).unwrap();
    assert!(matches!(
        admit(&mut state, &ask("m", 1, T0)),
        Err(Refusal::TooManyConcurrent { max: 1 })
    ));
    charge(&mut state, &r, used(1, 1), T0);
    let r = admit(&mut state, &ask("m", 1, T0)).unwrap();
    charge(&mut state, &r, used(1, 1), T0);
    assert!(matches!(
        admit(&mut state, &ask("m", 1, T0)),
        Err(Refusal::Rpm { limit: 2, .. })
    ));
    assert_eq!(state.user.totals.requests, 2);
}

#[test]
fn temporary_user_expires_hours_after_first_use() {
    let mut u = user();
    u.role = Role::Temporary;
    u.expires_after_first_use_hours = Some(1);
    let mut state = UserState::new(u);
    assert!(admit(&mut state, &ask("m", 1, T0)).is_ok());
    assert!(admit(&mut state, &ask("m", 1, T0 + 3_599_000)).is_ok());
    assert!(matches!(
        admit(&mut state, &ask("m", 1, T0 + 3_600_000)),
        Err(Refusal::Expired { .. })
    ));
}

#[test]
fn too_many_ips_disables_the_user() {
    let mut u = user();
    u.max_ips = Some(2);
    let mut state = UserState::new(u);
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.1"] {
        let mut a = ask("m", 1, T0);
        a.ip = ip.parse::<IpAddr>().unwrap();
        assert!(admit(&mut state, &a).is_ok());
    }
    let mut a = ask("m", 1, T0);
    a.ip = "192.0.2.3".parse().unwrap();
    assert_eq!(admit(&mut state, &a), Err(Refusal::TooManyIps { max: 2 }));
    assert!(!state.user.enabled);
    assert!(state
        .user
        .disabled_reason
        .as_deref()
        .unwrap()
        .contains("more than 2 IP"));
    assert!(matches!(
        admit(&mut state, &ask("m", 1, T0)),
        Err(Refusal::Disabled { .. })
    ));
}

#[test]
fn allowed_models_and_prompt_cap() {
    let mut u = user();
    u.allowed_models = vec!["gpt-4o-mini".into(), "claude-*".into()];
    let mut state = UserState::new(u);
    assert!(admit(&mut state, &ask("claude-3", 1, T0)).is_ok());
    assert!(matches!(
        admit(&mut state, &ask("gpt-4o", 1, T0)),
        Err(Refusal::ModelNotAllowed { .. })
    ));
    let mut a = ask("gpt-4o-mini", 5000, T0);
    a.max_prompt_tokens = Some(4000);
    assert!(matches!(
        admit(&mut state, &a),
        Err(Refusal::PromptTooLarge { limit: 4000, .. })
    ));
}

#[test]
fn keys_are_random_and_well_formed() {
    let a = super::generate_key().unwrap();
    let b = super::generate_key().unwrap();
    assert_ne!(a, b);
    assert!(a.starts_with("ak-") && a.len() == 43);
    assert!(a[3..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(super::key_hint("ak-xyz1234"), "1234");
}

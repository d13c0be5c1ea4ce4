//! The user table driven directly (the request path as a worker thread runs
//! it) and through the handle without Redis; what it persists and what a
//! restart restores.

use super::*;
use crate::users::actor::{TakeState, Users, UsersHandle};
use crate::users::model::{Period, Quota};

const T0: u64 = 1_795_361_400_000; // ms, 2026-11-22 15:30 UTC

fn ask<'a>(key: &str, model: &'a str) -> Authenticate<'a> {
    Authenticate {
        digest: key_digest(key),
        ip: "192.0.2.1".parse().unwrap(),
        model: Some(model),
        prompt_estimate: 10,
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

/// What a restart reads back: the stored records after `ops`.
fn stored_after(mut stored: Vec<(Vec<u8>, Vec<u8>)>, ops: Vec<StoreOp>) -> Vec<(Vec<u8>, Vec<u8>)> {
    for op in ops {
        match op {
            StoreOp::Put(key, value) => {
                stored.retain(|(k, _)| *k != key);
                stored.push((key, value));
            }
            StoreOp::Delete(key) => stored.retain(|(k, _)| *k != key),
        }
    }
    stored
}

fn config_keys(keys: &[&str]) -> Vec<(String, Role)> {
    keys.iter().map(|k| (k.to_string(), Role::User)).collect()
}

#[test]
fn config_users_are_written_only_once_used_and_keep_their_usage() {
    let keys = config_keys(&["fk-a", "fk-b", "fk-c"]);
    let mut table = UserTable::new(&[], &keys, UserSettings::default());
    assert!(table.take_changed().is_empty(), "nothing to write at start");

    let admission = table.authenticate(&ask("fk-a", "m"), T0).unwrap();
    assert!(admission.user_id.starts_with("cfg-"));
    table.charge(
        admission.user_id.clone(),
        &admission.reservation,
        used(7, 3),
        T0,
    );
    let changed = table.take_changed();
    assert_eq!(changed.len(), 1, "only the user that was used");
    let stored = stored_after(Vec::new(), store_ops(changed));

    // A restart: the file's keys again, the used one restored with its usage.
    let mut table = UserTable::new(&stored, &keys, UserSettings::default());
    assert!(
        table.take_changed().is_empty(),
        "an unchanged config user is not rewritten"
    );
    let view = table.view(&admission.user_id).unwrap();
    assert!(view.from_config);
    assert_eq!(view.totals.requests, 1);
    assert_eq!(
        view.totals.prompt_tokens + view.totals.completion_tokens,
        10
    );
    assert_eq!(view.first_used_at, Some(T0 / 1000));
    assert_eq!(table.list().len(), 3);

    // A reload without the key: it stops working and its record goes.
    table.sync_config(&config_keys(&["fk-b", "fk-c"]), UserSettings::default());
    assert_eq!(
        table.authenticate(&ask("fk-a", "m"), T0),
        Err(AuthRefusal::Unknown)
    );
    let ops = store_ops(table.take_changed());
    assert!(matches!(ops.as_slice(), [StoreOp::Delete(id)] if *id == admission.user_id.as_bytes()));
}

#[test]
fn quota_usage_and_a_disabling_rule_survive_a_restart() {
    let mut table = UserTable::new(&[], &[], UserSettings::default());
    let new = NewUser {
        name: "quota user".into(),
        quotas: vec![Quota {
            models: "gpt-*".into(),
            tokens: 1_000,
            period: Period::Never,
        }],
        max_ips: Some(1),
        ..NewUser::default()
    };
    let view = table.create(new, "ak-quota-user").unwrap();
    let admission = table
        .authenticate(&ask("ak-quota-user", "gpt-4o"), T0)
        .unwrap();
    table.charge(view.id.clone(), &admission.reservation, used(100, 50), T0);
    let stored = stored_after(Vec::new(), store_ops(table.take_changed()));

    let mut table = UserTable::new(&stored, &[], UserSettings::default());
    assert_eq!(table.view(&view.id).unwrap().quotas[0].used, 150);
    // A second IP disables the user; that is written too.
    assert!(table
        .authenticate(&ask("ak-quota-user", "gpt-4o"), T0)
        .is_ok());
    let mut from_elsewhere = ask("ak-quota-user", "gpt-4o");
    from_elsewhere.ip = "192.0.2.2".parse().unwrap();
    assert!(table.authenticate(&from_elsewhere, T0).is_err());
    let stored = stored_after(stored, store_ops(table.take_changed()));
    let table = UserTable::new(&stored, &[], UserSettings::default());
    assert_eq!(table.lookup(&key_digest("ak-quota-user"), T0 / 1000), None);
}

#[test]
fn lookup_counts_nothing_and_refuses_expired_keys() {
    let mut table = UserTable::new(&[], &config_keys(&["fk-a"]), UserSettings::default());
    let new = NewUser {
        name: "temp".into(),
        role: Some(Role::Temporary),
        expires_at: Some(T0 / 1000 + 60),
        ..NewUser::default()
    };
    table.create(new, "ak-temp").unwrap();
    table.take_changed();
    let (id, role) = table.lookup(&key_digest("fk-a"), T0 / 1000).unwrap();
    assert_eq!((id.starts_with("cfg-"), role), (true, Role::User));
    assert!(table.take_changed().is_empty(), "a lookup changes nothing");
    assert!(table.lookup(&key_digest("ak-temp"), T0 / 1000).is_some());
    assert_eq!(table.lookup(&key_digest("ak-temp"), T0 / 1000 + 60), None);
    assert_eq!(table.lookup(&key_digest("ak-unknown"), T0 / 1000), None);
}

#[actix_web::test]
async fn the_handle_admits_charges_and_identifies_without_the_actor() {
    let config =
        crate::config::from_toml_str("", &Default::default(), &Default::default()).unwrap();
    let users = Users::new(&[], &config_keys(&["fk-a"]), UserSettings::default(), None);
    let handle = UsersHandle::start(users, None, &config);
    let admission = handle
        .authenticate(ask("fk-a", "m"))
        .await
        .unwrap()
        .unwrap();
    // Nothing was sent to the actor: the table already counts the request.
    let (id, _) = handle.lookup(&key_digest("fk-a")).unwrap();
    assert_eq!(id, admission.user_id);
    handle.charge(id.clone(), admission.reservation, used(5, 5));
    handle.charge_tokens(id.clone(), Some("m".into()), used(1, 1));
    let view = handle
        .send(crate::users::actor::Get(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((view.totals.requests, view.in_flight), (2, 0));
    assert_eq!(view.totals.prompt_tokens, 6);
    assert_eq!(handle.send(TakeState).await.unwrap().len(), 1);
    assert!(matches!(
        handle.authenticate(ask("fk-unknown", "m")).await.unwrap(),
        Err(AuthRefusal::Unknown)
    ));
}

#[test]
fn a_busy_user_is_queued_for_writing_once_per_write() {
    let keys = config_keys(&["fk-a", "fk-b"]);
    let mut table = UserTable::new(&[], &keys, UserSettings::default());
    for round in 0..2 {
        for _ in 0..100 {
            let admission = table.authenticate(&ask("fk-a", "m"), T0).unwrap();
            table.charge(admission.user_id, &admission.reservation, used(1, 1), T0);
        }
        assert_eq!(
            table.dirty.0.len(),
            1,
            "round {round}: listed once, not per request"
        );
        let changed = table.take_changed();
        assert_eq!(changed.len(), 1);
        let user = changed[0].1.as_ref().unwrap();
        assert_eq!(
            user.totals.requests,
            100 * (round + 1),
            "the write carries every request"
        );
        assert!(table.dirty.0.is_empty());
    }
    assert!(
        table.take_changed().is_empty(),
        "written: off the list until it changes"
    );
}

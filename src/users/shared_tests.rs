//! The shared user path against a real `redis-server`: tokens charged
//! outside a request (Realtime), a reservation dropped before its answer
//! was taken, and refusals in the local path's words.

use std::time::Duration;

use super::*;
use crate::storage::redis::test_server::RedisServer;

const HOLD: Duration = Duration::from_secs(600);

fn quota(models: &str, tokens: u64) -> Quota {
    Quota {
        models: models.into(),
        tokens,
        period: Period::Daily,
    }
}

fn user_with(quotas: &[Quota]) -> User {
    serde_json::from_value(serde_json::json!({
        "v": 1, "id": "u1", "name": "n", "key_hash": "00", "key_hint": "abcd",
        "role": "user", "enabled": true, "created_at": 0, "quotas": quotas
    }))
    .unwrap()
}

#[actix_web::test]
async fn tokens_outside_a_request_are_charged_to_the_matching_quotas() {
    let Some(server) = RedisServer::start_or_skip("shared charge_tokens") else {
        return;
    };
    let quotas = [quota("gpt-4o*", 1000), quota("claude-*", 1000)];
    let limits = SharedLimits::of(&user_with(&quotas), Some("gpt-4o-realtime")).unwrap();
    let shared = SharedUsers::new(server.shared("ct:"), HOLD);
    let used = Used {
        prompt_tokens: 30,
        completion_tokens: 12,
        ..Used::default()
    };
    shared.charge_tokens("u1".into(), limits, &used);
    let windows: Vec<QuotaWindow> = quotas.iter().map(|q| quota_window(q, unix_now())).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let usage = shared.counters.usage("u1", &windows).await.unwrap();
        if usage.quota_used == [42, 0] {
            assert_eq!(usage.tokens_last_minute, 42);
            assert_eq!(usage.in_flight, 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{usage:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn a_reservation_dropped_before_its_answer_is_released() {
    let Some(server) = RedisServer::start_or_skip("shared pending release") else {
        return;
    };
    let shared = SharedUsers::new(server.shared("pr:"), HOLD);
    let counters = &shared.counters;
    let limits = UserLimits {
        rpm: None,
        tpm: None,
        max_concurrent: Some(1),
        quotas: &[],
    };
    let reservation = counters.prepare("u1", &[], 5);
    counters
        .reserve_prepared("u1", &limits, &reservation, HOLD)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counters.usage("u1", &[]).await.unwrap().in_flight, 1);
    drop(PendingRelease {
        counters: counters.clone(),
        user_id: "u1".into(),
        reservation: Some(reservation),
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while counters.usage("u1", &[]).await.unwrap().in_flight > 0 {
        assert!(std::time::Instant::now() < deadline, "never released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let again = counters.reserve("u1", &limits, 5, HOLD).await.unwrap();
    assert!(again.is_ok());
}

#[test]
fn refusals_read_like_the_local_ones() {
    let limits = SharedLimits {
        rpm: Some(3),
        tpm: Some(100),
        max_concurrent: Some(2),
        quotas: vec![quota("gpt-4o*", 50)],
    };
    let retry_after = Duration::from_secs(7);
    assert_eq!(
        limits.refusal(UserRefusal::Rpm { retry_after }, 0),
        Refusal::Rpm {
            limit: 3,
            retry_after
        }
    );
    assert_eq!(
        limits.refusal(UserRefusal::Quota { index: 0 }, 1_795_361_400),
        Refusal::Quota {
            models: "gpt-4o*".into(),
            tokens: 50,
            refresh_at: Some(1_795_392_000),
        }
    );
}

#[test]
fn only_users_with_limits_are_counted_and_quotas_are_deduplicated() {
    let mut user: User = serde_json::from_value(serde_json::json!({
        "v": 1, "id": "u", "name": "n", "key_hash": "h", "key_hint": "abcd",
        "role": "user", "enabled": true, "created_at": 0
    }))
    .unwrap();
    assert_eq!(SharedLimits::of(&user, Some("gpt-4o")), None);
    user.quotas = vec![quota("gpt-*", 9), quota("gpt-*", 9), quota("claude-*", 9)];
    let limits = SharedLimits::of(&user, Some("gpt-4o")).unwrap();
    assert_eq!(limits.quotas, [quota("gpt-*", 9)]);
    // A limited user is counted even when no quota matches the model.
    let other = SharedLimits::of(&user, Some("o3")).unwrap();
    assert!(other.quotas.is_empty());
}

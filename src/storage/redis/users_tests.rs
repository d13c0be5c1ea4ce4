//! The shared user counters against a real `redis-server`, at explicit
//! times so the windows are deterministic.

use std::time::Duration;

use super::super::test_server::RedisServer;
use super::*;

const T0: u64 = 1_700_000_000_000;
const HOLD: Duration = Duration::from_secs(600);

fn limits(rpm: Option<u64>, tpm: Option<u64>, quotas: &[QuotaWindow]) -> UserLimits<'_> {
    UserLimits {
        rpm,
        tpm,
        max_concurrent: None,
        quotas,
    }
}

#[actix_web::test]
async fn rpm_counts_admitted_requests_only() {
    let Some(server) = RedisServer::start_or_skip("shared user counters") else {
        return;
    };
    let users = UserCounters::new(server.shared("u1:"));
    let ask = limits(Some(2), None, &[]);
    assert!(users
        .reserve_at(T0, "u", &ask, 1, HOLD)
        .await
        .unwrap()
        .is_ok());
    assert!(users
        .reserve_at(T0 + 1_000, "u", &ask, 1, HOLD)
        .await
        .unwrap()
        .is_ok());
    let refused = users
        .reserve_at(T0 + 2_000, "u", &ask, 1, HOLD)
        .await
        .unwrap();
    assert_eq!(
        refused,
        Err(UserRefusal::Rpm {
            retry_after: Duration::from_millis(58_000)
        })
    );
    let usage = users.usage_at(T0 + 2_000, "u", &[]).await.unwrap();
    assert_eq!(usage.requests_last_minute, 2);
    assert_eq!(usage.in_flight, 2);
    assert_eq!(usage.reserved_tokens, 2);
    assert!(users
        .reserve_at(T0 + 60_000, "u", &ask, 1, HOLD)
        .await
        .unwrap()
        .is_ok());
}

#[actix_web::test]
async fn tpm_counts_used_and_reserved_tokens() {
    let Some(server) = RedisServer::start_or_skip("shared user counters") else {
        return;
    };
    let users = UserCounters::new(server.shared("u2:"));
    let ask = limits(None, Some(100), &[]);
    let first = users
        .reserve_at(T0, "u", &ask, 60, HOLD)
        .await
        .unwrap()
        .unwrap();
    let second = users
        .reserve_at(T0, "u", &ask, 60, HOLD)
        .await
        .unwrap()
        .unwrap();
    let third = users.reserve_at(T0, "u", &ask, 60, HOLD).await.unwrap();
    assert!(matches!(third, Err(UserRefusal::Tpm { .. })), "{third:?}");
    assert!(users.charge_at(T0 + 500, "u", &first, 70).await.unwrap());
    assert!(!users.charge_at(T0 + 500, "u", &first, 0).await.unwrap());
    assert!(users
        .reserve_at(T0 + 600, "u", &ask, 1, HOLD)
        .await
        .unwrap()
        .is_err());
    users.charge_at(T0 + 700, "u", &second, 0).await.unwrap();
    let usage = users.usage_at(T0 + 800, "u", &[]).await.unwrap();
    assert_eq!((usage.tokens_last_minute, usage.reserved_tokens), (70, 0));
    assert!(users
        .reserve_at(T0 + 800, "u", &ask, 1, HOLD)
        .await
        .unwrap()
        .is_ok());
}

#[actix_web::test]
async fn quotas_refuse_when_used_up_and_refresh_with_the_period() {
    let Some(server) = RedisServer::start_or_skip("shared user counters") else {
        return;
    };
    let users = UserCounters::new(server.shared("u3:"));
    let day = |start: u64| QuotaWindow {
        id: "gpt-*|daily".into(),
        tokens: 100,
        period_start: start,
        period_end: Some(start + 86_400),
    };
    let today = [day(1_699_920_000)];
    let ask = limits(None, None, &today);
    let held = users
        .reserve_at(T0, "u", &ask, 40, HOLD)
        .await
        .unwrap()
        .unwrap();
    users.charge_at(T0, "u", &held, 100).await.unwrap();
    assert_eq!(
        users.reserve_at(T0, "u", &ask, 1, HOLD).await.unwrap(),
        Err(UserRefusal::Quota { index: 0 })
    );
    assert_eq!(
        users.usage_at(T0, "u", &today).await.unwrap().quota_used,
        vec![100]
    );
    assert!(users.reset_quota("u", &today[0]).await.unwrap());
    assert!(!users.reset_quota("u", &today[0]).await.unwrap());
    let again = users
        .reserve_at(T0, "u", &ask, 1, HOLD)
        .await
        .unwrap()
        .unwrap();
    users.charge_at(T0, "u", &again, 100).await.unwrap();
    let tomorrow = [day(1_699_920_000 + 86_400)];
    let ask = limits(None, None, &tomorrow);
    assert!(users
        .reserve_at(T0, "u", &ask, 1, HOLD)
        .await
        .unwrap()
        .is_ok());
}

#[actix_web::test]
async fn concurrency_cap_and_lapsed_reservations() {
    let Some(server) = RedisServer::start_or_skip("shared user counters") else {
        return;
    };
    let users = UserCounters::new(server.shared("u4:"));
    let ask = UserLimits {
        max_concurrent: Some(1),
        ..limits(None, None, &[])
    };
    let short = Duration::from_secs(1);
    let held = users
        .reserve_at(T0, "u", &ask, 5, short)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        users
            .reserve_at(T0 + 10, "u", &ask, 5, short)
            .await
            .unwrap(),
        Err(UserRefusal::TooManyConcurrent { max: 1 })
    );
    assert!(users.release("u", &held).await.is_ok());
    // A reservation nobody released lapses after `hold`.
    let _forgotten = users
        .reserve_at(T0 + 20, "u", &ask, 5, short)
        .await
        .unwrap()
        .unwrap();
    assert!(users
        .reserve_at(T0 + 2_000, "u", &ask, 5, short)
        .await
        .unwrap()
        .is_ok());
}

#[actix_web::test]
async fn parallel_instances_never_exceed_rpm_together() {
    let Some(server) = RedisServer::start_or_skip("shared user counters") else {
        return;
    };
    let instances = [
        UserCounters::new(server.shared("u5:")),
        UserCounters::new(server.shared("u5:")),
        UserCounters::new(server.shared("u5:")),
    ];
    let ask = limits(Some(20), None, &[]);
    let calls = (0..60).map(|i| {
        let users = instances[i % 3].clone();
        async move { users.reserve("u", &ask, 1, HOLD).await.unwrap().is_ok() }
    });
    let admitted = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    assert_eq!(admitted, 20);
}

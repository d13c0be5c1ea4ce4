//! Route and dial: which endpoints may serve the session, then handshakes
//! with them until one opens, all before the client's upgrade is answered.
//!
//! Selection is the HTTP pipeline's (`select::select`: strategy order,
//! RPM/RPD counted at connect, a key lent by the KeyPool), and so is the
//! reading of a refusal (`send::classify`): a 429 cools the key and a 401/403
//! revokes it, and the next key is tried; a 5xx or a network failure moves to
//! another endpoint; any other refusal is the request's own and ends the
//! attempts. At most `limits.max_attempts` handshakes are made.

use actix_web::http::StatusCode;

use super::error::RealtimeError;
use super::record::SessionLog;
use super::upstream::{self, Dial, Refusal, UpstreamSocket};
use crate::actors::key_pool::{KeyLease, KeyOutcome, KeyPoolHandle, DEFAULT_COOLDOWN};
use crate::config::{Config, Secret};
use crate::error::{GatewayError, LimitScope};
use crate::pipeline::route::{self, ApiCall};
use crate::pipeline::select::{self, NoCapacity};
use crate::pipeline::send::{self, Verdict};
use crate::state::{AppState, Live};

/// What the client asked for, as the attempts need it.
pub struct Plan<'a> {
    pub model: &'a str,
    pub extra_query: &'a str,
    pub beta: Option<&'a str>,
    /// A passthrough client's own key.
    pub own_key: Option<&'a Secret>,
}

/// An open upstream session.
pub struct Dialed {
    pub socket: UpstreamSocket,
    pub lease: Option<KeyLease>,
}

/// Endpoints that may serve a realtime session for `model`: the HTTP routing
/// rules (Host, then route prefix, then model), over the kinds that have a
/// Realtime API rather than the kinds that speak the client's dialect.
pub fn candidates(
    config: &Config,
    call: &ApiCall,
    host: &str,
    model: &str,
) -> Result<Vec<usize>, GatewayError> {
    route::candidates_for(config, call, host, Some(model), REALTIME)
}

/// Realtime sessions: kinds with a Realtime API; an endpoint that takes any
/// model serves any model (no dialect to translate).
pub const REALTIME: route::Fit = route::Fit {
    takes: |kind, _| upstream::has_realtime(kind),
    native: |_, _| true,
};

/// The last refusal, for the answer when no attempt is left.
enum Failure {
    Refused(Refusal),
    NoCapacity(NoCapacity),
}

/// Handshakes until one opens or the attempts run out.
pub async fn dial(
    state: &AppState,
    live: &Live,
    candidates: &[usize],
    plan: &Plan<'_>,
    log: &mut SessionLog,
) -> Result<Dialed, RealtimeError> {
    let config = &live.config;
    let mut excluded = Vec::new();
    let mut attempts = 0;
    let mut last: Option<Failure> = None;
    while attempts < config.limits.max_attempts {
        let own_key = plan.own_key.is_some();
        let model = plan.model;
        let selected =
            match select::select(state, live, candidates, &excluded, own_key, model).await? {
                Ok(selected) => selected,
                Err(no_capacity) => {
                    // A cooled or revoked key is no reason to hide the refusal that caused it.
                    if last.is_none() || matches!(no_capacity, NoCapacity::Busy { .. }) {
                        last = Some(Failure::NoCapacity(no_capacity));
                    }
                    break;
                }
            };
        attempts += 1;
        let endpoint = &config.endpoints[selected.endpoint];
        let upstream_model = endpoint.upstream_model(plan.model);
        log.begin_attempt(&endpoint.id, upstream_model);
        let mut lent = Lent {
            pool: &state.key_pool,
            lease: selected.lease,
        };
        let key = lent
            .lease
            .as_ref()
            .map(|lease| lease.key.expose())
            .or(plan.own_key.map(Secret::expose));
        let dial = Dial {
            upstream_model,
            extra_query: plan.extra_query,
            key,
            beta: plan.beta,
            max_message_bytes: config.realtime.max_queued_bytes,
            timeout: config.server.connect_timeout,
        };
        let refusal = match upstream::connect(endpoint, &dial).await {
            Ok(socket) => {
                return Ok(Dialed {
                    socket,
                    lease: lent.lease.take(),
                })
            }
            Err(refusal) => refusal,
        };
        log::warn!(
            "{} realtime handshake with endpoint {} failed: {}",
            log.session_id(),
            endpoint.id,
            describe(&refusal)
        );
        let (outcome, next_endpoint, final_answer) = judge(&refusal, lent.lease.is_some());
        if let Some(lease) = lent.lease.take() {
            state.key_pool.report(lease, outcome);
        }
        if let (true, Refusal::Status { status, body, .. }) = (final_answer, &refusal) {
            // The request's own refusal (or a passthrough key's): the client
            // gets the upstream's answer.
            return Err(RealtimeError::Refused {
                status: *status,
                body: body.clone(),
            });
        }
        if next_endpoint {
            excluded.push(selected.endpoint);
        }
        last = Some(Failure::Refused(refusal));
    }
    Err(give_up(last, attempts))
}

/// A key lent for one handshake. If the handshake's future is dropped
/// before it ends (server shutdown; actix keeps running a handler whose
/// client hung up), the key goes back to the pool instead of staying
/// counted as in flight.
struct Lent<'a> {
    pool: &'a KeyPoolHandle,
    lease: Option<KeyLease>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.pool.report(lease, KeyOutcome::ClientError);
        }
    }
}

/// A refusal's verdict: the key's outcome, whether to leave the endpoint,
/// and whether the refusal is the client's final answer.
fn judge(refusal: &Refusal, pooled_key: bool) -> (KeyOutcome, bool, bool) {
    match refusal {
        Refusal::Status {
            status,
            retry_after,
            ..
        } => {
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            match send::classify(code, *retry_after, pooled_key) {
                Verdict::OtherKey(outcome) => (outcome, false, false),
                Verdict::OtherEndpoint | Verdict::Deliver => (failed(refusal), true, false),
                Verdict::Final => (KeyOutcome::ClientError, false, true),
            }
        }
        Refusal::Timeout | Refusal::Transport(_) => (failed(refusal), true, false),
    }
}

fn failed(refusal: &Refusal) -> KeyOutcome {
    KeyOutcome::Failed {
        reason: describe(refusal),
    }
}

fn describe(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Status { status, .. } => format!("upstream answered {status}"),
        Refusal::Timeout => "handshake timed out".into(),
        Refusal::Transport(e) => e.clone(),
    }
}

/// The client's answer when no handshake opened.
fn give_up(last: Option<Failure>, attempts: u32) -> RealtimeError {
    let refusal = match last {
        None | Some(Failure::NoCapacity(NoCapacity::NoKeys)) => {
            return GatewayError::NoUsableKey.into()
        }
        Some(Failure::NoCapacity(NoCapacity::Busy { retry_after })) => {
            return GatewayError::RateLimited {
                scope: LimitScope::Endpoints,
                retry_after,
            }
            .into()
        }
        Some(Failure::Refused(refusal)) => refusal,
    };
    match refusal {
        Refusal::Timeout => GatewayError::UpstreamTimeout { attempts }.into(),
        Refusal::Transport(last) => GatewayError::UpstreamUnavailable { attempts, last }.into(),
        Refusal::Status {
            status: 429,
            retry_after,
            ..
        } => GatewayError::RateLimited {
            scope: LimitScope::Endpoints,
            retry_after: retry_after.unwrap_or(DEFAULT_COOLDOWN),
        }
        .into(),
        Refusal::Status {
            status: status @ (401 | 403),
            ..
        } => GatewayError::UpstreamUnavailable {
            attempts,
            last: format!("upstream refused the gateway's key ({status})"),
        }
        .into(),
        Refusal::Status { status, .. } => GatewayError::UpstreamUnavailable {
            attempts,
            last: format!("upstream answered {status}"),
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml_str;

    fn config() -> Config {
        from_toml_str(
            r#"
            [[endpoints]]
            id = "oa"
            provider = "openai"
            models = ["gpt-realtime"]
            [[endpoints]]
            id = "az"
            provider = "azure"
            base_url = "https://res.example.com"
            model_mapping = { "rt-alias" = "gpt-realtime" }
            [[endpoints]]
            id = "claude"
            provider = "anthropic"
            [[endpoints]]
            id = "mock"
            provider = "mock"
            [[endpoints]]
            id = "team"
            provider = "openai_compatible"
            base_url = "http://127.0.0.1:9"
            route_prefix = "/team"
            [[endpoints]]
            id = "vip"
            provider = "openai"
            hosts = ["vip.example.com"]
            "#,
            &Default::default(),
            &Default::default(),
        )
        .unwrap()
    }

    fn call(path: &str, config: &Config) -> ApiCall {
        route::classify(path, config).unwrap()
    }

    #[test]
    fn only_kinds_with_a_realtime_api() {
        let c = config();
        let plain = call("/v1/realtime", &c);
        // Azure serves any model (no list); "team" too, reached unprefixed.
        assert_eq!(
            candidates(&c, &plain, "localhost", "gpt-realtime").unwrap(),
            vec![0, 1, 4]
        );
        assert_eq!(
            candidates(&c, &plain, "localhost", "rt-alias").unwrap(),
            vec![1, 4]
        );
    }

    #[test]
    fn prefix_and_host_narrow_like_http() {
        let c = config();
        let prefixed = call("/team/v1/realtime", &c);
        assert_eq!(
            candidates(&c, &prefixed, "localhost", "anything").unwrap(),
            vec![4]
        );
        let plain = call("/v1/realtime", &c);
        assert_eq!(
            candidates(&c, &plain, "vip.example.com:443", "gpt-realtime").unwrap(),
            vec![5]
        );
    }

    #[test]
    fn unknown_model_lists_what_exists() {
        let mut c = config();
        c.endpoints.retain(|e| e.id == "oa" || e.id == "claude");
        c.reindex();
        let plain = call("/v1/realtime", &c);
        match candidates(&c, &plain, "localhost", "nope") {
            Err(GatewayError::ModelNotFound { available, .. }) => {
                assert_eq!(available, vec!["gpt-realtime".to_string()])
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

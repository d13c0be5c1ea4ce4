//! Prices through the real app: the `cost` and `quota` strategies choose as
//! documented in `pipeline::select::order`, every usage record carries the
//! request's cost, and a user's totals add it up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::replies::openai_completion;
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};
use serde_json::json;

use aigate::config::{from_toml_str, CliOverrides};
use aigate::pricing::default_price;
use aigate::stream::usage::TokenUsage;
use aigate::users::actor::{Create, Get, NewUser};

/// gpt-4o at the built-in $2.50 / $10 / $1.25 cached, for the fake's usage
/// of 11 prompt (3 cached) + 7 completion tokens.
const GPT_4O_FAKE_COST: f64 = (8.0 * 2.50 + 3.0 * 1.25 + 7.0 * 10.0) / 1e6;

fn named(name: &'static str) -> FakeUpstream {
    FakeUpstream::always(Reply::json(openai_completion("m", name)))
}

async fn answer_of(gw: &TestGateway, model: &str) -> String {
    let url = format!("{}/v1/chat/completions", gw.url);
    let (status, _, body) = post_json(&url, "fk-test", &chat(model, "x")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    json_of(&body)["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `[[endpoints]]` of provider openai at `url`, plus extra lines.
fn endpoint(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[endpoints]]\nid = \"{id}\"\nprovider = \"openai\"\nbase_url = \"{url}\"\nkeys = [\"sk-{id}\"]\n{extra}\n"
    )
}

fn config(strategy: &str, endpoints: &[String]) -> String {
    format!(
        "[auth]\nclient_keys = [\"fk-test\"]\n[limits]\nip_requests = -1\n[routing]\nstrategy = \"{strategy}\"\n{}",
        endpoints.concat()
    )
}

#[actix_web::test]
async fn cost_always_picks_the_cheaper_endpoint() {
    let (pricey, cheap) = (named("pricey"), named("cheap"));
    // Both serve "gpt-4o"; "cheap" sends it upstream as gpt-4o-mini.
    let gw = TestGateway::start(&config(
        "cost",
        &[
            endpoint("pricey", &pricey.url, ""),
            endpoint(
                "cheap",
                &cheap.url,
                "model_mapping = { \"gpt-4o\" = \"gpt-4o-mini\" }",
            ),
        ],
    ));
    for _ in 0..10 {
        assert_eq!(answer_of(&gw, "gpt-4o").await, "cheap");
    }
    assert_eq!(pricey.hits(), 0);
    gw.stop().await;
}

#[actix_web::test]
async fn cost_layers_endpoint_prices_then_pricing_then_builtin_unknown_last() {
    let own = FakeUpstream::always(Reply::status(503, json!({"error": {"message": "down"}})));
    let (table, unpriced) = (named("table"), named("unpriced"));
    let text = format!(
        "[pricing]\n\"gpt-4o\" = {{ input = 1, output = 1 }}\n{}",
        config(
            "cost",
            &[
                // Unknown upstream model: after every priced endpoint.
                endpoint(
                    "unpriced",
                    &unpriced.url,
                    "model_mapping = { \"gpt-4o\" = \"house-model\" }",
                ),
                // [pricing] beats the built-in $2.50 + $10: 2 per 1M.
                endpoint("table", &table.url, ""),
                // Its own price beats [pricing]: 1 per 1M, so tried first.
                endpoint(
                    "own",
                    &own.url,
                    "prices = { \"gpt-4*\" = { input = 0.5, output = 0.5 } }",
                ),
            ],
        )
    );
    let gw = TestGateway::start(&text);
    // "own" answers 503, so the request fails over to the next in order.
    assert_eq!(answer_of(&gw, "gpt-4o").await, "table");
    assert_eq!(own.hits(), 1);
    assert_eq!(unpriced.hits(), 0);
    let records = gw.usage_records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["endpoint"], "table");
    // [pricing] price: (8 + 3) × $1 + 7 × $1 per 1M ("cached_input" unset).
    assert_eq!(records[0]["cost_usd"].as_f64().unwrap(), 18.0 / 1e6);
    gw.stop().await;
}

#[actix_web::test]
async fn quota_picks_the_endpoint_with_more_daily_requests_left() {
    let (small, big) = (named("small"), named("big"));
    // "small" is cheaper but has fewer requests left today.
    let gw = TestGateway::start(&config(
        "quota",
        &[
            endpoint(
                "small",
                &small.url,
                "rpd = 5\nmodel_mapping = { \"gpt-4o\" = \"gpt-4o-mini\" }",
            ),
            endpoint("big", &big.url, "rpd = 1000"),
        ],
    ));
    for _ in 0..6 {
        assert_eq!(answer_of(&gw, "gpt-4o").await, "big");
    }
    assert_eq!(small.hits(), 0);
    gw.stop().await;
}

#[actix_web::test]
async fn quota_ties_go_to_the_cheaper_endpoint() {
    let (pricey, cheap) = (named("pricey"), named("cheap"));
    let mini = "model_mapping = { \"gpt-4o\" = \"gpt-4o-mini\" }";
    // Unlimited on both: always a tie on quota, so price decides.
    let gw = TestGateway::start(&config(
        "quota",
        &[
            endpoint("pricey", &pricey.url, ""),
            endpoint("cheap", &cheap.url, mini),
        ],
    ));
    for _ in 0..5 {
        assert_eq!(answer_of(&gw, "gpt-4o").await, "cheap");
    }
    assert_eq!(pricey.hits(), 0);
    gw.stop().await;

    // Equal daily limits: the cheaper goes first, then has one request
    // fewer left, so the other goes next; remaining quota outranks price.
    let (pricey, cheap) = (named("pricey"), named("cheap"));
    let gw = TestGateway::start(&config(
        "quota",
        &[
            endpoint("pricey", &pricey.url, "rpd = 10"),
            endpoint("cheap", &cheap.url, &format!("rpd = 10\n{mini}")),
        ],
    ));
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(answer_of(&gw, "gpt-4o").await);
    }
    assert_eq!(answers, ["cheap", "pricey", "cheap", "pricey"]);
    gw.stop().await;
}

#[actix_web::test]
async fn records_and_user_totals_carry_the_cost() {
    let (priced, unpriced) = (named("priced"), named("unpriced"));
    let gw = TestGateway::start(&config(
        "random",
        &[
            endpoint("priced", &priced.url, "models = [\"gpt-4o\"]"),
            endpoint("unpriced", &unpriced.url, "models = [\"house-model\"]"),
        ],
    ));
    let (view, key) = gw
        .state
        .users
        .send(Create(NewUser {
            name: "costly".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .unwrap();
    let url = format!("{}/v1/chat/completions", gw.url);
    for model in ["gpt-4o", "gpt-4o", "house-model"] {
        let (status, _, body) = post_json(&url, &key, &chat(model, "x")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let records = gw.usage_records().await;
    assert_eq!(records.len(), 3);
    for record in &records {
        assert_eq!(record["prompt_tokens"], 11);
        assert_eq!(record["cached_tokens"], 3);
        let expected = match record["upstream_model"].as_str().unwrap() {
            "gpt-4o" => GPT_4O_FAKE_COST,
            _ => 0.0,
        };
        assert_eq!(record["cost_usd"].as_f64().unwrap(), expected, "{record}");
    }
    let totals = gw
        .state
        .users
        .send(Get(view.id))
        .await
        .unwrap()
        .unwrap()
        .totals;
    assert_eq!(totals.requests, 3);
    assert_eq!(totals.cost_usd, 2.0 * GPT_4O_FAKE_COST);
    gw.stop().await;
}

#[test]
fn cost_arithmetic_on_known_prices() {
    let usage = |prompt, completion, cached| TokenUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_tokens: cached,
    };
    let gpt_4o = default_price("gpt-4o-2024-08-06").unwrap();
    assert_eq!(gpt_4o.cost(&usage(1_000, 500, 0)), 0.0075);
    assert_eq!(gpt_4o.cost(&usage(11, 7, 3)), GPT_4O_FAKE_COST);
    let haiku = default_price("us.anthropic.claude-3-5-haiku-20241022-v1:0").unwrap();
    // 900 fresh × $0.80 + 100 cached × $0.08 + 1,000 × $4 = 4,728 per 1M
    assert_eq!(haiku.cost(&usage(1_000, 1_000, 100)), 4_728.0 / 1e6);
}

#[test]
fn pricing_config_errors_name_the_key() {
    let load = |text: &str| from_toml_str(text, &BTreeMap::new(), &CliOverrides::default());
    let err = load("[pricing]\n\"gpt-4o\" = { input = -1, output = 10 }").unwrap_err();
    assert_eq!(
        err.to_string(),
        "pricing.\"gpt-4o\".input: expected a number >= 0"
    );
    let err = load(
        "[[endpoints]]\nid = \"a\"\nprovider = \"mock\"\nprices = { \"m\" = { input = 1, output = -2 } }",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "endpoints[0].prices.\"m\".output: expected a number >= 0"
    );
    let err = load("[pricing]\n\"m\" = { input = 1, output = 1, cache = 1 }").unwrap_err();
    assert_eq!(
        err.to_string(),
        "pricing.m.cache: unknown field `cache`, expected one of `input`, `output`, `cached_input`"
    );
    let config =
        load("[routing]\nstrategy = \"quota\"\n[pricing]\n\"x-*\" = { input = 2, output = 3 }")
            .unwrap();
    assert_eq!(config.routing.strategy.as_str(), "quota");
    assert_eq!(config.pricing.get("x-1").unwrap().sort_key(), 5.0);
}

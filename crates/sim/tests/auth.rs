//! SPEC 1.1: OAuth 2.0 client credentials, bearer checks and scopes, and the token endpoint's
//! own rate limit.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use skillsync_sim::Knobs;

/// Posts a raw token request form and decodes the answer.
async fn token_request(
    sim: &common::TestSim,
    form: &[(&str, &str)],
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = sim
        .http
        .post(sim.url("/api/v2/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

fn demo_form(scope: Option<&str>) -> Vec<(&str, &str)> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", skillsync_sim::DEMO_CLIENT_ID),
        ("client_secret", skillsync_sim::DEMO_CLIENT_SECRET),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    form
}

fn scopes_of(body: &Value) -> Vec<String> {
    let mut scopes: Vec<String> = body["scope"]
        .as_str()
        .expect("scope is a string")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    scopes.sort();
    scopes
}

#[tokio::test]
async fn token_is_issued_as_bearer_with_every_client_scope_and_a_lifetime() {
    let sim = common::start().await;
    let (status, body, _) = token_request(&sim, &demo_form(None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(!body["access_token"].as_str().unwrap().is_empty());
    // Quiet knobs keep the default lifetime of one hour.
    assert_eq!(body["expires_in"], 3600);
    let mut all: Vec<String> = skillsync_sim::ALL_SCOPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.sort();
    assert_eq!(scopes_of(&body), all);
    // The token works.
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(sim.get("/api/v2/routing/skills", token).await.status, 200);
}

#[tokio::test]
async fn token_lifetime_follows_the_token_ttl_knob() {
    let sim = common::start().await;
    sim.set_knobs(json!({ "tokenTtl": "10m" })).await;
    let (status, body, _) = token_request(&sim, &demo_form(None)).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 600);
}

#[tokio::test]
async fn wrong_secret_is_401_invalid_client() {
    let sim = common::start().await;
    let (status, body, _) = token_request(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", skillsync_sim::DEMO_CLIENT_ID),
            ("client_secret", "not-the-secret"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "invalid_client");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn unknown_client_id_is_401_invalid_client() {
    let sim = common::start().await;
    let (status, body, _) = token_request(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "somebody-else"),
            ("client_secret", skillsync_sim::DEMO_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "invalid_client");
}

#[tokio::test]
async fn unknown_grant_type_is_400_unsupported_grant_type() {
    let sim = common::start().await;
    let (status, body, _) = token_request(
        &sim,
        &[
            ("grant_type", "password"),
            ("client_id", skillsync_sim::DEMO_CLIENT_ID),
            ("client_secret", skillsync_sim::DEMO_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "unsupported_grant_type");
}

#[tokio::test]
async fn scope_not_granted_to_the_client_is_400_invalid_scope() {
    let sim = common::start().await;
    let (status, body, _) =
        token_request(&sim, &demo_form(Some("routing:skills:read tenant:destroy"))).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_scope");
    assert!(
        body["message"].as_str().unwrap().contains("tenant:destroy"),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn requesting_a_subset_of_scopes_grants_only_those() {
    let sim = common::start().await;
    let (status, body, _) =
        token_request(&sim, &demo_form(Some("routing:skills:read users:read"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(scopes_of(&body), vec!["routing:skills:read", "users:read"]);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(sim.get("/api/v2/routing/skills", token).await.status, 200);
    assert_eq!(sim.get("/api/v2/routing/users", token).await.status, 200);
    // Not requested, so not granted, although the client holds it.
    assert_eq!(
        sim.get("/api/v2/routing/proficiencies", token).await.status,
        403
    );
}

#[tokio::test]
async fn missing_bearer_token_is_401() {
    let sim = common::start().await;
    let answer = sim
        .call(Method::GET, "/api/v2/routing/skills", None, None, &[])
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["status"], 401);
}

#[tokio::test]
async fn unknown_bearer_token_is_401() {
    let sim = common::start().await;
    let answer = sim
        .get("/api/v2/routing/skills", "sim.not-a-token-we-issued")
        .await;
    assert_eq!(answer.status, 401);
    // A token from another simulator instance is just as unknown.
    let other = common::start().await;
    let foreign = other.token().await;
    assert_eq!(
        sim.get("/api/v2/routing/skills", &foreign).await.status,
        401
    );
}

#[tokio::test]
async fn expired_token_is_401_and_a_fresh_one_works() {
    let sim = common::start().await;
    sim.set_knobs(json!({ "tokenTtl": "10s" })).await;
    let token = sim.token().await;
    assert_eq!(sim.get("/api/v2/routing/skills", &token).await.status, 200);
    sim.advance_clock("11s").await;
    let answer = sim.get("/api/v2/routing/skills", &token).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let fresh = sim.token().await;
    assert_eq!(sim.get("/api/v2/routing/skills", &fresh).await.status, 200);
}

#[tokio::test]
async fn token_is_still_valid_just_before_it_expires() {
    let sim = common::start().await;
    sim.set_knobs(json!({ "tokenTtl": "10s" })).await;
    let token = sim.token().await;
    sim.advance_clock("9s").await;
    assert_eq!(sim.get("/api/v2/routing/skills", &token).await.status, 200);
}

#[tokio::test]
async fn valid_token_without_the_scope_is_403_insufficient_scope_naming_it() {
    let sim = common::start().await;
    let token = sim.token_with_scope(Some("routing:skills:read")).await;
    let answer = sim
        .post(
            "/api/v2/routing/skills",
            &token,
            json!({"name":"X","locale":"en-us","active":true,"routingProfileId":"p"}),
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.body["code"], "insufficient_scope");
    assert!(
        answer.body.to_string().contains("routing:skills:write"),
        "the body names the missing scope: {}",
        answer.body
    );
    // Nothing was created.
    let state = sim.state().await;
    assert!(
        state["skills"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "X")
    );
}

#[tokio::test]
async fn sixth_token_request_in_a_row_is_429_with_retry_after_while_api_calls_go_on() {
    let sim = common::start_knobs(Knobs {
        token_rate_limit: "5/m".parse().unwrap(),
        ..Knobs::quiet()
    })
    .await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        let (status, body, _) = token_request(&sim, &demo_form(None)).await;
        assert_eq!(status, 200, "token request {} of 5: {body}", i + 1);
        tokens.push(body["access_token"].as_str().unwrap().to_string());
    }
    let (status, body, headers) = token_request(&sim, &demo_form(None)).await;
    assert_eq!(status, 429, "{body}");
    let retry_after: u64 = headers
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "one token refills within 12 s at 5/m, got {retry_after}"
    );
    // The API itself is not throttled by the token endpoint's limit.
    for _ in 0..10 {
        let answer = sim.get("/api/v2/routing/skills", &tokens[0]).await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(sim.stats().await["tokensIssued"], 5);
    // Waiting as told lets the next token request through.
    sim.advance_clock(&format!("{retry_after}s")).await;
    let (status, _, _) = token_request(&sim, &demo_form(None)).await;
    assert_eq!(status, 200);
}

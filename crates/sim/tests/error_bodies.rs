//! SPEC 1: "JSON everywhere", and every error has the body `{status, code, message, details?}`,
//! also for the answers the framework would otherwise give on its own (found while running
//! schemathesis against the sim, issue 13).

mod common;

use common::detail_fields;

use reqwest::Method;

/// The answer is the API's JSON error body with this status.
fn assert_error_body(answer: &common::Answer, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: {:?}", answer.body);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json"),
        "{what}: {:?}",
        answer.body
    );
    assert_eq!(answer.body["status"], status, "{what}: {}", answer.body);
    assert!(answer.body["code"].is_string(), "{what}: {}", answer.body);
    assert!(
        answer.body["message"].is_string(),
        "{what}: {}",
        answer.body
    );
}

#[tokio::test]
async fn a_method_the_path_does_not_serve_is_405_with_allow_and_the_json_error_body() {
    let sim = common::start().await;
    let token = sim.token().await;
    for (method, path, allow) in [
        (Method::PATCH, "/api/v2/routing/skills", "GET,HEAD,POST"),
        (Method::DELETE, "/api/v2/routing/users/u1", "GET,HEAD,PUT"),
        (Method::DELETE, "/sim/stats", "GET,HEAD"),
    ] {
        let what = format!("{method} {path}");
        let answer = sim.call(method, path, Some(&token), None, &[]).await;
        assert_error_body(&answer, 405, &what);
        assert_eq!(answer.body["code"], "METHOD_NOT_ALLOWED", "{what}");
        assert_eq!(answer.header("allow").as_deref(), Some(allow), "{what}");
    }
}

#[tokio::test]
async fn a_path_id_that_is_not_utf8_is_400_naming_the_parameter() {
    let sim = common::start().await;
    let token = sim.token().await;
    for (method, path, field) in [
        (Method::GET, "/api/v2/routing/skills/%FF", "id"),
        (Method::DELETE, "/api/v2/routing/proficiencies/%FF", "id"),
        (Method::GET, "/api/v2/routing/profiles/%C3", "id"),
        (Method::PUT, "/api/v2/routing/users/%FF", "userId"),
        (Method::GET, "/api/v2/users/%FF", "userId"),
    ] {
        let what = format!("{method} {path}");
        let body = (method == Method::PUT).then(|| serde_json::json!({}));
        let answer = sim.call(method, path, Some(&token), body, &[]).await;
        assert_error_body(&answer, 400, &what);
        assert_eq!(detail_fields(&answer.body), vec![field], "{what}");
    }
}

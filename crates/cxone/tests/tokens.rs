//! Tokens: one request for many callers, a refresh on expiry, a named scope on 403.

mod common;

use std::sync::Arc;

use futures::TryStreamExt;
use futures::future::join_all;
use skillsync_core::Kind;
use skillsync_cxone::{DefinitionQuery, Error, TenantApi};
use skillsync_sim::Knobs;

async fn list_skills(api: &Arc<dyn TenantApi>) -> skillsync_cxone::Result<usize> {
    let all: Vec<_> = api
        .definitions(Kind::Skill, DefinitionQuery::default())
        .try_collect()
        .await?;
    Ok(all.len())
}

#[tokio::test]
async fn thirty_two_concurrent_callers_cause_exactly_one_token_request() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let api = skillsync_cxone::connect(&sim.settings()).unwrap();
    let calls = (0..32).map(|_| list_skills(&api));
    for result in join_all(calls).await {
        assert!(result.unwrap() > 0);
    }
    assert_eq!(sim.stats().await["tokensIssued"], 1);
    assert_eq!(api.counters().token_fetches, 1);
}

#[tokio::test]
async fn token_expiry_mid_run_causes_one_refresh_and_no_call_fails() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let api = skillsync_cxone::connect(&sim.settings()).unwrap();
    list_skills(&api).await.unwrap();
    // Two hours pass on the tenant's clock: the cached token is now expired there.
    sim.advance_clock("2h").await;
    let calls = (0..32).map(|_| list_skills(&api));
    for result in join_all(calls).await {
        result.expect("no call may fail because the token expired");
    }
    assert_eq!(
        sim.stats().await["tokensIssued"],
        2,
        "one refresh for all 32 callers"
    );
    assert_eq!(api.counters().token_fetches, 2);
}

#[tokio::test]
async fn a_token_without_a_scope_gives_an_error_naming_it_after_one_request() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let mut settings = sim.settings();
    settings.scopes = vec!["routing:skills:read".into()];
    let api = skillsync_cxone::connect(&settings).unwrap();
    let new = skillsync_cxone::NewDefinition {
        kind: Kind::Skill,
        name: "Scope_Probe".into(),
        locale: skillsync_core::Locale::parse("en-us").unwrap(),
        description: String::new(),
        routing_profile_id: "irrelevant".into(),
    };
    let error = api.create_definition(&new).await.unwrap_err();
    match &error {
        Error::MissingScope { scope, .. } => assert_eq!(scope, "routing:skills:write"),
        other => panic!("expected MissingScope, got {other:?}"),
    }
    assert!(error.to_string().contains("routing:skills:write"));
    assert_eq!(
        sim.answered("POST", "/api/v2/routing/skills").await,
        vec![(403, 1)],
        "a 403 is never retried"
    );
}

#[tokio::test]
async fn wrong_client_secret_is_reported_without_retrying() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let mut settings = sim.settings();
    settings.client_secret = skillsync_cxone::Secret::new("not-the-secret");
    let api = skillsync_cxone::connect(&settings).unwrap();
    let error = list_skills(&api).await.unwrap_err();
    assert!(
        matches!(&error, Error::Auth { code, .. } if code == "invalid_client"),
        "{error:?}"
    );
    assert_eq!(
        sim.answered("POST", "/api/v2/oauth/token").await,
        vec![(401, 1)]
    );
}

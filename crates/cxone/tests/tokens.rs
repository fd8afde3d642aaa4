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

// --- Tokens kept between processes (`Settings::token_cache`). Each client below is built by
// its own `connect`, as a separate process would build it, and shares only the directory.

/// A private cache directory of the test's own, removed when dropped.
struct CacheDir(std::path::PathBuf);

impl CacheDir {
    fn new(tag: &str) -> CacheDir {
        let dir = std::env::temp_dir().join(format!(
            "skillsync-cxone-tokens-{tag}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        CacheDir(dir)
    }

    /// The one token file in it.
    fn token_file(&self) -> std::path::PathBuf {
        let files: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files.into_iter().next().unwrap()
    }

    fn cached_token(&self) -> String {
        let entry: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.token_file()).unwrap()).unwrap();
        entry["accessToken"].as_str().unwrap().to_string()
    }

    /// Puts `token` in place of the cached one, as another process would write it: a private
    /// temporary file renamed over the entry, everything else in the entry unchanged.
    fn replace_cached_token(&self, token: &str) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let file = self.token_file();
        let mut entry: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        entry["accessToken"] = token.into();
        let temp = self.0.join(".replacement.tmp");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .unwrap()
            .write_all(&serde_json::to_vec(&entry).unwrap())
            .unwrap();
        std::fs::rename(&temp, &file).unwrap();
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cached_settings(sim: &common::Sim, cache: &CacheDir) -> skillsync_cxone::Settings {
    let mut settings = sim.settings();
    settings.token_cache = Some(cache.0.clone());
    settings
}

/// A token of the demo client with only `scope`, straight from the token endpoint.
async fn token_with_scope(sim: &common::Sim, scope: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v2/oauth/token", sim.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", skillsync_sim::DEMO_CLIENT_ID),
            ("client_secret", skillsync_sim::DEMO_CLIENT_SECRET),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

async fn list_proficiencies(api: &Arc<dyn TenantApi>) -> skillsync_cxone::Result<usize> {
    let all: Vec<_> = api
        .definitions(Kind::Proficiency, DefinitionQuery::default())
        .try_collect()
        .await?;
    Ok(all.len())
}

fn sorted(mut answers: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    answers.sort();
    answers
}

#[tokio::test]
async fn a_cached_token_refused_with_403_is_dropped_from_the_cache_and_replaced_once() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let cache = CacheDir::new("forbidden");
    let settings = cached_settings(&sim, &cache);
    let first = skillsync_cxone::connect(&settings).unwrap();
    list_skills(&first).await.unwrap();

    // The cached token loses a permission (the tenant narrowed what it may do): from now on
    // the tenant answers 403 to it for proficiencies.
    let narrowed = token_with_scope(&sim, "routing:skills:read").await;
    cache.replace_cached_token(&narrowed);
    assert_eq!(sim.stats().await["tokensIssued"], 2);

    let next = skillsync_cxone::connect(&settings).unwrap();
    let calls = (0..8).map(|_| list_proficiencies(&next));
    for result in join_all(calls).await {
        assert!(result.expect("the refused token is replaced, not reported") > 0);
    }
    assert_eq!(
        sim.stats().await["tokensIssued"],
        3,
        "one new token for all eight callers"
    );
    assert_eq!(next.counters().token_fetches, 1);
    let answered = sorted(sim.answered("GET", "/api/v2/routing/proficiencies").await);
    assert_eq!(answered[0], (200, 8), "{answered:?}");
    assert!(
        answered
            .iter()
            .all(|(status, _)| [200, 403].contains(status)),
        "{answered:?}"
    );
    let replacement = cache.cached_token();
    assert_ne!(replacement, narrowed, "the refused token left the cache");

    // The next process reuses the replacement.
    let after = skillsync_cxone::connect(&settings).unwrap();
    list_proficiencies(&after).await.unwrap();
    assert_eq!(sim.stats().await["tokensIssued"], 3);
    assert_eq!(after.counters().token_fetches, 0);
}

#[tokio::test]
async fn a_cached_token_refused_with_401_is_dropped_from_the_cache_and_replaced_once() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let cache = CacheDir::new("revoked");
    let settings = cached_settings(&sim, &cache);
    list_skills(&skillsync_cxone::connect(&settings).unwrap())
        .await
        .unwrap();
    // The tenant revoked the token: it no longer knows it.
    cache.replace_cached_token("sim.revoked0000000000000000000000000");

    let next = skillsync_cxone::connect(&settings).unwrap();
    list_skills(&next).await.unwrap();
    assert_eq!(sim.stats().await["tokensIssued"], 2);
    assert_eq!(
        sorted(sim.answered("GET", "/api/v2/routing/skills").await),
        vec![(200, 2), (401, 1)]
    );
    assert_ne!(cache.cached_token(), "sim.revoked0000000000000000000000000");
}

#[tokio::test]
async fn a_403_to_the_token_fetched_after_a_refused_cached_one_is_reported_not_retried() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let cache = CacheDir::new("scope");
    let mut settings = cached_settings(&sim, &cache);
    settings.scopes = vec!["routing:skills:read".into()];
    list_skills(&skillsync_cxone::connect(&settings).unwrap())
        .await
        .unwrap();

    let next = skillsync_cxone::connect(&settings).unwrap();
    let new = skillsync_cxone::NewDefinition {
        kind: Kind::Skill,
        name: "Scope_Probe".into(),
        locale: skillsync_core::Locale::parse("en-us").unwrap(),
        description: String::new(),
        routing_profile_id: "irrelevant".into(),
    };
    let error = next.create_definition(&new).await.unwrap_err();
    match &error {
        Error::MissingScope { scope, .. } => assert_eq!(scope, "routing:skills:write"),
        other => panic!("expected MissingScope, got {other:?}"),
    }
    assert_eq!(
        sim.answered("POST", "/api/v2/routing/skills").await,
        vec![(403, 2)],
        "the cached token's 403 costs one new token; the new token's 403 is final"
    );
    assert_eq!(sim.stats().await["tokensIssued"], 2);
}

#[tokio::test]
async fn clients_started_together_on_an_empty_cache_fetch_one_token() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let cache = CacheDir::new("together");
    let settings = cached_settings(&sim, &cache);
    let clients: Vec<_> = (0..6)
        .map(|_| skillsync_cxone::connect(&settings).unwrap())
        .collect();
    for result in join_all(clients.iter().map(list_skills)).await {
        assert!(result.unwrap() > 0);
    }
    assert_eq!(sim.stats().await["tokensIssued"], 1);
    let fetches: u64 = clients.iter().map(|c| c.counters().token_fetches).sum();
    assert_eq!(fetches, 1);
}

#[tokio::test]
async fn a_token_cached_with_one_secret_is_never_used_with_another() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let cache = CacheDir::new("secret");
    let settings = cached_settings(&sim, &cache);
    list_skills(&skillsync_cxone::connect(&settings).unwrap())
        .await
        .unwrap();

    let mut wrong = settings.clone();
    wrong.client_secret = skillsync_cxone::Secret::new("not-the-secret");
    let error = list_skills(&skillsync_cxone::connect(&wrong).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Auth { code, .. } if code == "invalid_client"),
        "{error:?}"
    );
    assert_eq!(
        sim.answered("POST", "/api/v2/oauth/token").await,
        vec![(200, 1), (401, 1)]
    );
    for entry in std::fs::read_dir(&cache.0).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for secret in ["not-the-secret", skillsync_sim::DEMO_CLIENT_SECRET] {
            assert!(!name.contains(secret) && !text.contains(secret), "{name}");
        }
    }

    // The right secret still finds its token.
    let again = skillsync_cxone::connect(&settings).unwrap();
    list_skills(&again).await.unwrap();
    assert_eq!(again.counters().token_fetches, 0);
    assert_eq!(sim.stats().await["tokensIssued"], 1);
}

/// Issue 13: at a slow rate limit, requests wait in the client's limiter longer than their
/// token has left. A token that came due for refresh while its request waited is renewed
/// before the request is sent, so the tenant never answers 401 for an expired token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_wait_in_the_limiter_past_their_tokens_life_carry_a_fresh_one() {
    let sim = common::start(
        Knobs {
            token_ttl: std::time::Duration::from_secs(6),
            ..Knobs::quiet()
        },
        10,
    )
    .await;
    let mut settings = sim.settings();
    // One request a second: the ninth waits about eight seconds, past the token's six.
    settings.requests_per_second = 1.0;
    settings.burst = 1;
    settings.max_in_flight = 16;
    let api = skillsync_cxone::connect(&settings).unwrap();
    let calls = (0..9).map(|_| list_skills(&api));
    for result in join_all(calls).await {
        result.unwrap();
    }
    let stats = sim.stats().await;
    let refused: Vec<_> = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 401)
        .collect();
    assert!(refused.is_empty(), "expired tokens were sent: {refused:?}");
}

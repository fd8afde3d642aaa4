//! Writes: idempotent creates under faults, and stale versions coming back as typed conflicts
//! in both dialects and in bulk.

mod common;

use std::collections::HashMap;

use futures::StreamExt;
use futures::stream;
use serde_json::json;
use skillsync_core::{Assignment, DefinitionId, Kind, Level, Locale, UserId, Version};
use skillsync_cxone::{Dialect, EntryOutcome, Error, LastAttempt, NewDefinition, UserWrite};
use skillsync_sim::Knobs;

fn hostile() -> Knobs {
    Knobs {
        fault_rate: 0.1,
        fault_after_commit_rate: 0.1,
        drop_rate: 0.05,
        ..Knobs::quiet()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensuring_200_definitions_twice_under_faults_creates_exactly_200() {
    let sim = common::start(hostile(), 10).await;
    let profile = sim.state().await["profiles"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut settings = sim.settings();
    settings.retry.base_delay = std::time::Duration::from_millis(5);
    // What is under test is that no retry duplicates a definition, not the retry budget: with
    // one attempt in seven failing, six attempts run out about once in a hundred runs of this
    // test's thousand-odd requests.
    settings.retry.max_attempts = 12;
    let api = skillsync_cxone::connect(&settings).unwrap();
    let wanted: Vec<NewDefinition> = (0..200)
        .map(|i| NewDefinition {
            kind: if i % 2 == 0 {
                Kind::Skill
            } else {
                Kind::Proficiency
            },
            name: format!("Ensured_{i:03}"),
            locale: Locale::parse(if i % 3 == 0 { "de-de" } else { "en-us" }).unwrap(),
            description: "made by the idempotency test".into(),
            routing_profile_id: profile.clone(),
        })
        .collect();
    for round in 1..=2 {
        let results: Vec<_> = stream::iter(&wanted)
            .map(|new| api.ensure_definition(new))
            .buffer_unordered(8)
            .collect()
            .await;
        for result in results {
            let ensured = result.unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(
                ensured.duplicates.is_empty(),
                "round {round}: duplicates {:?}",
                ensured.duplicates
            );
            if round == 2 {
                assert!(
                    !ensured.created,
                    "the second round must find every definition"
                );
            }
        }
    }
    let state = sim.state().await;
    let mut made: HashMap<(String, String), usize> = HashMap::new();
    for kind in ["skills", "proficiencies"] {
        for d in state[kind].as_array().unwrap() {
            let name = d["name"].as_str().unwrap();
            if name.starts_with("Ensured_") {
                *made
                    .entry((name.to_string(), d["locale"].as_str().unwrap().to_string()))
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(made.len(), 200, "every definition exists");
    assert!(
        made.values().all(|n| *n == 1),
        "no name+locale exists twice"
    );
    let stats = sim.stats().await;
    assert_eq!(stats["duplicatesCreated"], 0);
    assert!(
        stats["faultsAfterCommit"].as_u64().unwrap() > 0,
        "the test must have met faults after commit"
    );
}

fn skill(id: &str, level: i64) -> Assignment {
    Assignment {
        definition: DefinitionId(id.to_string()),
        level: Level::new(level).unwrap(),
        active: true,
    }
}

async fn user_and_skill(sim: &common::Sim) -> (UserId, String) {
    let state = sim.state().await;
    let user = state["users"][0]["id"].as_str().unwrap().to_string();
    let skill = state["skills"][0]["id"].as_str().unwrap().to_string();
    (UserId(user), skill)
}

#[tokio::test]
async fn a_stale_version_is_a_typed_conflict_in_the_routing_dialect() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let (user, skill_id) = user_and_skill(&sim).await;
    let api = skillsync_cxone::connect(&sim.settings()).unwrap();
    let read = api.user(&user).await.unwrap();
    let write = UserWrite {
        user_id: user.clone(),
        version: read.version,
        skills: Some(vec![skill(&skill_id, 3)]),
        proficiencies: None,
        as_read: None,
    };
    let new_version = api.write_user(&write).await.unwrap();
    assert!(new_version > read.version);
    let error = api.write_user(&write).await.unwrap_err();
    assert!(
        matches!(error, Error::Conflict { expected: Some(v), .. } if v == read.version),
        "{error:?}"
    );
    assert_eq!(api.counters().conflicts, 1);
}

#[tokio::test]
async fn a_stale_version_is_a_typed_conflict_in_the_users_dialect() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let (user, skill_id) = user_and_skill(&sim).await;
    let mut settings = sim.settings();
    settings.dialect = Dialect::Users;
    let api = skillsync_cxone::connect(&settings).unwrap();
    assert_eq!(api.capabilities().max_bulk_entries, None);
    let read = api.user(&user).await.unwrap();
    let write = UserWrite {
        user_id: user.clone(),
        version: read.version,
        skills: Some(vec![skill(&skill_id, 4)]),
        proficiencies: None,
        as_read: None,
    };
    api.write_user(&write).await.unwrap();
    let error = api.write_user(&write).await.unwrap_err();
    assert!(matches!(error, Error::Conflict { .. }), "{error:?}");
    assert_eq!(
        sim.answered("PUT", "/api/v2/users/{userId}").await,
        vec![(200, 1), (409, 1)]
    );
}

#[tokio::test]
async fn a_stale_version_in_one_bulk_entry_is_a_typed_conflict_for_that_entry_only() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let state = sim.state().await;
    let skill_id = state["skills"][0]["id"].as_str().unwrap().to_string();
    let ids = sim.user_ids(3).await;
    let api = skillsync_cxone::connect(&sim.settings()).unwrap();
    let mut writes = Vec::new();
    for id in &ids {
        let read = api.user(&UserId(id.clone())).await.unwrap();
        writes.push(UserWrite {
            user_id: read.user_id,
            version: read.version,
            skills: Some(vec![skill(&skill_id, 6)]),
            proficiencies: None,
            as_read: None,
        });
    }
    writes[1].version = Version(writes[1].version.0 + 7);
    let outcomes = api.write_users(&writes).await.unwrap();
    assert!(matches!(outcomes[0], EntryOutcome::Applied(_)));
    assert_eq!(outcomes[1], EntryOutcome::Conflict);
    assert!(matches!(outcomes[2], EntryOutcome::Applied(_)));
}

#[tokio::test]
async fn a_rejected_write_is_not_retried_and_names_the_field() {
    let sim = common::start(Knobs::quiet(), 10).await;
    let (user, _) = user_and_skill(&sim).await;
    let api = skillsync_cxone::connect(&sim.settings()).unwrap();
    let read = api.user(&user).await.unwrap();
    let write = UserWrite {
        user_id: user,
        version: read.version,
        skills: Some(vec![skill("no-such-skill", 5)]),
        proficiencies: None,
        as_read: None,
    };
    let error = api.write_user(&write).await.unwrap_err();
    match &error {
        Error::Rejected {
            status: 400,
            details,
            ..
        } => assert_eq!(details[0].field, "skills[0].id"),
        other => panic!("expected a 400 rejection, got {other:?}"),
    }
    assert_eq!(
        sim.answered("PUT", "/api/v2/routing/users/{userId}").await,
        vec![(400, 1)]
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_the_call_succeeds() {
    let sim = common::start(Knobs::quiet(), 10).await;
    sim.set_knobs(json!({ "faultRate": 0.5 })).await;
    let mut settings = sim.settings();
    settings.retry.base_delay = std::time::Duration::from_millis(2);
    settings.retry.max_attempts = 30;
    let api = skillsync_cxone::connect(&settings).unwrap();
    let ids = sim.user_ids(10).await;
    for id in ids {
        api.user(&UserId(id))
            .await
            .expect("retried through the faults");
    }
    let counters = api.counters();
    assert!(counters.retries > 0);
    assert_eq!(
        counters.retries,
        sim.stats().await["faultsBeforeCommit"].as_u64().unwrap(),
        "one retry per fault, no more"
    );
}

#[tokio::test]
async fn a_tenant_that_stays_down_gives_up_within_the_policy() {
    let sim = common::start(Knobs::quiet(), 10).await;
    sim.set_knobs(json!({ "faultRate": 1.0 })).await;
    let mut settings = sim.settings();
    settings.retry.base_delay = std::time::Duration::from_millis(1);
    settings.retry.max_attempts = 4;
    let api = skillsync_cxone::connect(&settings).unwrap();
    let (user, _) = user_and_skill(&sim).await;
    let error = api.user(&user).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Unavailable {
                attempts: 4,
                last: LastAttempt::Status {
                    status: 500..=599,
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
}

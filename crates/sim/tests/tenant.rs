//! SPEC 1.6, tenant contents: generated tenants are deterministic and follow their options,
//! fixtures round-trip through `/sim/state`, bad fixtures are refused by name, and
//! `POST /sim/reset` restores the initial tenant.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{TempDir, TestSim};
use serde_json::{Value, json};
use skillsync_sim::{GenerateOptions, SimConfig, SimError, TenantSource};

fn options(seed: u64) -> GenerateOptions {
    GenerateOptions {
        agents: 30,
        skills: 5,
        proficiencies: 3,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 3,
        seed,
    }
}

async fn generated(options: GenerateOptions) -> TestSim {
    common::start_with(SimConfig::quiet(TenantSource::Generated(options))).await
}

fn list<'a>(state: &'a Value, key: &str) -> &'a Vec<Value> {
    state[key].as_array().unwrap()
}

fn has_prefix(d: &Value, prefix: &str) -> bool {
    d["name"].as_str().unwrap().starts_with(prefix)
}

#[tokio::test]
async fn the_same_options_and_seed_serve_identical_state() {
    let one = generated(options(42)).await;
    let two = generated(options(42)).await;
    let state = one.state().await;
    assert_eq!(list(&state, "users").len(), 30);
    assert_eq!(state, two.state().await);
}

#[tokio::test]
async fn a_different_seed_serves_a_different_tenant() {
    let one = generated(options(42)).await;
    let two = generated(options(43)).await;
    let (a, b) = (one.state().await, two.state().await);
    assert_ne!(a, b);
    // Not only different ids: different people and assignments.
    let emails = |s: &Value| -> Vec<Value> {
        list(s, "users")
            .iter()
            .map(|u| u["email"].clone())
            .collect()
    };
    assert_ne!(emails(&a), emails(&b));
}

#[tokio::test]
async fn generated_counts_follow_the_options() {
    let locales = ["en-us", "de-de", "fr-fr"];
    let sim = generated(GenerateOptions {
        agents: 17,
        skills: 6,
        proficiencies: 4,
        locales: locales.iter().map(|l| l.to_string()).collect(),
        profiles: 5,
        seed: 9,
    })
    .await;
    let state = sim.state().await;
    assert_eq!(list(&state, "users").len(), 17);
    assert_eq!(list(&state, "profiles").len(), 5);

    for (kind, wanted) in [("skills", 6), ("proficiencies", 4)] {
        let definitions = list(&state, kind);
        let names: BTreeSet<&str> = definitions
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        let ext = names
            .iter()
            .filter(|n| n.starts_with(skillsync_sim::OWNED_PREFIX))
            .count();
        assert!(ext > 0, "generated tenants include Ext_ {kind}");
        assert_eq!(names.len() - ext, wanted, "{kind}: {names:?}");
        // Each name exists exactly once per locale.
        assert_eq!(definitions.len(), (wanted + ext) * locales.len(), "{kind}");
        let mut per_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for d in definitions {
            per_name
                .entry(d["name"].as_str().unwrap())
                .or_default()
                .push(d["locale"].as_str().unwrap());
        }
        for (name, mut in_locales) in per_name {
            in_locales.sort();
            let mut expected = locales.to_vec();
            expected.sort();
            assert_eq!(in_locales, expected, "{kind} {name}");
        }
    }

    for user in list(&state, "users") {
        assert!(
            locales.contains(&user["locale"].as_str().unwrap()),
            "{user}"
        );
    }

    // Every non-Ext skill has one production queue; some of them also a test queue.
    let skills: BTreeMap<&str, &Value> = list(&state, "skills")
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d))
        .collect();
    let queues = list(&state, "queues");
    let mut tested = 0;
    for skill in skills
        .values()
        .filter(|d| !has_prefix(d, skillsync_sim::OWNED_PREFIX))
    {
        let of_skill: Vec<&Value> = queues
            .iter()
            .filter(|q| q["skillId"] == skill["id"])
            .collect();
        let name = |prefix: &str| {
            format!(
                "{prefix}_{}_{}",
                skill["name"].as_str().unwrap(),
                skill["locale"].as_str().unwrap()
            )
        };
        let production: Vec<_> = of_skill
            .iter()
            .filter(|q| q["production"] == true)
            .collect();
        assert_eq!(production.len(), 1, "{skill}");
        assert_eq!(production[0]["name"], name("Q"));
        let test: Vec<_> = of_skill
            .iter()
            .filter(|q| q["production"] == false)
            .collect();
        assert!(test.len() <= 1, "{skill}");
        if let Some(queue) = test.first() {
            assert_eq!(queue["name"], name("Test"));
            tested += 1;
        }
    }
    let plain = skills
        .values()
        .filter(|d| !has_prefix(d, skillsync_sim::OWNED_PREFIX))
        .count();
    assert!(
        tested > 0 && tested < plain,
        "{tested} of {plain} skills have a test queue"
    );
    assert_eq!(queues.len(), plain + tested);
}

#[tokio::test]
async fn a_fixture_written_from_state_serves_the_same_state() {
    let first = common::start().await;
    let token = first.token().await;
    // Make the state differ from anything a generator makes: a changed user and a new skill.
    let state = first.state().await;
    let cxone_at_start = state["cxone"].clone();
    let user = &list(&state, "users")[0];
    let answer = first
        .put(
            &format!("/api/v2/routing/users/{}", user["id"].as_str().unwrap()),
            &token,
            json!({ "skills": [] }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = first
        .post(
            "/api/v2/routing/skills",
            &token,
            json!({
                "name": "Fixture_Only",
                "locale": "en-us",
                "active": false,
                "description": "round trip",
                "routingProfileId": list(&state, "profiles")[0]["id"],
            }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let mut state = first.state().await;
    // The CXone dialect's tenant is its own: writes to the others do not reach it...
    assert_eq!(state["cxone"], cxone_at_start);

    let dir = TempDir::new("fixture");
    let path = dir.0.join("tenant.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    let second = common::start_with(SimConfig::quiet(TenantSource::Fixture(path))).await;
    let mut served = second.state().await;
    // ...and a fixture's is built from the rest of the document, whatever its `cxone` says.
    let doc: skillsync_sim::TenantDoc = serde_json::from_value(state.clone()).unwrap();
    let rebuilt = skillsync_sim::cxone::CxoneTenant::from_doc(&doc).to_json();
    assert_eq!(served["cxone"], rebuilt);
    assert_ne!(
        rebuilt, cxone_at_start,
        "the new skill and the changed user are in it"
    );
    served.as_object_mut().unwrap().remove("cxone");
    state.as_object_mut().unwrap().remove("cxone");
    assert_eq!(served, state);
    // And it serves it through the API too.
    let token = second.token().await;
    let found = second
        .get(
            "/api/v2/routing/skills?name=Fixture_Only&locale=en-us",
            &token,
        )
        .await;
    assert_eq!(found.body["total"], 1, "{}", found.body);
    assert_eq!(found.body["entities"][0]["active"], false);
}

/// Starts a simulator from a fixture file and returns its start-up error.
async fn refused(path: &Path) -> SimError {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match skillsync_sim::Simulator::new(
        listener,
        SimConfig::quiet(TenantSource::Fixture(path.to_path_buf())),
    ) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_fixture_with_a_dangling_reference_fails_to_start_naming_it() {
    let sim = common::start().await;
    let state = sim.state().await;
    let dir = TempDir::new("dangling");
    let missing = "00000000-dead-4bad-8000-000000000000";
    let user_id = list(&state, "users")[0]["id"].as_str().unwrap().to_string();
    let skill_id = list(&state, "skills")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let profile_id = list(&state, "profiles")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let queue_id = list(&state, "queues")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    type Break = fn(&mut Value, &str);
    let cases: [(&str, Break, &str); 5] = [
        (
            "user skill",
            |s, m| s["users"][0]["skills"] = json!([{ "id": m, "level": 3, "active": true }]),
            &user_id,
        ),
        (
            "user proficiency",
            |s, m| s["users"][0]["proficiencies"] = json!([{ "id": m, "level": 3 }]),
            &user_id,
        ),
        (
            "user profile",
            |s, m| s["users"][0]["routingProfileId"] = json!(m),
            &user_id,
        ),
        (
            "definition profile",
            |s, m| s["skills"][0]["routingProfileId"] = json!(m),
            &skill_id,
        ),
        (
            "profile skill",
            |s, m| s["profiles"][0]["skills"] = json!([m]),
            &profile_id,
        ),
    ];
    for (what, mut_state, owner) in cases {
        let mut broken = state.clone();
        mut_state(&mut broken, missing);
        let path = dir.0.join(format!("{}.json", what.replace(' ', "-")));
        std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
        let error = refused(&path).await;
        let SimError::InvalidTenant(problem) = &error else {
            panic!("{what}: not an invalid tenant: {error:?}");
        };
        match problem.as_ref() {
            SimError::UnknownDefinition { owner: o, id, .. } => {
                assert!(o.contains(owner) && id == missing, "{what}: {problem:?}")
            }
            SimError::UnknownProfile { owner: o, profile } => {
                assert!(
                    o.contains(owner) && profile == missing,
                    "{what}: {problem:?}"
                )
            }
            other => panic!("{what}: {other:?}"),
        }
        // What a user reads names both.
        let shown = common::chain(&error);
        assert!(shown.contains(missing), "{what}: {shown}");
        assert!(shown.contains(owner), "{what}: {shown}");
    }

    let mut broken = state.clone();
    broken["queues"][0]["skillId"] = json!(missing);
    let path = dir.0.join("queue.json");
    std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
    let error = common::chain(&refused(&path).await);
    assert!(
        error.contains(missing) && error.contains(&queue_id),
        "{error}"
    );
}

#[tokio::test]
async fn a_fixture_that_is_not_a_tenant_fails_to_start_naming_the_file() {
    let dir = TempDir::new("garbage");
    let path = dir.0.join("not-a-tenant.json");
    std::fs::write(&path, "{ this is not json").unwrap();
    let error = refused(&path).await;
    assert!(
        matches!(&error, SimError::ParseFixture { path: p, .. } if p == &path),
        "{error:?}"
    );
    assert!(
        std::error::Error::source(&error).is_some(),
        "serde's reason is the source"
    );
    assert!(
        common::chain(&error).contains("not-a-tenant.json"),
        "{error}"
    );
    let absent = dir.0.join("absent.json");
    let error = refused(&absent).await;
    assert!(
        matches!(&error, SimError::ReadFixture { path: p, source }
            if p == &absent && source.kind() == std::io::ErrorKind::NotFound),
        "{error:?}"
    );
    assert!(common::chain(&error).contains("absent.json"), "{error}");
}

#[tokio::test]
async fn reset_restores_the_initial_tenant_and_zeroes_stats() {
    let sim = common::start().await;
    let initial = sim.state().await;
    let token = sim.token().await;
    let skill = json!({
        "name": "Made_Before_Reset",
        "locale": "en-us",
        "active": true,
        "description": "gone after reset",
        "routingProfileId": list(&initial, "profiles")[0]["id"],
    });
    for _ in 0..2 {
        let answer = sim
            .post("/api/v2/routing/skills", &token, skill.clone())
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    let user = list(&initial, "users")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = sim
        .put(
            &format!("/api/v2/routing/users/{user}"),
            &token,
            json!({ "skills": [] }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let before = sim.stats().await;
    assert_eq!(before["duplicatesCreated"], 1);
    assert!(before["cacheRebuilds"].as_u64().unwrap() >= 1);
    assert!(before["totalRequests"].as_u64().unwrap() >= 3);
    assert_ne!(sim.state().await, initial);

    let response = sim.http.post(sim.url("/sim/reset")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sim.state().await, initial);
    let after = sim.stats().await;
    for counter in [
        "totalRequests",
        "throttled",
        "cacheRebuilds",
        "duplicatesCreated",
        "faultsBeforeCommit",
        "faultsAfterCommit",
        "droppedConnections",
        "otherWriterWrites",
    ] {
        assert_eq!(after[counter], 0, "{counter}: {after}");
    }
    assert_eq!(after["requests"], json!([]));
    // The restored tenant serves: the user has its skills back.
    let token = sim.token().await;
    let back = sim
        .get(&format!("/api/v2/routing/users/{user}"), &token)
        .await;
    assert_eq!(back.status, 200);
    assert_eq!(back.body["skills"], list(&initial, "users")[0]["skills"]);
}

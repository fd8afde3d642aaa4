//! Routing strategies (docs/sim-strategies.md): list, get and update, and the third kind of
//! reference that blocks a proficiency's delete (source document: users, routing profiles and
//! routing strategies).

mod common;

use common::{detail_fields, etag, version_of};

use reqwest::Method;
use serde_json::{Value, json};
use skillsync_sim::{Extras, GenerateOptions, SimConfig, TenantDoc, TenantSource};

const STRATEGIES: &str = "/api/v2/routing/strategies";
const PROFICIENCIES: &str = "/api/v2/routing/proficiencies";

fn options() -> GenerateOptions {
    GenerateOptions {
        agents: 20,
        skills: 4,
        proficiencies: 3,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 2,
        seed: 7,
    }
}

/// A generated tenant with three strategies.
fn with_strategies() -> TenantDoc {
    skillsync_sim::generate_with(&options(), &Extras { strategies: 3 })
}

async fn start(doc: TenantDoc) -> common::TestSim {
    common::start_with(SimConfig::quiet(TenantSource::Doc(Box::new(doc)))).await
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn strategies_are_listed_filtered_by_proficiency_and_read_with_their_etag() {
    let doc = with_strategies();
    let sim = start(doc.clone()).await;
    let token = sim.token().await;

    let all = sim.get(STRATEGIES, &token).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["total"], 3, "{}", all.body);
    let names: Vec<&str> = all.body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Strategy_1", "Strategy_2", "Strategy_3"]);

    let wanted = doc.strategies[0].proficiencies[0].clone();
    let expected: Vec<&str> = doc
        .strategies
        .iter()
        .filter(|s| s.proficiencies.contains(&wanted))
        .map(|s| s.id.as_str())
        .collect();
    let filtered = sim
        .get(&format!("{STRATEGIES}?proficiencyId={wanted}"), &token)
        .await;
    assert_eq!(filtered.status, 200);
    let found: Vec<&str> = filtered.body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, expected);

    let one = sim
        .get(&format!("{STRATEGIES}/{}", doc.strategies[1].id), &token)
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.header("etag"), Some(etag(1)));
    assert_eq!(
        ids(&one.body["proficiencies"]),
        doc.strategies[1].proficiencies
    );
    assert_eq!(
        sim.get(&format!("{STRATEGIES}/no-such-strategy"), &token)
            .await
            .status,
        404
    );

    // Reading needs its own scope.
    let profiles_only = sim.token_with_scope(Some("routing:profiles:read")).await;
    let refused = sim.get(STRATEGIES, &profiles_only).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["scope"], "routing:strategies:read");
}

#[tokio::test]
async fn a_put_replaces_the_list_honours_if_match_and_names_every_bad_id() {
    let doc = with_strategies();
    let sim = start(doc.clone()).await;
    let token = sim.token().await;
    let strategy = &doc.strategies[0];
    let path = format!("{STRATEGIES}/{}", strategy.id);
    let skill = doc.skills[0].id.clone();
    let proficiency = doc.proficiencies[0].id.clone();

    let bad = sim
        .put(
            &path,
            &token,
            json!({ "proficiencies": [skill, proficiency, proficiency, "nope"] }),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(
        detail_fields(&bad.body),
        ["proficiencies[0]", "proficiencies[2]", "proficiencies[3]"],
        "a skill id, a repeat and an unknown id: {}",
        bad.body
    );

    let stale = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "proficiencies": [] })),
            &[("If-Match", &etag(7))],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.body);

    let written = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "proficiencies": [proficiency] })),
            &[("If-Match", &etag(1))],
        )
        .await;
    assert_eq!(written.status, 200, "{}", written.body);
    assert_eq!(version_of(&written.body), 2);
    assert_eq!(written.header("etag"), Some(etag(2)));
    assert_eq!(
        ids(&written.body["proficiencies"]),
        std::slice::from_ref(&proficiency)
    );

    // An absent list stays as it is.
    let untouched = sim.put(&path, &token, json!({})).await;
    assert_eq!(untouched.status, 200);
    assert_eq!(ids(&untouched.body["proficiencies"]), [proficiency]);
    let state = sim.state().await;
    assert_eq!(
        state["strategies"][0]["version"], 3,
        "{}",
        state["strategies"]
    );
}

#[tokio::test]
async fn a_proficiency_a_strategy_references_cannot_be_deleted_until_the_strategy_lets_go() {
    // Only strategies reference this proficiency: no user holds it, no profile lists it.
    let mut doc = with_strategies();
    let target = doc.strategies[0].proficiencies[0].clone();
    for user in &mut doc.users {
        user.proficiencies.retain(|a| a.id != target);
    }
    for profile in &mut doc.profiles {
        profile.proficiencies.retain(|p| *p != target);
    }
    let holders: Vec<(String, String, Vec<String>)> = doc
        .strategies
        .iter()
        .filter(|s| s.proficiencies.contains(&target))
        .map(|s| (s.id.clone(), s.name.clone(), s.proficiencies.clone()))
        .collect();
    let sim = start(doc).await;
    let token = sim.token().await;
    let delete = || async {
        sim.call(
            Method::DELETE,
            &format!("{PROFICIENCIES}/{target}"),
            Some(&token),
            None,
            &[],
        )
        .await
    };

    let refused = delete().await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["code"], "REFERENCED");
    assert_eq!(
        refused.body["references"],
        json!({ "users": 0, "profiles": 0, "strategies": holders.len() })
    );
    let message = refused.body["message"].as_str().unwrap();
    for (_, name, _) in &holders {
        assert!(message.contains(name.as_str()), "names {name}: {message}");
    }
    assert_eq!(
        sim.get(&format!("{PROFICIENCIES}/{target}"), &token)
            .await
            .status,
        200,
        "still there"
    );

    // Soft retirement is not blocked.
    let definition = sim
        .get(&format!("{PROFICIENCIES}/{target}"), &token)
        .await
        .body;
    let mut inactive = definition.clone();
    inactive["active"] = json!(false);
    let soft = sim
        .put(&format!("{PROFICIENCIES}/{target}"), &token, inactive)
        .await;
    assert_eq!(soft.status, 200, "{}", soft.body);

    for (id, _, list) in &holders {
        let kept: Vec<&String> = list.iter().filter(|p| **p != target).collect();
        let stripped = sim
            .put(
                &format!("{STRATEGIES}/{id}"),
                &token,
                json!({ "proficiencies": kept }),
            )
            .await;
        assert_eq!(stripped.status, 200, "{}", stripped.body);
    }
    assert_eq!(delete().await.status, 204);
    assert_eq!(
        sim.get(&format!("{PROFICIENCIES}/{target}"), &token)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn tenants_generated_without_strategies_show_none() {
    let sim = start(skillsync_sim::generate(&options())).await;
    let state = sim.state().await;
    assert!(
        state.get("strategies").is_none(),
        "the state document is what it was: {:?}",
        state.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    let token = sim.token().await;
    let listed = sim.get(STRATEGIES, &token).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["total"], 0);
    // A refusal no strategy causes answers as it always did: no `strategies` count.
    let skill = common::users(&state)
        .iter()
        .find_map(|u| u["skills"].as_array().and_then(|s| s.first()))
        .map(|a| a["id"].as_str().unwrap().to_string())
        .expect("someone holds a skill");
    let refused = sim
        .call(
            Method::DELETE,
            &format!("/api/v2/routing/skills/{skill}"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused.body["references"].get("strategies").is_none(),
        "{}",
        refused.body
    );
}

//! SPEC 1.5: the users dialect, `/users/{id}` with `skills.proficiencies`, a second view of the
//! same tenant data as `/routing/users` that reports conflicts as 409.

mod common;

use common::{a_skill_not_held, detail_fields, id_of, user_in, users};

use reqwest::Method;
use serde_json::{Value, json};

const USERS: &str = "/api/v2/users";
const ROUTING_USERS: &str = "/api/v2/routing/users";

/// A user holding at least two skills and a proficiency.
fn a_skilled_user(state: &Value) -> Value {
    users(state)
        .iter()
        .find(|u| {
            u["skills"].as_array().unwrap().len() >= 2
                && !u["proficiencies"].as_array().unwrap().is_empty()
        })
        .expect("a user with two skills and a proficiency")
        .clone()
}

/// The routing dialect's skills as the users dialect spells them.
fn as_users_dialect(skills: &Value) -> Value {
    Value::Array(
        skills
            .as_array()
            .unwrap()
            .iter()
            .map(|a| json!({ "skill": a["id"], "level": a["level"] }))
            .collect(),
    )
}

#[tokio::test]
async fn users_dialect_shows_the_same_skills_as_the_routing_dialect() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    for user in users(&state) {
        let id = id_of(user);
        let mine = sim.get(&format!("{USERS}/{id}"), &token).await;
        let routing = sim.get(&format!("{ROUTING_USERS}/{id}"), &token).await;
        assert_eq!(mine.status, 200);
        assert_eq!(mine.body["id"], user["id"]);
        assert_eq!(mine.body["firstName"], user["firstName"]);
        assert_eq!(mine.body["lastName"], user["lastName"]);
        assert_eq!(mine.body["email"], user["email"]);
        assert_eq!(
            mine.body["skills"]["proficiencies"],
            as_users_dialect(&routing.body["skills"]),
            "user {id}"
        );
        assert_eq!(mine.body["version"], routing.body["version"]);
        assert_eq!(
            mine.header("etag"),
            Some(format!("\"{}\"", mine.body["version"]))
        );
    }
}

#[tokio::test]
async fn users_dialect_does_not_show_proficiency_assignments_as_skills() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = a_skilled_user(&state);
    let answer = sim.get(&format!("{USERS}/{}", id_of(&user)), &token).await;
    let shown: Vec<&Value> = answer.body["skills"]["proficiencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["skill"])
        .collect();
    for proficiency in user["proficiencies"].as_array().unwrap() {
        assert!(!shown.contains(&&proficiency["id"]), "{shown:?}");
    }
}

#[tokio::test]
async fn put_skills_proficiencies_replaces_the_skill_list_and_shows_through_routing_users() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = a_skilled_user(&state);
    let id = id_of(&user);
    let kept = user["skills"][0]["id"].clone();
    let added = a_skill_not_held(&state, &user);
    let body = json!({ "skills": { "proficiencies": [
        { "skill": kept, "level": 2 },
        { "skill": added, "level": 8 },
    ] } });
    let answer = sim.put(&format!("{USERS}/{id}"), &token, body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["version"], 2);
    assert_eq!(answer.header("etag").as_deref(), Some("\"2\""));

    let routing = sim.get(&format!("{ROUTING_USERS}/{id}"), &token).await;
    assert_eq!(
        routing.body["skills"],
        json!([
            { "id": kept, "level": 2, "active": true },
            { "id": added, "level": 8, "active": true },
        ])
    );
    assert_eq!(
        routing.body["proficiencies"], user["proficiencies"],
        "proficiency assignments stay"
    );
    assert_eq!(routing.body["version"], 2);
    assert_eq!(routing.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(sim.stats().await["cacheRebuilds"], 1);
}

#[tokio::test]
async fn put_with_an_empty_proficiencies_list_removes_every_skill() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = a_skilled_user(&state);
    let id = id_of(&user);
    let answer = sim
        .put(
            &format!("{USERS}/{id}"),
            &token,
            json!({ "skills": { "proficiencies": [] } }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["skills"]["proficiencies"], json!([]));
    let after = sim.state().await;
    assert_eq!(user_in(&after, &id)["skills"], json!([]));
    assert_eq!(user_in(&after, &id)["proficiencies"], user["proficiencies"]);
}

#[tokio::test]
async fn put_without_skills_leaves_the_skill_list_alone() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = a_skilled_user(&state);
    let id = id_of(&user);
    let answer = sim
        .put(
            &format!("{USERS}/{id}"),
            &token,
            json!({ "firstName": "Renamed" }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["firstName"], "Renamed");
    assert_eq!(answer.body["lastName"], user["lastName"]);
    let after = sim.state().await;
    assert_eq!(user_in(&after, &id)["skills"], user["skills"]);
    assert_eq!(user_in(&after, &id)["firstName"], "Renamed");
    assert_eq!(sim.stats().await["cacheRebuilds"], 0);
}

#[tokio::test]
async fn stale_if_match_is_409_not_412_and_nothing_changes() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = a_skilled_user(&state);
    let id = id_of(&user);
    let read = sim.get(&format!("{USERS}/{id}"), &token).await;
    let etag = read.header("etag").unwrap();
    // A write through the routing dialect moves the shared version on.
    let moved = sim
        .put(
            &format!("{ROUTING_USERS}/{id}"),
            &token,
            json!({ "proficiencies": [] }),
        )
        .await;
    assert_eq!(moved.status, 200);
    let between = sim.state().await;

    let answer = sim
        .call(
            Method::PUT,
            &format!("{USERS}/{id}"),
            Some(&token),
            Some(json!({ "firstName": "Late", "skills": { "proficiencies": [] } })),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.body["status"], 409);
    let after = sim.state().await;
    assert_eq!(user_in(&after, &id), user_in(&between, &id));
    assert_eq!(user_in(&after, &id)["skills"], user["skills"]);
}

#[tokio::test]
async fn current_if_match_is_accepted() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = a_skilled_user(&state);
    let id = id_of(&user);
    let read = sim.get(&format!("{USERS}/{id}"), &token).await;
    let answer = sim
        .call(
            Method::PUT,
            &format!("{USERS}/{id}"),
            Some(&token),
            Some(json!({ "skills": { "proficiencies": [{ "skill": user["skills"][0]["id"], "level": 10 }] } })),
            &[("If-Match", &read.header("etag").unwrap())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body["skills"]["proficiencies"],
        json!([{ "skill": user["skills"][0]["id"], "level": 10 }])
    );
}

#[tokio::test]
async fn put_refuses_a_proficiency_id_or_bad_level_under_skills_proficiencies() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = a_skilled_user(&state);
    let id = id_of(&user);
    let proficiency = id_of(&state["proficiencies"][0]);
    let wrong_class = sim
        .put(
            &format!("{USERS}/{id}"),
            &token,
            json!({ "skills": { "proficiencies": [{ "skill": proficiency, "level": 3 }] } }),
        )
        .await;
    assert_eq!(wrong_class.status, 400, "{}", wrong_class.body);
    assert_eq!(
        detail_fields(&wrong_class.body),
        vec!["skills.proficiencies[0].skill"]
    );
    let bad_level = sim
        .put(
            &format!("{USERS}/{id}"),
            &token,
            json!({ "skills": { "proficiencies": [{ "skill": user["skills"][0]["id"], "level": 0 }] } }),
        )
        .await;
    assert_eq!(bad_level.status, 400, "{}", bad_level.body);
    assert_eq!(
        detail_fields(&bad_level.body),
        vec!["skills.proficiencies[0].level"]
    );
    assert_eq!(user_in(&sim.state().await, &id), user_in(&state, &id));
}

#[tokio::test]
async fn put_keeps_the_active_flag_of_an_existing_assignment() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = a_skilled_user(&state);
    let id = id_of(&user);
    let skill = user["skills"][0]["id"].clone();
    // Deactivate one assignment through the routing dialect, which can say so.
    let mut skills = user["skills"].as_array().unwrap().clone();
    skills[0]["active"] = json!(false);
    let put = sim
        .put(
            &format!("{ROUTING_USERS}/{id}"),
            &token,
            json!({ "skills": skills }),
        )
        .await;
    assert_eq!(put.status, 200);
    // The users dialect has no `active`; rewriting the level must not reactivate it.
    let answer = sim
        .put(
            &format!("{USERS}/{id}"),
            &token,
            json!({ "skills": { "proficiencies": [{ "skill": skill, "level": 6 }] } }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let routing = sim.get(&format!("{ROUTING_USERS}/{id}"), &token).await;
    assert_eq!(
        routing.body["skills"],
        json!([{ "id": skill, "level": 6, "active": false }])
    );
}

#[tokio::test]
async fn unknown_user_is_404_in_the_users_dialect() {
    let sim = common::start().await;
    let token = sim.token().await;
    let missing = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        sim.get(&format!("{USERS}/{missing}"), &token).await.status,
        404
    );
    let put = sim
        .put(
            &format!("{USERS}/{missing}"),
            &token,
            json!({ "skills": { "proficiencies": [] } }),
        )
        .await;
    assert_eq!(put.status, 404);
}

#[tokio::test]
async fn users_dialect_needs_admin_users_scopes_not_users_scopes() {
    let sim = common::start().await;
    let state = sim.state().await;
    let id = id_of(&users(&state)[0]);
    let routing_only = sim.token_with_scope(Some("users:read users:write")).await;
    for path in [USERS.to_string(), format!("{USERS}/{id}")] {
        let answer = sim.get(&path, &routing_only).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        assert_eq!(answer.body["code"], "insufficient_scope");
        assert!(
            answer.body.to_string().contains("admin:users:read"),
            "{}",
            answer.body
        );
    }
    let denied = sim
        .put(
            &format!("{USERS}/{id}"),
            &routing_only,
            json!({ "skills": { "proficiencies": [] } }),
        )
        .await;
    assert_eq!(denied.status, 403);
    assert!(
        denied.body.to_string().contains("admin:users:write"),
        "{}",
        denied.body
    );

    let reader = sim.token_with_scope(Some("admin:users:read")).await;
    assert_eq!(sim.get(&format!("{USERS}/{id}"), &reader).await.status, 200);
    let denied = sim
        .put(
            &format!("{USERS}/{id}"),
            &reader,
            json!({ "skills": { "proficiencies": [] } }),
        )
        .await;
    assert_eq!(denied.status, 403);
    assert!(
        denied.body.to_string().contains("admin:users:write"),
        "{}",
        denied.body
    );
    assert_eq!(user_in(&sim.state().await, &id), user_in(&state, &id));
}

#[tokio::test]
async fn users_list_pages_through_every_user_once() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let total = users(&state).len();
    let default_page = sim.get(USERS, &token).await;
    assert_eq!(default_page.status, 200);
    assert_eq!(default_page.body["page"], 1);
    assert_eq!(default_page.body["pageSize"], 100);
    assert_eq!(default_page.body["total"], total);
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let answer = sim
            .get(&format!("{USERS}?page={page}&pageSize=6"), &token)
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["total"], total);
        assert_eq!(answer.body["page"], page);
        assert_eq!(answer.body["pageSize"], 6);
        let entities = answer.body["entities"].as_array().unwrap();
        if entities.is_empty() {
            break;
        }
        assert!(entities.len() <= 6);
        for e in entities {
            assert!(e["skills"]["proficiencies"].is_array());
            assert!(e["version"].is_u64());
        }
        seen.extend(entities.iter().map(|e| e["id"].clone()));
        page += 1;
    }
    let expected: Vec<Value> = users(&state).iter().map(|u| u["id"].clone()).collect();
    assert_eq!(seen, expected);
    let too_big = sim.get(&format!("{USERS}?pageSize=501"), &token).await;
    assert_eq!(too_big.status, 400);
    assert_eq!(detail_fields(&too_big.body), vec!["pageSize"]);
}

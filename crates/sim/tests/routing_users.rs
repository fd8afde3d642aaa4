//! SPEC 1.3: a user's routing state, single PUTs with `If-Match`, the empty-list trap, and bulk.

mod common;

use common::{a_skill_not_held, detail_fields, id_of, user_in, users};

use reqwest::Method;
use serde_json::{Value, json};

const USERS: &str = "/api/v2/routing/users";
const BULK: &str = "/api/v2/routing/users/bulk";

/// Users that hold at least one skill and one proficiency.
fn well_equipped(state: &Value) -> Vec<Value> {
    users(state)
        .iter()
        .filter(|u| {
            !u["skills"].as_array().unwrap().is_empty()
                && !u["proficiencies"].as_array().unwrap().is_empty()
        })
        .cloned()
        .collect()
}

/// Sends a PUT that must be refused with 400, and checks the details and that nothing changed.
async fn expect_refused(sim: &common::TestSim, user_id: &str, body: Value, field: &str) {
    let token = sim.token().await;
    let before = sim.state().await;
    let answer = sim.put(&format!("{USERS}/{user_id}"), &token, body).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["code"], "VALIDATION_ERROR");
    assert_eq!(
        detail_fields(&answer.body),
        vec![field.to_string()],
        "{}",
        answer.body
    );
    let after = sim.state().await;
    assert_eq!(
        user_in(&after, user_id),
        user_in(&before, user_id),
        "a refused PUT changes nothing"
    );
}

#[tokio::test]
async fn get_user_sets_etag_to_the_quoted_body_version() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &users(&state)[0];
    let path = format!("{USERS}/{}", user["id"].as_str().unwrap());
    let answer = sim.get(&path, &token).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["userId"], user["id"]);
    assert_eq!(
        answer.body["routingProfile"]["id"],
        user["routingProfileId"]
    );
    assert_eq!(answer.body["skills"], user["skills"]);
    assert_eq!(answer.body["proficiencies"], user["proficiencies"]);
    assert!(answer.body["dateModified"].is_string());
    let version = answer.body["version"].as_u64().unwrap();
    assert_eq!(answer.header("etag"), Some(format!("\"{version}\"")));

    // After a write both move together.
    let put = sim
        .put(
            &path,
            &token,
            json!({ "proficiencies": user["proficiencies"] }),
        )
        .await;
    assert_eq!(put.status, 200);
    assert_eq!(put.body["version"], version + 1);
    assert_eq!(put.header("etag"), Some(format!("\"{}\"", version + 1)));
    let again = sim.get(&path, &token).await;
    assert_eq!(again.header("etag"), Some(format!("\"{}\"", version + 1)));
    assert_eq!(again.body["version"], version + 1);
}

#[tokio::test]
async fn get_unknown_user_is_404() {
    let sim = common::start().await;
    let token = sim.token().await;
    let answer = sim
        .get(
            &format!("{USERS}/00000000-0000-4000-8000-000000000000"),
            &token,
        )
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["status"], 404);
}

#[tokio::test]
async fn put_with_only_proficiencies_leaves_skills_untouched() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let id = user["id"].as_str().unwrap();
    let proficiency = user["proficiencies"][0]["id"].clone();
    let answer = sim
        .put(
            &format!("{USERS}/{id}"),
            &token,
            json!({ "proficiencies": [{ "id": proficiency, "level": 9, "active": true }] }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["skills"], user["skills"]);
    assert_eq!(
        answer.body["proficiencies"],
        json!([{ "id": proficiency, "level": 9, "active": true }])
    );
    let after = sim.state().await;
    let stored = user_in(&after, id);
    assert_eq!(stored["skills"], user["skills"]);
    assert_eq!(stored["proficiencies"].as_array().unwrap().len(), 1);
    assert_eq!(stored["routingProfileId"], user["routingProfileId"]);
}

#[tokio::test]
async fn put_with_only_skills_leaves_proficiencies_untouched() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let id = user["id"].as_str().unwrap();
    let skill = a_skill_not_held(&state, user);
    let answer = sim
        .put(
            &format!("{USERS}/{id}"),
            &token,
            json!({ "skills": [{ "id": skill, "level": 4 }] }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let after = sim.state().await;
    let stored = user_in(&after, id);
    assert_eq!(
        stored["skills"],
        json!([{ "id": skill, "level": 4, "active": true }])
    );
    assert_eq!(stored["proficiencies"], user["proficiencies"]);
}

#[tokio::test]
async fn empty_skills_list_removes_every_skill() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let id = user["id"].as_str().unwrap();
    let answer = sim
        .put(&format!("{USERS}/{id}"), &token, json!({ "skills": [] }))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["skills"], json!([]));
    let after = sim.state().await;
    let stored = user_in(&after, id);
    assert_eq!(stored["skills"], json!([]));
    assert_eq!(
        stored["proficiencies"], user["proficiencies"],
        "only the skills list was sent"
    );
    // The user is no longer found by any of its former skills.
    let former = user["skills"][0]["id"].as_str().unwrap();
    let holders = sim
        .get(&format!("{USERS}?skillId={former}&pageSize=500"), &token)
        .await;
    assert!(
        holders.body["entities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["userId"] != id)
    );
}

#[tokio::test]
async fn put_with_stale_if_match_is_412_and_nothing_changes() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let id = user["id"].as_str().unwrap();
    let path = format!("{USERS}/{id}");
    let read = sim.get(&path, &token).await;
    let etag = read.header("etag").unwrap();
    // Another writer gets in first.
    let first = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "proficiencies": [] })),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(first.status, 200);
    let between = sim.state().await;

    let late = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "skills": [] })),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(late.status, 412, "{}", late.body);
    let after = sim.state().await;
    assert_eq!(user_in(&after, id), user_in(&between, id));
    assert_eq!(user_in(&after, id)["skills"], user["skills"]);
}

#[tokio::test]
async fn put_with_current_if_match_applies_and_bumps_the_version() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let id = user["id"].as_str().unwrap();
    let path = format!("{USERS}/{id}");
    let read = sim.get(&path, &token).await;
    let version = read.body["version"].as_u64().unwrap();
    let mut skills = user["skills"].as_array().unwrap().clone();
    skills.push(json!({ "id": a_skill_not_held(&state, user), "level": 10, "active": true }));
    let answer = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "skills": skills })),
            &[("If-Match", &read.header("etag").unwrap())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["version"], version + 1);
    assert_eq!(user_in(&sim.state().await, id)["skills"], json!(skills));
}

#[tokio::test]
async fn put_with_an_unknown_skill_id_is_400_naming_the_entry() {
    let sim = common::start().await;
    let state = sim.state().await;
    let user = id_of(&well_equipped(&state)[0]);
    let body = json!({ "skills": [{ "id": "00000000-0000-4000-8000-000000000000", "level": 5 }] });
    expect_refused(&sim, &user, body, "skills[0].id").await;
}

#[tokio::test]
async fn put_with_an_unknown_proficiency_id_is_400_naming_the_entry() {
    let sim = common::start().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let known = user["proficiencies"][0]["id"].clone();
    let body = json!({ "proficiencies": [
        { "id": known, "level": 5 },
        { "id": "not-a-proficiency", "level": 5 },
    ] });
    expect_refused(&sim, &id_of(user), body, "proficiencies[1].id").await;
}

#[tokio::test]
async fn put_with_a_proficiency_id_under_skills_is_400_wrong_class() {
    let sim = common::start().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let proficiency = id_of(&state["proficiencies"][0]);
    let body = json!({ "skills": [{ "id": proficiency, "level": 5 }] });
    expect_refused(&sim, &id_of(user), body, "skills[0].id").await;
}

#[tokio::test]
async fn put_with_a_skill_id_under_proficiencies_is_400_wrong_class() {
    let sim = common::start().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let skill = id_of(&state["skills"][0]);
    let body = json!({ "proficiencies": [{ "id": skill, "level": 5 }] });
    expect_refused(&sim, &id_of(user), body, "proficiencies[0].id").await;
}

#[tokio::test]
async fn put_with_level_0_is_400_naming_the_level() {
    let sim = common::start().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let skill = user["skills"][0]["id"].clone();
    expect_refused(
        &sim,
        &id_of(user),
        json!({ "skills": [{ "id": skill, "level": 0 }] }),
        "skills[0].level",
    )
    .await;
}

#[tokio::test]
async fn put_with_level_11_is_400_naming_the_level() {
    let sim = common::start().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let skill = user["skills"][0]["id"].clone();
    expect_refused(
        &sim,
        &id_of(user),
        json!({ "skills": [{ "id": skill, "level": 11 }] }),
        "skills[0].level",
    )
    .await;
}

#[tokio::test]
async fn levels_1_and_10_are_accepted() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let held = user["skills"][0]["id"].clone();
    let other = a_skill_not_held(&state, user);
    let body = json!({ "skills": [{ "id": held, "level": 1 }, { "id": other, "level": 10 }] });
    let answer = sim
        .put(&format!("{USERS}/{}", id_of(user)), &token, body)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn put_with_a_repeated_id_is_400_naming_the_repeat() {
    let sim = common::start().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let skill = user["skills"][0]["id"].clone();
    let body = json!({ "skills": [{ "id": skill, "level": 3 }, { "id": skill, "level": 7 }] });
    expect_refused(&sim, &id_of(user), body, "skills[1].id").await;
}

#[tokio::test]
async fn put_on_an_unknown_user_is_404() {
    let sim = common::start().await;
    let token = sim.token().await;
    let answer = sim
        .put(
            &format!("{USERS}/00000000-0000-4000-8000-000000000000"),
            &token,
            json!({ "skills": [] }),
        )
        .await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn list_filter_by_skill_id_returns_exactly_the_users_holding_it() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let skill = well_equipped(&state)[0]["skills"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut expected: Vec<String> = users(&state)
        .iter()
        .filter(|u| {
            u["skills"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["id"] == skill)
        })
        .map(id_of)
        .collect();
    expected.sort();
    assert!(
        expected.len() < users(&state).len(),
        "the filter must exclude someone to mean anything"
    );
    let answer = sim
        .get(&format!("{USERS}?skillId={skill}&pageSize=500"), &token)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["total"], expected.len());
    let mut got: Vec<String> = answer.body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            assert!(u["version"].is_u64());
            u["userId"].as_str().unwrap().to_string()
        })
        .collect();
    got.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn list_filter_by_proficiency_id_returns_exactly_the_users_holding_it() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let proficiency = well_equipped(&state)[0]["proficiencies"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut expected: Vec<String> = users(&state)
        .iter()
        .filter(|u| {
            u["proficiencies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["id"] == proficiency)
        })
        .map(id_of)
        .collect();
    expected.sort();
    let answer = sim
        .get(
            &format!("{USERS}?proficiencyId={proficiency}&pageSize=500"),
            &token,
        )
        .await;
    let mut got: Vec<String> = answer.body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn list_pages_through_all_users_and_refuses_page_size_over_500() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let total = users(&state).len();
    let mut seen = Vec::new();
    for page in 1..=total.div_ceil(7) {
        let answer = sim
            .get(&format!("{USERS}?page={page}&pageSize=7"), &token)
            .await;
        assert_eq!(answer.body["total"], total);
        assert_eq!(answer.body["page"], page);
        assert_eq!(answer.body["pageSize"], 7);
        seen.extend(
            answer.body["entities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["userId"].clone()),
        );
    }
    let expected: Vec<Value> = users(&state).iter().map(|u| u["id"].clone()).collect();
    assert_eq!(seen, expected);
    let too_big = sim.get(&format!("{USERS}?pageSize=501"), &token).await;
    assert_eq!(too_big.status, 400);
    assert_eq!(detail_fields(&too_big.body), vec!["pageSize"]);
}

#[tokio::test]
async fn bulk_with_101_entries_is_400_and_applies_nothing() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = id_of(&users(&state)[0]);
    let entries: Vec<Value> = (0..101)
        .map(|_| json!({ "userId": user, "skills": [] }))
        .collect();
    let answer = sim.post(BULK, &token, json!({ "users": entries })).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(detail_fields(&answer.body), vec!["users"]);
    assert_eq!(sim.state().await, state);
    assert_eq!(sim.stats().await["cacheRebuilds"], 0);
}

#[tokio::test]
async fn bulk_with_100_entries_is_accepted() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let entries: Vec<Value> = (0..100)
        .map(|i| {
            let user = &users(&state)[i % users(&state).len()];
            json!({ "userId": user["id"], "proficiencies": user["proficiencies"] })
        })
        .collect();
    let answer = sim.post(BULK, &token, json!({ "users": entries })).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["succeeded"], 100);
    assert_eq!(answer.body["failed"], 0);
}

#[tokio::test]
async fn bulk_entry_with_a_stale_version_gets_412_while_the_others_succeed() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let picked = well_equipped(&state);
    let (a, b, c) = (&picked[0], &picked[1], &picked[2]);
    // b moves on to version 2 behind the bulk writer's back.
    let moved = sim
        .put(
            &format!("{USERS}/{}", id_of(b)),
            &token,
            json!({ "proficiencies": [] }),
        )
        .await;
    assert_eq!(moved.body["version"], 2);

    let body = json!({ "users": [
        { "userId": a["id"], "version": 1, "skills": [] },
        { "userId": b["id"], "version": 1, "skills": [] },
        { "userId": c["id"], "skills": [] },
    ] });
    let answer = sim.post(BULK, &token, body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let results = answer.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["userId"], a["id"]);
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[0]["version"], 2);
    assert_eq!(results[1]["userId"], b["id"]);
    assert_eq!(results[1]["status"], 412);
    assert!(results[1]["error"].is_string());
    assert_eq!(results[2]["status"], 200);
    assert_eq!(results[2]["version"], 2);
    assert_eq!(answer.body["succeeded"], 2);
    assert_eq!(answer.body["failed"], 1);

    let after = sim.state().await;
    assert_eq!(user_in(&after, &id_of(a))["skills"], json!([]));
    assert_eq!(user_in(&after, &id_of(c))["skills"], json!([]));
    assert_eq!(
        user_in(&after, &id_of(b))["skills"],
        b["skills"],
        "the stale entry was not applied"
    );
    assert_eq!(user_in(&after, &id_of(b))["version"], 2);
}

#[tokio::test]
async fn bulk_entry_for_an_unknown_user_gets_404_while_the_others_succeed() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let body = json!({ "users": [
        { "userId": "00000000-0000-4000-8000-000000000000", "skills": [] },
        { "userId": user["id"], "skills": [] },
    ] });
    let answer = sim.post(BULK, &token, body).await;
    assert_eq!(answer.status, 200);
    let results = answer.body["results"].as_array().unwrap();
    assert_eq!(results[0]["userId"], "00000000-0000-4000-8000-000000000000");
    assert_eq!(results[0]["status"], 404);
    assert!(results[0].get("version").is_none());
    assert_eq!(results[1]["status"], 200);
    assert_eq!(
        (
            answer.body["succeeded"].as_u64(),
            answer.body["failed"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

/// Found by schemathesis (issue 13): an entry whose `userId` was not a string had it echoed
/// back as sent (`{"userId":{}}`), which no client can read as a user id; the answer says
/// `null` there, as for an entry with none, and the error names the field.
#[tokio::test]
async fn bulk_entry_without_a_string_user_id_is_answered_with_a_null_user_id() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let body = json!({ "users": [
        { "userId": {}, "skills": [] },
        { "userId": 7, "skills": [] },
        { "skills": [] },
        5,
        { "userId": user["id"], "proficiencies": [] },
    ] });
    let answer = sim.post(BULK, &token, body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let results = answer.body["results"].as_array().unwrap();
    let expected = [
        "users[0].userId: must be a string",
        "users[1].userId: must be a string",
        "users[2].userId: required",
        "users[3]: must be an object",
    ];
    for (result, error) in results.iter().zip(expected) {
        assert_eq!(result["userId"], Value::Null, "{result}");
        assert_eq!(result["status"], 400, "{result}");
        assert_eq!(result["error"], error, "{result}");
    }
    assert_eq!(results[4]["userId"], user["id"]);
    assert_eq!(results[4]["status"], 200);
    assert_eq!(
        (&answer.body["succeeded"], &answer.body["failed"]),
        (&json!(1), &json!(4))
    );
}

#[tokio::test]
async fn bulk_invalid_entry_gets_400_and_is_not_half_applied() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let picked = well_equipped(&state);
    let (bad, good) = (&picked[0], &picked[1]);
    let body = json!({ "users": [
        { "userId": good["id"], "skills": [] },
        // Valid proficiencies, invalid skills: the entry is applied atomically or not at all.
        { "userId": bad["id"], "proficiencies": [], "skills": [{ "id": bad["skills"][0]["id"], "level": 11 }] },
    ] });
    let answer = sim.post(BULK, &token, body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let results = answer.body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[1]["status"], 400);
    let error = results[1]["error"].as_str().unwrap();
    assert!(error.contains("users[1].skills[0].level"), "{error}");
    assert_eq!(answer.body["succeeded"], 1);
    assert_eq!(answer.body["failed"], 1);
    let after = sim.state().await;
    assert_eq!(user_in(&after, &id_of(bad)), user_in(&state, &id_of(bad)));
    assert_eq!(user_in(&after, &id_of(good))["skills"], json!([]));
}

#[tokio::test]
async fn bulk_entries_keep_put_semantics_for_absent_lists() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let user = &well_equipped(&state)[0];
    let body = json!({ "users": [{ "userId": user["id"], "proficiencies": [] }] });
    let answer = sim.post(BULK, &token, body).await;
    assert_eq!(answer.body["results"][0]["status"], 200);
    let stored = user_in(&sim.state().await, &id_of(user)).clone();
    assert_eq!(stored["skills"], user["skills"]);
    assert_eq!(stored["proficiencies"], json!([]));
}

#[tokio::test]
async fn one_bulk_request_costs_one_cache_rebuild_and_one_request() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let entries: Vec<Value> = users(&state)
        .iter()
        .take(10)
        .map(|u| json!({ "userId": u["id"], "version": u["version"], "skills": [] }))
        .collect();
    let answer = sim.post(BULK, &token, json!({ "users": entries })).await;
    assert_eq!(answer.body["succeeded"], 10);
    let stats = sim.stats().await;
    assert_eq!(stats["cacheRebuilds"], 1);
    assert_eq!(sim.requests_to("POST", BULK).await, 1);
}

#[tokio::test]
async fn single_puts_with_skills_cost_one_cache_rebuild_each() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    for user in users(&state).iter().take(10) {
        let answer = sim
            .put(
                &format!("{USERS}/{}", id_of(user)),
                &token,
                json!({ "skills": user["skills"] }),
            )
            .await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(sim.stats().await["cacheRebuilds"], 10);
    assert_eq!(
        sim.requests_to("PUT", "/api/v2/routing/users/{userId}")
            .await,
        10
    );
}

#[tokio::test]
async fn routing_users_need_users_read_and_users_write_scopes() {
    let sim = common::start().await;
    let state = sim.state().await;
    let user = id_of(&users(&state)[0]);
    let reader = sim.token_with_scope(Some("users:read")).await;
    assert_eq!(
        sim.get(&format!("{USERS}/{user}"), &reader).await.status,
        200
    );
    let denied = sim
        .put(&format!("{USERS}/{user}"), &reader, json!({ "skills": [] }))
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["code"], "insufficient_scope");
    assert!(denied.body.to_string().contains("users:write"));
    let bulk = sim
        .post(
            BULK,
            &reader,
            json!({ "users": [{ "userId": user, "skills": [] }] }),
        )
        .await;
    assert_eq!(bulk.status, 403);
    assert_eq!(user_in(&sim.state().await, &user), user_in(&state, &user));
}

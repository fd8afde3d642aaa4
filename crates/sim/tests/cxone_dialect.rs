//! The CXone dialect (`docs/sim-cxone.md`) over real HTTP: its own tenant built from the
//! generated one, `skip`/`top` paging, skills with unique names, assignments per skill and per
//! agent answered with result sets, and the gateway's knobs on its routes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Answer, TestSim, detail_fields};
use reqwest::Method;
use serde_json::{Value, json};
use skillsync_sim::{Knobs, Rate, SimConfig};

const CX: &str = "/incontactapi/services/v31.0";
const NO_SUCH_AGENT: u64 = 999_999;
const NO_SUCH_SKILL: u64 = 9_999;

fn cx(path: impl std::fmt::Display) -> String {
    format!("{CX}{path}")
}

fn skill_agents(skill: u64) -> String {
    cx(format!("/skills/{skill}/agents"))
}

fn agent_skills(agent: u64) -> String {
    cx(format!("/agents/{agent}/skills"))
}

async fn delete(sim: &TestSim, path: &str, token: &str, body: Value) -> Answer {
    sim.call(Method::DELETE, path, Some(token), Some(body), &[])
        .await
}

/// The dialect's tenant in `/sim/state`.
async fn cxone_state(sim: &TestSim) -> Value {
    sim.state().await["cxone"].clone()
}

fn ids(list: &Value, field: &str) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_u64().unwrap())
        .collect()
}

/// `/sim/state`'s assignments by (skillId, agentId).
fn assignments(cxone: &Value) -> BTreeMap<(u64, u64), Value> {
    cxone["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let key = (
                a["skillId"].as_u64().unwrap(),
                a["agentId"].as_u64().unwrap(),
            );
            (key, a.clone())
        })
        .collect()
}

/// The agents holding `skill`.
fn holders(cxone: &Value, skill: u64) -> BTreeSet<u64> {
    assignments(cxone)
        .into_keys()
        .filter(|(s, _)| *s == skill)
        .map(|(_, a)| a)
        .collect()
}

fn is_ext(skill: &Value) -> bool {
    skill["skillName"]
        .as_str()
        .unwrap()
        .starts_with(skillsync_sim::OWNED_PREFIX)
}

/// A skill (not `Ext_`) with at least one holder, one holder of it and two agents without it.
fn a_skill_with_holder_and_two_without(cxone: &Value) -> (u64, u64, u64, u64) {
    let agents = ids(&cxone["agents"], "agentId");
    for skill in cxone["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !is_ext(s))
    {
        let id = skill["skillId"].as_u64().unwrap();
        let held = holders(cxone, id);
        let without: Vec<u64> = agents
            .iter()
            .copied()
            .filter(|a| !held.contains(a))
            .collect();
        if let (Some(&holder), [first, second, ..]) = (held.first(), without.as_slice()) {
            return (id, holder, *first, *second);
        }
    }
    panic!("no skill with a holder and two agents without it")
}

/// The codes of a result set's entries, `None` for a success, checking `errorCount` and that
/// each entry echoes the id it was sent with.
fn entry_codes(answer: &Answer, list: &str, id_field: &str, sent: &[u64]) -> Vec<Option<String>> {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let set = &answer.body["resultSet"];
    let results = set[list].as_array().unwrap();
    assert_eq!(ids(&set[list], id_field), sent, "in the order sent");
    let codes: Vec<Option<String>> = results
        .iter()
        .map(|r| {
            assert_eq!(r["success"], r.get("error").is_none(), "{r}");
            r["error"]["code"].as_str().map(str::to_string)
        })
        .collect();
    let failed = codes.iter().filter(|c| c.is_some()).count();
    assert_eq!(set["errorCount"], failed as u64, "{}", answer.body);
    codes
}

fn agent_codes(answer: &Answer, sent: &[u64]) -> Vec<Option<String>> {
    entry_codes(answer, "agentResults", "agentId", sent)
}

fn some(codes: &[Option<&str>]) -> Vec<Option<String>> {
    codes.iter().map(|c| c.map(str::to_string)).collect()
}

#[tokio::test]
async fn ids_names_and_proficiencies_follow_the_tenant_document() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let doc: skillsync_sim::TenantDoc = serde_json::from_value(state.clone()).unwrap();
    assert_eq!(
        state["cxone"],
        skillsync_sim::cxone::CxoneTenant::from_doc(&doc).to_json(),
        "the public builder makes what the simulator serves"
    );

    let skills = sim.get(&cx("/skills?top=1000"), &token).await;
    assert_eq!(skills.status, 200, "{}", skills.body);
    assert_eq!(skills.body["totalRecords"], doc.skills.len() as u64);
    for ((skill, definition), id) in skills.body["skills"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&doc.skills)
        .zip(1001u64..)
    {
        assert_eq!(
            *skill,
            json!({
                "skillId": id,
                "skillName": format!("{}_{}", definition.name, definition.locale),
                "mediaTypeId": 4,
                "isActive": definition.active,
                "description": definition.description,
            })
        );
    }

    let agents = sim.get(&cx("/agents?top=1000"), &token).await;
    assert_eq!(agents.body["totalRecords"], doc.users.len() as u64);
    let mut held = 0;
    for ((agent, user), id) in agents.body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&doc.users)
        .zip(100_001u64..)
    {
        assert_eq!(
            *agent,
            json!({
                "agentId": id,
                "userName": user.email,
                "firstName": user.first_name,
                "lastName": user.last_name,
                "emailAddress": user.email,
                "isActive": true,
            })
        );
        let mine = sim.get(&agent_skills(id), &token).await;
        assert_eq!(mine.body["agentId"], id);
        let mut expected: Vec<Value> = user
            .skills
            .iter()
            .map(|a| {
                let position = doc.skills.iter().position(|d| d.id == a.id).unwrap();
                let definition = &doc.skills[position];
                json!({
                    "skillId": 1001 + position as u64,
                    "skillName": format!("{}_{}", definition.name, definition.locale),
                    "isActive": a.active,
                    "proficiency": 21 - 2 * u64::from(a.level),
                })
            })
            .collect();
        expected.sort_by_key(|s| s["skillId"].as_u64());
        assert_eq!(mine.body["skills"], json!(expected), "agent {id}");
        held += expected.len();
    }
    assert!(held > 0);
    assert_eq!(
        state["cxone"]["assignments"].as_array().unwrap().len(),
        held
    );
    assert!(
        doc.users.iter().any(|u| !u.proficiencies.is_empty()),
        "proficiency assignments exist and are dropped"
    );
}

#[tokio::test]
async fn listings_page_with_skip_and_top_and_refuse_a_bad_one_naming_it() {
    let sim = common::start().await;
    let token = sim.token().await;
    let all = ids(&cxone_state(&sim).await["agents"], "agentId");
    assert_eq!(all.len(), 20);

    let mut seen = Vec::new();
    for skip in (0..all.len()).step_by(7) {
        let page = sim
            .get(&cx(format!("/agents?skip={skip}&top=7")), &token)
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["totalRecords"], 20);
        seen.extend(ids(&page.body["agents"], "agentId"));
    }
    assert_eq!(seen, all, "every agent once, by ascending id");
    let past = sim.get(&cx("/agents?skip=20"), &token).await;
    assert_eq!(
        (
            past.body["totalRecords"].as_u64(),
            past.body["agents"].clone()
        ),
        (Some(20), json!([]))
    );
    let defaults = sim.get(&cx("/agents?skip=&top="), &token).await;
    assert_eq!(
        ids(&defaults.body["agents"], "agentId"),
        all,
        "empty is absent"
    );

    let skill = cxone_state(&sim).await["skills"][0]["skillId"]
        .as_u64()
        .unwrap();
    for (path, field) in [
        (cx("/agents?top=0"), "top"),
        (cx("/agents?top=1001"), "top"),
        (cx("/skills?top=ten"), "top"),
        (cx("/skills?skip=-1"), "skip"),
        (format!("{}?top=10001", skill_agents(skill)), "top"),
        (format!("{}?top=2.5", agent_skills(100_001)), "top"),
    ] {
        let answer = sim.get(&path, &token).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(answer.body["code"], "VALIDATION_ERROR");
        assert_eq!(detail_fields(&answer.body), [field], "{path}");
    }
    // Assignment listings take pages of up to 10000, the others 1000.
    let wide = sim
        .get(&format!("{}?top=10000", skill_agents(skill)), &token)
        .await;
    assert_eq!(wide.status, 200, "{}", wide.body);
    assert_eq!(sim.get(&cx("/skills?top=1000"), &token).await.status, 200);

    let search = sim
        .get(&cx("/skills?searchString=TECHNICAL_support"), &token)
        .await;
    assert_eq!(
        search.body["totalRecords"], 2,
        "one per locale: {}",
        search.body
    );
    for skill in search.body["skills"].as_array().unwrap() {
        assert!(
            skill["skillName"]
                .as_str()
                .unwrap()
                .starts_with("Technical_Support_")
        );
    }
}

#[tokio::test]
async fn skill_creates_answer_per_item_and_names_are_unique_ignoring_case() {
    let sim = common::start().await;
    let token = sim.token().await;
    let before = cxone_state(&sim).await;
    let next = before["skills"].as_array().unwrap().len() as u64 + 1001;
    let existing = before["skills"][0]["skillName"]
        .as_str()
        .unwrap()
        .to_lowercase();

    let body = json!({ "skills": [
        { "skillName": "Escalations_Team", "description": "second line" },
        { "skillName": "ESCALATIONS_team" },
        { "skillName": existing },
        { "skillName": "" },
        { "skillName": "x".repeat(101) },
        { "skillName": "Night_Shift", "mediaTypeId": 5, "isActive": false },
    ] });
    let answer = sim.post(&cx("/skills"), &token, body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let results = answer.body["skillResults"].as_array().unwrap();
    let outcomes: Vec<(Value, Value, Value)> = results
        .iter()
        .map(|r| {
            (
                r["success"].clone(),
                r["skillId"].clone(),
                r["error"]["code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (json!(true), json!(next), Value::Null),
            (json!(false), Value::Null, json!("DUPLICATE_NAME")),
            (json!(false), Value::Null, json!("DUPLICATE_NAME")),
            (json!(false), Value::Null, json!("INVALID_NAME")),
            (json!(false), Value::Null, json!("INVALID_NAME")),
            (json!(true), json!(next + 1), Value::Null),
        ]
    );
    assert_eq!(results[1]["skillName"], "ESCALATIONS_team", "as sent");

    let created = sim.get(&cx(format!("/skills/{next}")), &token).await;
    assert_eq!(
        created.body,
        json!({ "skills": [{
            "skillId": next,
            "skillName": "Escalations_Team",
            "mediaTypeId": 4,
            "isActive": true,
            "description": "second line",
        }] })
    );
    let night = sim.get(&cx(format!("/skills/{}", next + 1)), &token).await;
    assert_eq!(night.body["skills"][0]["mediaTypeId"], 5);
    assert_eq!(night.body["skills"][0]["isActive"], false);

    // A create whose answer was lost, sent again, is found by name and not made twice.
    let again = sim
        .post(
            &cx("/skills"),
            &token,
            json!({ "skills": [{ "skillName": "escalations_TEAM" }] }),
        )
        .await;
    assert_eq!(
        again.body["skillResults"][0]["error"]["code"],
        "DUPLICATE_NAME"
    );
    let found = sim
        .get(&cx("/skills?searchString=escalations"), &token)
        .await;
    assert_eq!(found.body["totalRecords"], 1, "{}", found.body);

    // A body that breaks a rule of the whole call creates nothing.
    let after = cxone_state(&sim).await;
    let many: Vec<Value> = (0..101)
        .map(|i| json!({ "skillName": format!("Many_{i}") }))
        .collect();
    for (body, field) in [
        (json!({ "skills": many }), "skills"),
        (
            json!({ "skills": [{ "skillName": "Fine" }, { "description": "no name" }] }),
            "skills[1].skillName",
        ),
        (
            json!({ "skills": [{ "skillName": "Fine", "isActive": "yes" }] }),
            "skills[0].isActive",
        ),
        (json!({}), "skills"),
    ] {
        let refused = sim.post(&cx("/skills"), &token, body.clone()).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(detail_fields(&refused.body), [field], "{body}");
    }
    assert_eq!(cxone_state(&sim).await, after);
}

#[tokio::test]
async fn put_skill_replaces_the_fields_sent_and_refuses_another_skills_name() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let first = state["skills"][0].clone();
    let second = state["skills"][1].clone();
    let id = first["skillId"].as_u64().unwrap();
    let path = cx(format!("/skills/{id}"));

    let renamed = sim
        .put(
            &path,
            &token,
            json!({ "skillName": "Renamed_Skill", "isActive": false }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let mut expected = first.clone();
    expected["skillName"] = json!("Renamed_Skill");
    expected["isActive"] = json!(false);
    assert_eq!(renamed.body, json!({ "skills": [expected] }));
    assert_eq!(sim.get(&path, &token).await.body, renamed.body);
    assert_eq!(renamed.header("etag"), None, "no ETags in this dialect");

    let taken = second["skillName"].as_str().unwrap().to_uppercase();
    let clash = sim.put(&path, &token, json!({ "skillName": taken })).await;
    assert_eq!(clash.status, 409, "{}", clash.body);
    assert_eq!(clash.body["code"], "DUPLICATE_NAME");
    let own = sim
        .put(&path, &token, json!({ "skillName": "RENAMED_skill" }))
        .await;
    assert_eq!(own.status, 200, "its own name in other case: {}", own.body);
    let empty = sim.put(&path, &token, json!({ "skillName": "" })).await;
    assert_eq!(detail_fields(&empty.body), ["skillName"]);
    let missing = sim
        .put(
            &cx(format!("/skills/{NO_SUCH_SKILL}")),
            &token,
            json!({ "isActive": true }),
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    let now = cxone_state(&sim).await;
    assert_eq!(now["skills"][0]["skillName"], "RENAMED_skill");
    assert_eq!(
        now["skills"][0]["description"], first["description"],
        "not sent, kept"
    );
    assert_eq!(now["skills"][1], second);
    assert_eq!(now["assignments"], state["assignments"]);
}

#[tokio::test]
async fn assign_update_and_unassign_answer_each_agent_on_its_own() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let (skill, holder, a, b) = a_skill_with_holder_and_two_without(&state);
    let held_before = assignments(&state)[&(skill, holder)].clone();
    let mut holders_at_end = holders(&state, skill);
    let path = skill_agents(skill);

    let sent = [a, NO_SUCH_AGENT, holder, b];
    let assign = sim
        .post(
            &path,
            &token,
            json!({ "agents": [
            { "agentId": a, "proficiency": 5, "isActive": false },
            { "agentId": NO_SUCH_AGENT },
            { "agentId": holder, "proficiency": 2 },
            { "agentId": b, "proficiency": 21 },
        ] }),
        )
        .await;
    assert_eq!(
        agent_codes(&assign, &sent),
        some(&[
            None,
            Some("AGENT_NOT_FOUND"),
            Some("ALREADY_ASSIGNED"),
            Some("INVALID_PROFICIENCY")
        ])
    );
    let now = assignments(&cxone_state(&sim).await);
    assert_eq!(
        now[&(skill, a)],
        json!({ "skillId": skill, "agentId": a, "proficiency": 5, "isActive": false })
    );
    assert_eq!(
        now[&(skill, holder)],
        held_before,
        "already assigned: nothing changed"
    );
    assert!(!now.contains_key(&(skill, b)));

    let update = sim
        .put(
            &path,
            &token,
            json!({ "agents": [
            { "agentId": a, "proficiency": 7 },
            { "agentId": NO_SUCH_AGENT, "proficiency": 7 },
            { "agentId": b, "proficiency": 7 },
            { "agentId": holder, "proficiency": 0 },
        ] }),
        )
        .await;
    assert_eq!(
        agent_codes(&update, &[a, NO_SUCH_AGENT, b, holder]),
        some(&[
            None,
            Some("AGENT_NOT_FOUND"),
            Some("NOT_ASSIGNED"),
            Some("INVALID_PROFICIENCY")
        ])
    );
    let now = assignments(&cxone_state(&sim).await);
    assert_eq!(now[&(skill, a)]["proficiency"], 7);
    assert_eq!(now[&(skill, a)]["isActive"], false, "not sent, kept");
    assert_eq!(now[&(skill, holder)], held_before);

    // Defaults of an assign: active, proficiency 1. An integer may be written as `7.0`.
    let plain = sim
        .post(
            &path,
            &token,
            json!({ "agents": [{ "agentId": b as f64 }] }),
        )
        .await;
    assert_eq!(agent_codes(&plain, &[b]), [None]);
    assert_eq!(
        assignments(&cxone_state(&sim).await)[&(skill, b)],
        json!({ "skillId": skill, "agentId": b, "proficiency": 1, "isActive": true })
    );

    let unassign_sent = [a, NO_SUCH_AGENT, holder];
    let unassign = delete(
        &sim,
        &path,
        &token,
        json!({ "agents": [
        { "agentId": a }, { "agentId": NO_SUCH_AGENT }, { "agentId": holder },
    ] }),
    )
    .await;
    assert_eq!(
        agent_codes(&unassign, &unassign_sent),
        some(&[None, Some("AGENT_NOT_FOUND"), None])
    );
    let again = delete(&sim, &path, &token, json!({ "agents": [{ "agentId": a }] })).await;
    assert_eq!(agent_codes(&again, &[a]), some(&[Some("NOT_ASSIGNED")]));
    holders_at_end.remove(&holder);
    holders_at_end.insert(b);
    assert_eq!(holders(&cxone_state(&sim).await, skill), holders_at_end);
}

#[tokio::test]
async fn a_body_that_breaks_a_rule_of_the_call_is_400_and_changes_nothing() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let (skill, holder, a, b) = a_skill_with_holder_and_two_without(&state);
    let path = skill_agents(skill);
    // 101 entries, every one of them otherwise fine.
    let many: Vec<Value> = (0..101)
        .map(|i| json!({ "agentId": 100_001 + i }))
        .collect();

    for (method, body, field) in [
        (Method::POST, json!({ "agents": many }), "agents"),
        (
            Method::POST,
            json!({ "agents": [{ "agentId": a }, { "agentId": b }, { "agentId": a }] }),
            "agents[2].agentId",
        ),
        (
            Method::PUT,
            json!({ "agents": [{ "agentId": holder, "proficiency": 3 }, { "agentId": holder }] }),
            "agents[1].agentId",
        ),
        (
            Method::DELETE,
            json!({ "agents": [{ "agentId": holder }, { "agentId": holder }] }),
            "agents[1].agentId",
        ),
        (
            Method::POST,
            json!({ "agents": [{ "agentId": a }, { "proficiency": 3 }] }),
            "agents[1].agentId",
        ),
        (
            Method::POST,
            json!({ "agents": [{ "agentId": a }, { "agentId": "100001" }] }),
            "agents[1].agentId",
        ),
        (
            Method::PUT,
            json!({ "agents": [{ "agentId": holder, "isActive": "no" }] }),
            "agents[0].isActive",
        ),
        (
            Method::POST,
            json!({ "agents": [{ "agentId": a, "proficiency": "best" }] }),
            "agents[0].proficiency",
        ),
        (
            Method::DELETE,
            json!({ "agents": [{ "agentId": holder, "proficiency": 3 }] }),
            "agents[0].proficiency",
        ),
        (Method::POST, json!({ "skills": [] }), "agents"),
    ] {
        let answer = sim
            .call(method.clone(), &path, Some(&token), Some(body.clone()), &[])
            .await;
        assert_eq!(answer.status, 400, "{method} {body}: {}", answer.body);
        assert_eq!(answer.body["code"], "VALIDATION_ERROR");
        assert_eq!(detail_fields(&answer.body), [field], "{method} {body}");
    }
    let not_json = sim
        .http
        .post(sim.url(&path))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"agents\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(cxone_state(&sim).await, state, "nothing changed");

    // Exactly 100 is one call.
    let hundred: Vec<Value> = (0..100)
        .map(|i| json!({ "agentId": 200_001 + i }))
        .collect();
    let answer = sim.post(&path, &token, json!({ "agents": hundred })).await;
    assert_eq!(
        answer.body["resultSet"]["errorCount"], 100,
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn unknown_skills_and_agents_are_404_and_malformed_ids_400() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let body = json!({ "agents": [{ "agentId": 100_001 }] });
    for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
        let answer = sim
            .call(
                method.clone(),
                &skill_agents(NO_SUCH_SKILL),
                Some(&token),
                Some(body.clone()),
                &[],
            )
            .await;
        assert_eq!(answer.status, 404, "{method}: {}", answer.body);
        assert_eq!(answer.body["code"], "NOT_FOUND");
        assert!(answer.body["message"].as_str().unwrap().contains("9999"));
        let mirror = sim
            .call(
                method.clone(),
                &agent_skills(NO_SUCH_AGENT),
                Some(&token),
                Some(json!({ "skills": [] })),
                &[],
            )
            .await;
        assert_eq!(mirror.status, 404, "{method}: {}", mirror.body);
    }
    let fetch = sim
        .get(&cx(format!("/skills/{NO_SUCH_SKILL}")), &token)
        .await;
    assert_eq!(fetch.status, 404);
    // A missing skill is 404 whatever the body holds.
    let junk = sim
        .post(
            &skill_agents(NO_SUCH_SKILL),
            &token,
            json!({ "agents": "none" }),
        )
        .await;
    assert_eq!(junk.status, 404);

    for path in [
        cx("/skills/abc"),
        skill_agents(0).replace("/0/", "/-1/"),
        cx("/skills/1.5/agents"),
    ] {
        let answer = sim.get(&path, &token).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(detail_fields(&answer.body), ["skillId"], "{path}");
    }
    let answer = sim.get(&cx("/agents/x/skills"), &token).await;
    assert_eq!(detail_fields(&answer.body), ["agentId"]);
    assert_eq!(cxone_state(&sim).await, state);
}

#[tokio::test]
async fn assignments_of_several_skills_are_listed_by_skill_then_agent() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let all = assignments(&state);
    let (first, _, _, _) = a_skill_with_holder_and_two_without(&state);
    let second = all.keys().map(|(s, _)| *s).find(|s| *s != first).unwrap();
    let (low, high) = (first.min(second), first.max(second));
    let expected: Vec<Value> = all
        .iter()
        .filter(|((s, _), _)| *s == low || *s == high)
        .map(|(_, a)| a.clone())
        .collect();
    assert!(expected.len() >= 2);

    // Named out of order and one twice: each skill once, in id order.
    let path = cx(format!("/skills/agents?skills={high},{low},{high}"));
    let answer = sim.get(&path, &token).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["totalRecords"], expected.len() as u64);
    assert_eq!(answer.body["agentSkillAssignments"], json!(expected));

    let page = sim.get(&format!("{path}&skip=1&top=1"), &token).await;
    assert_eq!(page.body["totalRecords"], expected.len() as u64);
    assert_eq!(page.body["agentSkillAssignments"], json!([expected[1]]));

    let unknown = sim
        .get(
            &cx(format!("/skills/agents?skills={low},{NO_SUCH_SKILL}")),
            &token,
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body["message"]
            .as_str()
            .unwrap()
            .contains(&NO_SUCH_SKILL.to_string())
    );
    let too_many = vec![low.to_string(); 101].join(",");
    for list in ["", "1001,", "1001;1002", "a", too_many.as_str()] {
        let answer = sim
            .get(&cx(format!("/skills/agents?skills={list}")), &token)
            .await;
        assert_eq!(answer.status, 400, "`{list}`: {}", answer.body);
        assert_eq!(detail_fields(&answer.body), ["skills"], "`{list}`");
    }
}

#[tokio::test]
async fn a_write_per_skill_shows_per_agent_and_in_state_but_not_in_the_other_dialects() {
    let sim = common::start().await;
    let token = sim.token().await;
    let before = sim.state().await;
    let (skill, _, agent, _) = a_skill_with_holder_and_two_without(&before["cxone"]);
    let name = before["cxone"]["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skillId"] == skill)
        .unwrap()["skillName"]
        .clone();

    let answer = sim
        .post(
            &skill_agents(skill),
            &token,
            json!({ "agents": [{ "agentId": agent, "proficiency": 4 }] }),
        )
        .await;
    assert_eq!(agent_codes(&answer, &[agent]), [None]);

    let mirror = sim.get(&agent_skills(agent), &token).await;
    let shown: Vec<&Value> = mirror.body["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["skillId"] == skill)
        .collect();
    assert_eq!(
        shown,
        [&json!({ "skillId": skill, "skillName": name, "isActive": true, "proficiency": 4 })]
    );
    assert_eq!(
        mirror.body["totalRecords"],
        mirror.body["skills"].as_array().unwrap().len()
    );
    let per_skill = sim.get(&skill_agents(skill), &token).await;
    assert!(ids(&per_skill.body["agents"], "agentId").contains(&agent));

    let after = sim.state().await;
    assert_eq!(
        assignments(&after["cxone"])[&(skill, agent)],
        json!({ "skillId": skill, "agentId": agent, "proficiency": 4, "isActive": true })
    );
    assert_eq!(
        after["users"], before["users"],
        "the other dialects' tenant is not this one"
    );
    assert_eq!(sim.stats().await["cacheRebuilds"], 0);
}

#[tokio::test]
async fn the_per_agent_mirror_writes_with_the_same_rules() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let (skill, agent, _, _) = a_skill_with_holder_and_two_without(&state);
    let all = assignments(&state);
    let free: Vec<u64> = ids(&state["skills"], "skillId")
        .into_iter()
        .filter(|s| !all.contains_key(&(*s, agent)))
        .collect();
    let (x, y) = (free[0], free[1]);
    let path = agent_skills(agent);

    let sent = [x, NO_SUCH_SKILL, skill, y];
    let assign = sim
        .post(
            &path,
            &token,
            json!({ "skills": [
            { "skillId": x, "proficiency": 2 },
            { "skillId": NO_SUCH_SKILL },
            { "skillId": skill },
            { "skillId": y, "proficiency": 30 },
        ] }),
        )
        .await;
    assert_eq!(
        entry_codes(&assign, "skillResults", "skillId", &sent),
        some(&[
            None,
            Some("SKILL_NOT_FOUND"),
            Some("ALREADY_ASSIGNED"),
            Some("INVALID_PROFICIENCY")
        ])
    );
    let update = sim
        .put(&path, &token, json!({ "skills": [{ "skillId": x, "isActive": false }, { "skillId": y, "isActive": false }] }))
        .await;
    assert_eq!(
        entry_codes(&update, "skillResults", "skillId", &[x, y]),
        some(&[None, Some("NOT_ASSIGNED")])
    );
    let per_skill = sim.get(&skill_agents(x), &token).await;
    let row: Vec<&Value> = per_skill.body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["agentId"] == agent)
        .collect();
    assert_eq!(
        row,
        [&json!({ "agentId": agent, "isActive": false, "proficiency": 2 })]
    );

    let unassign = delete(
        &sim,
        &path,
        &token,
        json!({ "skills": [{ "skillId": x }, { "skillId": skill }] }),
    )
    .await;
    assert_eq!(
        entry_codes(&unassign, "skillResults", "skillId", &[x, skill]),
        [None, None]
    );
    let now = assignments(&cxone_state(&sim).await);
    assert!(!now.contains_key(&(x, agent)) && !now.contains_key(&(skill, agent)));
    let duplicate = delete(
        &sim,
        &path,
        &token,
        json!({ "skills": [{ "skillId": y }, { "skillId": y }] }),
    )
    .await;
    assert_eq!(detail_fields(&duplicate.body), ["skills[1].skillId"]);
}

#[tokio::test]
async fn a_fault_after_commit_applies_the_assign_so_sending_it_again_is_already_assigned() {
    let sim = common::start_knobs(Knobs {
        fault_after_commit_rate: 1.0,
        ..Knobs::quiet()
    })
    .await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let (skill, _, agent, _) = a_skill_with_holder_and_two_without(&state);
    let body = json!({ "agents": [{ "agentId": agent, "proficiency": 6 }] });

    let first = sim.post(&skill_agents(skill), &token, body.clone()).await;
    assert_eq!(first.status, 502, "{}", first.body);
    assert_eq!(first.body["code"], "UPSTREAM_TIMEOUT");
    assert_eq!(
        assignments(&cxone_state(&sim).await)[&(skill, agent)]["proficiency"],
        6,
        "the write was applied before the 502"
    );
    assert_eq!(sim.stats().await["faultsAfterCommit"], 1);

    sim.set_knobs(json!({ "faultAfterCommitRate": 0 })).await;
    let again = sim.post(&skill_agents(skill), &token, body).await;
    assert_eq!(
        agent_codes(&again, &[agent]),
        some(&[Some("ALREADY_ASSIGNED")])
    );

    // Reads are never faulted after commit; a skill create is, and is then found by name.
    sim.set_knobs(json!({ "faultAfterCommitRate": 1 })).await;
    assert_eq!(sim.get(&skill_agents(skill), &token).await.status, 200);
    let create = json!({ "skills": [{ "skillName": "Lost_Answer" }] });
    assert_eq!(
        sim.post(&cx("/skills"), &token, create.clone())
            .await
            .status,
        502
    );
    sim.set_knobs(json!({ "faultAfterCommitRate": 0 })).await;
    let resent = sim.post(&cx("/skills"), &token, create).await;
    assert_eq!(
        resent.body["skillResults"][0]["error"]["code"],
        "DUPLICATE_NAME"
    );
}

#[tokio::test]
async fn each_route_needs_its_scope_and_a_403_names_it() {
    let sim = common::start().await;
    let state = cxone_state(&sim).await;
    let (skill, agent, _, _) = a_skill_with_holder_and_two_without(&state);
    let reads = sim
        .token_with_scope(Some("cxone:agents:read cxone:skills:read"))
        .await;
    let agents_only = sim.token_with_scope(Some("cxone:agents:read")).await;
    let routing = sim
        .token_with_scope(Some("users:read users:write routing:skills:read"))
        .await;

    let checks: Vec<(Method, String, &str)> = vec![
        (Method::GET, cx("/agents"), "cxone:agents:read"),
        (Method::GET, cx("/skills"), "cxone:skills:read"),
        (
            Method::GET,
            cx(format!("/skills/{skill}")),
            "cxone:skills:read",
        ),
        (Method::GET, skill_agents(skill), "cxone:skills:read"),
        (
            Method::GET,
            cx(format!("/skills/agents?skills={skill}")),
            "cxone:skills:read",
        ),
        (Method::GET, agent_skills(agent), "cxone:skills:read"),
        (Method::POST, cx("/skills"), "cxone:skills:write"),
        (
            Method::PUT,
            cx(format!("/skills/{skill}")),
            "cxone:skills:write",
        ),
        (Method::POST, skill_agents(skill), "cxone:skills:write"),
        (Method::PUT, skill_agents(skill), "cxone:skills:write"),
        (Method::DELETE, skill_agents(skill), "cxone:skills:write"),
        (Method::POST, agent_skills(agent), "cxone:skills:write"),
        (Method::PUT, agent_skills(agent), "cxone:skills:write"),
        (Method::DELETE, agent_skills(agent), "cxone:skills:write"),
    ];
    let body = |method: &Method| (*method != Method::GET).then(|| json!({}));
    for (method, path, scope) in &checks {
        let anonymous = sim
            .call(method.clone(), path, None, body(method), &[])
            .await;
        assert_eq!(anonymous.status, 401, "{method} {path}");
        for token in [
            &routing,
            if scope.ends_with("write") {
                &reads
            } else {
                &agents_only
            },
        ] {
            if token == &agents_only && *scope == "cxone:agents:read" {
                continue;
            }
            let denied = sim
                .call(method.clone(), path, Some(token), body(method), &[])
                .await;
            assert_eq!(denied.status, 403, "{method} {path}: {}", denied.body);
            assert_eq!(denied.body["code"], "insufficient_scope");
            assert_eq!(denied.body["scope"], *scope, "{method} {path}");
            assert_eq!(detail_fields(&denied.body), ["scope"]);
        }
        let wanted = sim.token_with_scope(Some(scope)).await;
        let allowed = sim
            .call(method.clone(), path, Some(&wanted), body(method), &[])
            .await;
        assert!(
            ![401, 403].contains(&allowed.status.as_u16()),
            "{method} {path} with {scope}: {} {}",
            allowed.status,
            allowed.body
        );
    }
    // The default client holds all three.
    let all = sim.token().await;
    assert_eq!(sim.get(&cx("/agents"), &all).await.status, 200);
    let write = sim
        .post(&cx("/skills"), &all, json!({ "skills": [] }))
        .await;
    assert_eq!(write.body, json!({ "skillResults": [] }));
}

#[tokio::test]
async fn reject_write_rate_refuses_entries_on_their_own_and_changes_nothing() {
    let sim = common::start_knobs(Knobs {
        reject_write_rate: 1.0,
        ..Knobs::quiet()
    })
    .await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let (skill, holder, a, _) = a_skill_with_holder_and_two_without(&state);
    let path = skill_agents(skill);

    // An entry that fails its own checks gets its own code; the others are refused.
    let assign = sim
        .post(&path, &token, json!({ "agents": [{ "agentId": a }, { "agentId": NO_SUCH_AGENT }, { "agentId": holder }] }))
        .await;
    assert_eq!(
        agent_codes(&assign, &[a, NO_SUCH_AGENT, holder]),
        some(&[
            Some("REJECTED"),
            Some("AGENT_NOT_FOUND"),
            Some("ALREADY_ASSIGNED")
        ])
    );
    let update = sim
        .put(
            &path,
            &token,
            json!({ "agents": [{ "agentId": holder, "proficiency": 20 }] }),
        )
        .await;
    assert_eq!(agent_codes(&update, &[holder]), some(&[Some("REJECTED")]));
    let unassign = delete(
        &sim,
        &agent_skills(holder),
        &token,
        json!({ "skills": [{ "skillId": skill }] }),
    )
    .await;
    assert_eq!(
        entry_codes(&unassign, "skillResults", "skillId", &[skill]),
        some(&[Some("REJECTED")])
    );
    assert_eq!(
        assign.body["resultSet"]["agentResults"][0]["error"]["message"],
        "rejected by the tenant (--reject-write-rate); nothing was changed"
    );
    assert_eq!(cxone_state(&sim).await, state, "nothing changed");
    assert_eq!(sim.stats().await["writesRejected"], 3);
    assert_eq!(
        sim.get(&path, &token).await.status,
        200,
        "reads keep working"
    );

    // At 0.5 some entries of one call are taken and some refused, and only the taken ones stay.
    sim.set_knobs(json!({ "rejectWriteRate": 0.5 })).await;
    let created = sim
        .post(
            &cx("/skills"),
            &token,
            json!({ "skills": [{ "skillName": "Half_Taken" }] }),
        )
        .await;
    let new = created.body["skillResults"][0]["skillId"].as_u64().unwrap();
    let agents = ids(&state["agents"], "agentId");
    let entries: Vec<Value> = agents.iter().map(|id| json!({ "agentId": id })).collect();
    let half = sim
        .post(&skill_agents(new), &token, json!({ "agents": entries }))
        .await;
    let codes = agent_codes(&half, &agents);
    let taken: BTreeSet<u64> = agents
        .iter()
        .zip(&codes)
        .filter(|(_, code)| code.is_none())
        .map(|(id, _)| *id)
        .collect();
    let refused = codes
        .iter()
        .filter(|c| c.as_deref() == Some("REJECTED"))
        .count();
    assert_eq!(taken.len() + refused, agents.len(), "{codes:?}");
    assert!(!taken.is_empty() && refused > 0, "{codes:?}");
    assert_eq!(holders(&cxone_state(&sim).await, new), taken);
    assert_eq!(sim.stats().await["writesRejected"], 3 + refused as u64);
}

async fn other_writer_log(sim: &TestSim) -> Value {
    let response = sim
        .http
        .get(sim.url("/sim/other-writer"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_other_writer_changes_only_ext_skills_and_logs_what_it_last_wrote() {
    let sim = common::start().await;
    let initial = cxone_state(&sim).await;
    let ext: BTreeSet<u64> = initial["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| is_ext(s))
        .map(|s| s["skillId"].as_u64().unwrap())
        .collect();
    assert!(!ext.is_empty());
    assert_eq!(other_writer_log(&sim).await["cxone"], json!([]));

    sim.set_knobs(json!({ "otherWriter": 200 })).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    // A background actor: poll until it has written to enough pairs, with a deadline.
    while other_writer_log(&sim).await["cxone"]
        .as_array()
        .unwrap()
        .len()
        < 15
    {
        assert!(
            Instant::now() < deadline,
            "the other writer wrote too little"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Paused, reading its log waits out any tick in progress: log and tenant then agree.
    sim.set_knobs(json!({ "otherWriter": 0 })).await;
    let log = other_writer_log(&sim).await;
    let now = cxone_state(&sim).await;

    let before = assignments(&initial);
    let after = assignments(&now);
    let mut logged = BTreeSet::new();
    let mut previous = None;
    for entry in log["cxone"].as_array().unwrap() {
        let key = (
            entry["skillId"].as_u64().unwrap(),
            entry["agentId"].as_u64().unwrap(),
        );
        assert!(
            ext.contains(&key.0),
            "it wrote a skill it does not own: {entry}"
        );
        let order = (key.1, key.0);
        assert!(previous < Some(order), "listed by agent, then skill");
        previous = Some(order);
        match after.get(&key) {
            Some(held) => {
                assert_eq!(entry["assigned"], true, "{entry}");
                assert_eq!(entry["proficiency"], held["proficiency"], "{entry}");
                assert_eq!(entry["isActive"], held["isActive"], "{entry}");
            }
            None => {
                assert_eq!(entry["assigned"], false, "{entry}");
                assert!(entry.get("proficiency").is_none() && entry.get("isActive").is_none());
            }
        }
        logged.insert(key);
    }
    let keys: BTreeSet<&(u64, u64)> = before.keys().chain(after.keys()).collect();
    for key in keys {
        if !logged.contains(key) {
            assert_eq!(
                before.get(key),
                after.get(key),
                "{key:?} changed but is not logged"
            );
        }
    }
    assert_ne!(before, after, "the other writer changed something");
    assert_eq!(now["skills"], initial["skills"]);
}

#[tokio::test]
async fn the_tenants_rate_limit_answers_429_on_these_routes_and_stats_count_them_by_template() {
    let sim = common::start_with(SimConfig {
        knobs: Knobs {
            rate_limit: Rate::per_minute(1.0),
            burst: 3,
            ..Knobs::quiet()
        },
        ..SimConfig::quiet(common::small_tenant())
    })
    .await;
    let token = sim.token().await;
    let state = cxone_state(&sim).await;
    let (skill, _, agent, _) = a_skill_with_holder_and_two_without(&state);
    for _ in 0..3 {
        assert_eq!(sim.get(&skill_agents(skill), &token).await.status, 200);
    }
    let read = sim.get(&skill_agents(skill), &token).await;
    assert_eq!(read.status, 429, "{}", read.body);
    assert_eq!(read.body["code"], "RATE_LIMITED");
    assert!(read.header("retry-after").is_some());
    let write = sim
        .post(
            &skill_agents(skill),
            &token,
            json!({ "agents": [{ "agentId": agent }] }),
        )
        .await;
    assert_eq!(write.status, 429);
    assert_eq!(
        cxone_state(&sim).await,
        state,
        "a throttled write changes nothing"
    );

    let stats = sim.stats().await;
    let route = format!("{CX}/skills/{{skillId}}/agents");
    let count = |method: &str, status: u16| -> u64 {
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] == method && r["route"] == route.as_str() && r["status"] == status
            })
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        (count("GET", 200), count("GET", 429), count("POST", 429)),
        (3, 1, 1),
        "{stats}"
    );
    assert_eq!(stats["throttled"], 2);
}

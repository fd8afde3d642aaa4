//! The user listings are cut from an index (the users in order, and which users hold each
//! definition) rather than a walk of every user: after every kind of write, lost write,
//! fixture load and reset, paging through them must show exactly what `/sim/state` holds.

mod common;

use std::time::{Duration, Instant};

use common::{BULK, TestSim, dialect_user, id_of, routing_user, users};
use serde_json::{Value, json};
use skillsync_sim::{SimConfig, TenantDoc, TenantSource};

const ROUTING_USERS: &str = "/api/v2/routing/users";
const USERS: &str = "/api/v2/users";

/// Every entity of a listing, page by page (`query` is empty or ends with `&`), checking each
/// page's `total`, `page` and `pageSize`.
async fn page_through(sim: &TestSim, token: &str, path: &str, query: &str) -> Vec<Value> {
    const SIZE: usize = 3;
    let mut seen = Vec::new();
    let mut total = None;
    for page in 1.. {
        let answer = sim
            .get(&format!("{path}?{query}page={page}&pageSize={SIZE}"), token)
            .await;
        assert_eq!(answer.status, 200, "{path}?{query}: {}", answer.body);
        assert_eq!(answer.body["page"], page);
        assert_eq!(answer.body["pageSize"], SIZE);
        let this_total = answer.body["total"].as_u64().unwrap();
        assert_eq!(
            *total.get_or_insert(this_total),
            this_total,
            "{path}?{query}"
        );
        let entities = answer.body["entities"].as_array().unwrap();
        if entities.is_empty() {
            break;
        }
        seen.extend(entities.iter().cloned());
    }
    assert_eq!(Some(seen.len() as u64), total, "{path}?{query}: total");
    seen
}

/// A `/sim/state` user as `/routing/users` shows it.
fn routing_view(user: &Value) -> Value {
    json!({
        "userId": user["id"],
        "routingProfile": { "id": user["routingProfileId"] },
        "skills": user["skills"],
        "proficiencies": user["proficiencies"],
        "version": user["version"],
        "dateModified": user["dateModified"],
    })
}

/// A `/sim/state` user as `/users` shows it.
fn users_view(user: &Value) -> Value {
    let levels: Vec<Value> = user["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!({ "skill": a["id"], "level": a["level"] }))
        .collect();
    json!({
        "id": user["id"],
        "firstName": user["firstName"],
        "lastName": user["lastName"],
        "email": user["email"],
        "skills": { "proficiencies": levels },
        "version": user["version"],
    })
}

fn holds(user: &Value, list: &str, id: &str) -> bool {
    user[list].as_array().unwrap().iter().any(|a| a["id"] == id)
}

/// Every listing of users against the tenant's truth: both dialects unfiltered, the routing
/// dialect by each skill, each proficiency and some pairs of both, and the user count of a
/// refused delete.
async fn assert_listings_agree(sim: &TestSim, token: &str, when: &str) {
    let state = sim.state().await;
    let truth = users(&state);
    let routing = page_through(sim, token, ROUTING_USERS, "").await;
    let expected: Vec<Value> = truth.iter().map(routing_view).collect();
    assert_eq!(routing, expected, "{when}: /routing/users");
    let dialect = page_through(sim, token, USERS, "").await;
    let expected: Vec<Value> = truth.iter().map(users_view).collect();
    assert_eq!(dialect, expected, "{when}: /users");

    let definitions =
        |kind: &str| -> Vec<String> { state[kind].as_array().unwrap().iter().map(id_of).collect() };
    let (skills, proficiencies) = (definitions("skills"), definitions("proficiencies"));
    let ids = |listed: Vec<Value>| -> Vec<Value> {
        listed.into_iter().map(|u| u["userId"].clone()).collect()
    };
    let holders = |keep: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        truth
            .iter()
            .filter(|u| keep(u))
            .map(|u| u["id"].clone())
            .collect()
    };
    for (list, param, defs) in [
        ("skills", "skillId", &skills),
        ("proficiencies", "proficiencyId", &proficiencies),
    ] {
        for id in defs.iter() {
            let listed = page_through(sim, token, ROUTING_USERS, &format!("{param}={id}&")).await;
            let expected = holders(&|u| holds(u, list, id));
            assert_eq!(ids(listed), expected, "{when}: ?{param}={id}");
        }
        // A skill id asked for as a proficiency (and back) matches nobody.
        let other = if list == "skills" {
            &proficiencies
        } else {
            &skills
        };
        let listed =
            page_through(sim, token, ROUTING_USERS, &format!("{param}={}&", other[0])).await;
        assert!(listed.is_empty(), "{when}: ?{param}= of the other kind");
    }
    for skill in skills.iter().take(3) {
        for proficiency in &proficiencies {
            let query = format!("skillId={skill}&proficiencyId={proficiency}&");
            let listed = page_through(sim, token, ROUTING_USERS, &query).await;
            let expected =
                holders(&|u| holds(u, "skills", skill) && holds(u, "proficiencies", proficiency));
            assert_eq!(ids(listed), expected, "{when}: ?{query}");
        }
    }

    // A definition some user holds cannot be deleted; the 409 counts its holders.
    for (list, route, defs) in [
        ("skills", "skills", &skills),
        ("proficiencies", "proficiencies", &proficiencies),
    ] {
        let Some(held) = defs
            .iter()
            .find(|id| truth.iter().any(|u| holds(u, list, id)))
        else {
            continue;
        };
        let answer = sim
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v2/routing/{route}/{held}"),
                Some(token),
                None,
                &[],
            )
            .await;
        assert_eq!(answer.status, 409, "{when}: {}", answer.body);
        let count = truth.iter().filter(|u| holds(u, list, held)).count();
        assert_eq!(
            answer.body["references"]["users"], count,
            "{when}: holders of {held}"
        );
    }
}

/// The ids of the tenant's definitions of one kind in the user's locale.
fn in_locale(state: &Value, kind: &str, user: &Value) -> Vec<String> {
    state[kind]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["locale"] == user["locale"])
        .map(id_of)
        .collect()
}

/// A list naming `ids` at level 3.
fn list_of(ids: &[String]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| json!({ "id": id, "level": 3, "active": true }))
            .collect(),
    )
}

#[tokio::test]
async fn listings_agree_with_the_tenant_after_every_kind_of_write_and_a_reset() {
    let sim = common::start().await;
    let token = sim.token().await;
    assert_listings_agree(&sim, &token, "as loaded").await;
    let state = sim.state().await;
    let all = users(&state).clone();

    // Single PUTs: one user loses every skill, one takes every skill of its locale (joining
    // holder lists in the middle), one swaps its proficiencies.
    let answer = sim
        .put(
            &routing_user(&id_of(&all[0])),
            &token,
            json!({ "skills": [] }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let every = in_locale(&state, "skills", &all[5]);
    let answer = sim
        .put(
            &routing_user(&id_of(&all[5])),
            &token,
            json!({ "skills": list_of(&every) }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let proficiencies = in_locale(&state, "proficiencies", &all[7]);
    let answer = sim
        .put(
            &routing_user(&id_of(&all[7])),
            &token,
            json!({ "proficiencies": list_of(&proficiencies[..1]) }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_listings_agree(&sim, &token, "after single PUTs").await;

    // A bulk write: skills and proficiencies of several users at once, one entry stale.
    let entries: Vec<Value> = all[10..16]
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let skills = in_locale(&state, "skills", u);
            let proficiencies = in_locale(&state, "proficiencies", u);
            let mut entry = json!({
                "userId": u["id"],
                "skills": list_of(&skills[i % skills.len()..][..1]),
                "proficiencies": list_of(&proficiencies[..i % 2]),
            });
            if i == 3 {
                entry["version"] = json!(0);
            }
            entry
        })
        .collect();
    let answer = sim.post(BULK, &token, json!({ "users": entries })).await;
    common::assert_bulk_answered(&answer, 5, 1);
    assert_listings_agree(&sim, &token, "after a bulk write").await;

    // The users dialect replaces the skill list.
    let skills = in_locale(&state, "skills", &all[3]);
    let answer = sim
        .put(
            &dialect_user(&id_of(&all[3])),
            &token,
            json!({ "skills": { "proficiencies": [ { "skill": skills[1], "level": 9 } ] } }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_listings_agree(&sim, &token, "after a users-dialect PUT").await;

    // Lost writes are answered as applied and change nothing, the index included.
    sim.set_knobs(json!({ "loseWriteRate": 1.0 })).await;
    let answer = sim
        .put(
            &routing_user(&id_of(&all[5])),
            &token,
            json!({ "skills": [] }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    sim.set_knobs(json!({ "loseWriteRate": 0.0 })).await;
    assert_listings_agree(&sim, &token, "after a lost write").await;

    // The other integration's read-merge-write cycles.
    sim.set_knobs(json!({ "otherWriter": 200 })).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.stat("otherWriterWrites").await < 30 {
        assert!(
            Instant::now() < deadline,
            "the other integration never wrote"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Paused; reading its log then waits out a cycle in progress, so none lands while the
    // listings are read.
    sim.set_knobs(json!({ "otherWriter": 0 })).await;
    let log = sim
        .http
        .get(sim.url("/sim/other-writer"))
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);
    assert_listings_agree(&sim, &token, "after the other integration wrote").await;

    sim.reset().await;
    assert_eq!(
        sim.state().await,
        state,
        "the reset restores the initial tenant"
    );
    assert_listings_agree(&sim, &token, "after a reset").await;
}

#[tokio::test]
async fn listings_of_a_fixture_agree_with_it_even_where_a_list_names_an_id_twice() {
    let generated = common::start().await;
    let mut doc: TenantDoc = serde_json::from_value(generated.state().await).unwrap();
    drop(generated);
    // A fixture may name an assignment twice in one list: the user is listed once, and holds
    // it until neither entry is left.
    let at = doc
        .users
        .iter()
        .position(|u| u.skills.len() >= 2)
        .expect("a user with two skills");
    let original = json!(doc.users[at].skills);
    let repeated = doc.users[at].skills[0].clone();
    doc.users[at].skills.push(repeated.clone());
    let id = doc.users[at].id.clone();
    let sim = common::start_with(SimConfig::quiet(TenantSource::Doc(Box::new(doc)))).await;
    let token = sim.token().await;
    assert_listings_agree(&sim, &token, "a fixture naming an id twice").await;

    let answer = sim
        .put(&routing_user(&id), &token, json!({ "skills": original }))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_listings_agree(&sim, &token, "after keeping one of the two").await;

    let without: Vec<Value> = original
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"] != repeated.id)
        .cloned()
        .collect();
    let answer = sim
        .put(&routing_user(&id), &token, json!({ "skills": without }))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_listings_agree(&sim, &token, "after dropping both").await;
}

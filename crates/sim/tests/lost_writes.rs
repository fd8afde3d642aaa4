//! `--lose-write-rate` (knob `loseWriteRate`): a tenant that answers a user write exactly as a
//! success and does not keep it. Only a read-back can tell; these tests are that read-back.

mod common;

use std::collections::BTreeSet;

use common::TestSim;
use reqwest::Method;
use serde_json::{Value, json};
use skillsync_sim::{Knobs, SimConfig, SimError};

const INTERACTIONS: &str = "/api/v2/interactions/test";

fn routing_user(id: &str) -> String {
    format!("/api/v2/routing/users/{id}")
}

async fn start_losing(rate: f64) -> TestSim {
    common::start_knobs(Knobs {
        lose_write_rate: rate,
        ..Knobs::quiet()
    })
    .await
}

/// A user holding at least one skill, as `/sim/state` shows it.
fn skilled_users(state: &Value) -> Vec<Value> {
    common::users(state)
        .iter()
        .filter(|u| !u["skills"].as_array().unwrap().is_empty())
        .cloned()
        .collect()
}

/// The user's skills with the first one's level moved by one: a change the API must keep.
fn skills_changed(user: &Value) -> Value {
    let mut skills = user["skills"].clone();
    let level = skills[0]["level"].as_u64().unwrap();
    skills[0]["level"] = json!(level % 10 + 1);
    skills
}

fn version(value: &Value) -> u64 {
    value["version"].as_u64().unwrap()
}

async fn writes_lost(sim: &TestSim) -> u64 {
    sim.stats().await["writesLost"].as_u64().unwrap()
}

#[tokio::test]
async fn a_lost_routing_put_answers_like_a_success_but_the_tenant_keeps_the_old_state() {
    let sim = start_losing(1.0).await;
    let token = sim.token().await;
    let before = sim.state().await;
    let user = skilled_users(&before)[0].clone();
    let id = common::id_of(&user);
    let wanted = skills_changed(&user);

    let answer = sim
        .put(&routing_user(&id), &token, json!({ "skills": wanted }))
        .await;
    // Indistinguishable from a kept write: 200, the new list, a new version and its ETag.
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["skills"], wanted);
    assert_eq!(version(&answer.body), version(&user) + 1);
    assert_eq!(
        answer.header("etag"),
        Some(format!("\"{}\"", version(&user) + 1))
    );

    // The read-back shows the old assignments and the old version.
    let read = sim.get(&routing_user(&id), &token).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["skills"], user["skills"]);
    assert_eq!(version(&read.body), version(&user));
    assert_eq!(sim.state().await, before, "a lost write changes nothing");

    // A client that trusts the answered version finds out on its next conditional write.
    let answered = format!("\"{}\"", version(&answer.body));
    let next = sim
        .call(
            Method::PUT,
            &routing_user(&id),
            Some(&token),
            Some(json!({ "skills": wanted })),
            &[("If-Match", answered.as_str())],
        )
        .await;
    assert_eq!(next.status, 412, "{}", next.body);

    let stats = sim.stats().await;
    assert_eq!(stats["writesLost"], 1, "{stats}");
    assert_eq!(
        stats["cacheRebuilds"], 0,
        "nothing reached the routing cache"
    );
}

#[tokio::test]
async fn every_bulk_entry_can_be_lost_and_each_one_is_counted() {
    let sim = start_losing(1.0).await;
    let token = sim.token().await;
    let before = sim.state().await;
    let users: Vec<Value> = skilled_users(&before).into_iter().take(3).collect();
    let entries: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut entry = json!({ "userId": u["id"], "skills": skills_changed(u) });
            // Versioned and unversioned entries are lost alike.
            if i == 0 {
                entry["version"] = u["version"].clone();
            }
            entry
        })
        .collect();

    let answer = sim
        .post(
            "/api/v2/routing/users/bulk",
            &token,
            json!({ "users": entries }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["succeeded"], 3, "{}", answer.body);
    assert_eq!(answer.body["failed"], 0);
    for (result, user) in answer.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&users)
    {
        assert_eq!(result["userId"], user["id"]);
        assert_eq!(result["status"], 200, "{result}");
        assert_eq!(version(result), version(user) + 1);
        assert!(result.get("error").is_none(), "{result}");
    }

    for user in &users {
        let read = sim.get(&routing_user(&common::id_of(user)), &token).await;
        assert_eq!(read.body["skills"], user["skills"]);
        assert_eq!(version(&read.body), version(user));
    }
    assert_eq!(sim.state().await, before);
    let stats = sim.stats().await;
    assert_eq!(stats["writesLost"], 3, "{stats}");
    assert_eq!(stats["cacheRebuilds"], 0, "{stats}");
}

#[tokio::test]
async fn a_lost_users_dialect_put_loses_the_skills_and_the_name_alike() {
    let sim = start_losing(1.0).await;
    let token = sim.token().await;
    let before = sim.state().await;
    let user = skilled_users(&before)[0].clone();
    let id = common::id_of(&user);
    let path = format!("/api/v2/users/{id}");
    let shown = sim.get(&path, &token).await;
    assert_eq!(shown.status, 200);
    let mut proficiencies = shown.body["skills"]["proficiencies"].clone();
    let level = proficiencies[0]["level"].as_u64().unwrap();
    proficiencies[0]["level"] = json!(level % 10 + 1);

    let answer = sim
        .put(
            &path,
            &token,
            json!({ "firstName": "Renamed", "skills": { "proficiencies": proficiencies } }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["firstName"], "Renamed");
    assert_eq!(answer.body["skills"]["proficiencies"], proficiencies);
    assert_eq!(version(&answer.body), version(&user) + 1);
    assert_eq!(
        answer.header("etag"),
        Some(format!("\"{}\"", version(&user) + 1))
    );

    let read = sim.get(&path, &token).await;
    assert_eq!(read.body, shown.body, "the read-back shows the old user");
    assert_eq!(sim.state().await, before);
    assert_eq!(writes_lost(&sim).await, 1);
}

/// A non-production queue and the user a test interaction on it routes to now.
async fn routed_queue(sim: &TestSim, token: &str) -> (String, String) {
    let queues = sim.get("/api/v2/routing/queues?pageSize=500", token).await;
    for queue in queues.body["entities"].as_array().unwrap() {
        if queue["production"] == true {
            continue;
        }
        let id = common::id_of(queue);
        let answer = sim
            .post(INTERACTIONS, token, json!({ "queueId": id }))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        if let Some(user) = answer.body["userId"].as_str() {
            return (id, user.to_string());
        }
    }
    panic!("no non-production queue routes to anyone in the generated tenant");
}

async fn route(sim: &TestSim, token: &str, queue: &str) -> Option<String> {
    let answer = sim
        .post(INTERACTIONS, token, json!({ "queueId": queue }))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["userId"].as_str().map(str::to_string)
}

#[tokio::test]
async fn a_lost_write_never_reaches_the_routing_cache_and_a_kept_one_does() {
    // Quiet knobs: no propagation delay, so a kept write routes at once.
    let sim = start_losing(1.0).await;
    let token = sim.token().await;
    let (queue, agent) = routed_queue(&sim, &token).await;

    let lost = sim
        .put(&routing_user(&agent), &token, json!({ "skills": [] }))
        .await;
    assert_eq!(lost.status, 200, "{}", lost.body);
    assert_eq!(lost.body["skills"], json!([]));
    assert_eq!(
        route(&sim, &token, &queue).await.as_deref(),
        Some(agent.as_str())
    );

    sim.set_knobs(json!({ "loseWriteRate": 0.0 })).await;
    let kept = sim
        .put(&routing_user(&agent), &token, json!({ "skills": [] }))
        .await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_ne!(
        route(&sim, &token, &queue).await.as_deref(),
        Some(agent.as_str()),
        "a user without skills no longer routes"
    );
    assert_eq!(writes_lost(&sim).await, 1);
}

#[tokio::test]
async fn at_rate_zero_no_write_is_lost_in_either_dialect() {
    let sim = start_losing(0.0).await;
    let token = sim.token().await;
    let state = sim.state().await;
    let users = skilled_users(&state);
    let (single, bulk, dialect) = (&users[0], &users[1], &users[2]);

    let wanted = skills_changed(single);
    let id = common::id_of(single);
    assert_eq!(
        sim.put(&routing_user(&id), &token, json!({ "skills": wanted }))
            .await
            .status,
        200
    );
    let read = sim.get(&routing_user(&id), &token).await;
    assert_eq!(read.body["skills"], wanted);
    assert_eq!(version(&read.body), version(single) + 1);

    let wanted = skills_changed(bulk);
    let answer = sim
        .post(
            "/api/v2/routing/users/bulk",
            &token,
            json!({ "users": [{ "userId": bulk["id"], "skills": wanted }] }),
        )
        .await;
    assert_eq!(answer.body["succeeded"], 1, "{}", answer.body);
    let read = sim.get(&routing_user(&common::id_of(bulk)), &token).await;
    assert_eq!(read.body["skills"], wanted);

    let path = format!("/api/v2/users/{}", common::id_of(dialect));
    assert_eq!(
        sim.put(&path, &token, json!({ "lastName": "Kept" }))
            .await
            .status,
        200
    );
    assert_eq!(sim.get(&path, &token).await.body["lastName"], "Kept");

    assert_eq!(writes_lost(&sim).await, 0);
}

/// Writes `rounds` changes to every skilled user, one round at a time (users of a round in
/// parallel when `concurrent`), and returns which (user, round) writes the tenant lost.
async fn lost_pattern(sim: &TestSim, rounds: usize, concurrent: bool) -> BTreeSet<(String, usize)> {
    let token = sim.token().await;
    let mut lost = BTreeSet::new();
    for round in 0..rounds {
        let state = sim.state().await;
        let users = skilled_users(&state);
        let write = |user: Value| {
            let token = token.clone();
            async move {
                let id = common::id_of(&user);
                let answer = sim
                    .put(
                        &routing_user(&id),
                        &token,
                        json!({ "skills": skills_changed(&user) }),
                    )
                    .await;
                assert_eq!(answer.status, 200, "{}", answer.body);
                (id, version(&user))
            }
        };
        let written: Vec<(String, u64)> = if concurrent {
            futures::future::join_all(users.into_iter().map(write)).await
        } else {
            let mut written = Vec::new();
            for user in users {
                written.push(write(user).await);
            }
            written
        };
        for (id, before) in written {
            let read = sim.get(&routing_user(&id), &token).await;
            if version(&read.body) == before {
                lost.insert((id, round));
            } else {
                assert_eq!(version(&read.body), before + 1);
            }
        }
    }
    assert_eq!(writes_lost(sim).await, lost.len() as u64);
    lost
}

#[tokio::test]
async fn which_writes_are_lost_is_reproducible_whatever_the_order_of_arrival() {
    let sequential = start_losing(0.5).await;
    let first = lost_pattern(&sequential, 3, false).await;
    let writes = 3 * skilled_users(&sequential.state().await).len();
    assert!(
        !first.is_empty() && first.len() < writes,
        "at rate 0.5 some of {writes} writes are lost and some kept: {first:?}"
    );

    // Another simulator over the same tenant, the same writes sent concurrently: the same ones
    // are lost.
    let concurrent = start_losing(0.5).await;
    assert_eq!(lost_pattern(&concurrent, 3, true).await, first);

    // A reset starts the decisions over, too.
    let response = sequential
        .http
        .post(sequential.url("/sim/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(writes_lost(&sequential).await, 0);
    assert_eq!(lost_pattern(&sequential, 3, false).await, first);
}

#[tokio::test]
async fn lose_write_rate_outside_zero_to_one_is_refused() {
    let sim = common::start().await;
    for bad in [
        json!({ "loseWriteRate": 1.5 }),
        json!({ "loseWriteRate": -0.1 }),
        json!({ "loseWriteRate": "often" }),
    ] {
        let response = sim
            .http
            .patch(sim.url("/sim/config"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad} was accepted");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "VALIDATION_ERROR", "{body}");
    }
    sim.set_knobs(json!({ "loseWriteRate": 1 })).await;
    sim.set_knobs(json!({ "loseWriteRate": 0 })).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        knobs: Knobs {
            lose_write_rate: 1.01,
            ..Knobs::quiet()
        },
        ..SimConfig::quiet(common::small_tenant())
    };
    let error = skillsync_sim::Simulator::new(listener, config)
        .err()
        .expect("a rate over 1 is refused at start");
    assert!(
        matches!(
            error,
            SimError::NotAProbability {
                knob: "lose-write-rate",
                ..
            }
        ),
        "{error:?}"
    );
}

//! `--reject-write-rate` (knob `rejectWriteRate`): a tenant that refuses user writes with a 400
//! while reads keep working. A refused write changes nothing; a malformed, unknown-user or stale
//! write still gets its own error first.

mod common;

use std::collections::BTreeSet;

use common::TestSim;
use reqwest::Method;
use serde_json::{Value, json};
use skillsync_sim::{Knobs, SimConfig, SimError};

const BULK: &str = "/api/v2/routing/users/bulk";
const REJECTED: &str = "rejected by the tenant (--reject-write-rate); nothing was changed";

fn routing_user(id: &str) -> String {
    format!("/api/v2/routing/users/{id}")
}

fn dialect_user(id: &str) -> String {
    format!("/api/v2/users/{id}")
}

async fn start_rejecting(rate: f64) -> TestSim {
    common::start_knobs(Knobs {
        reject_write_rate: rate,
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

async fn writes_rejected(sim: &TestSim) -> u64 {
    sim.stats().await["writesRejected"].as_u64().unwrap()
}

/// The body of a single write the tenant refused: the API's usual 400.
fn assert_rejected(answer: &common::Answer) {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["status"], 400, "{}", answer.body);
    assert_eq!(answer.body["code"], "VALIDATION_ERROR", "{}", answer.body);
    assert_eq!(
        answer.body["details"],
        json!([{ "field": "body", "message": REJECTED }]),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["message"], format!("body: {REJECTED}"));
    assert_eq!(answer.header("etag"), None, "no version is answered");
}

#[tokio::test]
async fn a_rejected_routing_put_is_a_400_and_the_tenant_keeps_the_old_state() {
    let sim = start_rejecting(1.0).await;
    let token = sim.token().await;
    let before = sim.state().await;
    let user = skilled_users(&before)[0].clone();
    let id = common::id_of(&user);

    let answer = sim
        .put(
            &routing_user(&id),
            &token,
            json!({ "skills": skills_changed(&user) }),
        )
        .await;
    assert_rejected(&answer);

    // Reads keep working and show the old assignments at the old version.
    let read = sim.get(&routing_user(&id), &token).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["skills"], user["skills"]);
    assert_eq!(version(&read.body), version(&user));
    let list = sim.get("/api/v2/routing/users?pageSize=500", &token).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(
        sim.state().await,
        before,
        "a rejected write changes nothing"
    );

    let stats = sim.stats().await;
    assert_eq!(stats["writesRejected"], 1, "{stats}");
    assert_eq!(stats["writesLost"], 0, "{stats}");
    assert_eq!(stats["cacheRebuilds"], 0, "{stats}");
}

#[tokio::test]
async fn every_bulk_entry_is_refused_on_its_own_and_each_one_is_counted() {
    let sim = start_rejecting(1.0).await;
    let token = sim.token().await;
    let before = sim.state().await;
    let users: Vec<Value> = skilled_users(&before).into_iter().take(3).collect();
    let entries: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut entry = json!({ "userId": u["id"], "skills": skills_changed(u) });
            // Versioned and unversioned entries are refused alike.
            if i == 0 {
                entry["version"] = u["version"].clone();
            }
            entry
        })
        .collect();

    let answer = sim.post(BULK, &token, json!({ "users": entries })).await;
    // The request as a whole is answered; each entry carries its refusal, as an invalid one does.
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["succeeded"], 0, "{}", answer.body);
    assert_eq!(answer.body["failed"], 3, "{}", answer.body);
    let results = answer.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (i, (result, user)) in results.iter().zip(&users).enumerate() {
        assert_eq!(
            *result,
            json!({
                "userId": user["id"],
                "status": 400,
                "error": format!("users[{i}]: {REJECTED}"),
            })
        );
    }

    for user in &users {
        let read = sim.get(&routing_user(&common::id_of(user)), &token).await;
        assert_eq!(read.status, 200);
        assert_eq!(read.body["skills"], user["skills"]);
        assert_eq!(version(&read.body), version(user));
    }
    assert_eq!(sim.state().await, before);
    let stats = sim.stats().await;
    assert_eq!(stats["writesRejected"], 3, "{stats}");
    assert_eq!(stats["cacheRebuilds"], 0, "{stats}");
}

#[tokio::test]
async fn a_rejected_users_dialect_put_is_a_400_and_changes_nothing() {
    let sim = start_rejecting(1.0).await;
    let token = sim.token().await;
    let before = sim.state().await;
    let user = skilled_users(&before)[0].clone();
    let path = dialect_user(&common::id_of(&user));
    let shown = sim.get(&path, &token).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
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
    assert_rejected(&answer);

    let read = sim.get(&path, &token).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, shown.body, "the read-back shows the old user");
    assert_eq!(sim.get("/api/v2/users", &token).await.status, 200);
    assert_eq!(sim.state().await, before);
    assert_eq!(writes_rejected(&sim).await, 1);
}

#[tokio::test]
async fn a_bad_write_still_gets_its_own_error_and_is_not_counted_as_rejected() {
    let sim = start_rejecting(1.0).await;
    let token = sim.token().await;
    let before = sim.state().await;
    let user = skilled_users(&before)[0].clone();
    let id = common::id_of(&user);

    let mut skills = user["skills"].clone();
    skills[0]["level"] = json!(99);
    let invalid = sim
        .put(&routing_user(&id), &token, json!({ "skills": skills }))
        .await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    assert_eq!(common::detail_fields(&invalid.body), ["skills[0].level"]);

    let unknown = sim
        .put(
            &routing_user("no-such-user"),
            &token,
            json!({ "skills": [] }),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let stale = format!("\"{}\"", version(&user) + 7);
    let routing_stale = sim
        .call(
            Method::PUT,
            &routing_user(&id),
            Some(&token),
            Some(json!({ "skills": skills_changed(&user) })),
            &[("If-Match", stale.as_str())],
        )
        .await;
    assert_eq!(routing_stale.status, 412, "{}", routing_stale.body);
    let dialect_stale = sim
        .call(
            Method::PUT,
            &dialect_user(&id),
            Some(&token),
            Some(json!({ "lastName": "Stale" })),
            &[("If-Match", stale.as_str())],
        )
        .await;
    assert_eq!(dialect_stale.status, 409, "{}", dialect_stale.body);

    let bulk = sim
        .post(
            BULK,
            &token,
            json!({ "users": [
                { "userId": "no-such-user", "skills": [] },
                { "userId": user["id"], "skills": skills },
                { "userId": user["id"], "version": version(&user) + 7, "skills": [] },
            ] }),
        )
        .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    let statuses: Vec<&Value> = bulk.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [404, 400, 412], "{}", bulk.body);
    let invalid_entry = bulk.body["results"][1]["error"].as_str().unwrap();
    assert!(
        invalid_entry.starts_with("users[1].skills[0].level"),
        "{invalid_entry}"
    );

    assert_eq!(sim.state().await, before);
    assert_eq!(writes_rejected(&sim).await, 0);
}

#[tokio::test]
async fn at_rate_zero_nothing_is_rejected_and_the_knob_turns_at_runtime() {
    let sim = start_rejecting(0.0).await;
    let token = sim.token().await;
    let state = sim.state().await;
    let users = skilled_users(&state);
    let (single, bulk, dialect) = (&users[0], &users[1], &users[2]);

    let wanted = skills_changed(single);
    let id = common::id_of(single);
    let kept = sim
        .put(&routing_user(&id), &token, json!({ "skills": wanted }))
        .await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    let read = sim.get(&routing_user(&id), &token).await;
    assert_eq!(read.body["skills"], wanted);
    assert_eq!(version(&read.body), version(single) + 1);

    let wanted = skills_changed(bulk);
    let answer = sim
        .post(
            BULK,
            &token,
            json!({ "users": [{ "userId": bulk["id"], "skills": wanted }] }),
        )
        .await;
    assert_eq!(answer.body["succeeded"], 1, "{}", answer.body);
    let read = sim.get(&routing_user(&common::id_of(bulk)), &token).await;
    assert_eq!(read.body["skills"], wanted);

    let path = dialect_user(&common::id_of(dialect));
    let kept = sim.put(&path, &token, json!({ "lastName": "Kept" })).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(sim.get(&path, &token).await.body["lastName"], "Kept");
    assert_eq!(writes_rejected(&sim).await, 0);

    // Turned up while running: the same user's next write is refused...
    sim.set_knobs(json!({ "rejectWriteRate": 1.0 })).await;
    let config: Value = sim
        .http
        .get(sim.url("/sim/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["rejectWriteRate"], 1.0, "{config}");
    let refused = sim
        .put(&path, &token, json!({ "lastName": "Refused" }))
        .await;
    assert_rejected(&refused);
    assert_eq!(sim.get(&path, &token).await.body["lastName"], "Kept");

    // ...and turned down again, it is taken.
    sim.set_knobs(json!({ "rejectWriteRate": 0 })).await;
    let taken = sim.put(&path, &token, json!({ "lastName": "Taken" })).await;
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert_eq!(sim.get(&path, &token).await.body["lastName"], "Taken");
    assert_eq!(writes_rejected(&sim).await, 1);
}

/// Writes `rounds` changes to every skilled user, one round at a time (users of a round in
/// parallel when `concurrent`), and returns which (user, round) writes the tenant refused.
async fn rejected_pattern(
    sim: &TestSim,
    rounds: usize,
    concurrent: bool,
) -> BTreeSet<(String, usize)> {
    let token = sim.token().await;
    let mut rejected = BTreeSet::new();
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
                (id, version(&user), answer)
            }
        };
        let written: Vec<(String, u64, common::Answer)> = if concurrent {
            futures::future::join_all(users.into_iter().map(write)).await
        } else {
            let mut written = Vec::new();
            for user in users {
                written.push(write(user).await);
            }
            written
        };
        for (id, before, answer) in written {
            let read = sim.get(&routing_user(&id), &token).await;
            if answer.status == 400 {
                assert_rejected(&answer);
                assert_eq!(version(&read.body), before, "a refused write is not kept");
                rejected.insert((id, round));
            } else {
                assert_eq!(answer.status, 200, "{}", answer.body);
                assert_eq!(version(&read.body), before + 1);
            }
        }
    }
    assert_eq!(writes_rejected(sim).await, rejected.len() as u64);
    rejected
}

#[tokio::test]
async fn which_writes_are_rejected_is_reproducible_whatever_the_order_of_arrival() {
    let sequential = start_rejecting(0.5).await;
    let first = rejected_pattern(&sequential, 3, false).await;
    let writes = 3 * skilled_users(&sequential.state().await).len();
    assert!(
        !first.is_empty() && first.len() < writes,
        "at rate 0.5 some of {writes} writes are refused and some taken: {first:?}"
    );

    // Another simulator over the same tenant, the same writes sent concurrently: the same ones
    // are refused.
    let concurrent = start_rejecting(0.5).await;
    assert_eq!(rejected_pattern(&concurrent, 3, true).await, first);

    // A reset starts the decisions over, too.
    let response = sequential
        .http
        .post(sequential.url("/sim/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(writes_rejected(&sequential).await, 0);
    assert_eq!(rejected_pattern(&sequential, 3, false).await, first);

    // Lost writes draw from their own counter and stream: losing some of the taken writes does
    // not move which ones are refused.
    let also_losing = common::start_knobs(Knobs {
        reject_write_rate: 0.5,
        lose_write_rate: 0.5,
        ..Knobs::quiet()
    })
    .await;
    let token = also_losing.token().await;
    let mut refused = BTreeSet::new();
    for round in 0..3 {
        // Whether a write is refused depends on the user and how many of its writes passed
        // their checks, not on what is written, so the lost writes' different states do not
        // matter.
        for user in skilled_users(&also_losing.state().await) {
            let id = common::id_of(&user);
            let answer = also_losing
                .put(
                    &routing_user(&id),
                    &token,
                    json!({ "skills": skills_changed(&user) }),
                )
                .await;
            match answer.status.as_u16() {
                400 => {
                    assert_rejected(&answer);
                    refused.insert((id, round));
                }
                status => assert_eq!(status, 200, "{}", answer.body),
            }
        }
    }
    assert_eq!(refused, first);
    let stats = also_losing.stats().await;
    assert_eq!(stats["writesRejected"], first.len() as u64, "{stats}");
    assert!(
        stats["writesLost"].as_u64().unwrap() > 0,
        "some taken writes were lost: {stats}"
    );
}

#[tokio::test]
async fn reject_write_rate_outside_zero_to_one_is_refused() {
    let sim = common::start().await;
    for bad in [
        json!({ "rejectWriteRate": 1.5 }),
        json!({ "rejectWriteRate": -0.1 }),
        json!({ "rejectWriteRate": "often" }),
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
    sim.set_knobs(json!({ "rejectWriteRate": 1 })).await;
    sim.set_knobs(json!({ "rejectWriteRate": 0 })).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        knobs: Knobs {
            reject_write_rate: 1.01,
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
                knob: "reject-write-rate",
                ..
            }
        ),
        "{error:?}"
    );
}

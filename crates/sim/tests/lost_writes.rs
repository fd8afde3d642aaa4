//! `--lose-write-rate` (knob `loseWriteRate`): a tenant that answers a user write exactly as a
//! success and does not keep it. Only a read-back can tell; these tests are that read-back.

mod common;

use common::{
    Answer, TestSim, WriteFault, assert_bulk_answered, assert_every_kind_of_write_is_kept,
    assert_fault_pattern_is_reproducible, assert_rate_outside_zero_to_one_is_refused, etag, id_of,
    routing_user, skills_changed, version_of,
};
use serde_json::json;

const INTERACTIONS: &str = "/api/v2/interactions/test";
const LOSE: WriteFault = WriteFault::Lose;

/// Checks the answer is indistinguishable from a kept write to `user`: 200, a new version and
/// its ETag.
fn assert_answered_as_kept(answer: &Answer, user: &serde_json::Value) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(version_of(&answer.body), version_of(user) + 1);
    assert_eq!(answer.header("etag"), Some(etag(version_of(user) + 1)));
}

#[tokio::test]
async fn a_lost_routing_put_answers_like_a_success_but_the_tenant_keeps_the_old_state() {
    let scene = LOSE.on_every_write().await;
    let (sim, token, user) = (&scene.sim, &scene.token, &scene.user);
    let wanted = skills_changed(user);

    let answer = sim.put_skills(token, &scene.id(), wanted.clone()).await;
    // Indistinguishable from a kept write: 200, the new list, a new version and its ETag.
    assert_answered_as_kept(&answer, user);
    assert_eq!(answer.body["skills"], wanted);

    // The read-back shows the old assignments and the old version.
    sim.assert_reads_back_unchanged(token, user).await;

    // A client that trusts the answered version finds out on its next conditional write.
    let next = sim
        .put_if_match(
            &routing_user(&scene.id()),
            token,
            json!({ "skills": wanted }),
            version_of(&answer.body),
        )
        .await;
    assert_eq!(next.status, 412, "{}", next.body);

    scene.assert_nothing_changed(1).await;
}

#[tokio::test]
async fn every_bulk_entry_can_be_lost_and_each_one_is_counted() {
    let scene = LOSE.on_every_write().await;
    // Versioned and unversioned entries are lost alike.
    let (users, answer) = scene.change_three_in_bulk().await;
    assert_bulk_answered(&answer, 3, 0);
    for (result, user) in answer.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&users)
    {
        assert_eq!(result["userId"], user["id"]);
        assert_eq!(result["status"], 200, "{result}");
        assert_eq!(version_of(result), version_of(user) + 1);
        assert!(result.get("error").is_none(), "{result}");
    }

    scene.assert_users_unchanged(&users).await;
}

#[tokio::test]
async fn a_lost_users_dialect_put_loses_the_skills_and_the_name_alike() {
    let scene = LOSE.on_every_write().await;
    let write = scene.rename_and_change_proficiencies().await;

    let answer = &write.answer;
    assert_answered_as_kept(answer, &scene.user);
    assert_eq!(answer.body["firstName"], "Renamed");
    assert_eq!(answer.body["skills"]["proficiencies"], write.proficiencies);

    scene.assert_dialect_reads_back_unchanged(&write).await;
    scene.assert_nothing_changed(1).await;
}

/// A non-production queue and the user a test interaction on it routes to now.
async fn routed_queue(sim: &TestSim, token: &str) -> (String, String) {
    let queues = sim.get("/api/v2/routing/queues?pageSize=500", token).await;
    for queue in queues.body["entities"].as_array().unwrap() {
        if queue["production"] == true {
            continue;
        }
        let id = id_of(queue);
        if let Some(user) = route(sim, token, &id).await {
            return (id, user);
        }
    }
    panic!("no non-production queue routes to anyone in the generated tenant");
}

/// The user a test interaction on the queue routes to now, if any.
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
    let sim = LOSE.start(1.0).await;
    let token = sim.token().await;
    let (queue, agent) = routed_queue(&sim, &token).await;

    let lost = sim.put_skills(&token, &agent, json!([])).await;
    assert_eq!(lost.status, 200, "{}", lost.body);
    assert_eq!(lost.body["skills"], json!([]));
    assert_eq!(
        route(&sim, &token, &queue).await.as_deref(),
        Some(agent.as_str())
    );

    sim.set_knobs(json!({ "loseWriteRate": 0.0 })).await;
    let kept = sim.put_skills(&token, &agent, json!([])).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_ne!(
        route(&sim, &token, &queue).await.as_deref(),
        Some(agent.as_str()),
        "a user without skills no longer routes"
    );
    assert_eq!(sim.stat(LOSE.counter()).await, 1);
}

#[tokio::test]
async fn at_rate_zero_no_write_is_lost_in_either_dialect() {
    let sim = LOSE.start(0.0).await;
    assert_every_kind_of_write_is_kept(&sim, LOSE).await;
}

#[tokio::test]
async fn which_writes_are_lost_is_reproducible_whatever_the_order_of_arrival() {
    // A lost write is answered as a success; only the read-back shows it was not kept.
    assert_fault_pattern_is_reproducible(LOSE, &|answer, kept| {
        assert_eq!(answer.status, 200, "{}", answer.body);
        !kept
    })
    .await;
}

#[tokio::test]
async fn lose_write_rate_outside_zero_to_one_is_refused() {
    assert_rate_outside_zero_to_one_is_refused(LOSE).await;
}

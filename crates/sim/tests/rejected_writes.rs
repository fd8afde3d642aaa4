//! `--reject-write-rate` (knob `rejectWriteRate`): a tenant that refuses user writes with a 400
//! while reads keep working. A refused write changes nothing; a malformed, unknown-user or stale
//! write still gets its own error first.

mod common;

use std::collections::BTreeSet;

use common::{
    Answer, Arrival, WriteFault, assert_bulk_answered, assert_every_kind_of_write_is_kept,
    assert_fault_pattern_is_reproducible, assert_rate_outside_zero_to_one_is_refused,
    detail_fields, dialect_user, routing_user, skills_changed, version_of,
};
use serde_json::{Value, json};
use skillsync_sim::Knobs;

const REJECTED: &str = "rejected by the tenant (--reject-write-rate); nothing was changed";
const REJECT: WriteFault = WriteFault::Reject;
const LOSE: WriteFault = WriteFault::Lose;

/// The body of a single write the tenant refused: the API's usual 400.
fn assert_rejected(answer: &Answer) {
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

/// Whether a write met a rejection: then it is answered as refused and not kept, and otherwise
/// it is taken and kept.
fn rejected(answer: &Answer, kept: bool) -> bool {
    if answer.status == 400 {
        assert_rejected(answer);
        assert!(!kept, "a refused write is not kept");
        true
    } else {
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(kept, "a taken write is kept");
        false
    }
}

#[tokio::test]
async fn a_rejected_routing_put_is_a_400_and_the_tenant_keeps_the_old_state() {
    let scene = REJECT.on_every_write().await;
    let (sim, token, user) = (&scene.sim, &scene.token, &scene.user);

    let answer = sim
        .put_skills(token, &scene.id(), skills_changed(user))
        .await;
    assert_rejected(&answer);

    // Reads keep working and show the old assignments at the old version.
    sim.assert_reads_back_unchanged(token, user).await;
    let list = sim.get("/api/v2/routing/users?pageSize=500", token).await;
    assert_eq!(list.status, 200, "{}", list.body);

    scene.assert_nothing_changed(1).await;
    assert_eq!(
        sim.stat(LOSE.counter()).await,
        0,
        "a refused write is not lost"
    );
}

#[tokio::test]
async fn every_bulk_entry_is_refused_on_its_own_and_each_one_is_counted() {
    let scene = REJECT.on_every_write().await;
    // Versioned and unversioned entries are refused alike.
    let (users, answer) = scene.change_three_in_bulk().await;
    // The request as a whole is answered; each entry carries its refusal, as an invalid one does.
    assert_bulk_answered(&answer, 0, 3);
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

    scene.assert_users_unchanged(&users).await;
}

#[tokio::test]
async fn a_rejected_users_dialect_put_is_a_400_and_changes_nothing() {
    let scene = REJECT.on_every_write().await;
    let write = scene.rename_and_change_proficiencies().await;
    assert_rejected(&write.answer);

    scene.assert_dialect_reads_back_unchanged(&write).await;
    assert_eq!(
        scene.sim.get("/api/v2/users", &scene.token).await.status,
        200
    );
    scene.assert_nothing_changed(1).await;
}

#[tokio::test]
async fn a_bad_write_still_gets_its_own_error_and_is_not_counted_as_rejected() {
    let scene = REJECT.on_every_write().await;
    let (sim, token, user) = (&scene.sim, &scene.token, &scene.user);
    let id = scene.id();

    let mut skills = user["skills"].clone();
    skills[0]["level"] = json!(99);
    let invalid = sim.put_skills(token, &id, skills.clone()).await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    assert_eq!(detail_fields(&invalid.body), ["skills[0].level"]);

    let unknown = sim.put_skills(token, "no-such-user", json!([])).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let stale = version_of(user) + 7;
    let routing_stale = sim
        .put_if_match(
            &routing_user(&id),
            token,
            json!({ "skills": skills_changed(user) }),
            stale,
        )
        .await;
    assert_eq!(routing_stale.status, 412, "{}", routing_stale.body);
    let dialect_stale = sim
        .put_if_match(
            &dialect_user(&id),
            token,
            json!({ "lastName": "Stale" }),
            stale,
        )
        .await;
    assert_eq!(dialect_stale.status, 409, "{}", dialect_stale.body);

    let bulk = sim
        .put_skills_in_bulk(
            token,
            vec![
                json!({ "userId": "no-such-user", "skills": [] }),
                json!({ "userId": user["id"], "skills": skills }),
                json!({ "userId": user["id"], "version": stale, "skills": [] }),
            ],
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

    scene.assert_nothing_changed(0).await;
}

#[tokio::test]
async fn at_rate_zero_nothing_is_rejected_and_the_knob_turns_at_runtime() {
    let sim = REJECT.start(0.0).await;
    let token = sim.token().await;
    let path = assert_every_kind_of_write_is_kept(&sim, REJECT).await;

    // Turned up while running: the same user's next write is refused...
    sim.set_knobs(json!({ "rejectWriteRate": 1.0 })).await;
    let config = sim.config().await;
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
    assert_eq!(sim.stat(REJECT.counter()).await, 1);
}

#[tokio::test]
async fn which_writes_are_rejected_is_reproducible_whatever_the_order_of_arrival() {
    let first = assert_fault_pattern_is_reproducible(REJECT, &rejected).await;

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
        for write in also_losing
            .change_every_skilled_user(&token, Arrival::OneByOne)
            .await
        {
            match write.answer.status.as_u16() {
                400 => {
                    assert_rejected(&write.answer);
                    refused.insert((write.id, round));
                }
                status => assert_eq!(status, 200, "{}", write.answer.body),
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
    assert_rate_outside_zero_to_one_is_refused(REJECT).await;
}

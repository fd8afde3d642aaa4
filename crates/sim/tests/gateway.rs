//! SPEC 1.6: the gateway in front of the API (token buckets, in-flight cap, faults before and
//! after commit, dropped connections), knobs changed at run time, and the other integration.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Answer, TestSim};
use serde_json::{Value, json};
use skillsync_sim::{ClientSpec, GenerateOptions, Knobs, Rate, SimConfig, TenantSource};

const SKILLS: &str = "/api/v2/routing/skills";
const TOKEN: &str = "/api/v2/oauth/token";

async fn request_token(sim: &TestSim, id: &str, secret: &str) -> Answer {
    let response = sim
        .http
        .post(sim.url(TOKEN))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

async fn demo_token(sim: &TestSim) -> Answer {
    request_token(
        sim,
        skillsync_sim::DEMO_CLIENT_ID,
        skillsync_sim::DEMO_CLIENT_SECRET,
    )
    .await
}

/// A 429 with an integer `Retry-After` of at least one second that the body repeats.
fn retry_after(answer: &Answer, code: &str) -> u64 {
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.body["code"], code, "{}", answer.body);
    let header = answer
        .header("retry-after")
        .expect("a 429 carries Retry-After");
    let seconds: u64 = header
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After `{header}` is not whole seconds"));
    assert!(seconds >= 1, "Retry-After {seconds}");
    assert_eq!(answer.body["retryAfterSeconds"], seconds);
    seconds
}

fn count(stats: &Value, method: &str, route: &str, status: u16) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["route"] == route && r["status"] == status)
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

fn is_5xx(status: reqwest::StatusCode) -> bool {
    [500, 502, 503].contains(&status.as_u16())
}

/// A limit so slow that real time cannot refill the bucket during a test: only the sim clock can.
fn one_per_minute(burst: u32) -> Knobs {
    Knobs {
        rate_limit: Rate::per_minute(1.0),
        burst,
        ..Knobs::quiet()
    }
}

#[tokio::test]
async fn request_over_the_burst_gets_429_with_integer_retry_after_and_is_counted() {
    let sim = common::start_knobs(one_per_minute(5)).await;
    let token = sim.token().await;
    for i in 0..5 {
        let answer = sim.get(SKILLS, &token).await;
        assert_eq!(answer.status, 200, "request {i} is within the burst");
    }
    let sixth = sim.get(SKILLS, &token).await;
    let seconds = retry_after(&sixth, "RATE_LIMITED");
    assert!(seconds <= 60, "one token a minute: Retry-After {seconds}");

    let stats = sim.stats().await;
    assert_eq!(stats["throttled"], 1);
    assert_eq!(count(&stats, "GET", SKILLS, 429), 1);
    assert_eq!(count(&stats, "GET", SKILLS, 200), 5);
}

#[tokio::test]
async fn advancing_the_sim_clock_refills_the_bucket() {
    let sim = common::start_knobs(one_per_minute(5)).await;
    let token = sim.token().await;
    for _ in 0..5 {
        assert_eq!(sim.get(SKILLS, &token).await.status, 200);
    }
    let seconds = retry_after(&sim.get(SKILLS, &token).await, "RATE_LIMITED");
    // Obeying Retry-After on the simulator's clock succeeds, without sleeping...
    sim.advance_clock(&format!("{seconds}s")).await;
    assert_eq!(sim.get(SKILLS, &token).await.status, 200);
    // ...and refills at the configured rate: one minute bought one request, not a burst.
    retry_after(&sim.get(SKILLS, &token).await, "RATE_LIMITED");
    sim.advance_clock("5m").await;
    for _ in 0..5 {
        assert_eq!(sim.get(SKILLS, &token).await.status, 200);
    }
    retry_after(&sim.get(SKILLS, &token).await, "RATE_LIMITED");
    assert_eq!(sim.stats().await["throttled"], 3);
}

#[tokio::test]
async fn the_token_endpoint_has_its_own_bucket() {
    let sim = common::start_knobs(Knobs {
        token_rate_limit: Rate::per_minute(2.0),
        ..one_per_minute(2)
    })
    .await;
    let first = demo_token(&sim).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let token = first.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(sim.get(SKILLS, &token).await.status, 200);
    assert_eq!(sim.get(SKILLS, &token).await.status, 200);
    retry_after(&sim.get(SKILLS, &token).await, "RATE_LIMITED");

    // The tenant's bucket is empty; the token endpoint's is not.
    let second = demo_token(&sim).await;
    assert_eq!(second.status, 200, "{}", second.body);
    // Its own limit is much lower, and tokens spent there leave the tenant's bucket alone.
    let third = demo_token(&sim).await;
    let seconds = retry_after(&third, "RATE_LIMITED");
    assert!(seconds <= 30, "two a minute: Retry-After {seconds}");
    assert_eq!(count(&sim.stats().await, "POST", TOKEN, 429), 1);

    sim.advance_clock("60s").await;
    assert_eq!(sim.get(SKILLS, &token).await.status, 200);
    assert_eq!(demo_token(&sim).await.status, 200);
}

#[tokio::test]
async fn in_flight_cap_refuses_the_request_over_it_with_too_many_in_flight() {
    let sim = common::start().await;
    let token = sim.token().await;
    sim.set_knobs(json!({ "maxInFlight": 2, "latency": "1500ms" }))
        .await;
    let one = || sim.get(SKILLS, &token);
    let (a, b, c) = tokio::join!(one(), one(), one());
    let answers = [a, b, c];
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(refused.len(), 1, "{answers:?}");
    retry_after(refused[0], "TOO_MANY_IN_FLIGHT");
    assert_eq!(
        answers.iter().filter(|a| a.status == 200).count(),
        2,
        "{answers:?}"
    );
    assert_eq!(sim.stats().await["throttled"], 1);
    // The slots are given back when the requests finish.
    sim.set_knobs(json!({ "latency": "0ms" })).await;
    let (a, b) = tokio::join!(one(), one());
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200));
}

#[tokio::test]
async fn in_flight_cap_is_per_client() {
    let other = ClientSpec {
        id: "other-client".into(),
        secret: "other-secret".into(),
        scopes: skillsync_sim::ALL_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let sim = common::start_with(SimConfig {
        clients: vec![ClientSpec::demo(), other],
        ..SimConfig::quiet(common::small_tenant())
    })
    .await;
    let mine = sim.token().await;
    let theirs = request_token(&sim, "other-client", "other-secret").await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    let theirs = theirs.body["access_token"].as_str().unwrap().to_string();
    sim.set_knobs(json!({ "maxInFlight": 1, "latency": "1500ms" }))
        .await;
    let (a, b, c) = tokio::join!(
        sim.get(SKILLS, &mine),
        sim.get(SKILLS, &mine),
        sim.get(SKILLS, &theirs)
    );
    let mut mine_statuses = [a.status.as_u16(), b.status.as_u16()];
    mine_statuses.sort();
    assert_eq!(mine_statuses, [200, 429], "{a:?} {b:?}");
    assert_eq!(c.status, 200, "another client has its own cap: {c:?}");
}

fn new_skill(state: &Value, name: &str) -> Value {
    json!({
        "name": name,
        "locale": "en-us",
        "active": true,
        "description": "made by a gateway test",
        "routingProfileId": state["profiles"][0]["id"],
    })
}

fn skills_named(state: &Value, name: &str) -> usize {
    state["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] == name && d["locale"] == "en-us")
        .count()
}

#[tokio::test]
async fn fault_rate_one_answers_5xx_and_applies_nothing() {
    let sim = common::start().await;
    let before = sim.state().await;
    let token = sim.token().await;
    sim.set_knobs(json!({ "faultRate": 1.0 })).await;
    for _ in 0..10 {
        let answer = sim.get(SKILLS, &token).await;
        assert!(is_5xx(answer.status), "{answer:?}");
        assert_eq!(answer.body["status"], answer.status.as_u16());
    }
    for _ in 0..5 {
        let answer = sim
            .post(SKILLS, &token, new_skill(&before, "Faulted_Skill"))
            .await;
        assert!(is_5xx(answer.status), "{answer:?}");
    }
    let after = sim.state().await;
    assert_eq!(skills_named(&after, "Faulted_Skill"), 0);
    assert_eq!(after, before, "a fault before commit changes nothing");
    let stats = sim.stats().await;
    assert_eq!(stats["faultsBeforeCommit"], 15);
    assert_eq!(stats["faultsAfterCommit"], 0);
}

#[tokio::test]
async fn fault_after_commit_answers_502_but_the_write_happened_so_a_blind_retry_duplicates() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    sim.set_knobs(json!({ "faultAfterCommitRate": 1.0 })).await;
    // Reads are not writes: they answer normally.
    assert_eq!(sim.get(SKILLS, &token).await.status, 200);

    let body = new_skill(&state, "Committed_Anyway");
    let first = sim.post(SKILLS, &token, body.clone()).await;
    assert_eq!(first.status, 502, "{}", first.body);
    assert_eq!(skills_named(&sim.state().await, "Committed_Anyway"), 1);
    assert_eq!(sim.stats().await["duplicatesCreated"], 0);

    // The blind retry: the trap the client must avoid.
    let retry = sim.post(SKILLS, &token, body).await;
    assert_eq!(retry.status, 502, "{}", retry.body);
    assert_eq!(skills_named(&sim.state().await, "Committed_Anyway"), 2);
    let stats = sim.stats().await;
    assert_eq!(stats["duplicatesCreated"], 1);
    assert_eq!(stats["faultsAfterCommit"], 2);
    assert_eq!(count(&stats, "POST", SKILLS, 502), 2);
}

#[tokio::test]
async fn drop_rate_one_closes_the_connection_without_an_answer() {
    let sim = common::start().await;
    let token = sim.token().await;
    sim.set_knobs(json!({ "dropRate": 1.0 })).await;
    for _ in 0..3 {
        let result = sim
            .http
            .get(sim.url(SKILLS))
            .bearer_auth(&token)
            .send()
            .await;
        match result {
            Ok(response) => panic!("answered {} instead of dropping", response.status()),
            Err(error) => assert!(error.status().is_none(), "{error:?}"),
        }
    }
    let stats = sim.stats().await;
    assert!(
        stats["droppedConnections"].as_u64().unwrap() >= 3,
        "{stats}"
    );
    sim.set_knobs(json!({ "dropRate": 0.0 })).await;
    assert_eq!(sim.get(SKILLS, &token).await.status, 200);
}

async fn patch_config(sim: &TestSim, body: Value) -> (u16, Value) {
    let response = sim
        .http
        .patch(sim.url("/sim/config"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn config(sim: &TestSim) -> Value {
    let response = sim.http.get(sim.url("/sim/config")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn knobs_change_at_run_time_and_bad_values_or_names_are_refused() {
    let sim = common::start().await;
    let token = sim.token().await;
    assert_eq!(sim.get(SKILLS, &token).await.status, 200);

    let (status, body) = patch_config(&sim, json!({ "faultRate": 1.0, "rateLimit": "7/s" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faultRate"], 1.0);
    assert_eq!(config(&sim).await["rateLimit"], "7/s");
    assert!(is_5xx(sim.get(SKILLS, &token).await.status));
    sim.set_knobs(json!({ "faultRate": 0.0, "rateLimit": "off" }))
        .await;
    assert_eq!(sim.get(SKILLS, &token).await.status, 200);

    let before = config(&sim).await;
    for bad in [
        json!({ "faultRate": 1.5 }),
        json!({ "dropRate": -0.1 }),
        json!({ "faultAfterCommitRate": "often" }),
        json!({ "rateLimit": "ten/s" }),
        json!({ "rateLimit": "10/fortnight" }),
        json!({ "latency": "80ms..20ms" }),
        json!({ "propagation": "soon" }),
        json!({ "tokenTtl": "0s" }),
        json!({ "otherWriter": -1 }),
        json!({ "rateLimit": "10/s", "burst": 0 }),
        json!({ "maxInFlight": "two" }),
        // Half good, half bad: nothing is applied.
        json!({ "faultRate": 0.5, "dropRate": 2 }),
        json!(["faultRate", 1.0]),
    ] {
        let (status, body) = patch_config(&sim, bad.clone()).await;
        assert_eq!(status, 400, "{bad} was accepted: {body}");
        assert_eq!(body["code"], "VALIDATION_ERROR", "{body}");
    }
    let (status, body) = patch_config(&sim, json!({ "noSuchKnob": 1 })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["details"][0]["field"], "noSuchKnob", "{body}");
    assert_eq!(
        config(&sim).await,
        before,
        "refused changes are not half-applied"
    );
}

// ----- the other integration -----

async fn other_writer(sim: &TestSim) -> Value {
    let response = sim
        .http
        .get(sim.url("/sim/other-writer"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Polls until the other writer has made `at_least` writes (it is a background actor).
async fn wait_for_writes(sim: &TestSim, at_least: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = other_writer(sim).await;
        if log["writes"].as_u64().unwrap() >= at_least {
            return log;
        }
        assert!(Instant::now() < deadline, "only {} writes", log["writes"]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Turns the other writer off; reading its log then waits out any cycle in progress.
async fn pause_other_writer(sim: &TestSim) -> Value {
    sim.set_knobs(json!({ "otherWriter": 0 })).await;
    other_writer(sim).await
}

/// Ids of the definitions the other integration owns.
fn ext_ids(state: &Value) -> BTreeSet<String> {
    ["skills", "proficiencies"]
        .iter()
        .flat_map(|kind| state[kind].as_array().unwrap())
        .filter(|d| {
            d["name"]
                .as_str()
                .unwrap()
                .starts_with(skillsync_sim::OWNED_PREFIX)
        })
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

type Assignments = Vec<(String, u64, bool)>;

/// A user's assignments of one class, split into (the other writer's, everyone else's).
fn split(list: &Value, ext: &BTreeSet<String>) -> (Assignments, Assignments) {
    let mut all: Assignments = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["level"].as_u64().unwrap(),
                a["active"].as_bool().unwrap(),
            )
        })
        .collect();
    all.sort();
    all.into_iter().partition(|(id, _, _)| ext.contains(id))
}

fn users_by_id(state: &Value) -> BTreeMap<String, Value> {
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u.clone()))
        .collect()
}

/// Proves that nothing the other writer wrote was lost, and that it touched nothing else.
/// `only_writer`: nobody else wrote, so each logged version is still the user's version.
fn assert_no_write_lost(initial: &Value, now: &Value, log: &Value, only_writer: bool) {
    let ext = ext_ids(initial);
    assert!(
        !ext.is_empty(),
        "generated tenants include Ext_ definitions"
    );
    let initial_users = users_by_id(initial);
    let users = users_by_id(now);
    assert_eq!(
        initial_users.keys().collect::<Vec<_>>(),
        users.keys().collect::<Vec<_>>()
    );
    let logged = log["users"].as_object().unwrap();
    assert!(!logged.is_empty());
    let mut changed = 0;
    for (id, user) in &users {
        let before = &initial_users[id];
        for class in ["skills", "proficiencies"] {
            let (ext_now, others_now) = split(&user[class], &ext);
            let (ext_before, others_before) = split(&before[class], &ext);
            assert_eq!(
                others_now, others_before,
                "user {id}: the other writer touched {class} it does not own"
            );
            match logged.get(id) {
                Some(entry) => {
                    let (ext_logged, not_ext) = split(&entry[class], &ext);
                    assert!(not_ext.is_empty(), "its log lists only Ext_ assignments");
                    assert_eq!(
                        ext_now, ext_logged,
                        "user {id}: a write to {class} was lost"
                    );
                    if ext_now != ext_before {
                        changed += 1;
                    }
                }
                None => assert_eq!(ext_now, ext_before, "user {id} changed but is not logged"),
            }
        }
        if let (true, Some(entry)) = (only_writer, logged.get(id)) {
            assert_eq!(user["version"], entry["version"], "user {id}");
        }
    }
    assert!(changed > 0, "the other writer changed nothing");
}

#[tokio::test]
async fn other_writer_changes_only_ext_assignments_and_its_log_matches_the_tenant() {
    let sim = common::start().await;
    let initial = sim.state().await;
    sim.set_knobs(json!({ "otherWriter": 200 })).await;
    wait_for_writes(&sim, 50).await;
    let log = pause_other_writer(&sim).await;
    let now = sim.state().await;
    assert_no_write_lost(&initial, &now, &log, true);
    assert_eq!(sim.stats().await["otherWriterWrites"], log["writes"]);
}

#[tokio::test]
async fn other_writer_retries_on_412_and_a_stale_write_racing_it_gets_412() {
    // Two agents, so that the other writer and this test meet on the same users.
    let sim = common::start_with(SimConfig::quiet(TenantSource::Generated(GenerateOptions {
        agents: 2,
        skills: 3,
        proficiencies: 2,
        locales: vec!["en-us".into()],
        profiles: 1,
        seed: 11,
    })))
    .await;
    let token = sim.token().await;
    let initial = sim.state().await;
    let users: Vec<String> = users_by_id(&initial).into_keys().collect();
    let path = |user: &str| format!("/api/v2/routing/users/{user}");

    // A write based on what was read before the other writer wrote is refused.
    let read = sim.get(&path(&users[0]), &token).await;
    let etag = read.header("etag").unwrap();
    assert_eq!(etag, format!("\"{}\"", read.body["version"]));
    sim.set_knobs(json!({ "otherWriter": 500 })).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while sim.get(&path(&users[0]), &token).await.body["version"] == read.body["version"] {
        assert!(Instant::now() < deadline, "the other writer never wrote");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stale = sim
        .call(
            reqwest::Method::PUT,
            &path(&users[0]),
            Some(&token),
            Some(json!({ "proficiencies": read.body["proficiencies"] })),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.body);

    // Merging writes of our own land between its reads and writes until it meets a 412.
    let mut ours = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for user in &users {
            let current = sim.get(&path(user), &token).await;
            let etag = current.header("etag").unwrap();
            let answer = sim
                .call(
                    reqwest::Method::PUT,
                    &path(user),
                    Some(&token),
                    Some(json!({ "proficiencies": current.body["proficiencies"] })),
                    &[("If-Match", &etag)],
                )
                .await;
            assert!([200, 412].contains(&answer.status.as_u16()), "{answer:?}");
            ours += 1;
        }
        if other_writer(&sim).await["conflicts"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no conflict after {ours} interleaved writes"
        );
    }
    let log = pause_other_writer(&sim).await;
    assert!(log["conflicts"].as_u64().unwrap() > 0);
    // It retried rather than giving up or overwriting: none of its writes was lost.
    assert_no_write_lost(&initial, &sim.state().await, &log, false);
}

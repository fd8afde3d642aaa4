//! `skillsync serve` as a real process against the simulator over HTTP: HRIS events signed,
//! stored before the 202, and applied on their path; bad requests refused with nothing
//! written.

mod common;

use common::serve::*;
use common::*;
use serde_json::json;
use skillsync_sim::GenerateOptions;

/// A tenant of `agents` in one locale, HRIS files that match it exactly, a config with a
/// `[serve]` section.
async fn tenant(
    tag: &str,
    agents: usize,
    serve: &str,
) -> (
    Workspace,
    String,
    skillsync_sim::TenantDoc,
    tokio::sync::oneshot::Sender<()>,
) {
    let ws = workspace(tag);
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let (base, stop) = start_sim(doc.clone()).await;
    write_config(&ws.0, &base);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        format!("{config}\n[serve]\n{serve}\n"),
    )
    .unwrap();
    (ws, base, doc, stop)
}

/// The first agent from `from` on who holds a skill of the catalog: its index, the code and
/// the level.
fn held_skill(doc: &skillsync_sim::TenantDoc, from: usize) -> (usize, String, u8) {
    (from..doc.users.len())
        .find_map(|i| {
            doc.users[i].skills.iter().find_map(|a| {
                let d = doc.skills.iter().find(|d| d.id == a.id)?;
                (!d.name.starts_with(skillsync_sim::OWNED_PREFIX))
                    .then(|| (i, d.name.clone(), a.level))
            })
        })
        .expect("an agent holds a catalog skill")
}

/// Posts one `assignment.set` (id `id`) for the first agent from `from` on who holds a catalog
/// skill, to a level they do not hold; returns the agent, the code and that level.
async fn post_skill_change(
    served: &Served,
    doc: &skillsync_sim::TenantDoc,
    from: usize,
    id: &str,
) -> (usize, String, u8) {
    let (agent, code, level) = held_skill(doc, from);
    let wanted: u8 = if level == 9 { 4 } else { 9 };
    let body = assignment_set(id, &format!("E{agent:05}"), &code, wanted).to_string();
    let (status, answer) = post_events(&served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    (agent, code, wanted)
}

/// Waits for the event `id` to settle and asserts it was applied.
async fn assert_applied(served: &Served, id: &str) {
    let states = wait_settled(served, &[id.to_string()]).await;
    assert_eq!(
        states[0]["state"],
        "applied",
        "{states:?}\n{}",
        served.log()
    );
}

/// Asserts the tenant holds `code` at `wanted` for agent `agent`.
async fn assert_level(
    sim: &str,
    doc: &skillsync_sim::TenantDoc,
    agent: usize,
    code: &str,
    wanted: u8,
) {
    let state = sim_get(sim, "/sim/state").await;
    assert_eq!(
        level_of(&state, &doc.users[agent].id, code, doc),
        Some(u64::from(wanted))
    );
}

fn level_of(
    state: &serde_json::Value,
    user_id: &str,
    definition_name: &str,
    doc: &skillsync_sim::TenantDoc,
) -> Option<u64> {
    let id = &doc.skills.iter().find(|d| d.name == definition_name)?.id;
    let user = state["users"]
        .as_array()?
        .iter()
        .find(|u| u["id"] == user_id)?;
    user["skills"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id.as_str())?["level"]
        .as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_skill_event_is_written_to_that_agent_at_once() {
    let (ws, sim, doc, _stop) = tenant("serve-skill", 20, "").await;
    let served = start_serve(&ws.0, &[]);
    let (agent, code, level) = held_skill(&doc, 3);
    let wanted = if level == 9 { 4 } else { 9 };
    let body = assignment_set("evt-1", &format!("E{agent:05}"), &code, wanted).to_string();
    let (status, answer) = post_events(&served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], json!(["evt-1"]));
    assert_applied(&served, "evt-1").await;
    assert_level(&sim, &doc, agent, &code, wanted).await;
    // The strict path: one merge update with If-Match, no bulk write.
    let stats = sim_stats(&sim).await;
    let count = |method: &str, route: &str| -> u64 {
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] == method && r["route"].as_str().is_some_and(|x| x.ends_with(route))
            })
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count("PUT", "/routing/users/{userId}"), 1, "{stats}");
    assert_eq!(count("POST", "/routing/users/bulk"), 0, "{stats}");

    // The same id again: acknowledged, not applied twice.
    let writes = writes_in(&sim_stats(&sim).await);
    let (status, answer) = post_events(&served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["repeated"], json!(["evt-1"]));
    let state = event_state(&served.base, "evt-1").await;
    assert_eq!(state["state"], "applied");
    assert_eq!(writes_in(&sim_stats(&sim).await), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_stale_timestamps_bad_bodies_and_large_bodies_are_refused_with_nothing_written()
 {
    let (ws, sim, doc, _stop) = tenant("serve-refuse", 10, "max_body_bytes = 4096").await;
    let served = start_serve(&ws.0, &[]);
    let (agent, code, _) = held_skill(&doc, 0);
    let employee = format!("E{agent:05}");
    let body = assignment_set("evt-bad", &employee, &code, 2).to_string();
    let t = now_seconds();

    let (status, answer) =
        post_signed(&served.base, &body, t, &sign("wrong-secret", t, &body)).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("does not match"),
        "{answer}"
    );

    let stale = t - 301;
    let (status, answer) = post_signed(
        &served.base,
        &body,
        stale,
        &sign(WEBHOOK_SECRET, stale, &body),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("timestamp"),
        "{answer}"
    );

    let unsigned = reqwest::Client::new()
        .post(format!("{}/v1/events", served.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    let malformed = json!({"id": "evt-bad-2", "type": "assignment.set", "occurredAt": jiff::Timestamp::now().to_string(), "employeeId": employee, "code": code, "level": 11}).to_string();
    let (status, answer) = post_events(&served.base, &malformed).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["problems"][0]["field"], "level", "{answer}");

    let large = format!("{{\"events\":[{}]}}", vec![body.clone(); 100].join(","));
    let (status, answer) = post_events(&served.base, &large).await;
    assert_eq!(status, 413, "{answer}");

    // None was stored, none written.
    for id in ["evt-bad", "evt-bad-2"] {
        assert!(event_state(&served.base, id).await["state"].is_null());
    }
    assert_eq!(writes_in(&sim_stats(&sim).await), 0);
}

/// A proficiency code of the catalog (not the other integration's).
fn proficiency_code(doc: &skillsync_sim::TenantDoc) -> String {
    doc.proficiencies
        .iter()
        .find(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .expect("the tenant has a proficiency of the catalog")
        .name
        .clone()
}

/// Proficiency events wait and go in bulk: 160 events for 150 agents sent at once become
/// ceil(150 / 100) = 2 bulk writes; two events for one agent coalesce, the later occurrence
/// winning whatever the arrival order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proficiency_events_are_batched_into_bulk_writes_and_the_latest_occurrence_wins() {
    let (ws, sim, doc, _stop) =
        tenant("serve-proficiency", 150, "proficiency_flush = \"1h\"").await;
    let served = start_serve(&ws.0, &[]);
    let code = proficiency_code(&doc);
    let now = jiff::Timestamp::now();
    let at = |seconds: i64| (now + jiff::SignedDuration::from_secs(seconds)).to_string();
    let mut events = Vec::new();
    // Agent 0: the later event (level 7) arrives first.
    events.push(json!({"id": "p-late", "type": "assignment.set", "occurredAt": at(2), "employeeId": "E00000", "code": code, "level": 7}));
    events.push(json!({"id": "p-early", "type": "assignment.set", "occurredAt": at(1), "employeeId": "E00000", "code": code, "level": 3}));
    for i in 1..150 {
        events.push(json!({"id": format!("p-{i}"), "type": "assignment.set", "occurredAt": at(1), "employeeId": format!("E{i:05}"), "code": code, "level": 1 + (i % 10)}));
    }
    for i in 1..10 {
        events.push(json!({"id": format!("p-again-{i}"), "type": "assignment.set", "occurredAt": at(2), "employeeId": format!("E{i:05}"), "code": code, "level": 10}));
    }
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let body = json!({ "events": events }).to_string();
    let (status, answer) = post_events(&served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    // 150 agents waiting: the lane flushes without waiting for its hour.
    let states = wait_settled(&served, &ids).await;
    assert!(
        states.iter().all(|s| s["state"] == "applied"),
        "{:?}\n{}",
        states
            .iter()
            .filter(|s| s["state"] != "applied")
            .collect::<Vec<_>>(),
        served.log()
    );
    let stats = sim_stats(&sim).await;
    let bulk: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "POST"
                && r["route"]
                    .as_str()
                    .is_some_and(|x| x.ends_with("/routing/users/bulk"))
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    let single: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "PUT"
                && r["route"]
                    .as_str()
                    .is_some_and(|x| x.ends_with("/routing/users/{userId}"))
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!((bulk, single), (2, 0), "{stats}");
    // 150 agents of a tenant that fits one page of the listing: read from the listing (the
    // read before the write and the read-back), not one GET per agent.
    let single_reads: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "GET"
                && r["route"]
                    .as_str()
                    .is_some_and(|x| x.ends_with("/routing/users/{userId}"))
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert!(single_reads < 10, "{single_reads} single reads: {stats}");
    let state = sim_get(&sim, "/sim/state").await;
    let id = &doc
        .proficiencies
        .iter()
        .find(|d| d.name == code)
        .unwrap()
        .id;
    let level = |i: usize| -> Option<u64> {
        let user = state["users"]
            .as_array()?
            .iter()
            .find(|u| u["id"] == doc.users[i].id.as_str())?;
        user["proficiencies"]
            .as_array()?
            .iter()
            .find(|a| a["id"] == id.as_str())?["level"]
            .as_u64()
    };
    assert_eq!(level(0), Some(7), "the later occurrence wins");
    assert_eq!(level(5), Some(10));
    assert_eq!(level(20), Some(1));
}

/// An event the catalog cannot take is stored, rejected with its reason, and visible; one
/// older than the HRIS files in force is superseded; neither holds up the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_event_says_why_and_does_not_block_the_others() {
    let (ws, _sim, doc, _stop) = tenant("serve-reject", 20, "").await;
    let served = start_serve(&ws.0, &[]);
    let (agent, code, level) = held_skill(&doc, 0);
    let employee = format!("E{agent:05}");
    let old = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let events = json!({"events": [
        {"id": "r-unknown-code", "type": "assignment.set", "occurredAt": jiff::Timestamp::now().to_string(), "employeeId": employee, "code": "No_Such_Code", "level": 3},
        {"id": "r-unknown-agent", "type": "assignment.set", "occurredAt": jiff::Timestamp::now().to_string(), "employeeId": "E99999", "code": code, "level": 3},
        {"id": "r-old", "type": "assignment.set", "occurredAt": old, "employeeId": employee, "code": code, "level": 1},
        {"id": "r-good", "type": "assignment.set", "occurredAt": jiff::Timestamp::now().to_string(), "employeeId": employee, "code": code, "level": if level == 8 { 2 } else { 8 }},
    ]}).to_string();
    let (status, answer) = post_events(&served.base, &events).await;
    assert_eq!(status, 202, "{answer}");
    let ids: Vec<String> = ["r-unknown-code", "r-unknown-agent", "r-old", "r-good"]
        .map(String::from)
        .to_vec();
    let states = wait_settled(&served, &ids).await;
    assert_eq!(states[0]["state"], "rejected", "{states:?}");
    assert!(
        states[0]["reason"]
            .as_str()
            .unwrap()
            .contains("No_Such_Code"),
        "{states:?}"
    );
    assert_eq!(states[1]["state"], "rejected", "{states:?}");
    assert!(
        states[1]["reason"].as_str().unwrap().contains("E99999"),
        "{states:?}"
    );
    assert_eq!(states[2]["state"], "superseded", "{states:?}");
    assert_eq!(
        states[3]["state"],
        "applied",
        "{states:?}\n{}",
        served.log()
    );
}

/// The PUT route's count of writes to one user.
fn puts_in(stats: &serde_json::Value) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "PUT"
                && r["route"]
                    .as_str()
                    .is_some_and(|x| x.ends_with("/routing/users/{userId}"))
                && r["status"].as_u64().is_some_and(|s| s < 300)
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// An event answered 202 is in the store: a process killed the next moment (SIGKILL, before
/// it could write) loses nothing; the next one applies it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_accepted_before_a_sigkill_is_applied_once_after_a_restart() {
    let (ws, sim, doc, _stop) = tenant("serve-kill", 20, "").await;
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        format!("{config}\n[store]\nlease_ttl = \"1s\"\n"),
    )
    .unwrap();
    // Every request takes 400 ms: the kill lands before the write.
    set_knobs(&sim, json!({ "latency": "400ms" })).await;
    let mut served = start_serve(&ws.0, &[]);
    let (agent, code, level) = held_skill(&doc, 0);
    let wanted = if level == 6 { 3 } else { 6 };
    let body = assignment_set("k-1", &format!("E{agent:05}"), &code, wanted).to_string();
    let (status, answer) = post_events(&served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    signal(&served.child, "-KILL");
    let _ = served.child.wait();
    assert_eq!(
        puts_in(&sim_stats(&sim).await),
        0,
        "killed before its write"
    );
    set_knobs(&sim, json!({ "latency": "0ms" })).await;

    let restarted = start_serve(&ws.0, &[]);
    let states = wait_settled(&restarted, &["k-1".to_string()]).await;
    assert_eq!(
        states[0]["state"],
        "applied",
        "{states:?}\n{}",
        restarted.log()
    );
    assert_level(&sim, &doc, agent, &code, wanted).await;
    assert_eq!(puts_in(&sim_stats(&sim).await), 1, "written once");
}

/// SIGTERM: intake answers 503 at once, a write in flight finishes, the process exits 0, and
/// an event whose write had not started stays queued for the next process (not failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_intake_lets_the_write_in_flight_finish_and_exits_zero() {
    let (ws, sim, doc, _stop) = tenant("serve-term", 20, "").await;
    set_knobs(&sim, json!({ "latency": "300ms" })).await;
    let mut served = start_serve(&ws.0, &[]);
    let (agent, code, level) = held_skill(&doc, 0);
    let wanted = if level == 6 { 3 } else { 6 };
    let body = assignment_set("t-1", &format!("E{agent:05}"), &code, wanted).to_string();
    let (status, _) = post_events(&served.base, &body).await;
    assert_eq!(status, 202);
    // Stop it once it has read the agent: its write is about to go, or going.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let reads_user = |stats: &serde_json::Value| {
        stats["requests"].as_array().unwrap().iter().any(|r| {
            r["method"] == "GET"
                && r["route"]
                    .as_str()
                    .is_some_and(|x| x.ends_with("/routing/users/{userId}"))
        })
    };
    while !reads_user(&sim_stats(&sim).await) {
        assert!(
            std::time::Instant::now() < deadline,
            "the lane never read the agent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    signal(&served.child, "-TERM");
    while !served.log().contains("stopping") {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGTERM not seen: {}",
            served.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let late = assignment_set("t-2", &format!("E{agent:05}"), &code, 2).to_string();
    let (status, answer) = post_events(&served.base, &late).await;
    assert_eq!(status, 503, "intake closed: {answer}");
    let (exit, served) = tokio::task::spawn_blocking(move || {
        let status = served.child.wait().unwrap();
        (status, served)
    })
    .await
    .unwrap();
    assert_eq!(exit.code(), Some(0), "{}", served.log());
    let written = puts_in(&sim_stats(&sim).await);
    assert!(written <= 1, "{written} writes");
    drop(served);

    // Whether the write had gone out or not, the next process finishes the job: applied once.
    set_knobs(&sim, json!({ "latency": "0ms" })).await;
    let restarted = start_serve(&ws.0, &[]);
    let states = wait_settled(&restarted, &["t-1".to_string()]).await;
    assert_eq!(
        states[0]["state"],
        "applied",
        "{states:?}\n{}",
        restarted.log()
    );
    assert!(
        states[0]["attempts"].as_u64().unwrap() <= 1,
        "a stop is not the event's failure: {states:?}"
    );
    assert_level(&sim, &doc, agent, &code, wanted).await;
    assert_eq!(puts_in(&sim_stats(&sim).await), 1, "written once");
    assert!(
        event_state(&restarted.base, "t-2").await["state"].is_null(),
        "the refused event was not stored"
    );
}

/// `/metrics` is Prometheus text, and its count of the tenant's answers by route and status is
/// the simulator's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_and_agree_with_the_tenants_counts() {
    let (ws, sim, doc, _stop) = tenant("serve-metrics", 20, "").await;
    let served = start_serve(&ws.0, &[]);
    let (agent, code, level) = held_skill(&doc, 0);
    let wanted = if level == 6 { 3 } else { 6 };
    let body = assignment_set("m-1", &format!("E{agent:05}"), &code, wanted).to_string();
    assert_eq!(post_events(&served.base, &body).await.0, 202);
    let bad = post_signed(&served.base, &body, now_seconds(), "sha256=00").await;
    assert_eq!(bad.0, 401);
    wait_settled(&served, &["m-1".to_string()]).await;
    let (status, text) = get_text(&served.base, "/metrics").await;
    assert_eq!(status, 200);
    let metrics = parse_prometheus(&text);
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        metrics
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    assert_eq!(value("skillsync_events_accepted_total", &[]), 1.0, "{text}");
    assert_eq!(
        value(
            "skillsync_event_requests_refused_total",
            &[("status", "401")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value("skillsync_events_settled_total", &[("state", "applied")]),
        1.0,
        "{text}"
    );
    assert_eq!(value("skillsync_event_queue_depth", &[]), 0.0, "{text}");
    // Every answer the simulator counted, the service counted under the same route and status.
    let stats = sim_stats(&sim).await;
    for request in stats["requests"].as_array().unwrap() {
        let route = request["route"]
            .as_str()
            .unwrap()
            .trim_start_matches("/api/v2");
        let status = request["status"].to_string();
        let counted = value(
            "skillsync_api_responses_total",
            &[
                ("method", request["method"].as_str().unwrap()),
                ("route", route),
                ("status", &status),
            ],
        );
        assert_eq!(
            counted,
            request["count"].as_f64().unwrap(),
            "{route} {status}\n{text}\n{stats}"
        );
    }
    let total: f64 = metrics
        .iter()
        .filter(|(n, _, _)| n == "skillsync_api_responses_total")
        .map(|(_, _, v)| v)
        .sum();
    let sim_total: f64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_f64().unwrap())
        .sum();
    assert_eq!(total, sim_total, "{text}\n{stats}");
}

/// Samples of a Prometheus text page: (name, labels, value). Panics on a line that is not
/// a comment, a sample or `# EOF`.
fn parse_prometheus(text: &str) -> Vec<(String, std::collections::HashMap<String, String>, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = rest
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label: {line}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
            None => (series.to_string(), Default::default()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        samples.push((name, labels, value));
    }
    assert!(
        text.trim_end().ends_with("# EOF"),
        "the page ends with # EOF"
    );
    samples
}

/// Two `serve` processes on one PostgreSQL journal share the work: 1,000 events for 300
/// agents, sent to either, are each applied once (claimed by one process, written under the
/// tenant's lease), none lost, and the tenant ends as the latest event for each assignment says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_apply_a_thousand_events_once_each() {
    let Some(store) = common::store::TestStore::postgres("serve-two").await else {
        return;
    };
    let (ws, sim, doc, _stop) = tenant("serve-two", 300, "proficiency_flush = \"1s\"").await;
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        format!("{config}{}", store.config_table(&ws.0, "5s")),
    )
    .unwrap();
    let first = start_serve(&ws.0, &[]);
    let second = start_serve(&ws.0, &[]);
    let skills: Vec<String> = doc
        .skills
        .iter()
        .filter(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .map(|d| d.name.clone())
        .take(3)
        .collect();
    let proficiency = proficiency_code(&doc);
    let start = jiff::Timestamp::now();
    let mut expected: std::collections::BTreeMap<(usize, String), u64> = Default::default();
    let mut events = Vec::new();
    for n in 0..1000usize {
        let agent = (n * 7) % 300;
        let code = if n % 4 == 3 {
            proficiency.clone()
        } else {
            skills[n % 3].clone()
        };
        let level = 1 + (n % 10) as u64;
        let at = start + jiff::SignedDuration::from_millis(n as i64);
        events.push(json!({"id": format!("two-{n}"), "type": "assignment.set", "occurredAt": at.to_string(), "employeeId": format!("E{agent:05}"), "code": code, "level": level}));
        expected.insert((agent, code), level);
    }
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    // Batches of 50, alternately to each process, several at once.
    let posts = events.chunks(50).enumerate().map(|(i, chunk)| {
        let base = if i % 2 == 0 {
            first.base.clone()
        } else {
            second.base.clone()
        };
        let body = json!({ "events": chunk }).to_string();
        async move { post_events(&base, &body).await }
    });
    for (status, answer) in futures::future::join_all(posts).await {
        assert_eq!(status, 202, "{answer}");
    }
    let states = wait_settled(&first, &ids).await;
    let log = || format!("{}\n----\n{}", first.log(), second.log());
    let not_applied: Vec<_> = states.iter().filter(|s| s["state"] != "applied").collect();
    assert!(not_applied.is_empty(), "{not_applied:?}\n{}", log());
    let twice: Vec<_> = states.iter().filter(|s| s["attempts"] != 1).collect();
    assert!(twice.is_empty(), "claimed more than once: {twice:?}");
    // Each event settled by one process only (whichever held the lease when it came).
    let by_first = first.log().matches("event settled").count();
    let by_second = second.log().matches("event settled").count();
    assert_eq!(by_first + by_second, 1000, "{}", log());

    let state = sim_get(&sim, "/sim/state").await;
    for ((agent, code), level) in &expected {
        let (list, definitions) = if *code == proficiency {
            ("proficiencies", &doc.proficiencies)
        } else {
            ("skills", &doc.skills)
        };
        let id = &definitions.iter().find(|d| &d.name == code).unwrap().id;
        let user = state["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == doc.users[*agent].id.as_str())
            .unwrap();
        let held = user[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id.as_str())
            .map(|a| a["level"].as_u64().unwrap());
        assert_eq!(held, Some(*level), "agent {agent} {code}");
    }
}

/// The nightly full sync runs at `[serve] full_sync_at` inside `[sync] window` (here a window
/// around now and a time three seconds ahead, in the tenant's zone), and reconciles the whole
/// tenant as `apply` would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_sync_runs_at_its_time_inside_the_window() {
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let hm = |z: &jiff::ZonedDateTime| z.strftime("%H:%M").to_string();
    let window = format!(
        "{}-{}",
        hm(&(&now - jiff::SignedDuration::from_hours(1))),
        hm(&(&now + jiff::SignedDuration::from_hours(1)))
    );
    let at = (&now + jiff::SignedDuration::from_secs(3))
        .strftime("%H:%M:%S")
        .to_string();
    let (ws, sim, doc, _stop) =
        tenant("serve-schedule", 30, &format!("full_sync_at = \"{at}\"")).await;
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        format!("{config}\n[sync]\nwindow = \"{window}\"\n"),
    )
    .unwrap();
    // The HRIS now wants one agent's skill at another level: the full sync must write it.
    let (agent, code, level) = held_skill(&doc, 0);
    let wanted: u8 = if level == 5 { 2 } else { 5 };
    let assignments = std::fs::read_to_string(ws.0.join("hris/assignments.csv")).unwrap();
    let prefix = format!("E{agent:05},{code},{level},");
    assert!(assignments.contains(&prefix));
    std::fs::write(
        ws.0.join("hris/assignments.csv"),
        assignments.replace(&prefix, &format!("E{agent:05},{code},{wanted},")),
    )
    .unwrap();
    let served = start_serve(&ws.0, &[]);
    assert_eq!(
        puts_in(&sim_stats(&sim).await),
        0,
        "nothing before its time"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let history = run_with(&ws.0, &["history", "--output", "json"]).await;
        let history: serde_json::Value =
            serde_json::from_slice(&history.stdout).unwrap_or_default();
        let full = history["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["command"] == "serve-full");
        if let Some(run) = full.filter(|r| !r["endedAt"].is_null()) {
            assert_eq!(run["outcome"], "succeeded", "{run}\n{}", served.log());
            let started: jiff::Timestamp = run["startedAt"].as_str().unwrap().parse().unwrap();
            let due: jiff::Timestamp = (&now + jiff::SignedDuration::from_secs(3))
                .timestamp()
                .round(jiff::Unit::Second)
                .unwrap();
            assert!(
                started >= due - jiff::SignedDuration::from_millis(1000),
                "started {started}, due {due}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no full sync ran: {}",
            served.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_level(&sim, &doc, agent, &code, wanted).await;
    assert!(served.log().contains("next full sync"), "{}", served.log());
}

/// A full queue answers 429 with `Retry-After`, storing nothing of the refused request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    let (ws, sim, doc, _stop) = tenant(
        "serve-full-queue",
        20,
        "max_queued = 2\nproficiency_flush = \"1h\"",
    )
    .await;
    let served = start_serve(&ws.0, &[]);
    let code = proficiency_code(&doc);
    // Proficiency events wait for their flush (an hour here): the queue fills.
    for i in 0..2 {
        let body = json!({"id": format!("q-{i}"), "type": "assignment.set", "occurredAt": jiff::Timestamp::now().to_string(), "employeeId": format!("E{i:05}"), "code": code, "level": 3}).to_string();
        assert_eq!(post_events(&served.base, &body).await.0, 202);
    }
    let body = json!({"id": "q-2", "type": "assignment.set", "occurredAt": jiff::Timestamp::now().to_string(), "employeeId": "E00002", "code": code, "level": 3}).to_string();
    let t = now_seconds();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", served.base))
        .header("x-skillsync-timestamp", t.to_string())
        .header("x-skillsync-signature", sign(WEBHOOK_SECRET, t, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    assert!(event_state(&served.base, "q-2").await["state"].is_null());
    assert_eq!(writes_in(&sim_stats(&sim).await), 0);
}

/// `--log-format json`: one JSON object per line, with the event id and what became of it,
/// and neither secret anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_hold_no_secret() {
    let (ws, _sim, doc, _stop) = tenant("serve-json-log", 10, "").await;
    let served = start_serve_with(&ws.0, &[], &["--log-format", "json"]);
    let (agent, code, level) = held_skill(&doc, 0);
    let wanted = if level == 6 { 3 } else { 6 };
    let body = assignment_set("j-1", &format!("E{agent:05}"), &code, wanted).to_string();
    assert_eq!(post_events(&served.base, &body).await.0, 202);
    wait_settled(&served, &["j-1".to_string()]).await;
    // The settling line is written before the state can be read; it is in the log now.
    let log = served.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let settled = lines
        .iter()
        .find(|l| l["message"] == "event settled")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(
        (settled["event_id"].as_str(), settled["state"].as_str()),
        (Some("j-1"), Some("applied"))
    );
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].is_string() && l["level"].is_string())
    );
    assert!(!log.contains(WEBHOOK_SECRET) && !log.contains(skillsync_sim::DEMO_CLIENT_SECRET));
}

/// An agent's arrival and their first assignment in one request are one batch: both are
/// applied in the order they occurred, and the assignment is in the tenant afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_added_and_assigned_in_one_batch_gets_the_assignment() {
    let (ws, sim, doc, _stop) = tenant("serve-added", 12, "").await;
    let (agent, code, level) = held_skill(&doc, 5);
    let user = doc.users[agent].id.clone();
    // The HRIS does not know this agent yet: their rows leave the files.
    let employee = format!("E{agent:05}");
    for file in ["hris/agents.csv", "hris/assignments.csv"] {
        let path = ws.0.join(file);
        let kept: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with(&format!("{employee},")))
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(&path, kept).unwrap();
    }
    let served = start_serve(&ws.0, &[]);
    let wanted: u8 = if level == 9 { 4 } else { 9 };
    let now = jiff::Timestamp::now();
    let body = json!({"events": [
        {"id": "a-added", "type": "agent.added", "occurredAt": now.to_string(), "employeeId": "E77777", "userId": user, "locale": "en-us"},
        {"id": "a-set", "type": "assignment.set", "occurredAt": (now + jiff::SignedDuration::from_millis(1)).to_string(), "employeeId": "E77777", "code": code, "level": wanted},
    ]})
    .to_string();
    let (status, answer) = post_events(&served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    let states = wait_settled(&served, &["a-added".into(), "a-set".into()]).await;
    assert_eq!(
        states[0]["state"],
        "applied",
        "{states:?}\n{}",
        served.log()
    );
    assert_eq!(
        states[1]["state"],
        "applied",
        "{states:?}\n{}",
        served.log()
    );
    let state = sim_get(&sim, "/sim/state").await;
    assert_eq!(
        level_of(&state, &user, &code, &doc),
        Some(u64::from(wanted)),
        "{}",
        served.log()
    );
}

/// The engine runs of `kind` that ended in `outcome`, from `/metrics`.
async fn runs_ended(base: &str, kind: &str, outcome: &str) -> f64 {
    let (_, text) = get_text(base, "/metrics").await;
    parse_prometheus(&text)
        .iter()
        .filter(|(name, labels, _)| {
            name == "skillsync_runs_total"
                && labels.get("kind").is_some_and(|k| k == kind)
                && labels.get("outcome").is_some_and(|o| o == outcome)
        })
        .map(|(_, _, value)| *value)
        .sum()
}

/// A tenant that fails for a while is no fault of the events: they wait (their attempts not
/// counted, so an outage rejects none) and are applied once it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_out_a_tenant_outage_and_are_not_rejected_for_it() {
    let (ws, sim, doc, _stop) = tenant("serve-outage", 10, "").await;
    let served = start_serve(&ws.0, &[]);
    set_knobs(&sim, json!({"faultRate": 1.0})).await;
    let (agent, code, wanted) = post_skill_change(&served, &doc, 2, "o-1").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while runs_ended(&served.base, "serve-skills", "error").await < 2.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no failed runs: {}",
            served.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let during = event_state(&served.base, "o-1").await;
    assert_eq!(during["state"], "queued", "{during}");
    assert!(
        during["attempts"].as_u64().unwrap() <= 1,
        "an outage counted against the event: {during}"
    );
    set_knobs(&sim, json!({"faultRate": 0.0})).await;
    assert_applied(&served, "o-1").await;
    assert_level(&sim, &doc, agent, &code, wanted).await;
}

/// A batch whose run is refused (here the empty-skills guard) is not refused as a whole: the
/// other agents' events are applied, and of the refused agent's only the event that leaves
/// them refused is rejected, with the guard's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_event_that_leaves_an_agent_refused_is_rejected() {
    let (ws, sim, doc, _stop) = tenant("serve-blocked", 20, "").await;
    let catalog: std::collections::HashMap<&str, &str> = doc
        .skills
        .iter()
        .filter(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .map(|d| (d.id.as_str(), d.name.as_str()))
        .collect();
    // An agent whose every skill is the catalog's, with at least two.
    let (agent, held) = doc
        .users
        .iter()
        .enumerate()
        .find_map(|(i, u)| {
            let names: Vec<&str> = u
                .skills
                .iter()
                .map(|a| catalog.get(a.id.as_str()).copied())
                .collect::<Option<_>>()?;
            (names.len() >= 2).then_some((i, names))
        })
        .expect("an agent with only catalog skills");
    let (other, other_code, other_level) = held_skill(&doc, if agent == 0 { 1 } else { 0 });
    let employee = format!("E{agent:05}");
    let now = jiff::Timestamp::now();
    let at = |ms: i64| (now + jiff::SignedDuration::from_millis(ms)).to_string();
    let mut events = vec![
        json!({"id": "b-other", "type": "assignment.set", "occurredAt": at(0), "employeeId": format!("E{other:05}"), "code": other_code, "level": if other_level == 7 { 3 } else { 7 }}),
    ];
    for (i, code) in held.iter().enumerate() {
        events.push(json!({"id": format!("b-remove-{i}"), "type": "assignment.removed", "occurredAt": at(1 + i as i64), "employeeId": employee, "code": code}));
    }
    let served = start_serve(&ws.0, &[]);
    let body = json!({ "events": events }).to_string();
    let (status, answer) = post_events(&served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    let ids: Vec<String> = std::iter::once("b-other".to_string())
        .chain((0..held.len()).map(|i| format!("b-remove-{i}")))
        .collect();
    let states = wait_settled(&served, &ids).await;
    let last = held.len();
    for (i, state) in states.iter().enumerate() {
        let expected = if i == last { "rejected" } else { "applied" };
        assert_eq!(state["state"], expected, "{states:#?}\n{}", served.log());
    }
    assert!(
        states[last]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no skills")),
        "{states:#?}"
    );
    let state = sim_get(&sim, "/sim/state").await;
    let user = &doc.users[agent].id;
    for (i, code) in held.iter().enumerate() {
        let kept = level_of(&state, user, code, &doc).is_some();
        assert_eq!(kept, i + 1 == held.len(), "{code} of {user}: {state}");
    }
    assert_eq!(
        level_of(&state, &doc.users[other].id, &other_code, &doc),
        Some(if other_level == 7 { 3 } else { 7 })
    );
}

/// The catalog saved again (a new description, say) says nothing about who holds what: the
/// events applied since the agents and assignments were exported still stand, and the next
/// write to that agent keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_saved_again_does_not_undo_applied_events() {
    let (ws, sim, doc, _stop) = tenant("serve-catalog", 20, "").await;
    let served = start_serve(&ws.0, &[]);
    let (agent, code, level) = held_skill(&doc, 0);
    let employee = format!("E{agent:05}");
    let wanted: u8 = if level == 9 { 4 } else { 9 };
    let body = assignment_set("c-1", &employee, &code, wanted).to_string();
    let (status, answer) = post_events(&served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    let states = wait_settled(&served, &["c-1".to_string()]).await;
    assert_eq!(states[0]["state"], "applied", "{states:?}");
    // Saved again after the event: its modification time is now the newest.
    let catalog = ws.0.join("hris/catalog.csv");
    let text = std::fs::read_to_string(&catalog).unwrap();
    std::fs::write(&catalog, text).unwrap();
    // Another of the agent's skills changes: the agent's write carries both.
    let other = doc.users[agent]
        .skills
        .iter()
        .filter_map(|a| doc.skills.iter().find(|d| d.id == a.id))
        .find(|d| d.name != code && !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .map(|d| d.name.clone());
    let second = match &other {
        Some(other) => assignment_set("c-2", &employee, other, 2),
        None => assignment_set("c-2", &employee, &code, wanted),
    };
    let (status, answer) = post_events(&served.base, &second.to_string()).await;
    assert_eq!(status, 202, "{answer}");
    assert_applied(&served, "c-2").await;
    let state = sim_get(&sim, "/sim/state").await;
    assert_eq!(
        level_of(&state, &doc.users[agent].id, &code, &doc),
        Some(u64::from(wanted)),
        "the first event was undone\n{}",
        served.log()
    );
}

/// While another process holds the tenant's lease, events wait (counting no attempt), the
/// status page says who holds it, and they are applied once it is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_while_another_process_holds_the_lease_and_the_status_page_says_so() {
    let (ws, sim, doc, _stop) = tenant("serve-lease", 10, "").await;
    let served = start_serve(&ws.0, &[]);
    let journal = common::store::TestStore::Sqlite.open(&ws.0).await;
    let holder = skillsync_store::LeaseHolder {
        host: "elsewhere-host".into(),
        pid: 4242,
        command: "apply".into(),
    };
    let key = format!("{sim}/api/v2 {}", skillsync_sim::DEMO_CLIENT_ID);
    let lease = match journal
        .acquire_lease(&key, &holder, std::time::Duration::from_secs(120))
        .await
        .unwrap()
    {
        skillsync_store::Acquired::Held(lease) => lease,
        other => panic!("the lease was not free: {other:?}"),
    };
    post_skill_change(&served, &doc, 1, "l-1").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let page = loop {
        let (_, page) = get_text(&served.base, "/").await;
        if page.contains("Lease held elsewhere") {
            break page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the status page never said the lease is held elsewhere:\n{page}\n{}",
            served.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(page.contains("elsewhere-host"), "{page}");
    let waiting = event_state(&served.base, "l-1").await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    assert_eq!(waiting["attempts"], 0, "{waiting}");
    journal.release_lease(&lease).await.unwrap();
    assert_applied(&served, "l-1").await;
    let (_, page) = get_text(&served.base, "/").await;
    assert!(!page.contains("Lease held elsewhere"), "{page}");
}

/// A client that starts a request and stops sending is answered 408 after
/// `[serve] request_timeout` and its connection freed; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_body_stops_arriving_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ws, _sim, _doc, _stop) = tenant("serve-slow", 5, "request_timeout = \"1s\"").await;
    let served = start_serve(&ws.0, &[]);
    let address = served.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "no answer after 20 s: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (_, metrics) = get_text(&served.base, "/metrics").await;
    assert!(
        metrics.contains("skillsync_events_accepted_total 0"),
        "{metrics}"
    );
}

/// A tenant that accepts the write and does not keep it: the event is tried again after a
/// pause, each try counted (so it is rejected in the end, saying why), never written again and
/// again as fast as the tenant answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_tenant_does_not_keep_is_retried_with_pauses_and_counted() {
    let (ws, sim, doc, _stop) = tenant("serve-lost", 10, "").await;
    let served = start_serve(&ws.0, &[]);
    set_knobs(&sim, json!({"loseWriteRate": 1.0})).await;
    post_skill_change(&served, &doc, 2, "k-1").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    let seen = loop {
        let state = event_state(&served.base, "k-1").await;
        if state["attempts"].as_u64().unwrap_or(0) >= 3 || state["state"] != "queued" {
            break state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "attempts not counted: {state}\n{}",
            served.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // Each try is one write (and its re-reads), not a storm.
    let puts = puts_in(&sim_stats(&sim).await);
    let attempts = seen["attempts"].as_u64().unwrap_or(0).max(1);
    assert!(
        puts <= 3 * (attempts + 1),
        "{puts} writes for {attempts} attempts: {seen}"
    );
}

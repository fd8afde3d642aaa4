//! The CXone dialect end to end (`dialect = "cxone"`, `docs/sim-cxone.md`): the real binary
//! against the simulator's third dialect: converging with the fewest calls, another
//! integration's skills untouched, per-agent failures reported, guards, values the scale does
//! not map, and the faults of a hostile tenant.

mod common;

use common::cxone::*;
use common::*;
use serde_json::{Value, json};
use skillsync_sim::{GenerateOptions, Knobs};

fn tenant(agents: usize) -> skillsync_sim::TenantDoc {
    skillsync_sim::generate(&GenerateOptions {
        agents,
        skills: 10,
        proficiencies: 2,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 2,
        seed: 17,
    })
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Requests the simulator counted for a method and route template.
fn count(stats: &Value, method: &str, route: &str) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["route"] == route)
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_makes_the_tenant_hold_the_files_with_one_call_per_skill_and_operation() {
    let ws = workspace("cxone-apply");
    let doc = tenant(300);
    let expected = write_cxone_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_cxone_config(&ws.0, &base, "");
    let (_, other_before) = cxone_assignments(&sim_get(&base, "/sim/state").await);

    let applied = run(&ws.0, &["apply", "--yes", "--output", "json"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let report: Value = serde_json::from_str(&stdout(&applied)).unwrap();

    let (held, other_after) = cxone_assignments(&sim_get(&base, "/sim/state").await);
    assert_eq!(held, expected.wanted, "the tenant holds what the files say");
    assert_eq!(
        other_after, other_before,
        "another integration's skills untouched"
    );

    // Every write is one (skill, operation) for up to 100 agents: no agent is written alone.
    let stats = sim_get(&base, "/sim/stats").await;
    let per_skill_writes: u64 = ["POST", "PUT", "DELETE"]
        .iter()
        .map(|m| {
            count(
                &stats,
                m,
                "/incontactapi/services/v31.0/skills/{skillId}/agents",
            )
        })
        .sum();
    let per_agent_writes: u64 = ["POST", "PUT", "DELETE"]
        .iter()
        .map(|m| {
            count(
                &stats,
                m,
                "/incontactapi/services/v31.0/agents/{agentId}/skills",
            )
        })
        .sum();
    assert_eq!(per_agent_writes, 0, "{stats}");
    // 10 skills × 2 locales, three operations each at most, each far under 100 agents.
    assert!(
        per_skill_writes > 0 && per_skill_writes <= 60,
        "{per_skill_writes} writes: {stats}"
    );
    assert_eq!(
        report["applied"]["usersUpdated"]
            .as_array()
            .map_or(0, Vec::len),
        expected.changed_agents,
        "{report}"
    );

    let replanned = run(&ws.0, &["plan"]).await;
    assert_eq!(replanned.status.code(), Some(0), "{}", stdout(&replanned));
    assert!(
        stdout(&replanned).contains("No changes"),
        "{}",
        stdout(&replanned)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proficiency_no_level_maps_to_is_shown_as_such_and_rewritten() {
    let ws = workspace("cxone-unmapped");
    let doc = tenant(20);
    let expected = write_cxone_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_cxone_config(&ws.0, &base, "");
    // Bring the tenant to the files first, then set one held skill to an even value, which
    // the default table (level L → 21 - 2L) gives no level.
    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let ((name, agent), _) = expected.wanted.iter().next().unwrap();
    let state = sim_get(&base, "/sim/state").await;
    let skill_id = state["cxone"]["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skillName"] == name.as_str())
        .unwrap()["skillId"]
        .as_u64()
        .unwrap();
    put_cxone(
        &base,
        &format!("/skills/{skill_id}/agents"),
        json!({"agents": [{"agentId": agent, "proficiency": 2}]}),
    )
    .await;

    let planned = run(&ws.0, &["plan"]).await;
    assert_eq!(planned.status.code(), Some(2), "{}", stdout(&planned));
    assert!(
        stdout(&planned).contains("tenant value 2 (no HRIS level)"),
        "{}",
        stdout(&planned)
    );
    let drift = run(&ws.0, &["drift"]).await;
    assert_ne!(drift.status.code(), Some(0), "{}", stdout(&drift));
    assert!(
        stdout(&drift).contains("tenant value 2 (no HRIS level)"),
        "{}",
        stdout(&drift)
    );

    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let (held, _) = cxone_assignments(&sim_get(&base, "/sim/state").await);
    assert_eq!(held, expected.wanted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_removal_guard_refuses_before_any_write() {
    let ws = workspace("cxone-guard");
    let doc = tenant(100);
    let expected = write_cxone_hris(&ws.0, &doc);
    assert!(expected.removed > 3);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_cxone_config(&ws.0, &base, "\n[sync]\nmax_removals = 2\n");
    let before = sim_get(&base, "/sim/state").await["cxone"].clone();
    let refused = run(&ws.0, &["apply", "--yes"]).await;
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        stdout(&refused).contains("max_removals") || stderr(&refused).contains("max_removals"),
        "{}{}",
        stdout(&refused),
        stderr(&refused)
    );
    assert_eq!(sim_get(&base, "/sim/state").await["cxone"], before);
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_the_tenant_refuses_are_reported_with_the_reason_and_the_others_are_written() {
    let ws = workspace("cxone-partial");
    let doc = tenant(200);
    let expected = write_cxone_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(
        doc,
        Knobs {
            reject_write_rate: 0.05,
            ..Knobs::quiet()
        },
    )
    .await;
    write_cxone_config(&ws.0, &base, "");
    let applied = run(&ws.0, &["apply", "--yes", "--output", "json"]).await;
    let report: Value = serde_json::from_str(&stdout(&applied)).unwrap();
    let failed = report["applied"]["usersFailed"].as_array().unwrap();
    let updated = report["applied"]["usersUpdated"].as_array().unwrap();
    assert!(!failed.is_empty(), "5% of entries refused: {report}");
    assert!(
        failed
            .iter()
            .all(|f| f["reason"].as_str().unwrap().contains("REJECTED")),
        "{failed:?}"
    );
    assert_eq!(
        failed.len() + updated.len(),
        expected.changed_agents,
        "{report}"
    );
    assert_eq!(applied.status.code(), Some(1), "{}", stderr(&applied));
    // The refused agents only: a second run (the tenant now taking everything) finishes them.
    set_knobs(&base, json!({"rejectWriteRate": 0.0})).await;
    let again = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let (held, _) = cxone_assignments(&sim_get(&base, "/sim/state").await);
    assert_eq!(held, expected.wanted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_under_faults_drops_and_another_integration() {
    let ws = workspace("cxone-hostile");
    let doc = tenant(600);
    let expected = write_cxone_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(
        doc,
        Knobs {
            fault_rate: 0.1,
            fault_after_commit_rate: 0.1,
            drop_rate: 0.05,
            other_writer: 50.0,
            ..Knobs::quiet()
        },
    )
    .await;
    write_cxone_config(&ws.0, &base, "");
    let mut converged = false;
    for _ in 0..4 {
        let applied = run(&ws.0, &["apply", "--yes"]).await;
        if applied.status.code() == Some(0) {
            converged = true;
            break;
        }
    }
    assert!(converged, "apply converges within four runs");
    set_knobs(
        &base,
        json!({"faultRate": 0.0, "faultAfterCommitRate": 0.0, "dropRate": 0.0, "otherWriter": 0.0}),
    )
    .await;
    let (held, other) = cxone_assignments(&sim_get(&base, "/sim/state").await);
    assert_eq!(held, expected.wanted);
    // What the other integration last wrote is still there.
    let written = sim_get(&base, "/sim/other-writer").await;
    for entry in written["cxone"].as_array().unwrap() {
        let key_skill = entry["skillId"].as_u64().unwrap();
        let agent = entry["agentId"].as_u64().unwrap();
        let state = sim_get(&base, "/sim/state").await;
        let name = state["cxone"]["skills"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["skillId"] == key_skill)
            .unwrap()["skillName"]
            .as_str()
            .unwrap()
            .to_string();
        let held_now = other.get(&(name, agent));
        if entry["assigned"] == true {
            let held_now = held_now.expect("an assignment the other integration made is kept");
            assert_eq!(
                u64::from(held_now.0),
                entry["proficiency"].as_u64().unwrap()
            );
        } else {
            assert!(held_now.is_none(), "{entry}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_apply_is_interrupted_in_history_and_the_rerun_converges() {
    let ws = workspace("cxone-kill");
    let doc = tenant(1_000);
    let expected = write_cxone_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(
        doc,
        Knobs {
            rate_limit: skillsync_sim::Rate::PerSecond(20.0),
            burst: 5,
            ..Knobs::quiet()
        },
    )
    .await;
    // Slow enough to stop mid-run; the dead run's lease runs out soon, for the test.
    write_cxone_config(&ws.0, &base, "\n[store]\nlease_ttl = \"3s\"\n");
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml"))
        .unwrap()
        .replace("requests_per_second = 1000", "requests_per_second = 20")
        .replace("burst = 100", "burst = 5");
    std::fs::write(ws.0.join("skillsync.toml"), config).unwrap();

    let mut child = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    wait_until_writing(&base, 10, &mut child).await;
    signal(&child, "-KILL");
    let _ = child.wait();
    let (held, _) = cxone_assignments(&sim_get(&base, "/sim/state").await);
    assert_ne!(held, expected.wanted, "the kill must land mid-run");

    let history = run(&ws.0, &["history"]).await;
    assert!(
        stdout(&history).contains("interrupted"),
        "{}",
        stdout(&history)
    );
    let rerun = run(&ws.0, &["apply", "--yes", "--wait", "1m"]).await;
    assert_eq!(rerun.status.code(), Some(0), "{}", stderr(&rerun));
    let (held, _) = cxone_assignments(&sim_get(&base, "/sim/state").await);
    assert_eq!(held, expected.wanted);
    let replanned = run(&ws.0, &["plan"]).await;
    assert_eq!(replanned.status.code(), Some(0), "{}", stdout(&replanned));

    let history = run(&ws.0, &["history", "--output", "json"]).await;
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let runs = &history["runs"];
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs}");
    assert_eq!(runs[1]["outcome"], "interrupted", "{runs}");
    assert!(
        runs[1]["writes"].as_u64().unwrap() > 0,
        "the killed run's answered writes are journaled: {runs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_takes_a_skill_from_its_holders_then_deactivates_it_and_refuses_delete_up_front() {
    let ws = workspace("cxone-retire");
    let doc = tenant(60);
    let expected = write_cxone_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_cxone_config(&ws.0, &base, "");
    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let ((name, _), _) = expected.wanted.iter().next().unwrap();
    let code = name.rsplit_once('_').unwrap().0.to_string();
    let writes_before = writes_in(&sim_get(&base, "/sim/stats").await);

    let refused = run_with(&ws.0, &["retire", &code, "--delete", "--yes"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("cannot delete"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        writes_in(&sim_get(&base, "/sim/stats").await),
        writes_before
    );

    let retired = run_with(&ws.0, &["retire", &code, "--yes", "--allow-empty-skills"]).await;
    assert_eq!(retired.status.code(), Some(0), "{}", stderr(&retired));
    let state = sim_get(&base, "/sim/state").await;
    let variants: Vec<&Value> = state["cxone"]["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["skillName"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{code}_"))
        })
        .collect();
    assert!(!variants.is_empty());
    assert!(
        variants.iter().all(|s| s["isActive"] == false),
        "{variants:?}"
    );
    let (held, _) = cxone_assignments(&state);
    let mut wanted = expected.wanted.clone();
    wanted.retain(|(skill, _), _| !skill.starts_with(&format!("{code}_")));
    assert_eq!(held, wanted, "only the retired code's assignments went");
    let replanned = run(&ws.0, &["plan"]).await;
    assert_eq!(replanned.status.code(), Some(0), "{}", stdout(&replanned));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_files_that_plan_to_no_changes() {
    let ws = workspace("cxone-export");
    let (base, _stop) = start_sim_with(tenant(40), Knobs::quiet()).await;
    write_cxone_config(&ws.0, &base, "");
    let exported = run(&ws.0, &["export", "--out", "hris"]).await;
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    let catalog = std::fs::read_to_string(ws.0.join("hris/catalog.csv")).unwrap();
    assert!(catalog.contains(",skill,de-de,"), "{catalog}");
    let planned = run(&ws.0, &["plan"]).await;
    assert_eq!(planned.status.code(), Some(0), "{}", stdout(&planned));
    assert!(
        stdout(&planned).contains("No changes"),
        "{}",
        stdout(&planned)
    );
}

/// PUT through the dialect with the demo client's token.
async fn put_cxone(base: &str, path: &str, body: Value) {
    let token = demo_token(base).await;
    let answer = reqwest::Client::new()
        .put(format!("{base}/incontactapi/services/v31.0{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["resultSet"]["errorCount"], 0, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_agents_strip_takes_the_catalogs_skills_from_agents_no_longer_in_the_hris() {
    let ws = workspace("cxone-absent");
    let doc = tenant(60);
    let mut expected = write_cxone_hris(&ws.0, &doc);
    // Two agents holding catalog skills leave the HRIS.
    let gone: std::collections::BTreeSet<u64> = expected
        .wanted
        .keys()
        .map(|(_, agent)| *agent)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .take(2)
        .collect();
    let agents_path = ws.0.join("hris/agents.csv");
    let mut employees = std::collections::BTreeSet::new();
    let agents: String = std::fs::read_to_string(&agents_path)
        .unwrap()
        .lines()
        .filter(|line| {
            let mut fields = line.split(',');
            let employee = fields.next().unwrap_or_default().to_string();
            let agent = fields.next().and_then(|a| a.parse::<u64>().ok());
            let leaves = agent.is_some_and(|a| gone.contains(&a));
            if leaves {
                employees.insert(employee);
            }
            !leaves
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(employees.len(), 2);
    std::fs::write(&agents_path, agents).unwrap();
    let assignments_path = ws.0.join("hris/assignments.csv");
    let assignments: String = std::fs::read_to_string(&assignments_path)
        .unwrap()
        .lines()
        .filter(|line| !employees.contains(line.split(',').next().unwrap_or_default()))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&assignments_path, assignments).unwrap();
    expected
        .wanted
        .retain(|(_, agent), _| !gone.contains(agent));

    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_cxone_config(
        &ws.0,
        &base,
        "\n[sync]\nabsent_agents = \"strip\"\nmax_removals = \"100%\"\n",
    );
    let (_, other_before) = cxone_assignments(&sim_get(&base, "/sim/state").await);

    let plan = run(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("Agents no longer in the HRIS: 2 users"),
        "{}",
        stdout(&plan)
    );
    let applied = run(&ws.0, &["apply", "--yes", "--allow-empty-skills"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let (held, other_after) = cxone_assignments(&sim_get(&base, "/sim/state").await);
    assert_eq!(
        held, expected.wanted,
        "the agents who left hold none of the catalog's skills; the rest hold the files'"
    );
    assert_eq!(
        other_after, other_before,
        "another integration's skills untouched"
    );
}

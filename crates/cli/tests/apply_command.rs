//! `skillsync apply` end to end against a hostile simulator: faults before and after commit,
//! dropped connections, and another integration writing the whole time.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};
use sim::{GenerateOptions, Knobs};

fn tenant(agents: usize) -> sim::TenantDoc {
    sim::generate(&GenerateOptions {
        agents,
        skills: 10,
        proficiencies: 4,
        locales: vec!["en-us".into(), "de-de".into(), "fr-fr".into()],
        profiles: 3,
        seed: 99,
    })
}

fn hostile() -> Knobs {
    Knobs {
        // Bulk needs few requests (about 40 for 2,000 agents): rates this high make sure the
        // run meets faults at all.
        fault_rate: 0.1,
        fault_after_commit_rate: 0.1,
        drop_rate: 0.05,
        other_writer: 50.0,
        ..Knobs::quiet()
    }
}

/// The other integration's assignments (ids of `Ext_` definitions) per user, from /sim/state.
fn ext_assignments(state: &Value) -> BTreeMap<String, Value> {
    let ext: std::collections::HashSet<&str> = ["skills", "proficiencies"]
        .iter()
        .flat_map(|k| state[*k].as_array().unwrap())
        .filter(|d| d["name"].as_str().unwrap().starts_with(sim::OWNED_PREFIX))
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let keep = |list: &Value| -> Vec<Value> {
                list.as_array()
                    .unwrap()
                    .iter()
                    .filter(|a| ext.contains(a["id"].as_str().unwrap()))
                    .cloned()
                    .collect()
            };
            (
                u["id"].as_str().unwrap().to_string(),
                json!({ "skills": keep(&u["skills"]), "proficiencies": keep(&u["proficiencies"]) }),
            )
        })
        .collect()
}

async fn converges_in(dialect: &str) {
    let ws = workspace(&format!("apply-{dialect}"));
    let doc = tenant(2_000);
    let expected = if dialect == "users" {
        write_hris_skills_only(&ws.0, &doc)
    } else {
        write_hris(&ws.0, &doc)
    };
    assert!(expected.users_changed > 500, "a run worth the name");
    let (base, _stop) = start_sim_with(doc, hostile()).await;
    write_config(&ws.0, &base);
    if dialect == "users" {
        let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
        std::fs::write(
            ws.0.join("skillsync.toml"),
            config.replace("[limits]", "dialect = \"users\"\n\n[limits]"),
        )
        .unwrap();
    }

    let applied = run(&ws.0, &["apply", "--yes"]).await;
    let stdout = String::from_utf8_lossy(&applied.stdout);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "apply must succeed through the faults:\n{}\n{}",
        stdout.lines().rev().take(8).collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&applied.stderr)
    );

    // Stop the other integration, then check that everything it wrote is still there.
    set_knobs(&base, json!({ "otherWriter": 0.0, "faultRate": 0.0, "faultAfterCommitRate": 0.0, "dropRate": 0.0 })).await;
    let log = sim_get(&base, "/sim/other-writer").await;
    assert!(
        log["writes"].as_u64().unwrap() > 10,
        "the other integration must have been writing: {log}"
    );
    let state = sim_get(&base, "/sim/state").await;
    let ext_now = ext_assignments(&state);
    for (user, written) in log["users"].as_object().unwrap() {
        let now = &ext_now[user];
        assert_eq!(
            now["skills"], written["skills"],
            "user {user}: the other integration's skills were lost"
        );
        assert_eq!(
            now["proficiencies"], written["proficiencies"],
            "user {user}: its proficiencies were lost"
        );
    }
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(stats["duplicatesCreated"], 0);
    let faults: u64 = [
        "faultsBeforeCommit",
        "faultsAfterCommit",
        "droppedConnections",
    ]
    .iter()
    .map(|k| stats[*k].as_u64().unwrap())
    .sum();
    assert!(faults > 0, "faults must have happened: {stats}");

    let replanned = run(&ws.0, &["plan"]).await;
    assert_eq!(
        replanned.status.code(),
        Some(0),
        "a second plan must be empty:\n{}",
        String::from_utf8_lossy(&replanned.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_under_faults_and_keeps_the_other_integrations_assignments_routing_dialect()
{
    converges_in("routing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_under_faults_and_keeps_the_other_integrations_assignments_users_dialect() {
    converges_in("users").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_over_the_limit_stop_the_run_before_any_write() {
    let ws = workspace("guard-removals");
    let doc = tenant(200);
    write_hris(&ws.0, &doc);
    // Empty every second agent: far more than 10% of owned assignments go.
    let assignments = std::fs::read_to_string(ws.0.join("hris/assignments.csv")).unwrap();
    let kept: Vec<&str> = assignments
        .lines()
        .filter(|l| {
            l.starts_with("employee_id") || l[1..6].parse::<u32>().map_or(true, |n| n % 2 == 0)
        })
        .collect();
    std::fs::write(ws.0.join("hris/assignments.csv"), kept.join("\n") + "\n").unwrap();
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let refused = run(&ws.0, &["apply", "--yes", "--allow-empty-skills"]).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr.contains("exceed max_removals 10%") && stderr.contains("--max-removals"),
        "{stderr}"
    );
    assert_eq!(
        writes_in(&sim_get(&base, "/sim/stats").await),
        0,
        "a guard must stop the run before any write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_left_without_skills_stop_the_run_before_any_write_unless_allowed() {
    let ws = workspace("guard-empty");
    let doc = tenant(200);
    write_hris(&ws.0, &doc);
    let assignments = std::fs::read_to_string(ws.0.join("hris/assignments.csv")).unwrap();
    let kept: Vec<&str> = assignments
        .lines()
        .filter(|l| !l.starts_with("E00001,"))
        .collect();
    std::fs::write(ws.0.join("hris/assignments.csv"), kept.join("\n") + "\n").unwrap();
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let refused = run(&ws.0, &["apply", "--yes"]).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("left with no skills") && stderr.contains("E00001"),
        "{stderr}"
    );
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), 0);

    let allowed = run(&ws.0, &["apply", "--yes", "--allow-empty-skills"]).await;
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_without_yes_and_without_a_terminal_refuses_and_writes_nothing() {
    let ws = workspace("no-yes");
    let doc = tenant(50);
    write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let refused = run(&ws.0, &["apply"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_apply_shows_as_interrupted_and_the_rerun_converges_without_duplicates() {
    let ws = workspace("kill");
    let doc = tenant(1_000);
    let expected = write_hris(&ws.0, &doc);
    // Single merge updates against a throttled tenant: the run takes long enough to kill.
    let knobs = Knobs {
        rate_limit: sim::Rate::PerSecond(60.0),
        burst: 10,
        ..Knobs::quiet()
    };
    let (base, _stop) = start_sim_with(doc, knobs).await;
    write_config(&ws.0, &base);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    let config = config
        .replace("requests_per_second = 1000", "requests_per_second = 60")
        .replace("burst = 100", "burst = 10")
        + "\n[sync]\nbulk_threshold = 100000\n";
    std::fs::write(ws.0.join("skillsync.toml"), config).unwrap();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(["apply", "--yes"])
        .current_dir(&ws.0)
        .env("SKILLSYNC_TEST_SECRET", sim::DEMO_CLIENT_SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the run is really writing, then kill it without warning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let written = writes_in(&sim_get(&base, "/sim/stats").await);
        if written >= 40 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "apply never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply ended before it could be killed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    let _ = child.wait();
    let written_before_kill = writes_in(&sim_get(&base, "/sim/stats").await);
    assert!(
        written_before_kill < expected.users_changed,
        "the kill must land mid-run"
    );

    let history = run(&ws.0, &["history"]).await;
    let listing = String::from_utf8_lossy(&history.stdout);
    assert!(listing.contains("interrupted"), "{listing}");

    let rerun = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let replanned = run(&ws.0, &["plan"]).await;
    assert_eq!(
        replanned.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replanned.stdout)
    );
    assert_eq!(sim_get(&base, "/sim/stats").await["duplicatesCreated"], 0);

    let history = run(&ws.0, &["history", "--output", "json"]).await;
    let runs: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs}");
    assert_eq!(runs[1]["outcome"], "interrupted", "{runs}");
    let journaled = runs[0]["writes"].as_u64().unwrap() + runs[1]["writes"].as_u64().unwrap();
    assert!(
        journaled >= expected.users_changed,
        "every write is in the journal: {runs}"
    );
    assert!(
        runs[0]["settles_at"].is_string() || runs[0]["settlesAt"].is_string(),
        "{runs}"
    );
}

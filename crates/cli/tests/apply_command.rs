//! `skillsync apply` end to end against a hostile simulator: faults before and after commit,
//! dropped connections, and another integration writing the whole time.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};
use skillsync_sim::{GenerateOptions, Knobs};

fn tenant(agents: usize) -> skillsync_sim::TenantDoc {
    skillsync_sim::generate(&GenerateOptions {
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
        .filter(|d| {
            d["name"]
                .as_str()
                .unwrap()
                .starts_with(skillsync_sim::OWNED_PREFIX)
        })
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

/// Distinct users with an applied write in one run of the journal, read through the store.
async fn applied_users_in_journal(path: &std::path::Path, run: i64) -> u64 {
    use skillsync_store::Journal;
    let journal = skillsync_store::SqliteStore::open(path).unwrap();
    let users: std::collections::BTreeSet<String> = journal
        .writes(skillsync_store::RunId(run))
        .await
        .unwrap()
        .into_iter()
        .filter(|w| {
            w.status == skillsync_store::WriteStatus::Applied
                && w.target != skillsync_store::WriteTarget::Definition
        })
        .map(|w| w.subject)
        .collect();
    users.len() as u64
}

/// Waits (bounded) until the simulator's other integration has made `writes` writes.
async fn other_writer_has_written(base: &str, writes: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sim_get(base, "/sim/other-writer").await["writes"]
        .as_u64()
        .unwrap()
        < writes
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the other integration never wrote {writes} times"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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

    // The apply takes a fraction of a second: the other integration is given a head start
    // (a count of writes, not a time) so there is always something of its own to lose.
    let head_start = 20;
    other_writer_has_written(&base, head_start).await;

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
        log["writes"].as_u64().unwrap() >= head_start,
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
    // The journal accounts for every write: each user the plan changed has an applied write.
    let history = run(&ws.0, &["history", "--output", "json"]).await;
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let runs = &history["runs"];
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs}");
    assert!(
        runs[0]["writes"].as_u64().unwrap() >= expected.users_changed,
        "{runs}"
    );
    let journal =
        applied_users_in_journal(&ws.0.join("skillsync.db"), runs[0]["id"].as_i64().unwrap()).await;
    assert!(
        journal >= expected.users_changed,
        "{journal} users with an applied write in the journal"
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

/// apply reads the whole tenant from the catalog while the agents and assignments files are
/// read, under the lease. A bad row there is still reported as `validate` reports it: exit 1,
/// no write, no run in the journal, the lease free for the next run; and on a first run, with
/// the files read before the journal is created, no journal at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_assignments_file_is_refused_as_validate_refuses_it_with_no_write_no_run_and_the_lease_free()
 {
    let ws = workspace("bad-rest-apply");
    let doc = tenant(300);
    write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let path = ws.0.join("hris/assignments.csv");
    let good = std::fs::read_to_string(&path).unwrap();
    let bad = format!("{good}E-NOBODY,Billing,11,true\n");
    let refused_as_validate = |when: &str| {
        let validate = skillsync(&ws.0, &["validate"]);
        let apply = skillsync(&ws.0, &["apply", "--yes"]);
        let expected = String::from_utf8_lossy(&validate.stderr).into_owned();
        assert_eq!(validate.status.code(), Some(1), "{when}: {expected}");
        assert_eq!(apply.status.code(), Some(1), "{when}");
        assert!(apply.stdout.is_empty(), "{when}");
        assert_eq!(String::from_utf8_lossy(&apply.stderr), expected, "{when}");
    };

    std::fs::write(&path, &bad).unwrap();
    refused_as_validate("first run");
    assert!(!ws.0.join("skillsync.db").exists(), "no journal is created");
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), 0);

    std::fs::write(&path, &good).unwrap();
    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let writes = writes_in(&sim_get(&base, "/sim/stats").await);
    assert!(writes > 0, "the good files change the tenant");

    std::fs::write(&path, &bad).unwrap();
    refused_as_validate("with a journal");
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), writes);
    let history = json_of(&run(&ws.0, &["history", "--output", "json"]).await);
    assert_eq!(
        history["runs"].as_array().unwrap().len(),
        1,
        "a refused input journals no run: {history}"
    );

    std::fs::write(&path, &good).unwrap();
    let again = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(
        again.status.code(),
        Some(0),
        "the lease was left free: {}",
        String::from_utf8_lossy(&again.stderr)
    );
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

    // The limit set from the environment, over the file's 10% (a container's way).
    let dir = ws.0.clone();
    let allowed = tokio::task::spawn_blocking(move || {
        skillsync_with_env(
            &dir,
            &["apply", "--yes", "--allow-empty-skills"],
            &[("SKILLSYNC_SYNC__MAX_REMOVALS", "100%")],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert!(writes_in(&sim_get(&base, "/sim/stats").await) > 0);
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

/// Calls to the routing-profile listing the simulator has answered.
fn profile_listings(stats: &Value) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "GET" && r["route"] == "/api/v2/routing/profiles")
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// A run that creates and rewrites no definition has no routing profile to check, so it does
/// not list them: neither the apply that writes users nor the no-change re-sync after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_writes_no_definition_lists_no_routing_profiles() {
    let ws = workspace("no-profile-listing");
    let doc = tenant(200);
    write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(applied.status.code(), Some(0), "{applied:?}");
    assert!(writes_in(&sim_get(&base, "/sim/stats").await) > 0);
    let resynced = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(resynced.status.code(), Some(0), "{resynced:?}");
    assert!(
        String::from_utf8_lossy(&resynced.stdout).contains("No changes"),
        "{}",
        String::from_utf8_lossy(&resynced.stdout)
    );
    assert_eq!(profile_listings(&sim_get(&base, "/sim/stats").await), 0);
}

/// A definition to create whose routing profile the tenant lacks: the run lists the profiles
/// (one call), and refuses at the catalog line and field, before any write. `plan` says the
/// same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_to_create_with_a_missing_profile_is_refused_before_any_write() {
    let ws = workspace("missing-profile");
    let doc = tenant(50);
    write_hris(&ws.0, &doc);
    let catalog = ws.0.join("hris/catalog.csv");
    let mut rows = std::fs::read_to_string(&catalog).unwrap();
    rows.push_str("NEW_SKILL,skill,en-us,New_Skill,Added by the test,rp-missing\n");
    let line = rows.lines().count();
    std::fs::write(&catalog, rows).unwrap();
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let expected = format!(
        "catalog.csv:{line}:6: error: routing profile rp-missing of skill New_Skill (en-us) does not exist in the tenant"
    );

    let refused = run(&ws.0, &["apply", "--yes"]).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains(&expected), "{said}");
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(writes_in(&stats), 0, "refused before any write");
    assert_eq!(profile_listings(&stats), 1, "listed once, to check it");

    let planned = run(&ws.0, &["plan"]).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&planned.stdout),
        String::from_utf8_lossy(&planned.stderr)
    );
    assert_eq!(planned.status.code(), Some(1), "{said}");
    assert!(said.contains(&expected), "{said}");
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
    let (base, _stop) = start_sim_with(doc, slow_single_writes()).await;
    write_slow_single_writes_config(&ws.0, &base);
    // The killed run's lease on the tenant runs out on its own: soon, for the test.
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        config + "\n[store]\nlease_ttl = \"3s\"\n",
    )
    .unwrap();
    // JSON: nothing is printed before the end, so the unread pipes cannot fill and stall it.
    let mut child = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    // Once the run is really writing, kill it without warning.
    wait_until_writing(&base, 40, &mut child).await;
    signal(&child, "-KILL");
    let _ = child.wait();
    let written_before_kill = writes_in(&sim_get(&base, "/sim/stats").await);
    assert!(
        written_before_kill < expected.users_changed,
        "the kill must land mid-run"
    );

    let history = run(&ws.0, &["history"]).await;
    let listing = String::from_utf8_lossy(&history.stdout);
    assert!(listing.contains("interrupted"), "{listing}");

    // It waits for the dead run's lease to run out, then converges.
    let rerun = run(&ws.0, &["apply", "--yes", "--wait", "1m"]).await;
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
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let runs = &history["runs"];
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs}");
    assert_eq!(runs[1]["outcome"], "interrupted", "{runs}");
    let journaled = runs[0]["writes"].as_u64().unwrap() + runs[1]["writes"].as_u64().unwrap();
    // A write is journaled when its answer arrives. The kill can land after the tenant applied
    // a write and before its answer was read: at most one per request in flight
    // (max_in_flight = 8), and the rerun then finds those users already current.
    let in_flight_at_kill = 8;
    assert!(
        journaled + in_flight_at_kill >= expected.users_changed,
        "every write whose answer arrived is in the journal: {runs}"
    );
    assert!(runs[0]["settlesAt"].is_string(), "{runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_changes_one_assignment_of_one_agent_and_nothing_else() {
    let ws = workspace("assign");
    let doc = tenant(50);
    write_hris(&ws.0, &doc);
    let user = doc.users[2].clone();
    // A catalog skill in the agent's locale, assigned or not.
    let skill = doc
        .skills
        .iter()
        .find(|d| d.locale == user.locale && !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .unwrap()
        .clone();
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let before = sim_get(&base, "/sim/state").await["users"][2].clone();

    let dir = ws.0.clone();
    let name = skill.name.clone();
    let output =
        tokio::task::spawn_blocking(move || skillsync(&dir, &["assign", "E00002", &name, "9"]))
            .await
            .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let after = sim_get(&base, "/sim/state").await["users"][2].clone();
    assert_eq!(
        after["proficiencies"], before["proficiencies"],
        "proficiencies untouched"
    );
    let strip = |list: &Value| -> Vec<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|a| a["id"] != skill.id.as_str())
            .cloned()
            .collect()
    };
    assert_eq!(
        strip(&after["skills"]),
        strip(&before["skills"]),
        "every other skill untouched, in order"
    );
    let assigned: Vec<&Value> = after["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"] == skill.id.as_str())
        .collect();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0]["level"], 9);
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(
        writes_in(&stats),
        1,
        "one merge update, nothing else: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_shows_a_change_made_behind_skillsyncs_back_with_its_last_journaled_write() {
    let ws = workspace("drift");
    let doc = tenant(60);
    write_hris(&ws.0, &doc);
    let catalog_skill = |id: &str| {
        doc.skills
            .iter()
            .any(|d| d.id == id && !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
    };
    // Every third agent gets a level change from write_hris, so apply certainly writes it.
    let index = doc
        .users
        .iter()
        .enumerate()
        .position(|(i, u)| i % 3 == 0 && u.skills.iter().any(|a| catalog_skill(&a.id)))
        .unwrap();
    let user_id = doc.users[index].id.clone();
    let employee = format!("E{index:05}");
    let owned: Vec<String> = doc
        .skills
        .iter()
        .filter(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .map(|d| d.id.clone())
        .collect();
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    assert_eq!(run(&ws.0, &["apply", "--yes"]).await.status.code(), Some(0));
    assert_eq!(
        run(&ws.0, &["drift"]).await.status.code(),
        Some(0),
        "no drift right after apply"
    );

    // An administrator changes an owned assignment by hand.
    let token = demo_token(&base).await;
    let token = token.as_str();
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v2/routing/users/{user_id}");
    let user = api_get(&base, token, &format!("/routing/users/{user_id}")).await;
    let mut skills = user["skills"].as_array().unwrap().clone();
    let at = skills
        .iter()
        .position(|a| owned.iter().any(|id| a["id"] == id.as_str()))
        .unwrap();
    let old = skills[at]["level"].as_u64().unwrap();
    skills[at]["level"] = json!(old % 10 + 1);
    let put = http
        .put(&url)
        .bearer_auth(token)
        .json(&json!({ "skills": skills }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    let writes_before = writes_in(&sim_get(&base, "/sim/stats").await);
    let drift = run(&ws.0, &["drift"]).await;
    let stdout = String::from_utf8_lossy(&drift.stdout);
    assert_eq!(drift.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(&employee) && stdout.contains(&format!("tenant level {}", old % 10 + 1)),
        "{stdout}"
    );
    assert!(stdout.contains("last skillsync write: run 1"), "{stdout}");
    // The tenant's own time of the change, after skillsync's write: someone else made it.
    assert!(
        stdout.contains("tenant last changed the user: ")
            && stdout.contains("changed by someone else since"),
        "{stdout}"
    );
    let json = run(&ws.0, &["drift", "--output", "json"]).await;
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let agent = &json["drifted"][0];
    let modified: jiff::Timestamp = agent["tenantModifiedAt"].as_str().unwrap().parse().unwrap();
    let written: jiff::Timestamp = agent["lastWrite"]["at"].as_str().unwrap().parse().unwrap();
    assert!(modified > written, "{agent}");
    assert_eq!(
        writes_in(&sim_get(&base, "/sim/stats").await),
        writes_before,
        "drift is read-only"
    );
}

/// The journal's readers over a 100-user apply and a second run: `history` counts every
/// write, `drift` names the last write of each drifted agent (and none for an agent skillsync
/// never wrote), and each user's newest write is the run that last wrote it, whether that run
/// is the latest or an earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_drift_read_a_100_user_apply_and_the_run_after_it() {
    use skillsync_store::{Journal, WriteStatus, WriteTarget};
    let ws = workspace("journal-readers");
    let doc = tenant(100);
    let expected = write_hris(&ws.0, &doc);
    let users: Vec<String> = doc.users.iter().map(|u| u.id.clone()).collect();
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let history = run(&ws.0, &["history", "--output", "json"]).await;
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let first = &history["runs"][0];
    assert_eq!(first["outcome"], "succeeded", "{first}");
    assert_eq!(first["writes"], expected.users_changed, "{first}");
    assert_eq!(
        first["counts"]["usersUpdated"], expected.users_changed,
        "{first}"
    );
    let first_run = first["id"].as_i64().unwrap();

    // Which users the first run wrote, as the journal's newest write per user says.
    let newest = |users: Vec<String>| {
        let db = ws.0.join("skillsync.db");
        async move {
            let journal = skillsync_store::SqliteStore::open(&db).unwrap();
            let subjects: Vec<&str> = users.iter().map(String::as_str).collect();
            let mut found = BTreeMap::new();
            for target in [WriteTarget::UserSkills, WriteTarget::UserProficiencies] {
                for write in journal.last_writes(&subjects, target).await.unwrap() {
                    assert_eq!(write.status, WriteStatus::Applied, "{write:?}");
                    let single = journal
                        .last_write(&write.subject, target)
                        .await
                        .unwrap()
                        .unwrap();
                    assert_eq!(single, write, "one subject or many, the same write");
                    found.insert(write.subject.clone(), write.run.0);
                }
            }
            found
        }
    };
    let written = newest(users.clone()).await;
    assert_eq!(written.len() as u64, expected.users_changed);
    assert!(written.values().all(|run| *run == first_run), "{written:?}");
    assert_eq!(run(&ws.0, &["drift"]).await.status.code(), Some(0));

    // Behind skillsync's back: one level changed on three users it wrote and one it never did.
    let never_written = users
        .iter()
        .find(|u| !written.contains_key(*u))
        .unwrap()
        .clone();
    let mut touched: Vec<String> = written.keys().take(3).cloned().collect();
    touched.push(never_written.clone());
    let token = demo_token(&base).await;
    let http = reqwest::Client::new();
    let state = sim_get(&base, "/sim/state").await;
    let owned: Vec<String> = state["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            !d["name"]
                .as_str()
                .unwrap()
                .starts_with(skillsync_sim::OWNED_PREFIX)
        })
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let mut changed = Vec::new();
    for user in &touched {
        let url = format!("{base}/api/v2/routing/users/{user}");
        let live = api_get(&base, &token, &format!("/routing/users/{user}")).await;
        let mut skills = live["skills"].as_array().unwrap().clone();
        let Some(at) = skills
            .iter()
            .position(|a| owned.iter().any(|id| a["id"] == id.as_str()))
        else {
            continue;
        };
        skills[at]["level"] = json!(skills[at]["level"].as_u64().unwrap() % 10 + 1);
        let put = http
            .put(&url)
            .bearer_auth(&token)
            .json(&json!({ "skills": skills }))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        changed.push(user.clone());
    }
    assert!(
        changed.contains(&never_written) && changed.len() >= 3,
        "{changed:?}"
    );

    let drift = run(&ws.0, &["drift", "--output", "json"]).await;
    assert_eq!(drift.status.code(), Some(2));
    let drift: Value = serde_json::from_slice(&drift.stdout).unwrap();
    let drifted: BTreeMap<String, Value> = drift["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["userId"].as_str().unwrap().to_string(),
                a["lastWrite"].clone(),
            )
        })
        .collect();
    let mut names: Vec<&String> = drifted.keys().collect();
    names.sort();
    let mut wanted: Vec<&String> = changed.iter().collect();
    wanted.sort();
    assert_eq!(names, wanted);
    for (user, last) in &drifted {
        if *user == never_written {
            assert_eq!(*last, Value::Null, "never written by skillsync");
        } else {
            assert_eq!(last["run"], first_run, "{user}: {last}");
            assert_eq!(last["status"], "applied", "{user}: {last}");
        }
    }

    // The second run writes the drifted users back; the others' newest write stays the
    // first run's.
    assert_eq!(run(&ws.0, &["apply", "--yes"]).await.status.code(), Some(0));
    let history = run(&ws.0, &["history", "--output", "json"]).await;
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let second = &history["runs"][0];
    assert_eq!(second["writes"], changed.len(), "{second}");
    let second_run = second["id"].as_i64().unwrap();
    let now = newest(users).await;
    for (user, run) in &now {
        let expected_run = if changed.contains(user) {
            second_run
        } else {
            first_run
        };
        assert_eq!(*run, expected_run, "{user}");
    }
    assert_eq!(now.len() as u64, expected.users_changed + 1);
    assert_eq!(run(&ws.0, &["drift"]).await.status.code(), Some(0));
}

//! `[sync] absent_agents`: tenant users who are not in `agents.csv`. `keep` (the default)
//! leaves them exactly as they are; `strip` removes every assignment skillsync owns from them,
//! never another integration's, through the same guards as any removal, and `plan` shows them
//! in a section of their own. The real binary against the real simulator.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;
use skillsync_sim::{GenerateOptions, Knobs, TenantDoc};

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn is_ext(doc: &TenantDoc, id: &str) -> bool {
    doc.skills
        .iter()
        .chain(&doc.proficiencies)
        .any(|d| d.id == id && d.name.starts_with(skillsync_sim::OWNED_PREFIX))
}

/// A tenant in one locale and the two users the HRIS will no longer list: one who also holds
/// another integration's skill (it must survive), one who holds only skills skillsync owns (a
/// strip leaves it with none).
struct Absent {
    doc: TenantDoc,
    with_ext: usize,
    only_owned: usize,
}

impl Absent {
    fn new() -> Absent {
        let doc = skillsync_sim::generate(&GenerateOptions {
            agents: 60,
            locales: vec!["en-us".into()],
            ..GenerateOptions::default()
        });
        let owned = |u: &skillsync_sim::User| {
            u.skills
                .iter()
                .chain(&u.proficiencies)
                .filter(|a| !is_ext(&doc, &a.id))
                .count()
        };
        // Index 0 stays an agent: the tests change its level.
        let with_ext = (1..doc.users.len())
            .find(|&i| {
                let u = &doc.users[i];
                owned(u) > 0 && u.skills.iter().any(|a| is_ext(&doc, &a.id))
            })
            .expect("a user holding another integration's skill");
        let only_owned = (1..doc.users.len())
            .find(|&i| {
                let u = &doc.users[i];
                !u.skills.is_empty() && u.skills.iter().all(|a| !is_ext(&doc, &a.id))
            })
            .expect("a user holding only skills skillsync owns");
        Absent {
            doc,
            with_ext,
            only_owned,
        }
    }

    fn user_ids(&self) -> BTreeSet<String> {
        [self.with_ext, self.only_owned]
            .iter()
            .map(|&i| self.doc.users[i].id.clone())
            .collect()
    }

    /// Owned assignments the two hold.
    fn owned_assignments(&self) -> usize {
        [self.with_ext, self.only_owned]
            .iter()
            .flat_map(|&i| {
                let u = &self.doc.users[i];
                u.skills.iter().chain(&u.proficiencies)
            })
            .filter(|a| !is_ext(&self.doc, &a.id))
            .count()
    }

    /// HRIS files saying what the tenant holds, without the two users, and with the first
    /// agent's first assignment one level up (so that an apply has something to write).
    fn write_hris(&self, dir: &Path) {
        write_hris_exact(dir, &self.doc);
        let dropped: BTreeSet<String> = [self.with_ext, self.only_owned]
            .iter()
            .map(|i| format!("E{i:05},"))
            .collect();
        for file in ["hris/agents.csv", "hris/assignments.csv"] {
            let path = dir.join(file);
            let kept: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter(|line| !dropped.iter().any(|d| line.starts_with(d.as_str())))
                .map(|line| format!("{line}\n"))
                .collect();
            std::fs::write(&path, kept).unwrap();
        }
        let path = dir.join("hris/assignments.csv");
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let first = lines
            .iter()
            .position(|l| l.starts_with("E00000,"))
            .expect("the first agent holds something");
        let mut fields: Vec<String> = lines[first].split(',').map(str::to_string).collect();
        let level: u8 = fields[2].parse().unwrap();
        fields[2] = (level % 10 + 1).to_string();
        lines[first] = fields.join(",");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
}

/// The users of `/sim/state` by id.
fn users_of(state: &Value) -> std::collections::BTreeMap<String, Value> {
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u.clone()))
        .collect()
}

/// A user's lists with only the entries of another integration's definitions.
fn ext_only(doc: &TenantDoc, user: &Value) -> (Vec<Value>, Vec<Value>) {
    let keep = |list: &Value| -> Vec<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|a| is_ext(doc, a["id"].as_str().unwrap()))
            .cloned()
            .collect()
    };
    (keep(&user["skills"]), keep(&user["proficiencies"]))
}

fn append_config(dir: &Path, extra: &str) {
    let path = dir.join("skillsync.toml");
    let config = std::fs::read_to_string(&path).unwrap() + extra;
    std::fs::write(path, config).unwrap();
}

/// A workspace with the scenario's HRIS files, a simulator of its tenant, and a config with
/// `extra` appended; the simulator stops when the sender is dropped.
async fn started(
    tag: &str,
    extra: &str,
) -> (Workspace, Absent, String, tokio::sync::oneshot::Sender<()>) {
    let ws = workspace(tag);
    let absent = Absent::new();
    absent.write_hris(&ws.0);
    let (base, stop) = start_sim_with(absent.doc.clone(), Knobs::quiet()).await;
    write_config(&ws.0, &base);
    append_config(&ws.0, extra);
    (ws, absent, base, stop)
}

/// Strips absent agents, with no removal limit in the way.
const STRIP: &str = "\n[sync]\nabsent_agents = \"strip\"\nmax_removals = \"100%\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_leaves_users_not_in_the_hris_exactly_as_they_are() {
    let (ws, absent, base, _stop) = started("absent-keep", "").await;
    let before = users_of(&sim_get(&base, "/sim/state").await);

    let plan = run_with(&ws.0, &["plan", "--output", "json"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let plan = json_of(&plan);
    assert_eq!(plan["absentAgents"], serde_json::json!([]), "{plan}");
    assert_eq!(plan["totals"]["usersChanged"], 1, "{plan}");

    let apply = run_with(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert!(
        writes_in(&sim_stats(&base).await) > 0,
        "the agent was written"
    );
    let after = users_of(&sim_get(&base, "/sim/state").await);
    for id in absent.user_ids() {
        assert_eq!(
            after[&id], before[&id],
            "user {id} not in the HRIS was touched"
        );
    }
    let first = &absent.doc.users[0].id;
    assert_ne!(
        after[first], before[first],
        "the agent's change was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_removes_exactly_the_owned_assignments_of_users_not_in_the_hris() {
    let (ws, absent, base, _stop) = started("absent-strip", STRIP).await;
    let before = users_of(&sim_get(&base, "/sim/state").await);
    let owned = absent.owned_assignments();

    let plan = run_with(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let said = text(&plan);
    assert!(
        said.contains(&format!(
            "Agents no longer in the HRIS: 2 users, {owned} owned assignments removed"
        )),
        "{said}"
    );
    for id in absent.user_ids() {
        assert!(said.contains(&format!("user {id} · version")), "{said}");
    }
    let json = json_of(&run_with(&ws.0, &["plan", "--output", "json"]).await);
    let listed: BTreeSet<String> = json["absentAgents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, absent.user_ids(), "{json}");
    assert_eq!(json["totals"]["absentAssignmentsRemoved"], owned as u64);
    assert_eq!(json["totals"]["usersChanged"], 1, "agents counted apart");

    // One of them would be left with no skills: the guard stops the run first.
    let only_owned = &absent.doc.users[absent.only_owned].id;
    let refused = run_with(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let said = text(&refused);
    assert!(said.contains("left with no skills"), "{said}");
    assert!(said.contains(only_owned.as_str()), "names the user: {said}");
    assert_eq!(
        writes_in(&sim_stats(&base).await),
        0,
        "refused before any write"
    );

    let apply = run_with(&ws.0, &["apply", "--yes", "--allow-empty-skills"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let after = users_of(&sim_get(&base, "/sim/state").await);
    for id in absent.user_ids() {
        let kept = ext_only(&absent.doc, &before[&id]);
        let (skills, proficiencies) = (&after[&id]["skills"], &after[&id]["proficiencies"]);
        assert_eq!(
            (
                skills.as_array().unwrap().clone(),
                proficiencies.as_array().unwrap().clone()
            ),
            kept,
            "user {id}: every owned assignment gone, every other integration's kept as it was"
        );
    }
    assert!(
        !after[&absent.doc.users[absent.with_ext].id]["skills"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the other integration's skill survived"
    );
    for (id, user) in &before {
        if !absent.user_ids().contains(id) && id != &absent.doc.users[0].id {
            assert_eq!(&after[id], user, "agent {id} had nothing to change");
        }
    }
    // Nothing left to do.
    let again = run_with(&ws.0, &["plan"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_set_from_the_environment_goes_through_max_removals() {
    let (ws, absent, base, _stop) =
        started("absent-max-removals", "\n[sync]\nmax_removals = 1\n").await;
    let strip = [("SKILLSYNC_SYNC__ABSENT_AGENTS", "strip")];
    let run_env = |args: &'static [&'static str]| {
        let dir = ws.0.clone();
        tokio::task::spawn_blocking(move || skillsync_with_env(&dir, args, &strip))
    };

    // Without the variable the file's default, keep, applies.
    let kept = run_with(&ws.0, &["plan", "--output", "json"]).await;
    assert_eq!(json_of(&kept)["totals"]["absentUsers"], 0);
    let plan = run_env(&["plan", "--output", "json"]).await.unwrap();
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert_eq!(json_of(&plan)["totals"]["absentUsers"], 2);

    let refused = run_env(&["apply", "--yes", "--allow-empty-skills"])
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let said = text(&refused);
    assert!(
        said.contains(&format!(
            "refusing to apply: {} removals",
            absent.owned_assignments()
        )) && said.contains("exceed max_removals 1"),
        "{said}"
    );
    assert_eq!(
        writes_in(&sim_stats(&base).await),
        0,
        "refused before any write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_strips_the_users_no_longer_in_the_hris_it_saved() {
    let (ws, absent, base, _stop) = started("absent-saved-plan", STRIP).await;
    let before = users_of(&sim_get(&base, "/sim/state").await);

    let plan = run_with(&ws.0, &["plan", "--out", "plan.json"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let saved: Value =
        serde_json::from_slice(&std::fs::read(ws.0.join("plan.json")).unwrap()).unwrap();
    let without_employee = saved["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u.get("employeeId").is_none())
        .count();
    assert_eq!(without_employee, 2, "{saved}");

    let apply = run_with(
        &ws.0,
        &["apply", "--yes", "--allow-empty-skills", "plan.json"],
    )
    .await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let after = users_of(&sim_get(&base, "/sim/state").await);
    for id in absent.user_ids() {
        let (skills, proficiencies) = (&after[&id]["skills"], &after[&id]["proficiencies"]);
        assert_eq!(
            (
                skills.as_array().unwrap().clone(),
                proficiencies.as_array().unwrap().clone()
            ),
            ext_only(&absent.doc, &before[&id]),
            "user {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_in_the_users_dialect_leaves_the_proficiencies_it_cannot_see() {
    let ws = workspace("absent-users-dialect");
    let absent = Absent::new();
    absent.write_hris(&ws.0);
    // That dialect carries no proficiency rows.
    let proficiencies: BTreeSet<&str> = absent
        .doc
        .proficiencies
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    let path = ws.0.join("hris/assignments.csv");
    let skills_only: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|line| !proficiencies.contains(line.split(',').nth(1).unwrap_or_default()))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&path, skills_only).unwrap();
    let (base, _stop) = start_sim_with(absent.doc.clone(), Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml"))
        .unwrap()
        .replace("[limits]", "dialect = \"users\"\n\n[limits]")
        + "\n[sync]\nabsent_agents = \"strip\"\nmax_removals = \"100%\"\n";
    std::fs::write(ws.0.join("skillsync.toml"), config).unwrap();
    let before = users_of(&sim_get(&base, "/sim/state").await);
    assert!(
        absent.user_ids().iter().any(|id| {
            before[id]["proficiencies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| !is_ext(&absent.doc, a["id"].as_str().unwrap()))
        }),
        "one of them holds an owned proficiency"
    );

    let apply = run_with(&ws.0, &["apply", "--yes", "--allow-empty-skills"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let after = users_of(&sim_get(&base, "/sim/state").await);
    for id in absent.user_ids() {
        assert_eq!(
            after[&id]["skills"].as_array().unwrap().clone(),
            ext_only(&absent.doc, &before[&id]).0,
            "user {id}: owned skills gone, the other integration's kept"
        );
        assert_eq!(
            after[&id]["proficiencies"], before[&id]["proficiencies"],
            "user {id}: proficiencies, which the users dialect cannot see, untouched"
        );
    }
}

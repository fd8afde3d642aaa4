//! Saved plans: `skillsync plan --out FILE` then `skillsync apply FILE`, as `terraform plan
//! -out` and `terraform apply PLANFILE`. The file is applied exactly or refused before the
//! first write: when the HRIS files or the config changed, when one of its users was changed by
//! another writer meanwhile, and when it was applied already. It holds no secret and no token.
//! The real binary against the real simulator.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::{Value, json};
use skillsync_sim::{GenerateOptions, Knobs, TenantDoc};

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn tenant() -> TenantDoc {
    skillsync_sim::generate(&GenerateOptions {
        agents: 60,
        ..GenerateOptions::default()
    })
}

/// A workspace whose HRIS files differ from the tenant (levels, adds, removals), with a
/// saved plan of those differences in `plan.json`.
async fn planned(tag: &str) -> (Workspace, String, tokio::sync::oneshot::Sender<()>, Value) {
    let ws = workspace(tag);
    let doc = tenant();
    let expected = write_hris(&ws.0, &doc);
    assert!(expected.users_changed > 0);
    let (base, stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let plan = run_with(&ws.0, &["plan", "--out", "plan.json"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains("saved the plan to plan.json"),
        "{}",
        text(&plan)
    );
    let saved = read_saved(&ws.0);
    assert_eq!(saved["format"], "skillsync-plan");
    assert_eq!(saved["formatVersion"], 1);
    assert_eq!(
        saved["users"].as_array().unwrap().len() as u64,
        expected.users_changed
    );
    (ws, base, stop, saved)
}

fn read_saved(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("plan.json")).unwrap()).unwrap()
}

/// `{definition id: (level, active)}` of a list, from `/sim/state` or from a plan's `after`.
fn holdings(list: &Value, id_of: impl Fn(&Value) -> String) -> BTreeMap<String, (u64, bool)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                id_of(a),
                (a["level"].as_u64().unwrap(), a["active"].as_bool().unwrap()),
            )
        })
        .collect()
}

fn users_of(state: &Value) -> BTreeMap<String, Value> {
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_applies_exactly_its_changes_and_only_once() {
    let (ws, base, _stop, saved) = planned("saved-exact").await;
    let before = users_of(&sim_get(&base, "/sim/state").await);

    let apply = run_with(&ws.0, &["apply", "--yes", "plan.json", "--output", "json"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let document = json_of(&apply);
    assert_eq!(document["savedPlan"]["path"], "plan.json", "{document}");
    assert_eq!(
        document["savedPlan"]["desiredDigest"],
        saved["desiredDigest"]
    );

    // Every planned user holds exactly the plan's lists; nobody else changed.
    let after = users_of(&sim_get(&base, "/sim/state").await);
    let planned: BTreeMap<String, &Value> = saved["plan"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["userId"].as_str().unwrap().to_string(), u))
        .collect();
    assert!(!planned.is_empty());
    for (id, user) in &after {
        match planned.get(id) {
            None => assert_eq!(user, &before[id], "user {id} was not in the plan"),
            Some(plan) => {
                for list in ["skills", "proficiencies"] {
                    let now = holdings(&user[list], |a| a["id"].as_str().unwrap().to_string());
                    let want = match plan.get(list) {
                        Some(change) => holdings(&change["after"], |a| {
                            a["definition"]["existing"].as_str().unwrap().to_string()
                        }),
                        None => {
                            holdings(&before[id][list], |a| a["id"].as_str().unwrap().to_string())
                        }
                    };
                    assert_eq!(now, want, "user {id}: {list} as planned");
                }
            }
        }
    }

    // Applied once: its users are no longer at the versions it read.
    let writes = writes_in(&sim_stats(&base).await);
    let again = run_with(&ws.0, &["apply", "--yes", "plan.json"]).await;
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains("changed since the plan was made"),
        "{}",
        text(&again)
    );
    assert_eq!(
        writes_in(&sim_stats(&base).await),
        writes,
        "nothing written"
    );
    let replan = run_with(&ws.0, &["plan"]).await;
    assert_eq!(replan.status.code(), Some(0), "{}", text(&replan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_changed_by_another_writer_since_the_plan_refuses_it_naming_the_user() {
    let (ws, base, _stop, saved) = planned("saved-other-writer").await;
    let user_id = saved["users"][0]["userId"].as_str().unwrap().to_string();

    // Another writer changes one of the plan's users through the API, as any client would.
    let token = demo_token(&base).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v2/routing/users/{user_id}");
    let user = api_get(&base, &token, &format!("/routing/users/{user_id}")).await;
    let mut skills = user["skills"].as_array().unwrap().clone();
    skills[0]["level"] = json!(skills[0]["level"].as_u64().unwrap() % 10 + 1);
    let put = http
        .put(&url)
        .bearer_auth(&token)
        .header("If-Match", format!("\"{}\"", user["version"]))
        .json(&json!({ "skills": skills }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    let writes = writes_in(&sim_stats(&base).await);
    let apply = run_with(&ws.0, &["apply", "--yes", "plan.json"]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    let said = text(&apply);
    assert!(said.contains(&format!("user {user_id}")), "{said}");
    assert!(said.contains("changed since the plan was made"), "{said}");
    assert!(
        said.contains("skillsync plan --out"),
        "suggests a new plan: {said}"
    );
    assert_eq!(
        writes_in(&sim_stats(&base).await),
        writes,
        "refused before the first write"
    );
    // Journaled as refused, with the reason.
    let history = json_of(&run_with(&ws.0, &["history", "--output", "json"]).await);
    let last = &history["runs"][0];
    assert_eq!(last["outcome"], "refused", "{last}");
    let stopped = last["counts"]["stopped"].as_str().unwrap_or_default();
    assert!(stopped.contains(&user_id), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_created_by_another_writer_since_the_plan_refuses_it() {
    // The HRIS adds a skill the tenant does not have: the plan creates it, then assigns it.
    let ws = workspace("saved-definition");
    let doc = tenant();
    write_hris_exact(&ws.0, &doc);
    let agent = &doc.users[0];
    let profile = doc.profiles[0].id.clone();
    let catalog = ws.0.join("hris/catalog.csv");
    let text_of = |path: &Path| std::fs::read_to_string(path).unwrap();
    std::fs::write(
        &catalog,
        text_of(&catalog)
            + &format!(
                "Saved_Plan_Skill,skill,{},Saved_Plan_Skill,New,{profile}\n",
                agent.locale
            ),
    )
    .unwrap();
    let assignments = ws.0.join("hris/assignments.csv");
    std::fs::write(
        &assignments,
        text_of(&assignments) + "E00000,Saved_Plan_Skill,4,true\n",
    )
    .unwrap();
    let (base, _stop) = start_sim_with(doc.clone(), Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let plan = run_with(&ws.0, &["plan", "--out", "plan.json"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert_eq!(
        read_saved(&ws.0)["plan"]["totals"]["definitionsToCreate"],
        1
    );

    // Another writer creates it meanwhile: the plan's user is untouched, its definition not.
    let token = demo_token(&base).await;
    let created = reqwest::Client::new()
        .post(format!("{base}/api/v2/routing/skills"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "Saved_Plan_Skill",
            "locale": agent.locale,
            "active": true,
            "description": "New",
            "routingProfileId": profile,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let writes = writes_in(&sim_stats(&base).await);
    let apply = run_with(&ws.0, &["apply", "--yes", "plan.json"]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    assert!(
        text(&apply).contains("the tenant's definitions changed since the plan was made"),
        "{}",
        text(&apply)
    );
    assert_eq!(
        writes_in(&sim_stats(&base).await),
        writes,
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_hris_file_refuses_the_saved_plan() {
    let (ws, base, _stop, _saved) = planned("saved-hris-changed").await;
    let path = ws.0.join("hris/assignments.csv");
    let mut assignments = std::fs::read_to_string(&path).unwrap();
    let last = assignments
        .trim_end()
        .rsplit_once('\n')
        .unwrap()
        .1
        .to_string();
    assignments = assignments.replace(&last, &last.replace(",true", ",false"));
    std::fs::write(&path, assignments).unwrap();

    let apply = run_with(&ws.0, &["apply", "--yes", "plan.json"]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    assert!(
        text(&apply).contains("the HRIS files or config changed since the plan was made"),
        "{}",
        text(&apply)
    );
    assert_eq!(writes_in(&sim_stats(&base).await), 0, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saved_plan_holds_no_secret_and_no_token() {
    let (ws, _base, _stop, _saved) = planned("saved-no-secret").await;
    let saved = std::fs::read_to_string(ws.0.join("plan.json")).unwrap();
    // The config's secret, as the test config reads it from the environment.
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    assert!(config.contains("SKILLSYNC_TEST_SECRET"));
    assert!(!saved.contains(skillsync_sim::DEMO_CLIENT_SECRET));
    // The token the plan was made with, from the command's token cache.
    let tokens: Vec<String> = std::fs::read_dir(ws.0.join(".token-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let entry: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            entry["accessToken"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(!tokens.is_empty(), "the plan's token is cached");
    for token in tokens {
        assert!(!saved.contains(&token), "the saved plan holds the token");
    }
    assert!(!saved.to_lowercase().contains("secret"), "{saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percentage_max_removals_holds_the_saved_plan_to_the_share_of_the_whole_tenant() {
    // Three agents lose one assignment each: a sliver of the tenant's owned assignments, but a
    // large share of those three users' own. The saved plan is held to what `plan` showed.
    let ws = workspace("saved-percent");
    let doc = tenant();
    write_hris_exact(&ws.0, &doc);
    let path = ws.0.join("hris/assignments.csv");
    // The first row of each of the first three agents with rows.
    let mut dropped = std::collections::BTreeSet::new();
    let kept: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(n, line)| {
            let employee = line.split(',').next().unwrap().to_string();
            !(*n > 0 && dropped.len() < 3 && dropped.insert(employee))
        })
        .map(|(_, line)| line.to_string())
        .collect();
    assert_eq!(dropped.len(), 3);
    let changed: Vec<usize> = dropped
        .iter()
        .map(|e| e.trim_start_matches('E').parse().unwrap())
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let doc_users = doc.users.clone();
    let ext_ids: std::collections::HashSet<String> = doc
        .skills
        .iter()
        .chain(&doc.proficiencies)
        .filter(|d| d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .map(|d| d.id.clone())
        .collect();
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap()
        + "\n[sync]\nmax_removals = \"10%\"\n";
    std::fs::write(ws.0.join("skillsync.toml"), config).unwrap();

    let plan = run_with(&ws.0, &["plan", "--out", "plan.json", "--output", "json"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let totals = json_of(&plan)["totals"].clone();
    let removed = totals["assignmentsRemoved"].as_u64().unwrap();
    assert!(removed > 0, "{totals}");
    let owned = totals["ownedAssignmentsBefore"].as_u64().unwrap();
    assert!(
        removed * 100 <= owned * 10,
        "within 10% of the tenant: {totals}"
    );
    // Over 10% of what the changed users hold: a plan made again from them alone would be
    // refused if held to that share.
    let theirs: u64 = changed
        .iter()
        .map(|&i| {
            let u = &doc_users[i];
            u.skills
                .iter()
                .chain(&u.proficiencies)
                .filter(|a| !ext_ids.contains(&a.id))
                .count() as u64
        })
        .sum();
    assert!(removed * 100 > theirs * 10, "{removed} of {theirs}");

    let apply = run_with(
        &ws.0,
        &["apply", "--yes", "--allow-empty-skills", "plan.json"],
    )
    .await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let replan = run_with(&ws.0, &["plan"]).await;
    assert_eq!(replan.status.code(), Some(0), "{}", text(&replan));
}

#[test]
fn a_file_that_is_not_a_saved_plan_of_this_version_is_refused_naming_it() {
    let ws = workspace("saved-not-a-plan");
    write_config(&ws.0, "http://127.0.0.1:9");
    for (content, expected) in [
        ("not json", "plan.json is not a saved plan (not JSON)"),
        ("{}", "plan.json is not a saved plan (no \"format\""),
        (
            r#"{"format": "skillsync-plan", "formatVersion": 2}"#,
            "plan.json is a saved plan of format version 2",
        ),
    ] {
        std::fs::write(ws.0.join("plan.json"), content).unwrap();
        let apply = skillsync(&ws.0, &["apply", "--yes", "plan.json"]);
        assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
        assert!(text(&apply).contains(expected), "{}", text(&apply));
    }
    let missing = skillsync(&ws.0, &["apply", "--yes", "nowhere.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("cannot read the saved plan nowhere.json"),
        "{}",
        text(&missing)
    );
}

//! `skillsync retire` end to end against the simulator: the default strips exactly the
//! retired references (users, routing profiles, routing strategies) and keeps the definition
//! inactive; `--delete` strips them and deletes; `--soft` only deactivates, and the code drops
//! out of every later plan; outside `[sync] window` it refuses before any write unless
//! `--now`; refusals change nothing.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;
use skillsync_sim::{Assignment, GenerateOptions, Knobs, TenantDoc};

/// How many users and profiles reference the retired proficiency.
const HOLDERS: usize = 300;

/// A tenant where the en-us variant of one proficiency is held by exactly 300 en-us users
/// (each with other assignments besides) and listed by exactly 2 routing profiles. Returns the
/// tenant and the proficiency's name.
fn tenant() -> (TenantDoc, String) {
    let mut doc = skillsync_sim::generate(&GenerateOptions {
        agents: 900,
        skills: 6,
        proficiencies: 3,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 4,
        seed: 7,
    });
    let name = skillsync_sim::proficiency_name(0);
    let id = id_in(&doc.proficiencies, &name, "en-us");
    for profile in &mut doc.profiles {
        profile.proficiencies.retain(|p| *p != id);
    }
    for profile in doc.profiles.iter_mut().take(2) {
        profile.proficiencies.push(id.clone());
    }
    let mut holders = 0;
    for user in &mut doc.users {
        user.proficiencies.retain(|a| a.id != id);
        if user.locale == "en-us" && !user.skills.is_empty() && holders < HOLDERS {
            user.proficiencies.push(Assignment {
                id: id.clone(),
                level: 6,
                active: true,
            });
            holders += 1;
        }
    }
    assert_eq!(
        holders, HOLDERS,
        "the generated tenant has enough en-us agents"
    );
    (doc, name)
}

fn id_in(definitions: &[skillsync_sim::Definition], name: &str, locale: &str) -> String {
    definitions
        .iter()
        .find(|d| d.name == name && d.locale == locale)
        .unwrap_or_else(|| panic!("{name} ({locale}) exists"))
        .id
        .clone()
}

fn users_by_id(state: &Value) -> BTreeMap<String, Value> {
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u.clone()))
        .collect()
}

fn without(list: &Value, id: &str) -> Vec<Value> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"] != id && *a != id)
        .cloned()
        .collect()
}

fn ids_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn requests(stats: &Value, method: &str, route: &str) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["route"] == route)
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

async fn scenario(
    tag: &str,
) -> (
    Workspace,
    String,
    tokio::sync::oneshot::Sender<()>,
    TenantDoc,
    String,
) {
    let ws = workspace(tag);
    let (doc, name) = tenant();
    write_hris_exact(&ws.0, &doc);
    let (base, stop) = start_sim_with(doc.clone(), Knobs::quiet()).await;
    write_config(&ws.0, &base);
    (ws, base, stop, doc, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_retire_strips_300_users_and_2_profiles_then_deletes_touching_nothing_else() {
    let (ws, base, _stop, doc, name) = scenario("retire-hard").await;
    let id = id_in(&doc.proficiencies, &name, "en-us");
    let other_locale = id_in(&doc.proficiencies, &name, "de-de");
    let before = sim_get(&base, "/sim/state").await;

    let retired = run_with(
        &ws.0,
        &[
            "retire",
            name.as_str(),
            "--locale",
            "en-us",
            "--delete",
            "--yes",
        ],
    )
    .await;
    let out = text(&retired);
    assert_eq!(retired.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("{HOLDERS} user(s)")) && out.contains("2 routing profile(s)"),
        "the plan names what references it:\n{out}"
    );

    let after = sim_get(&base, "/sim/state").await;
    assert!(
        !ids_of(&after["proficiencies"]).contains(&id.as_str()),
        "the proficiency is deleted"
    );
    assert!(
        ids_of(&after["proficiencies"]).contains(&other_locale.as_str()),
        "--locale en-us leaves the de-de variant alone"
    );
    // Every other assignment of every user is exactly as it was; users that did not hold it
    // were not written at all (same version).
    let (was, now) = (users_by_id(&before), users_by_id(&after));
    let mut stripped = 0;
    for (user, old) in &was {
        let new = &now[user];
        assert_eq!(new["skills"], old["skills"], "user {user}: skills changed");
        let held = old["proficiencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str());
        assert_eq!(
            new["proficiencies"].as_array().unwrap(),
            &without(&old["proficiencies"], &id),
            "user {user}: only the retired proficiency may go"
        );
        if held {
            stripped += 1;
        } else {
            assert_eq!(
                new, old,
                "user {user} did not hold it and must be untouched"
            );
        }
    }
    assert_eq!(stripped, HOLDERS);
    for (old, new) in before["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["profiles"].as_array().unwrap())
    {
        assert_eq!(new["skills"], old["skills"]);
        assert_eq!(
            new["proficiencies"].as_array().unwrap(),
            &without(&old["proficiencies"], &id)
        );
    }

    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(
        requests(&stats, "POST", "/api/v2/routing/users/bulk"),
        3,
        "300 users in bulk batches of 100: {stats}"
    );
    assert_eq!(
        requests(&stats, "PUT", "/api/v2/routing/users/{userId}"),
        0,
        "no single writes without conflicts"
    );
    assert_eq!(
        writes_in(&stats),
        3 + 2 + 1,
        "3 bulk writes, 2 profile writes, 1 delete"
    );

    // Journaled like any run: every user, profile and definition write.
    let history = run(&ws.0, &["history", "--output", "json"]).await;
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let runs = &history["runs"];
    assert_eq!(runs[0]["command"], "retire", "{runs}");
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs}");
    assert_eq!(runs[0]["writes"], (HOLDERS + 2 + 1) as u64, "{runs}");

    // The catalog still lists the code and the HRIS still assigns it to 300 agents: the next
    // plan neither recreates nor reassigns it, and says why.
    let replanned = run(&ws.0, &["plan"]).await;
    let out = text(&replanned);
    assert_eq!(replanned.status.code(), Some(0), "{out}");
    assert!(
        out.contains("retired (hard)") && out.contains("not planned"),
        "{out}"
    );

    // Nor does a real-time assign bring it back.
    let agent = doc.users.iter().position(|u| u.locale == "en-us").unwrap();
    let employee = format!("E{agent:05}");
    let assigned = run_with(&ws.0, &["assign", &employee, &name, "5"]).await;
    let out = text(&assigned);
    assert_eq!(assigned.status.code(), Some(1), "{out}");
    assert!(out.contains("was retired (hard)"), "{out}");
    let state = sim_get(&base, "/sim/state").await;
    assert!(!ids_of(&state["proficiencies"]).contains(&id.as_str()));
    assert_eq!(
        state["proficiencies"].as_array().unwrap().len(),
        before["proficiencies"].as_array().unwrap().len() - 1,
        "nothing recreated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_retire_deactivates_keeps_assignments_and_drops_the_code_from_later_plans() {
    let (ws, base, _stop, doc, name) = scenario("retire-soft").await;
    let before = sim_get(&base, "/sim/state").await;

    let retired = run_with(&ws.0, &["retire", name.as_str(), "--soft", "--yes"]).await;
    let out = text(&retired);
    assert_eq!(retired.status.code(), Some(0), "{out}");

    let after = sim_get(&base, "/sim/state").await;
    for locale in ["en-us", "de-de"] {
        let id = id_in(&doc.proficiencies, &name, locale);
        let definition = after["proficiencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{name} ({locale}) is kept"));
        assert_eq!(definition["active"], false, "{definition}");
    }
    assert_eq!(
        after["users"], before["users"],
        "assignments are kept for reporting"
    );
    assert_eq!(after["profiles"], before["profiles"]);
    let writes_after_retire = writes_in(&sim_get(&base, "/sim/stats").await);
    assert_eq!(writes_after_retire, 2, "one PUT per locale variant");

    // The HRIS still lists the code: the plan neither reactivates it nor touches its
    // assignments, and nothing else differs, so it exits 0.
    let plan = run(&ws.0, &["plan", "--output", "json"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let json: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(json["definitions"], Value::Array(Vec::new()), "{json}");
    let warnings = json["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "{name} (en-us) was retired (soft) in run 1: not planned"
        )),
        "{warnings}"
    );

    // Even when the HRIS changes what it says about the retired code, nothing of it is planned.
    let assignments = std::fs::read_to_string(ws.0.join("hris/assignments.csv")).unwrap();
    let mut changed = String::new();
    let mut first_holder_seen = false;
    for line in assignments.lines() {
        if line.contains(&format!(",{name},")) {
            if !first_holder_seen {
                first_holder_seen = true; // dropped: would be a removal
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            changed.push_str(&format!(
                "{},{},{},true\n",
                fields[0],
                fields[1],
                fields[2].parse::<u8>().unwrap() % 10 + 1
            ));
        } else {
            changed.push_str(line);
            changed.push('\n');
        }
    }
    std::fs::write(ws.0.join("hris/assignments.csv"), changed).unwrap();
    let plan = run(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let apply = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert_eq!(
        writes_in(&sim_get(&base, "/sim/stats").await),
        writes_after_retire,
        "apply wrote nothing"
    );

    // --undo hands the code back to the plan, which then reactivates it.
    let undone = run_with(&ws.0, &["retire", name.as_str(), "--undo"]).await;
    assert_eq!(undone.status.code(), Some(0), "{}", text(&undone));
    let plan = run(&ws.0, &["plan", "--output", "json"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let json: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let actions: Vec<&str> = json["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["reactivate", "reactivate"], "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_yes_and_without_a_terminal_it_refuses_and_changes_nothing() {
    let (ws, base, _stop, _doc, name) = scenario("retire-no-yes").await;
    let before = sim_get(&base, "/sim/state").await;
    let refused = run_with(&ws.0, &["retire", name.as_str()]).await;
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(
        out.contains("refusing to retire without confirmation"),
        "{out}"
    );
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), 0);
    assert_eq!(sim_get(&base, "/sim/state").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_code_or_locale_is_a_clear_error_and_changes_nothing() {
    let (ws, base, _stop, _doc, name) = scenario("retire-unknown").await;
    let unknown = run(&ws.0, &["retire", "NO_SUCH_CODE", "--yes"]).await;
    let out = text(&unknown);
    assert_eq!(unknown.status.code(), Some(1), "{out}");
    assert!(
        out.contains("hris/catalog.csv") && out.contains("no code NO_SUCH_CODE"),
        "{out}"
    );
    let unknown_locale = run_with(
        &ws.0,
        &["retire", name.as_str(), "--locale", "fr-fr", "--yes"],
    )
    .await;
    let out = text(&unknown_locale);
    assert_eq!(unknown_locale.status.code(), Some(1), "{out}");
    assert!(
        out.contains("hris/catalog.csv")
            && out.contains("no fr-fr variant")
            && out.contains("de-de, en-us"),
        "{out}"
    );
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(writes_in(&stats), 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retiring_someones_last_skill_is_refused_unless_allowed() {
    let ws = workspace("retire-last-skill");
    let (mut doc, _) = tenant();
    let skill = skillsync_sim::skill_name(0);
    let skill_id = id_in(&doc.skills, &skill, "en-us");
    let (index, lonely) = doc
        .users
        .iter_mut()
        .enumerate()
        .find(|(_, u)| u.locale == "en-us")
        .unwrap();
    let employee = format!("E{index:05}");
    lonely.skills = vec![Assignment {
        id: skill_id.clone(),
        level: 3,
        active: true,
    }];
    let lonely_id = lonely.id.clone();
    write_hris_exact(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_config(&ws.0, &base);

    let refused = run_with(
        &ws.0,
        &["retire", skill.as_str(), "--locale", "en-us", "--yes"],
    )
    .await;
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(
        out.contains("--allow-empty-skills") && out.contains(&employee),
        "{out}"
    );
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), 0);

    let allowed = run_with(
        &ws.0,
        &[
            "retire",
            skill.as_str(),
            "--locale",
            "en-us",
            "--delete",
            "--yes",
            "--allow-empty-skills",
        ],
    )
    .await;
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    let state = sim_get(&base, "/sim/state").await;
    assert_eq!(
        users_by_id(&state)[&lonely_id]["skills"],
        Value::Array(Vec::new())
    );
    assert!(!ids_of(&state["skills"]).contains(&skill_id.as_str()));
}

/// `docs/retire-json.md` lists exactly the fields `retire --output json` prints. A first run
/// without the `users:write` scope has every user write refused, so the per-user failures are
/// printed; the second run finishes; `--undo` prints its own document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_documents_are_exactly_what_docs_retire_json_md_lists() {
    let (ws, _base, _stop, _doc, name) = scenario("retire-json").await;
    let config = ws.0.join("skillsync.toml");
    let full = std::fs::read_to_string(&config).unwrap();
    let json = |output: &std::process::Output| -> Value {
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("retire must print JSON ({e}):\n{}", text(output)))
    };
    let retire_json = [
        "retire",
        name.as_str(),
        "--locale",
        "en-us",
        "--yes",
        "--output",
        "json",
    ];

    // Everything retire reads and the profile and definition writes, but no user writes.
    // One request at a time, so the first refused bulk (100 users) stops the run before the
    // other two are sent.
    let without_user_writes = full
        .replace(
            "[limits]",
            "scopes = [\"routing:proficiencies:read\", \"routing:proficiencies:write\", \
             \"routing:profiles:read\", \"routing:profiles:write\", \"routing:strategies:read\", \
             \"routing:strategies:write\", \"users:read\"]\n\n[limits]",
        )
        .replace("max_in_flight = 8", "max_in_flight = 1");
    assert_ne!(
        without_user_writes, full,
        "the config has a [limits] section"
    );
    std::fs::write(&config, without_user_writes).unwrap();
    let failed = run_with(&ws.0, &retire_json).await;
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let failed = json(&failed);
    let retired = &failed["retired"];
    // A missing scope stops the run (every later write would meet it): the users of the
    // refused request failed with the tenant's reason, the rest were never attempted.
    let failed_users = retired["usersFailed"].as_array().unwrap();
    let not_attempted = retired["usersNotAttempted"].as_array().unwrap();
    assert_eq!(failed_users.len(), 100, "{failed:#}");
    assert!(
        failed_users
            .iter()
            .all(|u| u["reason"].as_str().unwrap().contains("scope")),
        "{failed:#}"
    );
    assert_eq!(
        failed_users.len() + not_attempted.len(),
        HOLDERS,
        "{failed:#}"
    );
    assert!(retired["error"].is_string(), "{failed:#}");
    assert_eq!(retired["definitionsDeleted"], 0, "{failed:#}");

    std::fs::write(&config, &full).unwrap();
    let done = run_with(&ws.0, &retire_json).await;
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    let done = json(&done);
    let retired = &done["retired"];
    assert_eq!(retired["error"], Value::Null, "{done:#}");
    assert_eq!(retired["usersStripped"], HOLDERS as u64, "{done:#}");
    assert_eq!(retired["profilesStripped"], 2, "{done:#}");
    assert_eq!(done["mode"], "deactivate", "{done:#}");
    assert_eq!(retired["definitionsDeactivated"], 1, "{done:#}");
    assert_eq!(retired["definitionsDeleted"], 0, "kept, inactive: {done:#}");
    assert_eq!(done["definitions"].as_array().unwrap().len(), 1, "{done:#}");
    // `api.requests` is a map from route to count: its keys are data, not fields.
    let requests = retired["api"]["requests"].as_object().unwrap();
    assert!(
        requests.contains_key("POST /routing/users/bulk") && requests.values().all(Value::is_u64),
        "{done:#}"
    );

    let undone = run_with(
        &ws.0,
        &["retire", name.as_str(), "--undo", "--output", "json"],
    )
    .await;
    assert_eq!(undone.status.code(), Some(0), "{}", text(&undone));
    let undone = json(&undone);
    assert_eq!(
        undone["restored"],
        serde_json::json!(["en-us"]),
        "{undone:#}"
    );

    let page = json_doc::read("retire-json.md");
    let documented = json_doc::documented(&page);
    let opaque = ["retired.api.requests"];
    let mut printed = json_doc::Fields::new();
    for document in [&failed, &done] {
        json_doc::printed(document, "", &opaque, &mut printed);
    }
    // The undo document is documented under the heading `--undo`.
    json_doc::printed(&undone, "--undo", &opaque, &mut printed);
    json_doc::assert_same("retire-json.md", &documented, &printed);

    let examples = json_doc::examples(&page);
    assert_eq!(
        examples.len(),
        2,
        "a retirement example and an undo example"
    );
    let mut shown = json_doc::Fields::new();
    json_doc::printed(&examples[0], "", &opaque, &mut shown);
    json_doc::printed(&examples[1], "--undo", &opaque, &mut shown);
    json_doc::assert_example_documented("retire-json.md", &documented, &shown);
}

/// Every write lands and is then answered 502 (`fault-after-commit-rate` 1); the client's
/// retry meets 412, since our own write moved the version. Re-read, each change is in place:
/// the run journals it as applied (a user's skills with a settle time) and counts it as its
/// own, not as found done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_whose_answers_were_lost_are_journaled_applied_and_counted() {
    const LOST: usize = 25;
    let ws = workspace("retire-lost-answers");
    let (mut doc, proficiency) = tenant();
    let skill = skillsync_sim::skill_name(0);
    let skill_id = id_in(&doc.skills, &skill, "en-us");
    let mut holders = 0;
    for user in &mut doc.users {
        user.skills.retain(|a| a.id != skill_id);
        if user.locale == "en-us" && !user.skills.is_empty() && holders < LOST {
            user.skills.push(Assignment {
                id: skill_id.clone(),
                level: 4,
                active: true,
            });
            holders += 1;
        }
    }
    assert_eq!(holders, LOST);
    for (i, profile) in doc.profiles.iter_mut().enumerate() {
        profile.skills.retain(|id| *id != skill_id);
        if i == 0 {
            profile.skills.push(skill_id.clone());
        }
    }
    write_hris_exact(&ws.0, &doc);
    let knobs = Knobs {
        fault_after_commit_rate: 1.0,
        ..Knobs::quiet()
    };
    let (base, _stop) = start_sim_with(doc.clone(), knobs).await;
    write_config(&ws.0, &base);
    let journal =
        skillsync_store::open(&format!("sqlite://{}", ws.0.join("skillsync.db").display()))
            .await
            .unwrap();
    let json = |output: &std::process::Output| -> Value {
        assert_eq!(output.status.code(), Some(0), "{}", text(output));
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("retire must print JSON ({e}):\n{}", text(output)))
    };
    let applied = async |run: i64, target: skillsync_store::WriteTarget| {
        journal
            .writes(skillsync_store::RunId(run))
            .await
            .unwrap()
            .into_iter()
            .filter(|w| w.target == target && w.status == skillsync_store::WriteStatus::Applied)
            .collect::<Vec<_>>()
    };

    let hard = json(
        &run_with(
            &ws.0,
            &[
                "retire", &skill, "--locale", "en-us", "--delete", "--yes", "--output", "json",
            ],
        )
        .await,
    );
    let retired = &hard["retired"];
    assert_eq!(retired["usersStripped"], LOST as u64, "{hard:#}");
    assert_eq!(retired["usersAlreadyClear"], 0, "{hard:#}");
    assert_eq!(retired["profilesStripped"], 1, "{hard:#}");
    assert_eq!(retired["definitionsDeleted"], 1, "{hard:#}");
    assert!(
        retired["settlesAt"].is_string(),
        "{LOST} users lost a routable skill: {hard:#}"
    );
    let run = retired["run"].as_i64().unwrap();
    let users = applied(run, skillsync_store::WriteTarget::UserSkills).await;
    assert_eq!(users.len(), LOST, "{users:#?}");
    assert!(users.iter().all(|w| w.settles_at.is_some()), "{users:#?}");
    assert_eq!(
        applied(run, skillsync_store::WriteTarget::Profile)
            .await
            .len(),
        1
    );
    let state = sim_get(&base, "/sim/state").await;
    assert!(!ids_of(&state["skills"]).contains(&skill_id.as_str()));

    let soft = json(
        &run_with(
            &ws.0,
            &[
                "retire",
                &proficiency,
                "--soft",
                "--yes",
                "--output",
                "json",
            ],
        )
        .await,
    );
    let retired = &soft["retired"];
    assert_eq!(
        retired["definitionsDeactivated"], 2,
        "both locale variants: {soft:#}"
    );
    assert_eq!(retired["settlesAt"], Value::Null, "{soft:#}");
    let run = retired["run"].as_i64().unwrap();
    assert_eq!(
        applied(run, skillsync_store::WriteTarget::Definition)
            .await
            .len(),
        2,
        "{:#?}",
        journal.writes(skillsync_store::RunId(run)).await.unwrap()
    );
    let state = sim_get(&base, "/sim/state").await;
    for locale in ["en-us", "de-de"] {
        let id = id_in(&doc.proficiencies, &proficiency, locale);
        let definition = state["proficiencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id.as_str())
            .unwrap();
        assert_eq!(definition["active"], false, "{definition}");
    }
}

/// The default retirement: every reference stripped exactly as `--delete` strips it, then the
/// definition kept, `active: false` (the source document's soft delete), so reporting history
/// keeps its name while nothing is assigned it any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_retire_strips_every_user_and_keeps_the_definition_inactive() {
    let (ws, base, _stop, doc, name) = scenario("retire-default").await;
    let id = id_in(&doc.proficiencies, &name, "en-us");
    let before = sim_get(&base, "/sim/state").await;

    let retired = run_with(
        &ws.0,
        &[
            "retire",
            name.as_str(),
            "--locale",
            "en-us",
            "--yes",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(retired.status.code(), Some(0), "{}", text(&retired));
    let document: Value = serde_json::from_slice(&retired.stdout).unwrap();
    assert_eq!(document["mode"], "deactivate", "{document:#}");
    let report = &document["retired"];
    assert_eq!(report["usersStripped"], HOLDERS as u64, "{document:#}");
    assert_eq!(report["profilesStripped"], 2, "{document:#}");
    assert_eq!(report["definitionsDeactivated"], 1, "{document:#}");
    assert_eq!(report["definitionsDeleted"], 0, "{document:#}");

    let after = sim_get(&base, "/sim/state").await;
    let definition = after["proficiencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id.as_str())
        .expect("the definition is still listed");
    assert_eq!(definition["active"], false, "{definition}");
    for user in after["users"].as_array().unwrap() {
        assert!(
            !ids_of(&user["proficiencies"]).contains(&id.as_str()),
            "no user holds it: {user}"
        );
    }
    for profile in after["profiles"].as_array().unwrap() {
        assert!(
            !profile["proficiencies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| *p == id.as_str()),
            "no profile lists it: {profile}"
        );
    }
    // Everything else is as it was: the other users and every other assignment.
    let (was, now) = (users_by_id(&before), users_by_id(&after));
    for (user, old) in &was {
        assert_eq!(now[user]["skills"], old["skills"], "user {user}");
        assert_eq!(
            now[user]["proficiencies"].as_array().unwrap(),
            &without(&old["proficiencies"], &id),
            "user {user}"
        );
    }
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(
        writes_in(&stats),
        3 + 2 + 1,
        "3 bulk writes, 2 profile writes, 1 PUT active:false, no delete: {stats}"
    );
    assert_eq!(
        requests(&stats, "DELETE", "/api/v2/routing/proficiencies/{id}"),
        0
    );
    assert_eq!(
        requests(&stats, "PUT", "/api/v2/routing/proficiencies/{id}"),
        1
    );
}

/// The top of the hour `hours_from_now` ahead, in UTC.
fn utc_hour_ahead(hours_from_now: i64) -> jiff::ZonedDateTime {
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours_from_now);
    let local = later.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    local
        .with()
        .minute(0)
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .unwrap()
}

/// Like `apply`, outside `[sync] window` retire refuses before reading or writing anything
/// (same message, exit 1); `--now` retires anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_retire_refuses_before_any_write_and_now_overrides() {
    let (ws, base, _stop, doc, name) = scenario("retire-window").await;
    let id = id_in(&doc.proficiencies, &name, "en-us");
    // Opens five to six hours from now, for one hour (UTC: no [tenant] timezone).
    let opens = utc_hour_ahead(6);
    let config = ws.0.join("skillsync.toml");
    let full = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        full + &format!(
            "\n[sync]\nwindow = \"{:02}:00-{:02}:00\"\n",
            opens.hour(),
            (opens.hour() + 1) % 24
        ),
    )
    .unwrap();
    let retire = ["retire", name.as_str(), "--locale", "en-us", "--yes"];

    let refused = run_with(&ws.0, &retire).await;
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        stderr.contains("outside the sync window")
            && stderr.contains("the next one opens")
            && stderr.contains("Use --now to retire anyway"),
        "apply's refusal, for retire: {stderr}"
    );
    assert!(refused.stdout.is_empty(), "nothing on stdout");
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(writes_in(&stats), 0, "refused before any write: {stats}");
    assert_eq!(
        requests(&stats, "GET", "/api/v2/routing/users"),
        0,
        "nor read anything: {stats}"
    );
    let history = run(&ws.0, &["history", "--output", "json"]).await;
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        history["runs"].as_array().map_or(0, Vec::len),
        0,
        "no run started, no retirement recorded: {history}"
    );

    let mut now = retire.to_vec();
    now.push("--now");
    let retired = run_with(&ws.0, &now).await;
    assert_eq!(retired.status.code(), Some(0), "{}", text(&retired));
    let state = sim_get(&base, "/sim/state").await;
    let definition = state["proficiencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id.as_str())
        .unwrap();
    assert_eq!(definition["active"], false, "{definition}");
    assert!(writes_in(&sim_get(&base, "/sim/stats").await) > 0);
}

/// Routing strategies are the third kind of reference that blocks a proficiency's delete: the
/// simulator refuses the delete while one names it, and retire strips it from every strategy
/// (journaled, `If-Match`) before deleting, touching nothing else of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_reference_blocks_the_delete_until_retire_strips_it() {
    let ws = workspace("retire-strategies");
    let (mut doc, name) = tenant();
    let id = id_in(&doc.proficiencies, &name, "en-us");
    let other = id_in(
        &doc.proficiencies,
        &skillsync_sim::proficiency_name(1),
        "en-us",
    );
    let strategy = |n: usize, name: &str, proficiencies: Vec<String>| skillsync_sim::Strategy {
        id: format!("00000000-0000-4000-8000-00000000000{n}"),
        name: name.to_string(),
        proficiencies,
        version: 1,
    };
    doc.strategies = vec![
        strategy(1, "Strategy_Escalations", vec![other.clone(), id.clone()]),
        strategy(2, "Strategy_VIP", vec![id.clone()]),
        strategy(3, "Strategy_Untouched", vec![other.clone()]),
    ];
    write_hris_exact(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc.clone(), Knobs::quiet()).await;
    write_config(&ws.0, &base);

    // Asked directly, the simulator refuses the delete, counting and naming the strategies
    // beside the users and profiles (crates/sim/tests/strategies.rs shows a strategy alone
    // blocking it).
    let token = demo_token(&base).await;
    let http = reqwest::Client::new();
    let refused = http
        .delete(format!("{base}/api/v2/routing/proficiencies/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "REFERENCED", "{body}");
    assert_eq!(body["references"]["strategies"], 2, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Strategy_VIP"),
        "names the strategies: {body}"
    );

    let retired = run_with(
        &ws.0,
        &[
            "retire",
            name.as_str(),
            "--locale",
            "en-us",
            "--delete",
            "--yes",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(retired.status.code(), Some(0), "{}", text(&retired));
    let document: Value = serde_json::from_slice(&retired.stdout).unwrap();
    assert_eq!(document["mode"], "hard", "{document:#}");
    assert_eq!(
        document["definitions"][0]["strategies"],
        serde_json::json!(["Strategy_Escalations", "Strategy_VIP"]),
        "{document:#}"
    );
    let report = &document["retired"];
    assert_eq!(report["strategiesStripped"], 2, "{document:#}");
    assert_eq!(report["definitionsDeleted"], 1, "{document:#}");
    assert_eq!(report["deletesRefused"], 0, "stripped before the delete");

    let state = sim_get(&base, "/sim/state").await;
    assert!(!ids_of(&state["proficiencies"]).contains(&id.as_str()));
    let strategies: BTreeMap<&str, &Value> = state["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s))
        .collect();
    assert_eq!(
        strategies["Strategy_Escalations"]["proficiencies"],
        serde_json::json!([other.clone()]),
        "only the retired id goes"
    );
    assert_eq!(
        strategies["Strategy_VIP"]["proficiencies"],
        serde_json::json!([])
    );
    assert_eq!(
        strategies["Strategy_Untouched"]["version"], 1,
        "a strategy that did not name it is not written"
    );
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(
        requests(&stats, "PUT", "/api/v2/routing/strategies/{id}"),
        2
    );

    // Journaled like the other writes, with the strategy before and after.
    let journal =
        skillsync_store::open(&format!("sqlite://{}", ws.0.join("skillsync.db").display()))
            .await
            .unwrap();
    let run = document["retired"]["run"].as_i64().unwrap();
    let writes: Vec<_> = journal
        .writes(skillsync_store::RunId(run))
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.target == skillsync_store::WriteTarget::Strategy)
        .collect();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    for write in &writes {
        assert_eq!(write.status, skillsync_store::WriteStatus::Applied);
        let (
            skillsync_store::Snapshot::Strategy(before),
            skillsync_store::Snapshot::Strategy(after),
        ) = (&write.before, &write.after)
        else {
            panic!("strategy snapshots: {write:#?}");
        };
        assert!(before.proficiencies.contains(&id), "{write:#?}");
        assert!(!after.proficiencies.contains(&id), "{write:#?}");
        assert_eq!(after.version, before.version + 1, "{write:#?}");
    }
}

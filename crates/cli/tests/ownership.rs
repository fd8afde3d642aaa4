//! Ownership of tenant definitions: listing another integration's definition in the catalog
//! does not silently take its assignments. A plan that would remove or change assignments of a
//! definition skillsync neither created nor adopted is refused, naming it, until `--adopt`;
//! the adoption is remembered. Before, `plan` proposed removing the other integration's
//! assignments and `validate` passed.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use skillsync_sim::GenerateOptions;

/// The binary as a user runs it: no `SKILLSYNC_ADOPT` (the other tests' helpers set it).
fn skillsync_unadopted(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(args)
        .current_dir(dir)
        .env("SKILLSYNC_TEST_SECRET", skillsync_sim::DEMO_CLIENT_SECRET)
        .env_remove("SKILLSYNC_ADOPT")
        .env("SKILLSYNC_CACHE_DIR", dir.join(".token-cache"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

async fn run_unadopted(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        skillsync_unadopted(&dir, &args)
    })
    .await
    .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const CLAIMED: &str = "Ext_Speech_Analytics_Flag";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claiming_another_integrations_definition_is_a_conflict_until_adopted() {
    let ws = workspace("ownership-claim");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 120,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    let claimed = doc
        .skills
        .iter()
        .find(|d| d.name == CLAIMED)
        .expect("the generated tenant has the other integration's flag")
        .clone();
    let holders = doc
        .users
        .iter()
        .filter(|u| u.skills.iter().any(|a| a.id == claimed.id))
        .count();
    assert!(holders > 0, "someone holds the flag");
    write_hris_exact(&ws.0, &doc);
    let catalog_path = ws.0.join("hris/catalog.csv");
    let mut catalog = std::fs::read_to_string(&catalog_path).unwrap();
    let claimed_line = catalog.lines().count() + 1;
    catalog.push_str(&format!(
        "{CLAIMED},skill,en-us,{CLAIMED},{},{}\n",
        claimed.description, claimed.routing_profile_id
    ));
    std::fs::write(&catalog_path, catalog).unwrap();
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);

    let plan = run_unadopted(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(1), "{}", text(&plan));
    let said = text(&plan);
    assert!(
        said.contains(&format!(
            "hris/catalog.csv:{claimed_line}:1: error: skill `{CLAIMED}`"
        )),
        "{said}"
    );
    assert!(said.contains("neither created nor adopted"), "{said}");
    assert!(
        said.contains(&format!("removes {holders} and changes 0 assignment(s)")),
        "{said}"
    );
    assert!(said.contains(&format!("--adopt {CLAIMED}")), "{said}");

    let apply = run_unadopted(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    assert_eq!(
        writes_in(&sim_stats(&base).await),
        0,
        "refused before any write"
    );
    // Journaled as refused for the takeover, not as a failure of the HRIS files.
    let history = run_unadopted(&ws.0, &["history", "--output", "json"]).await;
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let last = &history["runs"][0];
    assert_eq!(last["outcome"], "refused", "{last}");
    let stopped = last["counts"]["stopped"].as_str().unwrap_or_default();
    assert!(
        stopped.contains("take over 1 definition(s)") && stopped.contains("--adopt"),
        "{last}"
    );

    let preview = run_unadopted(&ws.0, &["plan", "--adopt", CLAIMED]).await;
    assert_eq!(preview.status.code(), Some(2), "{}", text(&preview));
    assert!(text(&preview).contains(&format!("adopting skill `{CLAIMED}`")));

    // Some holders have no other skill: taking the flag leaves them none.
    let adopt = run_unadopted(
        &ws.0,
        &["apply", "--yes", "--adopt", CLAIMED, "--allow-empty-skills"],
    )
    .await;
    assert_eq!(adopt.status.code(), Some(0), "{}", text(&adopt));

    // Remembered: giving the flag to one agent and taking it away again needs no --adopt.
    let assignments_path = ws.0.join("hris/assignments.csv");
    let original = std::fs::read_to_string(&assignments_path).unwrap();
    std::fs::write(
        &assignments_path,
        format!("{original}E00000,{CLAIMED},5,true\n"),
    )
    .unwrap();
    let add = run_unadopted(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(add.status.code(), Some(0), "{}", text(&add));
    std::fs::write(&assignments_path, original).unwrap();
    let remove = run_unadopted(&ws.0, &["plan"]).await;
    assert_eq!(remove.status.code(), Some(2), "{}", text(&remove));
}

/// A definition that only gains assignments takes nothing from anyone: no conflict, and the
/// catalog's own definitions (created by skillsync) are always its to manage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_assignments_or_managing_created_definitions_is_no_conflict() {
    let ws = workspace("ownership-add");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 40,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let profile = doc.profiles[0].id.clone();
    let catalog_path = ws.0.join("hris/catalog.csv");
    let catalog = std::fs::read_to_string(&catalog_path).unwrap();
    std::fs::write(
        &catalog_path,
        format!("{catalog}Brand_New,skill,en-us,Brand_New,,{profile}\n"),
    )
    .unwrap();
    let assignments_path = ws.0.join("hris/assignments.csv");
    let original = std::fs::read_to_string(&assignments_path).unwrap();
    std::fs::write(
        &assignments_path,
        format!("{original}E00001,Brand_New,4,true\nE00002,Brand_New,4,true\n"),
    )
    .unwrap();
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);

    let apply = run_unadopted(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    // Created by skillsync: taking the skill away from one agent is a plain change.
    std::fs::write(
        &assignments_path,
        format!("{original}E00001,Brand_New,4,true\n"),
    )
    .unwrap();
    let plan = run_unadopted(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(!text(&plan).contains("adopt"), "{}", text(&plan));
}

/// Only an explicit `--adopt` (or creating a definition) makes skillsync its manager. A run that
/// leaves another integration's definition untouched, or only adds to it, must not adopt it on
/// the way: before, every definition the catalog resolved was remembered as managed on any
/// applied run, and a later run removed the other integration's assignments without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untouched_or_only_added_to_definitions_are_not_adopted_on_the_way() {
    let ws = workspace("ownership-quiet");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 60,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    let claimed = doc
        .skills
        .iter()
        .find(|d| d.name == CLAIMED)
        .expect("the generated tenant has the other integration's flag")
        .clone();
    let holders: Vec<usize> = doc
        .users
        .iter()
        .enumerate()
        .filter(|(_, u)| u.skills.iter().any(|a| a.id == claimed.id))
        .map(|(i, _)| i)
        .collect();
    let outsider = (0..doc.users.len())
        .find(|i| !holders.contains(i))
        .expect("someone does not hold the flag");
    assert!(!holders.is_empty(), "someone holds the flag");
    write_hris_exact(&ws.0, &doc);
    let profile = doc.profiles[0].id.clone();
    let catalog_path = ws.0.join("hris/catalog.csv");
    let catalog = std::fs::read_to_string(&catalog_path).unwrap();
    std::fs::write(
        &catalog_path,
        format!(
            "{catalog}{CLAIMED},skill,en-us,{CLAIMED},{},{}\nBrand_New,skill,en-us,Brand_New,,{profile}\n",
            claimed.description, claimed.routing_profile_id
        ),
    )
    .unwrap();
    // The HRIS gives the flag to exactly its holders: this run changes nothing of it.
    let assignments_path = ws.0.join("hris/assignments.csv");
    let mut exact = std::fs::read_to_string(&assignments_path).unwrap();
    for (i, user) in doc.users.iter().enumerate() {
        if let Some(a) = user.skills.iter().find(|a| a.id == claimed.id) {
            exact.push_str(&format!("E{i:05},{CLAIMED},{},{}\n", a.level, a.active));
        }
    }
    let with_new = format!("{exact}E{outsider:05},Brand_New,4,true\n");
    std::fs::write(&assignments_path, &with_new).unwrap();
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);

    let untouched = run_unadopted(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(untouched.status.code(), Some(0), "{}", text(&untouched));
    let first_holder = format!("E{:05},{CLAIMED},", holders[0]);
    let without_first_holder = |base: &str| -> String {
        base.lines()
            .filter(|l| !l.starts_with(&first_holder))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    std::fs::write(&assignments_path, without_first_holder(&with_new)).unwrap();
    let taking = run_unadopted(&ws.0, &["plan"]).await;
    assert_eq!(
        taking.status.code(),
        Some(1),
        "an untouched definition was adopted: {}",
        text(&taking)
    );
    assert!(text(&taking).contains("neither created nor adopted"));

    // Adding the flag to one more agent takes nothing, and adopts nothing either.
    let added = format!("{with_new}E{outsider:05},{CLAIMED},3,true\n");
    std::fs::write(&assignments_path, &added).unwrap();
    let add = run_unadopted(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(add.status.code(), Some(0), "{}", text(&add));
    std::fs::write(&assignments_path, without_first_holder(&added)).unwrap();
    let taking = run_unadopted(&ws.0, &["plan"]).await;
    assert_eq!(
        taking.status.code(),
        Some(1),
        "a definition only added to was adopted: {}",
        text(&taking)
    );

    // The definition skillsync created is its own from the first run.
    std::fs::write(&assignments_path, &exact).unwrap();
    let own = run_unadopted(&ws.0, &["plan"]).await;
    assert_eq!(own.status.code(), Some(1), "{}", text(&own));
    assert!(
        !text(&own).contains("Brand_New` "),
        "Brand_New is skillsync's: {}",
        text(&own)
    );
}

/// Rewriting another integration's definition (its description here; reactivating it or
/// moving its routing profile alike) is a takeover too. Before, only assignment changes were
/// checked, and `apply` rewrote the definition without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_another_integrations_definition_is_a_conflict_until_adopted() {
    let ws = workspace("ownership-rewrite");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 30,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    let claimed = doc
        .skills
        .iter()
        .find(|d| d.name == CLAIMED)
        .expect("the generated tenant has the other integration's flag")
        .clone();
    write_hris_exact(&ws.0, &doc);
    let catalog_path = ws.0.join("hris/catalog.csv");
    let catalog = std::fs::read_to_string(&catalog_path).unwrap();
    std::fs::write(
        &catalog_path,
        format!(
            "{catalog}{CLAIMED},skill,en-us,{CLAIMED},Ours now,{}\n",
            claimed.routing_profile_id
        ),
    )
    .unwrap();
    let assignments_path = ws.0.join("hris/assignments.csv");
    let mut exact = std::fs::read_to_string(&assignments_path).unwrap();
    for (i, user) in doc.users.iter().enumerate() {
        if let Some(a) = user.skills.iter().find(|a| a.id == claimed.id) {
            exact.push_str(&format!("E{i:05},{CLAIMED},{},{}\n", a.level, a.active));
        }
    }
    std::fs::write(&assignments_path, &exact).unwrap();
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);

    let apply = run_unadopted(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    let said = text(&apply);
    assert!(said.contains("rewrites its description"), "{said}");
    assert!(said.contains("neither created nor adopted"), "{said}");
    assert_eq!(writes_in(&sim_stats(&base).await), 0, "{said}");

    let adopt = run_unadopted(&ws.0, &["apply", "--yes", "--adopt", CLAIMED]).await;
    assert_eq!(adopt.status.code(), Some(0), "{}", text(&adopt));
    let skills = sim_get(&base, "/sim/state").await;
    let description = skills["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == claimed.id.as_str())
        .map(|d| d["description"].clone());
    assert_eq!(description, Some(serde_json::json!("Ours now")));
}

/// A definition `assign` creates is skillsync's like one `apply` creates. Before, `assign`
/// did not remember it, and the next plan that took it away was refused as a takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_assign_creates_is_skillsyncs_to_manage() {
    let ws = workspace("ownership-assign");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 20,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let profile = doc.profiles[0].id.clone();
    let catalog_path = ws.0.join("hris/catalog.csv");
    let catalog = std::fs::read_to_string(&catalog_path).unwrap();
    std::fs::write(
        &catalog_path,
        format!("{catalog}Brand_New,skill,en-us,Brand_New,,{profile}\n"),
    )
    .unwrap();
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);

    let assign = run_unadopted(&ws.0, &["assign", "E00001", "Brand_New", "4"]).await;
    assert_eq!(assign.status.code(), Some(0), "{}", text(&assign));
    // The HRIS files do not give it: the plan takes it back, as skillsync's own.
    let plan = run_unadopted(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(!text(&plan).contains("adopt"), "{}", text(&plan));
}

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

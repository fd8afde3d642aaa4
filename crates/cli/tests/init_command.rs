//! `skillsync init`: a configuration `validate` accepts, refused over existing files, and with
//! `--from-sim` one that works against a running simulator from the first command.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use skillsync_sim::GenerateOptions;

/// The binary with the secret in the variable `init`'s config names.
fn skillsync_here(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(args)
        .current_dir(dir)
        .env("SKILLSYNC_CLIENT_SECRET", skillsync_sim::DEMO_CLIENT_SECRET)
        .env("SKILLSYNC_CACHE_DIR", dir.join(".token-cache"))
        .env("SKILLSYNC_ADOPT", "all")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn init_then_validate_passes_and_a_second_init_changes_nothing() {
    let ws = workspace("init");
    let out = skillsync_here(&ws.0, &["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for file in [
        "skillsync.toml",
        "hris/catalog.csv",
        "hris/agents.csv",
        "hris/assignments.csv",
    ] {
        assert!(ws.0.join(file).exists(), "{file} not written");
    }
    let out = skillsync_here(&ws.0, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A file edited since is not overwritten, nor is any other.
    std::fs::write(
        ws.0.join("hris/agents.csv"),
        "employee_id,user_id,locale\nE1,u-1,en-us\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    let out = skillsync_here(&ws.0, &["init"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already exist"), "{}", text(&out));
    assert!(
        std::fs::read_to_string(ws.0.join("hris/agents.csv"))
            .unwrap()
            .contains("E1,u-1")
    );
    assert_eq!(
        std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap(),
        config
    );
    let out = skillsync_here(&ws.0, &["init", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(ws.0.join("hris/agents.csv")).unwrap(),
        "employee_id,user_id,locale\n"
    );
}

/// `init --from-sim`, `export` and `plan`: a tenant adopted in three commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_from_a_running_simulator_then_export_plans_no_changes() {
    let ws = workspace("init-sim");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 30,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    let (base, _stop) = start_sim(doc).await;
    let dir = ws.0.clone();
    let base_arg = base.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        let init = skillsync_here(&dir, &["init", "--from-sim", &base_arg]);
        let plan_empty = skillsync_here(&dir, &["plan"]);
        let export = skillsync_here(&dir, &["export", "--out", "hris", "--force"]);
        let plan = skillsync_here(&dir, &["plan"]);
        (init, plan_empty, export, plan)
    })
    .await
    .unwrap();
    let (init, plan_empty, export, plan) = outputs;
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    assert_eq!(plan_empty.status.code(), Some(0), "{}", text(&plan_empty));
    assert_eq!(export.status.code(), Some(0), "{}", text(&export));
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(text(&plan).contains("No changes"), "{}", text(&plan));
    assert_eq!(writes_in(&sim_stats(&base).await), 0);
}

//! A dialect that cannot carry a row must refuse it before the first request.
//!
//! The users dialect (SPEC 1.5) writes a skills list with levels and nothing else: no
//! `active` flag and no proficiencies. An `active = false` row, or a row assigning a
//! proficiency, cannot be applied through it; left unchecked, `apply` reported the user as
//! updated while the tenant kept the skill active. Every command that reads the HRIS files
//! must refuse such rows with the file, line and field, and send nothing.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::{Value, json};

/// One user holding `Sales_Upgrades` (active, level 10); the catalog also has a proficiency.
fn tenant() -> skillsync_sim::TenantDoc {
    serde_json::from_value(json!({
        "profiles": [{
            "id": "rp-1",
            "name": "Sales",
            "skills": ["sk-1"],
            "proficiencies": ["pf-1"],
        }],
        "skills": [{
            "id": "sk-1",
            "name": "Sales_Upgrades",
            "locale": "en-us",
            "active": true,
            "routingProfileId": "rp-1",
        }],
        "proficiencies": [{
            "id": "pf-1",
            "name": "QA_Coaching",
            "locale": "en-us",
            "active": true,
            "routingProfileId": "rp-1",
        }],
        "users": [{
            "id": "u-1",
            "locale": "en-us",
            "routingProfileId": "rp-1",
            "skills": [{"id": "sk-1", "level": 10, "active": true}],
        }],
    }))
    .unwrap()
}

/// The config for `base` in `dialect`, and HRIS files whose assignments are `rows`.
fn write_inputs(dir: &Path, base: &str, dialect: &str, rows: &str) {
    write_config(dir, base);
    let path = dir.join("skillsync.toml");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[limits]", &format!("dialect = \"{dialect}\"\n\n[limits]"));
    std::fs::write(&path, config).unwrap();
    std::fs::write(
        dir.join("hris/catalog.csv"),
        "code,kind,locale,name,description,routing_profile_id\n\
         Sales_Upgrades,skill,en-us,Sales_Upgrades,,rp-1\n\
         QA_Coaching,proficiency,en-us,QA_Coaching,,rp-1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("hris/agents.csv"),
        "employee_id,user_id,locale\nE0001,u-1,en-us\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("hris/assignments.csv"),
        format!("employee_id,code,level,active\n{rows}"),
    )
    .unwrap();
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs each command and checks it refused with exit 1, naming `at` (file:line:column) and
/// `field` in the compiler-style report, along with `says`.
async fn every_command_refuses(dir: &Path, at: &str, field: &str, says: &str) {
    for command in [
        &["validate"][..],
        &["plan"],
        &["apply", "--yes"],
        &["drift"],
    ] {
        let output = run_with(dir, command).await;
        let all = text(&output);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {all}");
        // Human problems are errors: stderr, never mistaken for data on stdout.
        assert!(output.stdout.is_empty(), "{command:?}: {all}");
        let stdout = String::from_utf8_lossy(&output.stderr);
        let report = stdout
            .lines()
            .find(|line| line.starts_with(at))
            .unwrap_or_else(|| panic!("{command:?}: no problem at {at}: {all}"));
        assert!(
            report.contains(": error: ") && report.contains(&format!("(field `{field}`)")),
            "{command:?}: {report}"
        );
        assert!(report.contains(says), "{command:?}: {report}");
        assert!(
            stdout.contains("hint: ") && stdout.contains("dialect = \"routing\""),
            "{command:?}: the hint names the way out: {all}"
        );
        assert!(
            !stdout.contains("updated"),
            "{command:?}: nothing is reported as applied: {all}"
        );
    }
    // The JSON rendering carries the same problem, for the commands that render problems.
    for command in ["validate", "plan"] {
        let output = run_with(dir, &[command, "--output", "json"]).await;
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let body: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
        assert_eq!(body["status"], "invalid", "{body}");
        let problem = body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["field"] == field)
            .unwrap_or_else(|| panic!("{command}: no problem at field {field}: {body}"));
        let mut parts = at.split(':');
        assert_eq!(problem["file"], parts.next().unwrap(), "{problem}");
        assert_eq!(
            problem["line"],
            parts.next().unwrap().parse::<u64>().unwrap()
        );
        assert_eq!(
            problem["column"],
            parts.next().unwrap().parse::<u64>().unwrap()
        );
        assert_eq!(problem["severity"], "error");
    }
}

/// Nothing was written to the tenant (`plan` may have started reading it from a valid catalog
/// while the agents and assignments files were read: the refusal drops that read).
async fn no_write_was_made(base: &str) {
    let stats = sim_stats(base).await;
    assert_eq!(writes_in(&stats), 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_row_under_the_users_dialect_is_refused_before_any_write() {
    let ws = workspace("dialect-inactive");
    let (base, _stop) = start_sim(tenant()).await;
    write_inputs(&ws.0, &base, "users", "E0001,Sales_Upgrades,10,false\n");

    every_command_refuses(
        &ws.0,
        "hris/assignments.csv:2:4",
        "active",
        "the users dialect",
    )
    .await;
    no_write_was_made(&base).await;
    let state = sim_get(&base, "/sim/state").await;
    assert_eq!(
        state["users"][0]["skills"],
        json!([{"id": "sk-1", "level": 10, "active": true}]),
        "the tenant is as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proficiency_row_under_the_users_dialect_is_refused_before_any_write() {
    let ws = workspace("dialect-proficiency");
    let (base, _stop) = start_sim(tenant()).await;
    // Columns in another order: the problem points at where `code` really is.
    write_inputs(&ws.0, &base, "users", "");
    std::fs::write(
        ws.0.join("hris/assignments.csv"),
        "level,employee_id,code\n10,E0001,Sales_Upgrades\n3,E0001,QA_Coaching\n",
    )
    .unwrap();

    every_command_refuses(&ws.0, "hris/assignments.csv:3:3", "code", "proficiency").await;
    no_write_was_made(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_a_dialect_can_carry_pass() {
    let ws = workspace("dialect-control");
    let (base, _stop) = start_sim(tenant()).await;

    // The same files with the row active: the users dialect carries it.
    write_inputs(&ws.0, &base, "users", "E0001,Sales_Upgrades,10,true\n");
    let validate = run(&ws.0, &["validate"]).await;
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
    let plan = run(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(0), "no changes: {}", text(&plan));

    // The inactive row and the proficiency under the routing dialect, which carries both.
    write_inputs(
        &ws.0,
        &base,
        "routing",
        "E0001,Sales_Upgrades,10,false\nE0001,QA_Coaching,3,true\n",
    );
    let validate = run(&ws.0, &["validate"]).await;
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
    let plan = run(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(2), "changes: {}", text(&plan));
}

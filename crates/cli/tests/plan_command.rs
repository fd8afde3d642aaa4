//! `skillsync validate` and `skillsync plan` as a user runs them, against the real simulator.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;
use skillsync_sim::GenerateOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_over_ten_thousand_agents_is_read_only_and_its_totals_match_an_independent_count() {
    let ws = workspace("10k");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 10_000,
        skills: 12,
        proficiencies: 6,
        locales: vec!["en-us".into(), "de-de".into(), "fr-fr".into()],
        profiles: 4,
        seed: 42,
    });
    let expected = write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);

    let dir = ws.0.clone();
    let output =
        tokio::task::spawn_blocking(move || skillsync(&dir, &["plan", "--output", "json"]))
            .await
            .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "changes → exit 2; stderr: {stderr}"
    );
    let plan: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    let totals = &plan["totals"];
    assert_eq!(plan["schemaVersion"], 1);
    assert_eq!(totals["agents"], 10_000);
    assert_eq!(totals["assignmentsAdded"], expected.added);
    assert_eq!(totals["assignmentsRemoved"], expected.removed);
    assert_eq!(totals["levelsChanged"], expected.levels_changed);
    assert_eq!(totals["usersChanged"], expected.users_changed);
    assert_eq!(totals["usersUnchanged"], 10_000 - expected.users_changed);
    assert_eq!(totals["definitionsToCreate"], 0);
    assert_eq!(
        plan["users"].as_array().unwrap().len() as u64,
        expected.users_changed
    );

    let stats = sim_stats(&base).await;
    let writes = writes_in(&stats);
    assert_eq!(writes, 0, "plan is read-only: {stats}");
    assert!(
        !ws.0.join("skillsync.db").exists(),
        "plan is read-only on disk too: it creates no journal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_reports_every_error_at_once_with_file_and_line_and_makes_no_call() {
    let ws = workspace("bad");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 5,
        ..GenerateOptions::default()
    });
    let (base, _stop) = start_sim(doc.clone()).await;
    write_config(&ws.0, &base);
    let profile = &doc.profiles[0].id;
    std::fs::write(
        ws.0.join("hris/catalog.csv"),
        format!("code,kind,locale,name,description,routing_profile_id\nBilling,skill,en-us,Billing_Dispute_Resolution,,{profile}\nBilling,skil,de-DE,Billing_Dispute_Resolution,,{profile}\n"),
    )
    .unwrap();
    std::fs::write(
        ws.0.join("hris/agents.csv"),
        format!(
            "employee_id,user_id,locale\nE1,{},en-us\nE2,{},en-us\n",
            doc.users[0].id, doc.users[0].id
        ),
    )
    .unwrap();
    std::fs::write(
        ws.0.join("hris/assignments.csv"),
        "employee_id,code,level,active\nE1,Billing,11,true\nE9,Billing,5,true\nE1,Biling,5,true\n",
    )
    .unwrap();

    for command in ["validate", "plan"] {
        let output = skillsync(&ws.0, &[command]);
        // Errors go to stderr; nothing on stdout a script could take for a plan.
        assert!(output.stdout.is_empty(), "{command}");
        let stdout = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command}: {stdout}");
        for expected in [
            "hris/catalog.csv:3",
            "hris/agents.csv:3",
            "hris/assignments.csv:2",
            "hris/assignments.csv:3",
            "hris/assignments.csv:4",
        ] {
            assert!(
                stdout.contains(expected),
                "{command}: no problem at {expected} in:\n{stdout}"
            );
        }
    }
    let stats = sim_stats(&base).await;
    assert_eq!(
        stats["totalRequests"], 0,
        "invalid input must not reach the tenant: {stats}"
    );
}

/// `plan` and `drift` read the tenant from the catalog while the agents and assignments files
/// are read. A bad row there must still be reported as `validate` reports it, with exit 1,
/// nothing on stdout, no write and no journal: the read is dropped, not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_assignments_file_beside_a_good_catalog_is_reported_as_validate_reports_it_with_no_write()
 {
    let ws = workspace("bad-rest");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 600,
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);
    let assignments = ws.0.join("hris/assignments.csv");
    let mut rows = std::fs::read_to_string(&assignments).unwrap();
    let bad_line = rows.lines().count() + 1;
    rows.push_str("E-NOBODY,Billing,11,true\n");
    std::fs::write(&assignments, rows).unwrap();

    let validate = skillsync(&ws.0, &["validate"]);
    assert_eq!(validate.status.code(), Some(1));
    let expected = String::from_utf8_lossy(&validate.stderr).into_owned();
    assert!(
        expected.contains(&format!("hris/assignments.csv:{bad_line}")),
        "{expected}"
    );
    for command in ["plan", "drift"] {
        let output = skillsync(&ws.0, &[command]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command}: {stderr}");
        assert!(output.stdout.is_empty(), "{command}");
        assert_eq!(stderr, expected, "{command} reports what validate reports");
    }
    let stats = sim_stats(&base).await;
    let writes = writes_in(&stats);
    assert_eq!(writes, 0, "{stats}");
    assert!(!ws.0.join("skillsync.db").exists(), "no journal is created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_after_the_tenant_matches_the_files_reports_no_changes_and_exits_zero() {
    let ws = workspace("same");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 40,
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);
    let output = skillsync(&ws.0, &["plan"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("No changes"), "{stdout}");
}

/// The README's walkthrough: `examples/` must validate, and plan against the tenant that a bare
/// `skillsync sim` serves (generated with the default options) must show its deliberate
/// differences. This keeps the examples in step with the generator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_examples_validate_and_plan_against_the_default_simulator() {
    let ws = workspace("examples");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for file in [
        "hris/catalog.csv",
        "hris/agents.csv",
        "hris/assignments.csv",
    ] {
        std::fs::copy(examples.join(file), ws.0.join(file)).unwrap();
    }
    let validate = Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(["validate", "--config"])
        .arg(examples.join("skillsync.toml"))
        .output()
        .unwrap();
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&validate.stdout)
    );

    let (base, _stop) = start_sim(skillsync_sim::generate(&GenerateOptions::default())).await;
    let config = std::fs::read_to_string(examples.join("skillsync.toml"))
        .unwrap()
        .replace("http://127.0.0.1:8089", &base)
        .replace("SKILLSYNC_CLIENT_SECRET", "SKILLSYNC_TEST_SECRET");
    std::fs::write(ws.0.join("skillsync.toml"), config).unwrap();
    let dir = ws.0.clone();
    let output =
        tokio::task::spawn_blocking(move || skillsync(&dir, &["plan", "--output", "json"]))
            .await
            .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        plan["totals"]["definitionsToCreate"], 2,
        "Claims_Intake in en-us and de-de"
    );
    assert_eq!(plan["totals"]["usersChanged"], 12);
    assert_eq!(
        plan["totals"]["usersSkipped"], 0,
        "every example agent exists in the default tenant"
    );
}

//! `skillsync validate` and `skillsync plan` as a user runs them, against the real simulator.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sim::{GenerateOptions, SimConfig, TenantDoc, TenantSource};

struct Workspace(PathBuf);
impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn workspace(tag: &str) -> Workspace {
    let dir = std::env::temp_dir().join(format!("skillsync-plan-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("hris")).unwrap();
    Workspace(dir)
}

fn skillsync(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(args)
        .current_dir(dir)
        .env("SKILLSYNC_TEST_SECRET", sim::DEMO_CLIENT_SECRET)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn write_config(dir: &Path, base: &str) {
    let config = format!(
        r#"[tenant]
api_base = "{base}/api/v2"
client_id = "{id}"
client_secret = {{ env = "SKILLSYNC_TEST_SECRET" }}

[limits]
requests_per_second = 1000
burst = 100
max_in_flight = 8

[source]
catalog = "hris/catalog.csv"
agents = "hris/agents.csv"
assignments = "hris/assignments.csv"
"#,
        id = sim::DEMO_CLIENT_ID
    );
    std::fs::write(dir.join("skillsync.toml"), config).unwrap();
}

async fn start_sim(doc: TenantDoc) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator =
        sim::Simulator::new(listener, SimConfig::quiet(TenantSource::Doc(Box::new(doc)))).unwrap();
    let base = simulator.endpoint().base_url.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    (base, stop)
}

async fn sim_stats(base: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("{base}/sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What the test expects the plan to count, computed while it writes the files.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    added: u64,
    removed: u64,
    levels_changed: u64,
    users_changed: u64,
}

/// Writes HRIS files describing `doc` with deliberate differences, counting them as it goes:
/// every 3rd agent has one level changed, every 5th gains a skill, every 7th loses one.
fn write_hris(dir: &Path, doc: &TenantDoc) -> Expected {
    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    let mut kinds: BTreeMap<String, (&str, String)> = BTreeMap::new();
    for (kind, defs) in [("skill", &doc.skills), ("proficiency", &doc.proficiencies)] {
        for d in defs
            .iter()
            .filter(|d| !d.name.starts_with(sim::OWNED_PREFIX))
        {
            writeln!(
                catalog,
                "{},{kind},{},{},{},{}",
                d.name, d.locale, d.name, d.description, d.routing_profile_id
            )
            .unwrap();
            kinds.insert(d.id.clone(), (kind, d.name.clone()));
        }
    }
    let skills_by_locale = |locale: &str| -> Vec<String> {
        doc.skills
            .iter()
            .filter(|d| d.locale == locale && !d.name.starts_with(sim::OWNED_PREFIX))
            .map(|d| d.name.clone())
            .collect()
    };
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    let mut expected = Expected::default();
    for (i, user) in doc.users.iter().enumerate() {
        let employee = format!("E{i:05}");
        writeln!(agents, "{employee},{},{}", user.id, user.locale).unwrap();
        let mut rows: Vec<(String, u8)> = user
            .skills
            .iter()
            .chain(&user.proficiencies)
            .filter_map(|a| kinds.get(&a.id).map(|(_, name)| (name.clone(), a.level)))
            .collect();
        let held: Vec<String> = rows.iter().map(|(code, _)| code.clone()).collect();
        let mut changed = false;
        if i % 3 == 0 && !rows.is_empty() {
            rows[0].1 = rows[0].1 % 10 + 1;
            expected.levels_changed += 1;
            changed = true;
        }
        if i % 7 == 0 && rows.len() > 1 {
            rows.pop();
            expected.removed += 1;
            changed = true;
        }
        if i % 5 == 0
            && let Some(extra) = skills_by_locale(&user.locale)
                .into_iter()
                .find(|n| !held.contains(n))
        {
            rows.push((extra, 4));
            expected.added += 1;
            changed = true;
        }
        expected.users_changed += u64::from(changed);
        for (code, level) in rows {
            writeln!(assignments, "{employee},{code},{level},true").unwrap();
        }
    }
    std::fs::write(dir.join("hris/catalog.csv"), catalog).unwrap();
    std::fs::write(dir.join("hris/agents.csv"), agents).unwrap();
    std::fs::write(dir.join("hris/assignments.csv"), assignments).unwrap();
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_over_ten_thousand_agents_is_read_only_and_its_totals_match_an_independent_count() {
    let ws = workspace("10k");
    let doc = sim::generate(&GenerateOptions {
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
    let writes: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] != "GET" && r["route"] != "/api/v2/oauth/token")
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(writes, 0, "plan is read-only: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_reports_every_error_at_once_with_file_and_line_and_makes_no_call() {
    let ws = workspace("bad");
    let doc = sim::generate(&GenerateOptions {
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
        let stdout = String::from_utf8_lossy(&output.stdout);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_after_the_tenant_matches_the_files_reports_no_changes_and_exits_zero() {
    let ws = workspace("same");
    let doc = sim::generate(&GenerateOptions {
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

/// HRIS files that say exactly what the tenant holds.
fn write_hris_exact(dir: &Path, doc: &TenantDoc) {
    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    let mut names = BTreeMap::new();
    for (kind, defs) in [("skill", &doc.skills), ("proficiency", &doc.proficiencies)] {
        for d in defs
            .iter()
            .filter(|d| !d.name.starts_with(sim::OWNED_PREFIX))
        {
            writeln!(
                catalog,
                "{},{kind},{},{},{},{}",
                d.name, d.locale, d.name, d.description, d.routing_profile_id
            )
            .unwrap();
            names.insert(d.id.clone(), d.name.clone());
        }
    }
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    for (i, user) in doc.users.iter().enumerate() {
        writeln!(agents, "E{i:05},{},{}", user.id, user.locale).unwrap();
        for a in user.skills.iter().chain(&user.proficiencies) {
            if let Some(name) = names.get(&a.id) {
                writeln!(assignments, "E{i:05},{name},{},{}", a.level, a.active).unwrap();
            }
        }
    }
    std::fs::write(dir.join("hris/catalog.csv"), catalog).unwrap();
    std::fs::write(dir.join("hris/agents.csv"), agents).unwrap();
    std::fs::write(dir.join("hris/assignments.csv"), assignments).unwrap();
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

    let (base, _stop) = start_sim(sim::generate(&GenerateOptions::default())).await;
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

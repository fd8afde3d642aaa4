//! `skillsync why` end to end against the real simulator: one agent per reason routing can
//! refuse a queue's calls (plus one eligible agent), each verdict and reason asserted in text
//! and JSON, and not one write to the tenant or a journal created by `why` itself.
//!
//! The tenant is written by hand so every trap is one agent: a level under the queue's
//! minimum, a proficiency where a skill is needed, another locale's variant, an inactive
//! assignment, an inactive definition, an assignment the HRIS wants but the tenant lacks, a
//! skill outside the catalog, and a write still settling (journaled by `assign` with a
//! propagation window of an hour).

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;
use skillsync_sim::{Assignment, Definition, Profile, Queue, TenantDoc, User};

const PROFILE: &str = "00000000-0000-4000-8000-000000000001";

/// Definition ids: skills `s-…`, proficiencies `p-…`, as UUIDs.
fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

const BILLING_DE: u32 = 101;
const BILLING_EN: u32 = 102;
const SALES_DE: u32 = 103;
const TECH_DE: u32 = 104;
const LEGACY_DE: u32 = 105;
const TECH_DE_PROFICIENCY: u32 = 201;

fn definition(n: u32, name: &str, locale: &str, active: bool) -> Definition {
    serde_json::from_value(serde_json::json!({
        "id": id(n), "name": name, "locale": locale, "active": active,
        "description": name, "routingProfileId": PROFILE,
    }))
    .unwrap()
}

fn held(n: u32, level: u8, active: bool) -> Assignment {
    Assignment {
        id: id(n),
        level,
        active,
    }
}

/// The agents, one per reason: (employee id, user number, locale, skills, proficiencies,
/// HRIS rows (code, level, active)).
type AgentRow = (
    &'static str,
    u32,
    &'static str,
    Vec<Assignment>,
    Vec<Assignment>,
    Vec<(&'static str, u8, bool)>,
);

fn agents() -> Vec<AgentRow> {
    vec![
        // Maria: Billing de-de at 7, active. Eligible.
        (
            "E100",
            1,
            "de-de",
            vec![held(BILLING_DE, 7, true)],
            vec![],
            vec![("Billing", 7, true)],
        ),
        // The HRIS gives 3; the Billing queue needs 5.
        (
            "E200",
            2,
            "de-de",
            vec![held(BILLING_DE, 3, true)],
            vec![],
            vec![("Billing", 3, true)],
        ),
        // Tech is a proficiency in catalog.csv; the Tech queue needs the skill.
        (
            "E300",
            3,
            "de-de",
            vec![held(BILLING_DE, 6, true)],
            vec![held(TECH_DE_PROFICIENCY, 8, true)],
            vec![("Billing", 6, true), ("Tech", 8, true)],
        ),
        // A de-de agent holding the en-us variant of Billing.
        (
            "E400",
            4,
            "de-de",
            vec![held(BILLING_EN, 7, true)],
            vec![],
            vec![("Billing", 7, true)],
        ),
        // The assignment is inactive in the tenant; the HRIS has it active.
        (
            "E500",
            5,
            "de-de",
            vec![held(BILLING_DE, 7, false)],
            vec![],
            vec![("Billing", 7, true)],
        ),
        // Sales de-de is soft-deleted (inactive definition).
        (
            "E600",
            6,
            "de-de",
            vec![held(BILLING_DE, 6, true), held(SALES_DE, 5, true)],
            vec![],
            vec![("Billing", 6, true), ("Sales", 5, true)],
        ),
        // The HRIS wants Billing at 6; the tenant has no Billing at all.
        (
            "E700",
            7,
            "de-de",
            vec![held(TECH_DE, 4, true)],
            vec![],
            vec![("Billing", 6, true)],
        ),
        // Gets Billing from `assign` during the test: still settling.
        (
            "E800",
            8,
            "de-de",
            vec![held(TECH_DE, 4, true)],
            vec![],
            vec![],
        ),
        // Eligible today, but the HRIS no longer assigns Billing: the next apply removes it.
        (
            "E900",
            9,
            "de-de",
            vec![held(BILLING_DE, 7, true)],
            vec![],
            vec![("Sales", 2, true)],
        ),
    ]
}

fn tenant() -> TenantDoc {
    let users: Vec<User> = agents()
        .into_iter()
        .map(|(_, n, locale, skills, proficiencies, _)| {
            let mut user: User = serde_json::from_value(serde_json::json!({
                "id": id(900 + n), "locale": locale, "routingProfileId": PROFILE,
            }))
            .unwrap();
            user.skills = skills;
            user.proficiencies = proficiencies;
            user
        })
        .collect();
    let queue = |n: u32, name: &str, skill: u32, min_level: u8| Queue {
        id: id(n),
        name: name.to_string(),
        skill_id: id(skill),
        min_level,
        production: true,
    };
    TenantDoc {
        profiles: vec![
            serde_json::from_value::<Profile>(
                serde_json::json!({ "id": PROFILE, "name": "Default" }),
            )
            .unwrap(),
        ],
        skills: vec![
            definition(BILLING_DE, "Billing", "de-de", true),
            definition(BILLING_EN, "Billing", "en-us", true),
            definition(SALES_DE, "Sales", "de-de", false),
            definition(TECH_DE, "Tech", "de-de", true),
            definition(LEGACY_DE, "Legacy", "de-de", true),
        ],
        proficiencies: vec![definition(TECH_DE_PROFICIENCY, "Tech", "de-de", true)],
        users,
        queues: vec![
            queue(301, "Billing", BILLING_DE, 5),
            queue(302, "Billing US", BILLING_EN, 1),
            queue(303, "Sales", SALES_DE, 1),
            queue(304, "Tech Support", TECH_DE, 1),
            queue(305, "Legacy Desk", LEGACY_DE, 1),
        ],
        clients: Vec::new(),
        strategies: Vec::new(),
    }
}

/// The HRIS: Billing and Sales are skills, Tech a proficiency (the trap), Legacy not listed.
fn write_hris(dir: &Path) {
    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    for (code, kind, locale) in [
        ("Billing", "skill", "de-de"),
        ("Billing", "skill", "en-us"),
        ("Sales", "skill", "de-de"),
        ("Tech", "proficiency", "de-de"),
    ] {
        writeln!(catalog, "{code},{kind},{locale},{code},{code},{PROFILE}").unwrap();
    }
    let mut agents_csv = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    for (employee, n, locale, _, _, rows) in agents() {
        writeln!(agents_csv, "{employee},{},{locale}", id(900 + n)).unwrap();
        for (code, level, active) in rows {
            writeln!(assignments, "{employee},{code},{level},{active}").unwrap();
        }
    }
    std::fs::write(dir.join("hris/catalog.csv"), catalog).unwrap();
    std::fs::write(dir.join("hris/agents.csv"), agents_csv).unwrap();
    std::fs::write(dir.join("hris/assignments.csv"), assignments).unwrap();
}

fn configure(dir: &Path, base: &str) {
    write_config(dir, base);
    let mut config = std::fs::read_to_string(dir.join("skillsync.toml")).unwrap();
    config.push_str("\n[sync]\npropagation_window = \"1h\"\n");
    std::fs::write(dir.join("skillsync.toml"), config).unwrap();
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `why` and checks its exit code; the human output.
async fn why(dir: &Path, args: &[&str], code: i32) -> String {
    let mut all = vec!["why"];
    all.extend_from_slice(args);
    let output = run_with(dir, &all).await;
    let shown = text(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "skillsync {}:\n{shown}",
        all.join(" ")
    );
    shown
}

/// Runs `why … -o json` and checks its exit code; the document.
async fn why_json(dir: &Path, args: &[&str], code: i32) -> Value {
    let mut all = vec!["why", "-o", "json"];
    all.extend_from_slice(args);
    let output = run_with(dir, &all).await;
    assert_eq!(
        output.status.code(),
        Some(code),
        "skillsync {}:\n{}",
        all.join(" "),
        text(&output)
    );
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["exitCode"], code);
    assert_eq!(document["eligible"], code == 0);
    document
}

/// The reasons' names of a document's only check.
fn reasons(document: &Value) -> Vec<String> {
    let checks = document["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{document:#}");
    checks[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect()
}

fn message(document: &Value, reason: &str) -> String {
    document["checks"][0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == reason)
        .map(|r| format!("{} | fix: {}", r["message"], r["fix"]))
        .unwrap_or_else(|| panic!("no {reason} in {document:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_names_each_reason_with_its_fix_and_never_writes() {
    let ws = workspace("why-reasons");
    let dir = ws.0.as_path();
    let (base, _stop) = start_sim(tenant()).await;
    configure(dir, &base);
    write_hris(dir);

    // Nothing has been journaled yet: why reads without a journal and does not create one.
    why(dir, &["E100", "--queue", "Billing"], 0).await;
    assert!(!dir.join("skillsync.db").exists(), "why created a journal");

    // A write still settling: `assign` journals it with a settle time an hour away.
    let assigned = run(dir, &["assign", "E800", "Billing", "8"]).await;
    assert_eq!(assigned.status.code(), Some(0), "{}", text(&assigned));
    let writes_before = writes_in(&sim_stats(&base).await);

    // Eligible.
    let shown = why(dir, &["E100", "--queue", "Billing"], 0).await;
    assert!(shown.contains("is eligible for queue Billing"), "{shown}");
    assert!(shown.contains("level 7"), "{shown}");
    let doc = why_json(dir, &["E100", "--queue", "Billing"], 0).await;
    assert_eq!(reasons(&doc), Vec::<String>::new());
    assert_eq!(doc["checks"][0]["held"]["level"], 7);
    assert_eq!(doc["checks"][0]["minLevel"], 5);
    assert_eq!(doc["checks"][0]["code"], "Billing");
    // By queue id, and by code at any level, the same answer.
    why(dir, &["E100", "--queue", &id(301)], 0).await;
    why(dir, &["E100", "--code", "Billing"], 0).await;

    // A level under the queue's minimum.
    let shown = why(dir, &["E200", "--queue", "Billing"], 3).await;
    assert!(
        shown.contains("is not eligible for queue Billing"),
        "{shown}"
    );
    assert!(
        shown.contains("HRIS gives level 3; the queue needs 5"),
        "{shown}"
    );
    assert!(shown.contains("hris/assignments.csv:3"), "{shown}");
    let doc = why_json(dir, &["E200", "--queue", "Billing"], 3).await;
    assert_eq!(reasons(&doc), ["levelBelowMinimum"]);
    assert_eq!(doc["checks"][0]["hris"]["level"], 3);
    // Any level is enough for the code itself.
    why(dir, &["E200", "--code", "Billing"], 0).await;

    // A proficiency where the queue needs a skill.
    let shown = why(dir, &["E300", "--queue", "Tech Support"], 3).await;
    assert!(
        shown.contains("assigned as a proficiency; routing reads skills only"),
        "{shown}"
    );
    assert!(
        shown.contains("kind `skill` in hris/catalog.csv"),
        "{shown}"
    );
    let doc = why_json(dir, &["E300", "--queue", "Tech Support"], 3).await;
    assert_eq!(reasons(&doc), ["proficiencyNotSkill"]);
    let doc = why_json(dir, &["E300", "--code", "Tech"], 3).await;
    assert_eq!(reasons(&doc), ["proficiencyNotSkill"]);

    // Another locale's variant.
    let shown = why(dir, &["E400", "--queue", "Billing"], 3).await;
    assert!(
        shown.contains("the en-us variant is assigned; the agent is de-de"),
        "{shown}"
    );
    assert!(shown.contains("to the de-de variant"), "{shown}");
    let doc = why_json(dir, &["E400", "--code", "Billing"], 3).await;
    assert_eq!(reasons(&doc), ["wrongLocale"]);
    // The en-us queue is for en-us agents: the agent's locale is the reason there.
    let doc = why_json(dir, &["E100", "--queue", "Billing US"], 3).await;
    assert_eq!(reasons(&doc), ["agentLocale"]);
    assert!(
        message(&doc, "agentLocale").contains("the de-de queue: Billing"),
        "{doc:#}"
    );

    // An inactive assignment.
    let shown = why(dir, &["E500", "--queue", "Billing"], 3).await;
    assert!(shown.contains("the assignment is inactive"), "{shown}");
    assert!(shown.contains("the HRIS has it active"), "{shown}");
    let doc = why_json(dir, &["E500", "--queue", "Billing"], 3).await;
    assert_eq!(reasons(&doc), ["assignmentInactive"]);
    assert_eq!(doc["checks"][0]["held"]["active"], false);

    // An inactive definition.
    let shown = why(dir, &["E600", "--queue", "Sales"], 3).await;
    assert!(shown.contains("the definition is inactive"), "{shown}");
    assert!(shown.contains("apply reactivates it"), "{shown}");
    let doc = why_json(dir, &["E600", "--queue", "Sales"], 3).await;
    assert_eq!(reasons(&doc), ["definitionInactive"]);
    assert_eq!(doc["checks"][0]["skill"]["active"], false);

    // Not assigned in the tenant, but the HRIS wants it.
    let shown = why(dir, &["E700", "--queue", "Billing"], 3).await;
    assert!(
        shown.contains("not assigned in the tenant, but the HRIS wants it at level 6"),
        "{shown}"
    );
    assert!(shown.contains("run `skillsync apply`"), "{shown}");
    let doc = why_json(dir, &["E700", "--queue", "Billing"], 3).await;
    assert_eq!(reasons(&doc), ["notAssigned"]);
    // ... or outside the catalog, which skillsync does not manage.
    let doc = why_json(dir, &["E700", "--queue", "Legacy Desk"], 3).await;
    assert_eq!(reasons(&doc), ["notAssigned"]);
    assert!(
        message(&doc, "notAssigned").contains("outside the catalog"),
        "{doc:#}"
    );

    // Written moments ago: the routing cache has not settled.
    let shown = why(dir, &["E800", "--queue", "Billing"], 3).await;
    assert!(shown.contains("s ago; settles at "), "{shown}");
    let doc = why_json(dir, &["E800", "--queue", "Billing"], 3).await;
    assert_eq!(reasons(&doc), ["settling"]);
    assert!(
        message(&doc, "settling").starts_with("\"written "),
        "{doc:#}"
    );
    assert_eq!(doc["checks"][0]["held"]["level"], 8);
    assert_eq!(doc["lastWrite"]["settled"], false);
    assert!(doc["lastWrite"]["settlesAt"].is_string(), "{doc:#}");
    // The write did not touch Tech Support's skill: that queue is not waiting on it.
    why(dir, &["E800", "--queue", "Tech Support"], 0).await;

    // Eligible now, with what the next apply changes.
    let shown = why(dir, &["E900", "--queue", "Billing"], 0).await;
    assert!(
        shown.contains("does not assign Billing to E900: the next `skillsync apply` removes it"),
        "{shown}"
    );
    let doc = why_json(dir, &["E900", "--queue", "Billing"], 0).await;
    assert_eq!(doc["checks"][0]["notes"].as_array().unwrap().len(), 1);
    assert!(doc["checks"][0]["hris"].is_null());

    // Every queue at once.
    let shown = why(dir, &["E100"], 0).await;
    assert!(shown.contains("eligible for 1 of 5 queue(s)"), "{shown}");
    let doc = why_json(dir, &["E700"], 0).await;
    let checks = doc["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 5);
    let eligible: Vec<&str> = checks
        .iter()
        .filter(|c| c["eligible"] == true)
        .map(|c| c["queue"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(eligible, ["Tech Support"]);
    why(dir, &["E500"], 3).await;

    // Not one write by any of it.
    assert_eq!(
        writes_in(&sim_stats(&base).await),
        writes_before,
        "why wrote to the tenant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_employee_queue_or_code_is_an_error_naming_it_with_near_matches() {
    let ws = workspace("why-unknown");
    let dir = ws.0.as_path();
    let (base, _stop) = start_sim(tenant()).await;
    configure(dir, &base);
    write_hris(dir);

    for (args, given, suggested) in [
        (vec!["E1000", "--queue", "Billing"], "E1000", "E100"),
        (vec!["E100", "--queue", "Biling"], "Biling", "Billing"),
        (vec!["E100", "--code", "Billng"], "Billng", "Billing"),
    ] {
        let shown = why(dir, &args, 1).await;
        assert!(shown.contains(&format!("`{given}`")), "{shown}");
        assert!(
            shown.contains(&format!("did you mean `{suggested}`")),
            "{shown}"
        );
    }
    // Unknown queue under --output json: the problems document, naming the near match.
    let output = run_with(dir, &["why", "-o", "json", "E100", "--queue", "billing us"]).await;
    // A name in another case finds the one queue of that name.
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let found: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(found["checks"][0]["queue"]["name"], "Billing US");
    let output = run_with(dir, &["why", "-o", "json", "E100", "--queue", "Billing EU"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let problems: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        problems.to_string().contains("did you mean `Billing US`"),
        "{problems:#}"
    );

    // An agent of agents.csv the tenant does not have: an error naming both ids.
    let agents_csv = dir.join("hris/agents.csv");
    let mut agents = std::fs::read_to_string(&agents_csv).unwrap();
    agents.push_str("E999,u-not-in-tenant,de-de\n");
    std::fs::write(&agents_csv, agents).unwrap();
    let shown = why(dir, &["E999", "--code", "Billing"], 1).await;
    assert!(
        shown.contains("E999")
            && shown.contains("u-not-in-tenant")
            && shown.contains("no such user"),
        "{shown}"
    );

    // --queue and --code together are a usage error.
    why(dir, &["E100", "--queue", "Billing", "--code", "Billing"], 1).await;
    assert_eq!(writes_in(&sim_stats(&base).await), 0);
    assert!(!dir.join("skillsync.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_document_is_exactly_what_docs_why_json_md_lists() {
    let ws = workspace("why-json-doc");
    let dir = ws.0.as_path();
    let (base, _stop) = start_sim(tenant()).await;
    configure(dir, &base);
    write_hris(dir);
    let assigned = run(dir, &["assign", "E800", "Billing", "8"]).await;
    assert_eq!(assigned.status.code(), Some(0), "{}", text(&assigned));

    let mut documents = Vec::new();
    for (args, code) in [
        (vec!["E800", "--queue", "Billing"], 3),
        (vec!["E200", "--queue", "Billing"], 3),
        (vec!["E400", "--code", "Billing"], 3),
        (vec!["E100"], 0),
    ] {
        documents.push(why_json(dir, &args, code).await);
    }
    let page = json_doc::read("why-json.md");
    let documented = json_doc::documented(&page);
    let mut printed = json_doc::Fields::new();
    for document in &documents {
        json_doc::printed(document, "", &[], &mut printed);
    }
    json_doc::assert_same("why-json.md", &documented, &printed);
    let examples = json_doc::examples(&page);
    assert!(!examples.is_empty(), "docs/why-json.md has no example");
    let mut shown = json_doc::Fields::new();
    for example in &examples {
        json_doc::printed(example, "", &[], &mut shown);
    }
    json_doc::assert_example_documented("why-json.md", &documented, &shown);
}

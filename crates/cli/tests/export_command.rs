//! `skillsync export`: the files it writes from a live tenant plan to no changes, the same
//! tenant gives the same bytes, existing files are never replaced without `--force`, and the
//! tenant is only read.

mod common;

use std::path::Path;

use common::{json_doc, run_with, sim_stats, start_sim, workspace, write_config, writes_in};
use proptest::prelude::*;
use serde_json::Value;
use skillsync_sim::{Assignment, GenerateOptions, OWNED_PREFIX, TenantDoc, generate};

const FILES: [&str; 3] = ["catalog.csv", "agents.csv", "assignments.csv"];

fn text(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read_files(dir: &Path) -> Vec<Vec<u8>> {
    FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

/// What the generator cannot make on its own: the shapes of a tenant that has lived.
#[derive(Debug, Clone)]
struct Twists {
    /// Definitions created twice (a blind retry); the copy is newer.
    duplicates: usize,
    /// Of those, how many copies some agent holds (so that agent cannot be expressed).
    held_copies: usize,
    /// Definitions made inactive (the only one of their name and locale).
    inactive: usize,
    /// Agents given a skill of another locale than their own.
    cross_locale: usize,
    /// Assignments turned inactive.
    inactive_assignments: usize,
    /// Text the CSV files must quote (a comma, quotes, a line break) and text they cannot
    /// carry (a name starting like a formula, a description with a trailing space).
    odd_text: bool,
    /// A proficiency named like a skill.
    clash: bool,
    /// Two users sharing an e-mail address.
    shared_email: bool,
}

fn twist(doc: &mut TenantDoc, twists: &Twists) {
    let ours = |d: &skillsync_sim::Definition| !d.name.starts_with(OWNED_PREFIX);
    let originals: Vec<usize> = (0..doc.skills.len())
        .filter(|&i| ours(&doc.skills[i]))
        .collect();
    // Duplicates of the first skills; inactive ones among the last, so the two never meet.
    for (k, &i) in originals.iter().take(twists.duplicates).enumerate() {
        let mut copy = doc.skills[i].clone();
        let original = copy.id.clone();
        copy.id = format!("dup-{k}-{original}");
        doc.skills.push(copy.clone());
        if k < twists.held_copies
            && let Some(user) = doc
                .users
                .iter_mut()
                .find(|u| u.skills.iter().any(|a| a.id == original))
        {
            for a in &mut user.skills {
                if a.id == original {
                    a.id = copy.id.clone();
                }
            }
        }
    }
    for &i in originals.iter().rev().take(twists.inactive) {
        if i >= twists.duplicates {
            doc.skills[i].active = false;
        }
    }
    let locales: Vec<String> = doc.skills.iter().map(|d| d.locale.clone()).collect();
    for k in 0..twists.cross_locale {
        let n = doc.users.len();
        let user = &mut doc.users[(k * 7) % n];
        if let Some(other) = doc
            .skills
            .iter()
            .zip(&locales)
            .find(|(d, l)| **l != user.locale && ours(d) && d.active)
            .map(|(d, _)| d.id.clone())
            && !user.skills.iter().any(|a| a.id == other)
        {
            user.skills.push(Assignment {
                id: other,
                level: 3,
                active: true,
            });
        }
    }
    if twists.odd_text {
        let n = originals.len();
        let at = |k: usize| originals[(n / 2 + k) % n];
        doc.skills[at(0)].description = "Billing, \"disputes\"\nand refunds".into();
        let renamed = format!("@{}", doc.skills[at(1)].name);
        doc.skills[at(1)].name = renamed;
        doc.skills[at(2)].description.push(' ');
    }
    if twists.clash
        && let Some(first) = doc.proficiencies.first().map(|p| p.name.clone())
    {
        let skill = doc.skills[originals[0]].name.clone();
        for p in &mut doc.proficiencies {
            if p.name == first {
                p.name = skill.clone();
            }
        }
    }
    if twists.shared_email {
        let email = doc.users[0].email.clone();
        doc.users[1].email = email;
    }
    for k in 0..twists.inactive_assignments {
        let n = doc.users.len();
        if let Some(a) = doc.users[(k * 5 + 1) % n].skills.first_mut() {
            a.active = false;
        }
    }
}

/// A tenant, its twists, and the flags of the export: `--exclude Ext_*`, `--locale-from
/// default`, `--employee-id email`.
fn tenant() -> impl Strategy<Value = (GenerateOptions, Twists, (bool, bool, bool))> {
    let locales = prop::sample::subsequence(vec!["en-us", "de-de", "fr-fr"], 1..=3);
    (
        (
            8usize..40,
            4usize..8,
            0usize..3,
            locales,
            1usize..3,
            any::<u64>(),
        ),
        (
            0usize..3,
            0usize..2,
            0usize..3,
            0usize..3,
            0usize..3,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (agents, skills, proficiencies, locales, profiles, seed),
                (
                    duplicates,
                    held_copies,
                    inactive,
                    cross_locale,
                    inactive_assignments,
                    odd_text,
                    clash,
                    shared_email,
                ),
                flags,
            )| {
                (
                    GenerateOptions {
                        agents,
                        skills,
                        proficiencies,
                        locales: locales.into_iter().map(String::from).collect(),
                        profiles,
                        seed,
                    },
                    Twists {
                        duplicates,
                        held_copies,
                        inactive,
                        cross_locale,
                        inactive_assignments,
                        odd_text,
                        clash,
                        shared_email,
                    },
                    flags,
                )
            },
        )
}

/// A handful of cases: each starts a simulator and runs the binary three times.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(8),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

async fn export_then_plan(
    doc: TenantDoc,
    (exclude_ext, locale_default, email): (bool, bool, bool),
    tag: &str,
) -> Result<(), String> {
    let ws = workspace(tag);
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);
    let mut args = vec!["export", "--out", "hris"];
    if exclude_ext {
        args.extend(["--exclude", "Ext_*"]);
    }
    if locale_default {
        args.extend(["--locale-from", "default"]);
    }
    if email {
        args.extend(["--employee-id", "email"]);
    }
    let exported = run_with(&ws.0, &args).await;
    if exported.status.code() != Some(0) {
        return Err(format!("export failed:\n{}", text(&exported)));
    }
    let plan = run_with(&ws.0, &["plan"]).await;
    if plan.status.code() != Some(0) {
        return Err(format!(
            "plan against the export reports changes:\n{}\nexport said:\n{}",
            text(&plan),
            text(&exported)
        ));
    }
    // The explicit rules cover every generated shape: the self-check's fallback (leaving out
    // whatever the plan of the files would still change) never had to step in.
    let stderr = String::from_utf8_lossy(&exported.stderr);
    if stderr.contains("plan would") {
        return Err(format!("the rules missed something:\n{}", text(&exported)));
    }
    let first = read_files(&ws.0.join("hris"));
    if exclude_ext {
        let catalog = String::from_utf8_lossy(&first[0]);
        if catalog.contains(OWNED_PREFIX) {
            return Err(format!("--exclude Ext_* exported them:\n{catalog}"));
        }
    }
    args[2] = "again";
    let again = run_with(&ws.0, &args).await;
    if again.status.code() != Some(0) {
        return Err(format!("the second export failed:\n{}", text(&again)));
    }
    if read_files(&ws.0.join("again")) != first {
        return Err("two exports of one tenant differ".into());
    }
    if writes_in(&sim_stats(&base).await) != 0 {
        return Err("export or plan wrote to the tenant".into());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Over generated tenants with several locales, duplicated and inactive definitions,
    /// agents holding another locale's variant or a duplicate's copy, inactive assignments and
    /// another integration's definitions: `plan` against what `export` wrote reports no
    /// changes, and exporting again gives the same bytes.
    #[test]
    fn export_then_plan_reports_no_changes_and_export_is_deterministic(
        (options, twists, flags) in tenant()
    ) {
        let mut doc = generate(&options);
        twist(&mut doc, &twists);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let tag = format!("export-prop-{}", options.seed);
        let result = runtime.block_on(export_then_plan(doc, flags, &tag));
        prop_assert!(result.is_ok(), "{:?} {:?}: {}", options, twists, result.unwrap_err());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn existing_files_are_refused_without_force_and_nothing_is_written_anywhere() {
    let ws = workspace("export-force");
    let (base, _stop) = start_sim(generate(&GenerateOptions {
        agents: 20,
        ..Default::default()
    }))
    .await;
    write_config(&ws.0, &base);
    let hris = ws.0.join("hris");
    // Only one of the three exists: it alone blocks the export, and the other two are not
    // written either.
    std::fs::write(
        hris.join("agents.csv"),
        "employee_id,user_id,locale\nmine,u-1,en-us\n",
    )
    .unwrap();
    let refused = run_with(&ws.0, &["export", "--out", "hris"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("agents.csv") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(hris.join("agents.csv")).unwrap(),
        "employee_id,user_id,locale\nmine,u-1,en-us\n"
    );
    assert!(!hris.join("catalog.csv").exists());
    assert!(!hris.join("assignments.csv").exists());

    let forced = run_with(&ws.0, &["export", "--out", "hris", "--force"]).await;
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    let written = read_files(&hris);
    assert!(String::from_utf8_lossy(&written[1]).lines().count() > 1);
    // No temporary file is left beside them.
    let names: Vec<String> = std::fs::read_dir(&hris)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");

    // All three exist now: refused again, each named, nothing changed.
    let refused = run_with(&ws.0, &["export", "--out", "hris"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    for file in FILES {
        assert!(stderr.contains(file), "{file} not named: {stderr}");
    }
    assert_eq!(read_files(&hris), written);

    let stats = sim_stats(&base).await;
    assert_eq!(writes_in(&stats), 0, "export wrote to the tenant: {stats}");
    // Read-only: no journal was created either.
    assert!(!ws.0.join("skillsync.db").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_files_cannot_say_is_reported_and_the_json_is_what_docs_export_json_md_lists() {
    let ws = workspace("export-json");
    let mut doc = generate(&GenerateOptions {
        agents: 30,
        ..Default::default()
    });
    twist(
        &mut doc,
        &Twists {
            duplicates: 2,
            held_copies: 1,
            inactive: 1,
            cross_locale: 1,
            inactive_assignments: 1,
            odd_text: true,
            clash: true,
            shared_email: true,
        },
    );
    let inactive_name = doc.skills.iter().find(|d| !d.active).unwrap().name.clone();
    let duplicated_name = doc.skills[0].name.clone();
    let shared_email = doc.users[0].email.clone();
    let third_email = doc.users[2].email.clone();
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);
    let exported = run_with(
        &ws.0,
        &[
            "export",
            "--out",
            "hris",
            "--exclude",
            "Ext_*",
            "--employee-id",
            "email",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(exported.status.code(), Some(0), "{}", text(&exported));
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert!(
        stderr.contains(&format!("warning: skill {duplicated_name}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&inactive_name) && stderr.contains("is inactive"),
        "{stderr}"
    );
    assert!(stderr.contains("left out of agents.csv"), "{stderr}");
    assert!(
        stderr.contains(&format!("{shared_email} is another user's too")),
        "{stderr}"
    );
    let agents = std::fs::read_to_string(ws.0.join("hris/agents.csv")).unwrap();
    assert!(!agents.contains(&shared_email), "{agents}");
    assert!(agents.contains(&format!("\n{third_email},")), "{agents}");
    let document: Value = serde_json::from_slice(&exported.stdout)
        .unwrap_or_else(|e| panic!("export must print JSON ({e}):\n{}", text(&exported)));
    let kinds: Vec<&str> = document["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "duplicate",
        "inactive",
        "agentLeftOut",
        "unexpressible",
        "codeRenamed",
    ] {
        assert!(kinds.contains(&kind), "no {kind} warning: {kinds:?}");
    }
    assert!(document["totals"]["excludedDefinitions"].as_u64().unwrap() > 0);
    let plan = run_with(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    let page = json_doc::read("export-json.md");
    let documented = json_doc::documented(&page);
    let mut printed = json_doc::Fields::new();
    json_doc::printed(&document, "", &[], &mut printed);
    json_doc::assert_same("export-json.md", &documented, &printed);
    let examples = json_doc::examples(&page);
    assert_eq!(examples.len(), 1, "one example");
    let mut shown = json_doc::Fields::new();
    json_doc::printed(&examples[0], "", &[], &mut shown);
    json_doc::assert_example_documented("export-json.md", &documented, &shown);
}

/// A code `skillsync retire --soft` took out of management stays out of the export (its
/// definitions are inactive, and the journal says why), and plan still reports no changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_retired_code_is_left_out_and_named() {
    let ws = workspace("export-retired");
    let doc = generate(&GenerateOptions {
        agents: 20,
        ..Default::default()
    });
    let code = doc.skills[0].name.clone();
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);
    let exported = run_with(&ws.0, &["export", "--out", "hris"]).await;
    assert_eq!(exported.status.code(), Some(0), "{}", text(&exported));
    let retired = run_with(&ws.0, &["retire", &code, "--soft", "--yes"]).await;
    assert_eq!(retired.status.code(), Some(0), "{}", text(&retired));

    let again = run_with(&ws.0, &["export", "--out", "hris", "--force"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!("skill {code} (en-us) was retired in run")),
        "{stderr}"
    );
    let catalog = std::fs::read_to_string(ws.0.join("hris/catalog.csv")).unwrap();
    assert!(!catalog.contains(&format!("\n{code},")), "{catalog}");
    let plan = run_with(&ws.0, &["plan"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

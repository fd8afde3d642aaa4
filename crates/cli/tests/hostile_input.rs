//! Hostile HRIS files (issue 13), through the real binary against the real simulator: each is
//! refused by `validate` and `plan` (exit 1) with an error at its file, line and field, and never
//! reaches the tenant; a file repeating one row a hundred thousand times is summarised instead
//! of printing a warning per row.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use skillsync_sim::{GenerateOptions, TenantDoc};

/// A workspace whose files say exactly what a small generated tenant holds, and a simulator
/// serving that tenant.
struct Setup {
    ws: Workspace,
    doc: TenantDoc,
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn setup(tag: &str) -> Setup {
    let ws = workspace(&format!("hostile-{tag}"));
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 5,
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let (base, stop) = start_sim(doc.clone()).await;
    write_config(&ws.0, &base);
    Setup {
        ws,
        doc,
        base,
        _stop: stop,
    }
}

/// Appends `rows` to an HRIS file; the 1-based line of the first appended row.
fn append(dir: &Path, file: &str, rows: &str) -> usize {
    let path = dir.join("hris").join(file);
    let mut text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().count() + 1;
    text.push_str(rows);
    std::fs::write(path, text).unwrap();
    line
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `validate` and `plan` both refuse the files (exit 1), each error expected is in their
/// output, the output stays small, and nothing was written to the tenant (`plan` may have
/// started reading it from a valid catalog while the other files were read).
async fn refused(setup: &Setup, expected: &[&str]) -> String {
    let mut text = String::new();
    for command in ["validate", "plan"] {
        let output = skillsync(&setup.ws.0, &[command]);
        text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{command}:\n{text}");
        assert!(output.stdout.is_empty(), "{command}");
        for needle in expected {
            assert!(
                text.contains(needle),
                "{command}: no `{needle}` in:\n{text}"
            );
        }
        assert!(
            text.len() < 20_000,
            "{command}: {} bytes of output",
            text.len()
        );
    }
    let stats = sim_stats(&setup.base).await;
    assert_eq!(writes_in(&stats), 0, "nothing is written: {stats}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_description_is_refused_at_its_line_and_never_printed() {
    let setup = setup("description").await;
    let profile = &setup.doc.profiles[0].id;
    let line = append(
        &setup.ws.0,
        "catalog.csv",
        &format!("HUGE,skill,en-us,Huge,{},{profile}\n", "d".repeat(1 << 20)),
    );
    refused(
        &setup,
        &[&format!(
            "hris/catalog.csv:{line}:5: error: description is 1048576 characters long, more than the 1000 allowed"
        )],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kb_employee_id_is_refused_at_its_line_and_never_printed() {
    let setup = setup("employee").await;
    let line = append(
        &setup.ws.0,
        "agents.csv",
        &format!("{},u-hostile,en-us\n", "E".repeat(100_000)),
    );
    refused(
        &setup,
        &[&format!(
            "hris/agents.csv:{line}:1: error: employee_id is 100000 characters long, more than the 128 allowed"
        )],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_spreadsheet_would_run_as_formulas_are_refused() {
    let setup = setup("formula").await;
    let profile = &setup.doc.profiles[0].id;
    let catalog = append(
        &setup.ws.0,
        "catalog.csv",
        &format!(
            "F1,skill,en-us,\"=HYPERLINK(\"\"http://x\"\")\",ok,{profile}\n\
             +F2,skill,en-us,F2,ok,{profile}\n\
             F3,skill,en-us,F3,@SUM(A1),{profile}\n"
        ),
    );
    let agents = append(
        &setup.ws.0,
        "agents.csv",
        "-E1,u-f1,en-us\n\t=E2,u-f2,en-us\n",
    );
    let text = refused(
        &setup,
        &[
            &format!("hris/catalog.csv:{catalog}:4: error: name `=HYPERLINK(\"http://x\")` starts with `=`"),
            &format!("hris/catalog.csv:{}:1: error: code `+F2` starts with `+`", catalog + 1),
            &format!("hris/catalog.csv:{}:5: error: description `@SUM(A1)` starts with `@`", catalog + 2),
            &format!("hris/agents.csv:{agents}:1: error: employee_id `-E1` starts with `-`"),
            &format!("hris/agents.csv:{}:1: error: employee_id `=E2` starts with `=`", agents + 1),
        ],
    )
    .await;
    assert_eq!(
        text.matches("hint: remove the leading").count(),
        5,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_that_is_not_an_id_is_refused_before_any_request() {
    let setup = setup("user-id").await;
    let line = append(&setup.ws.0, "agents.csv", "EX,../../etc/passwd,en-us\n");
    refused(
        &setup,
        &[&format!(
            "hris/agents.csv:{line}:2: error: user_id `../../etc/passwd` is not an id"
        )],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_repeated_rows_are_summarised_not_listed() {
    let setup = setup("repeats").await;
    let assignments = std::fs::read_to_string(setup.ws.0.join("hris/assignments.csv")).unwrap();
    let row = format!(
        "{}\n",
        assignments.lines().nth(1).expect("a first assignment")
    );
    let first = append(&setup.ws.0, "assignments.csv", &row.repeat(100_000));
    for command in ["validate", "plan"] {
        let output = skillsync(&setup.ws.0, &[command]);
        // plan prints its warnings with the plan, on stdout.
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
        assert!(
            text.len() < 20_000,
            "{command}: {} bytes of output",
            text.len()
        );
        assert_eq!(
            text.matches("more like this").count(),
            1,
            "{command}:\n{text}"
        );
        assert!(
            text.contains("… and 99980 more like this (repeated assignments)"),
            "{command}:\n{text}"
        );
        // Only warnings: the run goes on (plan: no changes, the files match the tenant).
        assert_eq!(output.status.code(), Some(0), "{command}:\n{text}");
    }
    let output = skillsync(&setup.ws.0, &["validate"]);
    let text = stderr(&output);
    assert_eq!(text.matches(": warning: ").count(), 21, "{text}");
    // The summary stands at the first repeat not listed, among the appended rows.
    let summary = text
        .lines()
        .find(|l| l.contains("more like this"))
        .unwrap_or_else(|| panic!("no summary in:\n{text}"));
    let line: usize = summary
        .strip_prefix("hris/assignments.csv:")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line in {summary}"));
    assert!((first..first + 100_000).contains(&line), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_underscored_locale_is_told_its_valid_spelling() {
    let setup = setup("locale").await;
    let line = append(&setup.ws.0, "agents.csv", "EX,u-ex,en_US\n");
    let text = refused(
        &setup,
        &[&format!(
            "hris/agents.csv:{line}:3: error: locale `en_US` must be lowercase (write `en-us`)"
        )],
    )
    .await;
    assert!(!text.contains("en_us"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_locale_variant_names_the_agents_line_too() {
    let setup = setup("variant").await;
    let profile = &setup.doc.profiles[0].id;
    let users = &setup.doc.users;
    let dir = &setup.ws.0;
    std::fs::write(
        dir.join("hris/catalog.csv"),
        format!(
            "code,kind,locale,name,description,routing_profile_id\n\
             PAY,skill,en-us,Payments,,{profile}\nPAY,skill,de-de,Zahlungen,,{profile}\n\
             XS,skill,en-us,Cross-sell,,{profile}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("hris/agents.csv"),
        format!(
            "employee_id,user_id,locale\nE1,{},en-us\nE2,{},de-de\n",
            users[0].id, users[1].id
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("hris/assignments.csv"),
        "employee_id,code,level\nE1,XS,5\nE2,PAY,4\nE2,XS,4\n",
    )
    .unwrap();
    refused(
        &setup,
        &["hris/assignments.csv:4:2: error: code `XS` has no variant in de-de, the locale of employee `E2` (hris/agents.csv:3)"],
    )
    .await;
}

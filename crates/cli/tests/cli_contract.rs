//! The outside contract every command shares (SPEC section 3): usage errors exit 1 (2 means
//! "changes pending" to scripts), `--help` and `--version` print to stdout and exit 0, a closed
//! stdout pipe ends a command quietly, and `history --output json` is the document
//! `docs/history-json.md` describes.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use skillsync_store::{
    Held, NewRun, RunCounts, RunOutcome, Snapshot, UserLists, WriteRecord, WriteStatus, WriteTarget,
};

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A folder with a `skillsync.toml` whose tenant is never contacted: these commands read only
/// the config and the journal.
fn offline_workspace(tag: &str) -> Workspace {
    let ws = workspace(tag);
    write_config(&ws.0, "http://127.0.0.1:9");
    ws
}

#[test]
fn usage_errors_exit_1_with_the_message_on_stderr_and_nothing_on_stdout() {
    let ws = offline_workspace("usage");
    let cases: [(&[&str], &str); 5] = [
        (
            &["plan", "-c", "skillsync.toml", "--dry-run"],
            "unexpected argument '--dry-run'",
        ),
        (&["plan", "--config"], "a value is required for '--config"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["history", "--limit", "many"], "invalid value 'many'"),
        // No command at all: clap shows the help, but on stderr and as a usage error.
        (&[], "Usage:"),
    ];
    for (args, message) in cases {
        let output = skillsync(&ws.0, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", text(&output));
        assert!(stderr.contains(message), "{args:?}: {}", text(&output));
        assert!(output.stdout.is_empty(), "{args:?}: {}", text(&output));
    }
}

#[test]
fn help_and_version_print_to_stdout_and_exit_0() {
    let ws = offline_workspace("help");
    for (args, expected) in [
        (&["--help"][..], "Usage: skillsync"),
        (&["help"][..], "Usage: skillsync"),
        (&["plan", "--help"][..], "Usage: skillsync plan"),
        (&["--version"][..], env!("CARGO_PKG_VERSION")),
    ] {
        let output = skillsync(&ws.0, args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", text(&output));
        assert!(stdout.contains(expected), "{args:?}: {}", text(&output));
        assert!(output.stderr.is_empty(), "{args:?}: {}", text(&output));
    }
}

async fn journal(dir: &Path) -> Box<dyn skillsync_store::Journal> {
    skillsync_store::open(&format!("sqlite://{}", dir.join("skillsync.db").display()))
        .await
        .unwrap()
}

fn new_run(command: &str, started_at: Timestamp) -> NewRun {
    NewRun {
        command: command.into(),
        config_hash: "0123456789abcdef".into(),
        started_at,
        dialect: "routing".into(),
    }
}

/// `skillsync history | head -1`: the reader goes away after one line while the command still
/// has most of its output to write (far more than a pipe holds), so its next write meets a
/// closed pipe. It must stop quietly: no panic, no error text, exit 0.
#[tokio::test]
async fn a_closed_stdout_pipe_ends_history_quietly() {
    let ws = offline_workspace("pipe");
    let journal = journal(&ws.0).await;
    let reason = "x".repeat(2_000);
    let start = Timestamp::now() - SignedDuration::from_hours(1);
    for i in 0..150 {
        let at = start + SignedDuration::from_secs(i);
        let run = journal.start_run(&new_run("apply", at)).await.unwrap();
        journal
            .finish_run(
                run,
                RunOutcome::Refused,
                &RunCounts {
                    stopped: Some(reason.to_string()),
                    ..RunCounts::default()
                },
                at,
            )
            .await
            .unwrap();
    }
    drop(journal);

    for format in ["human", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skillsync"))
            .args(["history", "--limit", "1000", "--output", format])
            .current_dir(&ws.0)
            .env("SKILLSYNC_TEST_SECRET", skillsync_sim::DEMO_CLIENT_SECRET)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(!first.is_empty(), "{format}: the first line arrives");
        // Closes the read end: `head -1` exits.
        drop(stdout);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{format}: {}", text(&output));
        assert!(stderr.is_empty(), "{format}: quietly: {}", text(&output));
        assert_eq!(output.status.code(), Some(0), "{format}: {}", text(&output));
    }
}

/// The documented shape of `history --output json` (docs/history-json.md); unknown fields are
/// refused so that the test fails when the command prints more than the page documents.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct History {
    schema_version: u64,
    runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Run {
    id: i64,
    command: String,
    outcome: String,
    started_at: Timestamp,
    ended_at: Option<Timestamp>,
    writes: u64,
    settles_at: Option<Timestamp>,
    config_hash: String,
    dialect: String,
    counts: Option<RunCounts>,
}

#[tokio::test]
async fn history_json_is_the_versioned_document_docs_history_json_md_describes() {
    let ws = offline_workspace("history-json");
    let journal = journal(&ws.0).await;
    let start = Timestamp::now() - SignedDuration::from_mins(10);
    // 1: an apply that wrote two users; 2: a refused apply; 3: a run that never finished.
    let applied = journal.start_run(&new_run("apply", start)).await.unwrap();
    let settle = start + SignedDuration::from_secs(90);
    let writes: Vec<WriteRecord> = ["u-1", "u-2"]
        .into_iter()
        .map(|user| WriteRecord {
            run: applied,
            target: WriteTarget::UserSkills,
            subject: user.into(),
            before: Snapshot::User(UserLists {
                version: Some(1),
                skills: Some(Vec::new()),
                proficiencies: None,
            }),
            after: Snapshot::User(UserLists {
                version: Some(1),
                skills: Some(vec![Held {
                    definition_id: "d-1".into(),
                    level: 5,
                    active: true,
                }]),
                proficiencies: None,
            }),
            status: WriteStatus::Applied,
            detail: None,
            at: start + SignedDuration::from_secs(60),
            settles_at: Some(settle),
        })
        .collect();
    journal.record_writes(&writes).await.unwrap();
    let counts = RunCounts {
        users_planned: 2,
        users_updated: 2,
        ..RunCounts::default()
    };
    journal
        .finish_run(
            applied,
            RunOutcome::Succeeded,
            &counts,
            start + SignedDuration::from_secs(61),
        )
        .await
        .unwrap();
    let refused = journal
        .start_run(&new_run("apply", start + SignedDuration::from_mins(2)))
        .await
        .unwrap();
    let why = RunCounts {
        stopped: Some("outside the sync window".into()),
        ..RunCounts::default()
    };
    journal
        .finish_run(
            refused,
            RunOutcome::Refused,
            &why,
            start + SignedDuration::from_mins(2),
        )
        .await
        .unwrap();
    let interrupted = journal
        .start_run(&new_run("assign", start + SignedDuration::from_mins(3)))
        .await
        .unwrap();
    drop(journal);

    let output = skillsync(&ws.0, &["history", "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let value: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let history: History = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("not the documented shape ({e}): {value:#}"));
    assert_eq!(history.schema_version, 1);
    let ids: Vec<i64> = history.runs.iter().map(|r| r.id).collect();
    assert_eq!(ids, [interrupted.0, refused.0, applied.0], "newest first");

    let [newest, middle, oldest] = &history.runs[..] else {
        panic!("three runs: {value:#}")
    };
    assert_eq!(newest.command, "assign");
    assert_eq!(newest.outcome, "interrupted");
    assert_eq!(newest.ended_at, None);
    assert_eq!(newest.counts, None);
    assert_eq!(middle.outcome, "refused");
    assert_eq!(middle.counts, Some(why));
    assert_eq!(middle.writes, 0);
    assert_eq!(middle.settles_at, None);
    assert_eq!(oldest.outcome, "succeeded");
    assert_eq!(oldest.writes, 2);
    assert_eq!(oldest.settles_at, Some(settle));
    assert_eq!(oldest.started_at, start);
    assert_eq!(oldest.ended_at, Some(start + SignedDuration::from_secs(61)));
    assert_eq!(oldest.counts, Some(counts));
    assert_eq!(oldest.config_hash, "0123456789abcdef");
    assert_eq!(oldest.dialect, "routing");

    // `--limit` keeps the newest.
    let limited = skillsync(&ws.0, &["history", "--limit", "1", "--output", "json"]);
    let limited: History = serde_json::from_slice(&limited.stdout).unwrap();
    assert_eq!(limited.runs.len(), 1);
    assert_eq!(limited.runs[0].id, interrupted.0);

    // The page lists exactly the printed fields.
    let page = json_doc::read("history-json.md");
    let documented = json_doc::documented(&page);
    let opaque: [&str; 0] = [];
    let mut printed = json_doc::Fields::new();
    json_doc::printed(&value, "", &opaque, &mut printed);
    json_doc::assert_same("history-json.md", &documented, &printed);
    let examples = json_doc::examples(&page);
    assert_eq!(examples.len(), 1, "one example");
    let example: History = serde_json::from_value(examples[0].clone())
        .unwrap_or_else(|e| panic!("the example is not the documented shape ({e})"));
    assert_eq!(example.schema_version, 1);
}

/// An empty journal is still one document, not an empty array or a sentence.
#[test]
fn history_json_of_an_empty_journal_is_a_document_with_no_runs() {
    let ws = offline_workspace("history-empty");
    let output = skillsync(&ws.0, &["history", "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let history: History = serde_json::from_slice(&output.stdout).expect("the document");
    assert_eq!(history.schema_version, 1);
    assert!(history.runs.is_empty());
}

fn small_tenant() -> skillsync_sim::TenantDoc {
    skillsync_sim::generate(&skillsync_sim::GenerateOptions {
        agents: 60,
        skills: 4,
        proficiencies: 2,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 2,
        seed: 11,
    })
}

/// `drift --output json` is `docs/drift-json.md`'s versioned document: exit 2 with every
/// drifted agent and the last write skillsync journaled to it, exit 0 with none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_json_is_the_versioned_document_docs_drift_json_md_describes() {
    let ws = workspace("drift-json");
    let doc = small_tenant();
    let expected = write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim(doc.clone()).await;
    write_config(&ws.0, &base);
    // Agent E00000 differs (every 3rd agent has a level changed); a run wrote to it before.
    let user = doc.users[0].id.clone();
    let journal = journal(&ws.0).await;
    let at = Timestamp::now() - SignedDuration::from_mins(5);
    let earlier = journal.start_run(&new_run("apply", at)).await.unwrap();
    journal
        .record_writes(&[WriteRecord {
            run: earlier,
            target: WriteTarget::UserSkills,
            subject: user.clone(),
            before: Snapshot::Absent,
            after: Snapshot::Absent,
            status: WriteStatus::Applied,
            detail: None,
            at,
            settles_at: Some(at),
        }])
        .await
        .unwrap();
    journal
        .finish_run(earlier, RunOutcome::Succeeded, &RunCounts::default(), at)
        .await
        .unwrap();
    drop(journal);

    let output = run(&ws.0, &["drift", "--output", "json"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let drift: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(drift["schemaVersion"], 1, "{drift:#}");
    assert_eq!(drift["status"], "drift", "{drift:#}");
    let drifted = drift["drifted"].as_array().unwrap();
    assert_eq!(drifted.len() as u64, expected.users_changed, "{drift:#}");
    assert_eq!(drift["totals"]["usersChanged"], expected.users_changed);
    let first = &drifted[0];
    assert_eq!(first["employeeId"], "E00000", "{drift:#}");
    assert_eq!(first["userId"], user.as_str(), "{drift:#}");
    assert!(
        !first["changes"].as_array().unwrap().is_empty(),
        "{drift:#}"
    );
    assert_eq!(
        first["lastWrite"],
        json!({ "run": earlier.0, "at": at, "status": "applied" }),
        "{drift:#}"
    );
    assert!(
        drifted[1..].iter().all(|d| d["lastWrite"].is_null()),
        "{drift:#}"
    );

    let page = json_doc::read("drift-json.md");
    let documented = json_doc::documented(&page);
    // Objects of the plan document, documented (and held to the code) in docs/plan-json.md.
    let opaque = ["definitions", "totals", "drifted[].changes"];
    let mut printed = json_doc::Fields::new();
    json_doc::printed(&drift, "", &opaque, &mut printed);
    json_doc::assert_same("drift-json.md", &documented, &printed);
    let examples = json_doc::examples(&page);
    assert_eq!(examples.len(), 1, "one example");
    let mut shown = json_doc::Fields::new();
    json_doc::printed(&examples[0], "", &opaque, &mut shown);
    json_doc::assert_example_documented("drift-json.md", &documented, &shown);

    write_hris_exact(&ws.0, &doc);
    let output = run(&ws.0, &["drift", "--output", "json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let drift: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(drift["schemaVersion"], 1, "{drift:#}");
    assert_eq!(drift["status"], "noDrift", "{drift:#}");
    assert_eq!(drift["drifted"], json!([]), "{drift:#}");
}

/// `validate --output json` over valid files is the problems document of docs/plan-json.md,
/// versioned, with what the files hold.
#[test]
fn validate_json_is_the_versioned_problems_document_with_counts() {
    let ws = offline_workspace("validate-json");
    let doc = small_tenant();
    write_hris_exact(&ws.0, &doc);
    let output = skillsync(&ws.0, &["validate", "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let value: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(value["schemaVersion"], 1, "{value:#}");
    assert_eq!(value["status"], "valid", "{value:#}");
    assert_eq!(value["errors"], 0, "{value:#}");
    assert_eq!(value["counts"]["agents"], doc.users.len(), "{value:#}");
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "schemaVersion",
            "status",
            "errors",
            "warnings",
            "problems",
            "counts"
        ]
    );

    // Invalid files: the same document, without counts, exit 1.
    std::fs::write(
        ws.0.join("hris/agents.csv"),
        "employee_id,user_id,locale\nE1,u-1,de-DE\n",
    )
    .unwrap();
    let output = skillsync(&ws.0, &["validate", "--output", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let value: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(value["schemaVersion"], 1, "{value:#}");
    assert_eq!(value["status"], "invalid", "{value:#}");
    assert!(value.get("counts").is_none(), "{value:#}");
}

/// The human listing says "killed" only of a run that never finished: a finished run whose
/// command journals its own counts (assign) shows them instead.
#[tokio::test]
async fn history_calls_only_unfinished_runs_killed() {
    let ws = offline_workspace("history-human");
    let journal = journal(&ws.0).await;
    let at = Timestamp::now() - SignedDuration::from_mins(5);
    let assigned = journal.start_run(&new_run("assign", at)).await.unwrap();
    journal
        .finish_run(
            assigned,
            RunOutcome::Succeeded,
            &RunCounts {
                requests: 3,
                ..RunCounts::default()
            },
            at,
        )
        .await
        .unwrap();
    journal.start_run(&new_run("apply", at)).await.unwrap();
    drop(journal);

    let output = skillsync(&ws.0, &["history"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let listing = String::from_utf8_lossy(&output.stdout);
    let line = |command: &str| {
        listing
            .lines()
            .find(|l| l.contains(&format!(" {command} ")))
            .unwrap_or_else(|| panic!("a line for {command}: {listing}"))
            .to_string()
    };
    assert!(line("assign").contains("3 requests"), "{listing}");
    assert!(!line("assign").contains("killed"), "{listing}");
    assert!(line("apply").contains("interrupted"), "{listing}");
    assert!(
        line("apply").contains("killed or still running"),
        "{listing}"
    );
}

/// A store URL's password is never printed: not by `validate`'s summary, not in the errors of
/// the commands that open the journal.
#[test]
fn a_store_urls_password_is_never_printed() {
    let ws = offline_workspace("store-secret");
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        config + "\n[store]\nurl = \"postgres://skillsync:hunter2@db.example:5432/journal\"\n",
    )
    .unwrap();
    std::fs::write(
        ws.0.join("hris/catalog.csv"),
        "code,kind,locale,name,description,routing_profile_id\nBilling,skill,en-us,Billing,,p1\n",
    )
    .unwrap();
    std::fs::write(
        ws.0.join("hris/agents.csv"),
        "employee_id,user_id,locale\nE1,u1,en-us\n",
    )
    .unwrap();
    std::fs::write(
        ws.0.join("hris/assignments.csv"),
        "employee_id,code,level,active\nE1,Billing,5,true\n",
    )
    .unwrap();
    let validated = skillsync(&ws.0, &["validate"]);
    assert_eq!(validated.status.code(), Some(0), "{}", text(&validated));
    assert!(
        String::from_utf8_lossy(&validated.stdout).contains("postgres://***@db.example:5432"),
        "the summary shows where the journal is: {}",
        text(&validated)
    );
    for args in [
        &["validate"][..],
        &["history"],
        &["history", "--output", "json"],
        &["apply", "--yes"],
        &["verify"],
        &["plan"],
    ] {
        let output = skillsync(&ws.0, args);
        assert!(
            !text(&output).contains("hunter2"),
            "{args:?} printed the password: {}",
            text(&output)
        );
    }
}

/// `[store] password` comes from the environment (or a file), goes into the connection only,
/// and is never printed; missing, it is named; it makes no sense beside a SQLite journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_password_comes_from_the_environment_and_is_never_printed() {
    let ws = offline_workspace("store-password");
    for (file, text) in [
        (
            "catalog.csv",
            "code,kind,locale,name,description,routing_profile_id\nBilling,skill,en-us,Billing,,p1\n",
        ),
        ("agents.csv", "employee_id,user_id,locale\nE1,u1,en-us\n"),
        (
            "assignments.csv",
            "employee_id,code,level,active\nE1,Billing,5,true\n",
        ),
    ] {
        std::fs::write(ws.0.join("hris").join(file), text).unwrap();
    }
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    let with_store = |store: &str| {
        std::fs::write(ws.0.join("skillsync.toml"), config.clone() + store).unwrap();
    };
    with_store(
        "\n[store]\nurl = \"sqlite://j.db\"\npassword = { env = \"SKILLSYNC_TEST_STORE_PASSWORD\" }\n",
    );
    let refused = skillsync(&ws.0, &["validate"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("store.password"),
        "{}",
        text(&refused)
    );
    with_store(
        "\n[store]\nurl = \"postgres://127.0.0.1:5432/j\"\npassword = { env = \"SKILLSYNC_TEST_STORE_PASSWORD\" }\n",
    );
    let nameless = skillsync(&ws.0, &["validate"]);
    assert_eq!(nameless.status.code(), Some(1), "{}", text(&nameless));
    assert!(text(&nameless).contains("user name"), "{}", text(&nameless));

    let Some(store) = common::store::TestStore::postgres("store_password").await else {
        return;
    };
    with_store(&format!(
        "\n[store]\nurl = \"{}\"\npassword = {{ env = \"SKILLSYNC_TEST_STORE_PASSWORD\" }}\n",
        store.url(&ws.0)
    ));
    // Unset: validate warns, and a command that needs the journal stops naming the key.
    let warned = skillsync(&ws.0, &["validate"]);
    assert!(
        text(&warned).contains("store.password")
            && text(&warned).contains("SKILLSYNC_TEST_STORE_PASSWORD"),
        "{}",
        text(&warned)
    );
    let stopped = skillsync(&ws.0, &["history"]);
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    assert!(
        text(&stopped).contains("store.password"),
        "{}",
        text(&stopped)
    );

    // Set (the test database trusts any password): it connects, and nothing prints it.
    let password = "hunter2:/@?x";
    let history = Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(["history", "--output", "json"])
        .current_dir(&ws.0)
        .env("SKILLSYNC_TEST_STORE_PASSWORD", password)
        .env("SKILLSYNC_TEST_SECRET", skillsync_sim::DEMO_CLIENT_SECRET)
        .output()
        .unwrap();
    assert_eq!(history.status.code(), Some(0), "{}", text(&history));
    assert!(!text(&history).contains("hunter2"), "{}", text(&history));
}

/// Completions and the man page come from the same clap definitions as `--help`: every
/// command is in them, and the bash script is valid bash.
#[test]
fn completions_and_the_man_page_are_generated_from_the_commands() {
    let ws = offline_workspace("completions");
    for shell in ["bash", "zsh", "fish"] {
        let out = skillsync(&ws.0, &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for command in ["sync-agent", "serve", "retire", "completions"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
        if shell == "bash" {
            let path = ws.0.join("skillsync.bash");
            std::fs::write(&path, script.as_bytes()).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(check.status.success(), "{}", text(&check));
        }
    }
    let out = skillsync(&ws.0, &["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH skillsync 1"), "{page}");
    assert!(page.contains("sync\\-agent"), "{page}");
    let bad = skillsync(&ws.0, &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
}

/// `--quiet` prints no human output (the exit code says it: 2, changes), but a JSON document
/// asked for is still printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_nothing_but_a_requested_json_document() {
    let ws = workspace("quiet");
    let doc = small_tenant();
    write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);
    let out = run(&ws.0, &["plan", "--quiet"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let out = run(&ws.0, &["plan", "-q", "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let document: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(document["schemaVersion"].is_number(), "{document}");
}

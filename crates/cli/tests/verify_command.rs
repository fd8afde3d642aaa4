//! `skillsync verify` end to end against the real simulator, whose routing cache lags behind
//! the database by its propagation delay: before the run settles a new assignment is "not yet
//! routable", after it "routed", and verify never reads a user to find out.
//!
//! Nothing here depends on how fast the machine is. The simulator's propagation (an hour)
//! outlasts every test, so its routing cache moves only when a test advances the simulator's
//! clock (`POST /sim/clock/advance`); verify judges "settled" by the journal's settle times, in
//! real time, from `[sync] propagation_window`: an hour where a check must land before settling,
//! a second where verify is to wait for it.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;
use skillsync_sim::{DurationRange, GenerateOptions, Knobs, TenantDoc};

/// The simulator's propagation delay: longer than any test, so only an advance of the
/// simulator's clock (by [`CATCH_UP`]) shows a write to its routing cache.
const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(3600);
const CATCH_UP: &str = "3700s";

/// A window no check made during a test outlasts: a run journaled with it is never settled
/// while the test runs, so a check always lands before settling.
const LONG_WINDOW: &str = "1h";
/// A window verify waits out in at most a second of real time.
const SHORT_WINDOW: &str = "1s";

fn tenant() -> TenantDoc {
    skillsync_sim::generate(&GenerateOptions {
        agents: 12,
        skills: 6,
        proficiencies: 2,
        locales: vec!["en-us".into()],
        profiles: 2,
        seed: 7,
    })
}

/// The skill a queue requires, by name.
fn skill_of<'a>(doc: &'a TenantDoc, queue: &skillsync_sim::Queue) -> &'a skillsync_sim::Definition {
    doc.skills.iter().find(|s| s.id == queue.skill_id).unwrap()
}

/// A non-production queue and its skill, with the skill taken away from every agent so that
/// nobody can take the queue's interactions until the run gives it to someone.
fn test_queue_nobody_holds(doc: &mut TenantDoc) -> (skillsync_sim::Queue, String) {
    let queue = doc
        .queues
        .iter()
        .find(|q| {
            !q.production
                && !skill_of(doc, q)
                    .name
                    .starts_with(skillsync_sim::OWNED_PREFIX)
        })
        .expect("generated tenants have test queues")
        .clone();
    for user in &mut doc.users {
        user.skills.retain(|a| a.id != queue.skill_id);
    }
    let name = skill_of(doc, &queue).name.clone();
    (queue, name)
}

/// HRIS files that match the tenant except for the given extra rows (employee, code, level).
fn write_hris_plus(dir: &Path, doc: &TenantDoc, extra: &[(usize, &str, u8)]) {
    write_hris_exact(dir, doc);
    let path = dir.join("hris/assignments.csv");
    let mut assignments = std::fs::read_to_string(&path).unwrap();
    for (agent, code, level) in extra {
        writeln!(assignments, "E{agent:05},{code},{level},true").unwrap();
    }
    std::fs::write(path, assignments).unwrap();
}

/// Starts the simulator (propagation [`PROPAGATION`]) and configures the workspace for it
/// with the given `[sync] propagation_window`.
async fn start(
    doc: TenantDoc,
    dir: &Path,
    window: &str,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (base, stop) = start_sim_with(
        doc,
        Knobs {
            propagation: DurationRange::fixed(PROPAGATION),
            ..Knobs::quiet()
        },
    )
    .await;
    configure(dir, &base, window);
    (base, stop)
}

/// Writes the workspace's config for the simulator at `base`, with the given
/// `[sync] propagation_window`: the settle time the next run journals.
fn configure(dir: &Path, base: &str, window: &str) {
    write_config(dir, base);
    let mut config = std::fs::read_to_string(dir.join("skillsync.toml")).unwrap();
    writeln!(config, "\n[sync]\npropagation_window = \"{window}\"").unwrap();
    std::fs::write(dir.join("skillsync.toml"), config).unwrap();
}

/// Moves the simulator's clock past [`PROPAGATION`]: its routing cache shows every write
/// made so far. verify's own clock (real time) does not move.
async fn catch_up(base: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let advanced = reqwest::Client::new()
        .post(format!("{base}/sim/clock/advance"))
        .json(&serde_json::json!({ "by": CATCH_UP }))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), 200, "advance the simulator's clock");
}

async fn apply(dir: &Path) {
    let applied = run(dir, &["apply", "--yes"]).await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "apply:\n{}\n{}",
        String::from_utf8_lossy(&applied.stdout),
        String::from_utf8_lossy(&applied.stderr)
    );
}

/// Requests of any method to a user endpoint of either dialect, and test interactions.
fn counts(stats: &Value) -> (u64, u64) {
    let mut users = 0;
    let mut interactions = 0;
    for r in stats["requests"].as_array().unwrap() {
        let route = r["route"].as_str().unwrap();
        let count = r["count"].as_u64().unwrap();
        if route.starts_with("/api/v2/routing/users") || route.starts_with("/api/v2/users") {
            users += count;
        }
        if route == "/api/v2/interactions/test" {
            interactions += count;
        }
    }
    (users, interactions)
}

/// Runs verify and returns its output with the user requests and test interactions it made.
async fn verify(base: &str, dir: &Path, args: &[&str]) -> (Output, u64, u64) {
    let before = counts(&sim_get(base, "/sim/stats").await);
    let output = run_with(dir, args).await;
    let after = counts(&sim_get(base, "/sim/stats").await);
    (output, after.0 - before.0, after.1 - before.1)
}

fn timestamp(value: &Value) -> jiff::Timestamp {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_assignment_is_not_routable_yet_before_settling_and_routed_after() {
    let ws = workspace("verify-routed");
    let mut doc = tenant();
    let (queue, skill) = test_queue_nobody_holds(&mut doc);
    let agent = doc.users[0].id.clone();
    write_hris_plus(&ws.0, &doc, &[(0, &skill, 7)]);
    // Run 1 promises to settle in an hour; the simulator's cache takes an hour too.
    let (base, _stop) = start(doc.clone(), &ws.0, LONG_WINDOW).await;
    apply(&ws.0).await;

    // Right after the run: the database has the assignment, the routing cache does not yet,
    // however long the check takes to start.
    let (early, user_requests, interactions) =
        verify(&base, &ws.0, &["verify", "--no-wait", "--output", "json"]).await;
    let report = json_of(&early);
    assert_eq!(early.status.code(), Some(2), "not yet routable: {report:#}");
    assert_eq!(report["result"], "notYetRoutable");
    assert_eq!(report["exitCode"], 2);
    let first_run = report["run"].clone();
    let queues = report["queues"].as_array().unwrap();
    assert_eq!(
        queues.len(),
        1,
        "only the test queue of the new skill: {report:#}"
    );
    assert_eq!(queues[0]["queueId"], queue.id.as_str());
    assert_eq!(queues[0]["result"], "notYetRoutable", "{report:#}");
    assert_eq!(queues[0]["expectedUsers"][0]["userId"], agent.as_str());
    assert!(
        timestamp(&report["checkedAt"]) < timestamp(&report["settlesAt"]),
        "checked before the settle time: {report:#}"
    );
    assert_eq!(user_requests, 0, "verify must not read users");
    assert_eq!(interactions, 1, "one test interaction per covered queue");

    // Run 2 raises the same agent's level and promises to settle within a second; then the
    // simulator's cache catches up with both runs.
    configure(&ws.0, &base, SHORT_WINDOW);
    write_hris_plus(&ws.0, &doc, &[(0, &skill, 8)]);
    apply(&ws.0).await;
    catch_up(&base).await;

    // Waiting: verify sleeps until the journal's settle time (at most a second), then the
    // changed agent is routed.
    let (settled, user_requests, interactions) =
        verify(&base, &ws.0, &["verify", "--output", "json"]).await;
    let report = json_of(&settled);
    assert_eq!(settled.status.code(), Some(0), "routed: {report:#}");
    assert_eq!(report["result"], "verified");
    assert_eq!(report["exitCode"], 0);
    assert_ne!(report["run"], first_run, "the latest apply: {report:#}");
    let queues = report["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 1, "{report:#}");
    assert_eq!(queues[0]["queueId"], queue.id.as_str());
    assert_eq!(queues[0]["result"], "routed", "{report:#}");
    assert_eq!(queues[0]["routedTo"], agent.as_str());
    assert_eq!(queues[0]["expectedUsers"][0]["level"], 8);
    assert!(
        timestamp(&report["checkedAt"]) >= timestamp(&report["settlesAt"]),
        "verify waited for the settle time: {report:#}"
    );
    assert_eq!(
        user_requests, 0,
        "verify must not read users, even while waiting"
    );
    assert_eq!(interactions, 1);

    // Run 1's own assignment routes too, now that the cache has it: a routed answer is proof
    // even before the journal's settle time.
    let first = first_run.as_i64().unwrap().to_string();
    let (again, user_requests, _) = verify(
        &base,
        &ws.0,
        &["verify", "--run", &first, "--no-wait", "--output", "json"],
    )
    .await;
    let report = json_of(&again);
    assert_eq!(again.status.code(), Some(0), "{report:#}");
    assert_eq!(report["queues"][0]["result"], "routed", "{report:#}");
    assert_eq!(report["queues"][0]["routedTo"], agent.as_str());
    assert_eq!(user_requests, 0);

    // The human table says the same.
    let (human, user_requests, _) = verify(&base, &ws.0, &["verify"]).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert_eq!(human.status.code(), Some(0), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with(&queue.name))
        .unwrap_or_else(|| panic!("a row for {}:\n{text}", queue.name));
    assert!(row.contains(&format!("routed to {agent}")), "{row}");
    assert!(text.contains("Verified"), "{text}");
    assert_eq!(user_requests, 0);
}

/// The queue routes, after settling, to an agent who outranks ours: whether our write reached
/// the routing cache or not, that answer is the same, so it is inconclusive (exit 4), never
/// "verified" and never a failure.
#[tokio::test(flavor = "multi_thread")]
async fn another_agent_at_a_higher_level_is_named_and_inconclusive() {
    let ws = workspace("verify-other");
    let mut doc = tenant();
    let (queue, skill) = test_queue_nobody_holds(&mut doc);
    // Agent 1 already holds the skill at the top level: the engine keeps choosing it.
    let incumbent = doc.users[1].id.clone();
    doc.users[1].skills.push(skillsync_sim::Assignment {
        id: queue.skill_id.clone(),
        level: 10,
        active: true,
    });
    write_hris_plus(&ws.0, &doc, &[(0, &skill, 4)]);
    // The incumbent's row is in the files already: write_hris_exact lists what it holds.
    let (base, _stop) = start(doc, &ws.0, SHORT_WINDOW).await;
    apply(&ws.0).await;

    // The simulator's cache never sees our write (its propagation is an hour): the incumbent
    // would be routed all the same, which is why this proves nothing.
    let (output, user_requests, _) = verify(&base, &ws.0, &["verify", "--output", "json"]).await;
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(4), "inconclusive: {report:#}");
    assert_eq!(report["result"], "inconclusive", "{report:#}");
    assert_eq!(report["exitCode"], 4);
    let entry = &report["queues"][0];
    assert_eq!(entry["queueId"], queue.id.as_str());
    assert_eq!(entry["result"], "routedToOther", "{report:#}");
    assert_eq!(entry["routedTo"], incumbent.as_str());
    assert_eq!(entry["settled"], true);
    assert_eq!(user_requests, 0);

    // Once the cache has our write, the incumbent still wins: still inconclusive.
    catch_up(&base).await;
    let human = run(&ws.0, &["verify", "--no-wait"]).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert_eq!(human.status.code(), Some(4), "{text}");
    assert!(
        text.contains(&format!("routed to another agent, {incumbent}"))
            && text.contains("highest level wins"),
        "{text}"
    );
    assert!(
        text.contains("Inconclusive") && text.contains("exit 4") && !text.contains("Verified"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skill_only_production_queues_require_is_reported_as_not_covered() {
    let ws = workspace("verify-uncovered");
    let doc = tenant();
    let covered: std::collections::HashSet<&str> = doc
        .queues
        .iter()
        .filter(|q| !q.production)
        .map(|q| q.skill_id.as_str())
        .collect();
    let production_queue = doc
        .queues
        .iter()
        .find(|q| q.production && !covered.contains(q.skill_id.as_str()))
        .expect("generated tenants have skills with production queues only")
        .clone();
    let skill = skill_of(&doc, &production_queue).name.clone();
    let agent = doc
        .users
        .iter()
        .position(|u| !u.skills.iter().any(|a| a.id == production_queue.skill_id))
        .expect("someone lacks the skill");
    write_hris_plus(&ws.0, &doc, &[(agent, &skill, 5)]);
    let (base, _stop) = start(doc, &ws.0, SHORT_WINDOW).await;
    apply(&ws.0).await;

    let (output, user_requests, interactions) =
        verify(&base, &ws.0, &["verify", "--output", "json"]).await;
    let report = json_of(&output);
    assert_eq!(
        output.status.code(),
        Some(3),
        "nothing to verify: {report:#}"
    );
    assert_eq!(report["result"], "nothingToVerify");
    assert!(report["queues"].as_array().unwrap().is_empty());
    let uncovered = &report["uncovered"][0];
    assert_eq!(uncovered["skillId"], production_queue.skill_id.as_str());
    assert_eq!(uncovered["why"], "productionOnly");
    assert_eq!(
        uncovered["productionQueues"][0],
        production_queue.name.as_str()
    );
    assert_eq!(
        interactions, 0,
        "production queues never get test interactions"
    );
    assert_eq!(user_requests, 0);

    let human = run(&ws.0, &["verify"]).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert_eq!(human.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&skill) && text.contains("only production queues require it"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_run_or_an_empty_journal_is_a_clear_error() {
    let ws = workspace("verify-unknown");
    // Nothing listens here: both errors come from the journal, before any request.
    write_config(&ws.0, "http://127.0.0.1:9");

    let none = run(&ws.0, &["verify"]).await;
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no `apply` run"), "{stderr}");

    let unknown = run(&ws.0, &["verify", "--run", "4242"]).await;
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no run 4242") && stderr.contains("skillsync history"),
        "{stderr}"
    );
    // Read-only: asking created no journal.
    assert!(!ws.0.join("skillsync.db").exists());
}

#[test]
fn help_teaches_the_results_and_exit_codes() {
    let ws = workspace("verify-help");
    let help = skillsync(&ws.0, &["verify", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "not yet routable",
        "--no-wait",
        "--run",
        "non-production",
        "2 not yet routable",
        "3 nothing to verify",
        "4 inconclusive",
    ] {
        assert!(text.contains(needle), "`{needle}` in:\n{text}");
    }
}

/// Runs verify with `--output json`, checks its exit code (the process's and the document's)
/// and adds the fields it printed to `printed`.
async fn verify_json(
    dir: &Path,
    printed: &mut json_doc::Fields,
    args: &'static [&'static str],
    code: i32,
) -> Value {
    let output = run(dir, args).await;
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {report:#}");
    assert_eq!(report["exitCode"], code, "{report:#}");
    assert_eq!(report["schemaVersion"], 1, "{report:#}");
    json_doc::printed(&report, "", &[], printed);
    report
}

/// `docs/verify-json.md` lists exactly the fields `verify --output json` prints. Queues are
/// taken through every result there is; the simulator's propagation (an hour) outlasts the
/// test, so its routing cache moves only when the test advances the simulator's clock, and
/// the settle times verify judges by come from `[sync] propagation_window`.
#[tokio::test(flavor = "multi_thread")]
async fn the_json_document_is_exactly_what_docs_verify_json_md_lists() {
    let ws = workspace("verify-json");
    let mut doc = tenant();
    let (queue, skill) = test_queue_nobody_holds(&mut doc);
    // A second test queue, whose skill agent 1 holds at the top level: agent 0 gets it lower.
    let contested = doc
        .queues
        .iter()
        .find(|q| {
            !q.production
                && q.skill_id != queue.skill_id
                && !skill_of(&doc, q)
                    .name
                    .starts_with(skillsync_sim::OWNED_PREFIX)
        })
        .expect("generated tenants have two test queues")
        .clone();
    let contested_skill = skill_of(&doc, &contested).name.clone();
    for user in &mut doc.users[..2] {
        user.skills.retain(|a| a.id != contested.skill_id);
    }
    doc.users[1].skills.push(skillsync_sim::Assignment {
        id: contested.skill_id.clone(),
        level: 10,
        active: true,
    });
    // A skill only production queues require.
    let covered: std::collections::HashSet<&str> = doc
        .queues
        .iter()
        .filter(|q| !q.production)
        .map(|q| q.skill_id.as_str())
        .collect();
    let production_queue = doc
        .queues
        .iter()
        .find(|q| q.production && !covered.contains(q.skill_id.as_str()))
        .expect("generated tenants have skills with production queues only")
        .clone();
    let production_skill = skill_of(&doc, &production_queue).name.clone();
    doc.users[0]
        .skills
        .retain(|a| a.id != production_queue.skill_id);

    let (base, _stop) = start_sim_with(
        doc.clone(),
        Knobs {
            propagation: DurationRange::fixed(PROPAGATION),
            ..Knobs::quiet()
        },
    )
    .await;
    let configure = |window: &str, scopes: Option<&str>| {
        write_config(&ws.0, &base);
        let path = ws.0.join("skillsync.toml");
        let mut config = std::fs::read_to_string(&path).unwrap();
        if let Some(scopes) = scopes {
            config = config.replace("[limits]", &format!("scopes = {scopes}\n\n[limits]"));
        }
        writeln!(config, "\n[sync]\npropagation_window = \"{window}\"").unwrap();
        std::fs::write(path, config).unwrap();
    };
    let mut printed = json_doc::Fields::new();
    let result_of = |report: &Value, queue: &skillsync_sim::Queue| -> String {
        report["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["queueId"] == queue.id.as_str())
            .unwrap_or_else(|| panic!("{} is tested: {report:#}", queue.name))["result"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Run 1 promises to settle at once; the cache takes an hour: the new skill's queue routes
    // nobody after settling (failed), the contested one routes to agent 1.
    configure("0s", None);
    let grants = [
        (0, skill.as_str(), 7),
        (0, contested_skill.as_str(), 4),
        (0, production_skill.as_str(), 5),
    ];
    write_hris_plus(&ws.0, &doc, &grants);
    apply(&ws.0).await;
    let report = verify_json(&ws.0, &mut printed, &["verify", "--output", "json"], 1).await;
    assert_eq!(result_of(&report, &queue), "failed");
    assert_eq!(result_of(&report, &contested), "routedToOther");
    assert_eq!(
        report["uncovered"][0]["why"], "productionOnly",
        "{report:#}"
    );

    // Run 2 gives agent 2 the new skill higher, and promises an hour: not yet routable...
    configure("1h", None);
    let mut grants = grants.to_vec();
    grants.push((2, skill.as_str(), 9));
    write_hris_plus(&ws.0, &doc, &grants);
    apply(&ws.0).await;
    let report = verify_json(
        &ws.0,
        &mut printed,
        &["verify", "--no-wait", "--output", "json"],
        2,
    )
    .await;
    assert_eq!(result_of(&report, &queue), "notYetRoutable");

    // ...until the cache has caught up: then agent 2 (the highest level) is routed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let advanced = reqwest::Client::new()
        .post(format!("{base}/sim/clock/advance"))
        .json(&serde_json::json!({ "by": "2h" }))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), 200);
    let report = verify_json(
        &ws.0,
        &mut printed,
        &["verify", "--no-wait", "--output", "json"],
        0,
    )
    .await;
    assert_eq!(result_of(&report, &queue), "routed");
    assert_eq!(report["queues"][0]["routedTo"], doc.users[2].id.as_str());

    // Without the interactions:write scope, no test interaction can be submitted.
    configure("1h", Some("[\"routing:skills:read\"]"));
    let report = verify_json(
        &ws.0,
        &mut printed,
        &["verify", "--no-wait", "--output", "json"],
        1,
    )
    .await;
    assert_eq!(result_of(&report, &queue), "unanswered");

    let page = json_doc::read("verify-json.md");
    let documented = json_doc::documented(&page);
    json_doc::assert_same("verify-json.md", &documented, &printed);
    let examples = json_doc::examples(&page);
    assert_eq!(examples.len(), 1, "one example");
    let mut shown = json_doc::Fields::new();
    json_doc::printed(&examples[0], "", &[], &mut shown);
    json_doc::assert_example_documented("verify-json.md", &documented, &shown);
}

//! Every user the plan meant to change is accounted for, and a command that says it succeeded
//! made the change: a tenant that drops writes is caught by the read-back, and Ctrl-C during
//! apply finishes the writes in flight, journals the run as interrupted and reports what it did.

mod common;

use common::*;
use serde_json::Value;
use skillsync_sim::{GenerateOptions, Knobs};

fn tenant(agents: usize) -> skillsync_sim::TenantDoc {
    skillsync_sim::generate(&GenerateOptions {
        agents,
        skills: 8,
        proficiencies: 3,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 2,
        seed: 7,
    })
}

fn user_ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .expect("a list of users")
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// The tenant answers every user write as applied and keeps none of them. Before the
/// read-back, apply printed "N users updated … 0 failed" and exited 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_drops_writes_is_caught_by_the_read_back() {
    for agents in [40, 400] {
        let ws = workspace(&format!("lost-{agents}"));
        let expected = write_hris(&ws.0, &tenant(agents));
        let knobs = Knobs {
            lose_write_rate: 1.0,
            ..Knobs::quiet()
        };
        let (base, _stop) = start_sim_with(tenant(agents), knobs).await;
        write_config(&ws.0, &base);

        let applied = run_with(&ws.0, &["apply", "--yes", "--output", "json"]).await;
        assert_eq!(
            applied.status.code(),
            Some(1),
            "{agents}: the run did not do its job"
        );
        let document = json_of(&applied);
        assert_eq!(document["schemaVersion"], 1);
        let report = &document["applied"];
        let failed = report["usersFailed"].as_array().unwrap();
        assert_eq!(
            failed.len() as u64,
            expected.users_changed,
            "{agents}: every user written is reported not kept: {report:#}"
        );
        assert!(
            failed.iter().all(|u| u["failure"] == "notKept"
                && u["reason"]
                    .as_str()
                    .unwrap()
                    .contains("the tenant did not keep the write")),
            "{report:#}"
        );
        assert_eq!(report["usersUpdated"], serde_json::json!([]));
        // Every write was sent: what the read-back found is a failure, not a stop.
        assert_eq!(report["stoppedEarly"], Value::Null, "{report:#}");
        assert_eq!(report["usersNotAttempted"], serde_json::json!([]));
        let stats = sim_get(&base, "/sim/stats").await;
        assert!(stats["writesLost"].as_u64().unwrap() >= expected.users_changed);

        // The journal says so too, and the next plan still wants the same changes.
        let history = json_of(&run(&ws.0, &["history", "--output", "json"]).await);
        let last = &history["runs"][0];
        assert_eq!(last["outcome"], "failed");
        assert_eq!(last["counts"]["usersNotKept"], expected.users_changed);
        let planned = run(&ws.0, &["plan"]).await;
        assert_eq!(
            planned.status.code(),
            Some(2),
            "the changes are still pending"
        );
    }
}

/// The human report names each user the tenant did not keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_report_names_every_user_not_kept() {
    let ws = workspace("lost-text");
    let expected = write_hris(&ws.0, &tenant(40));
    let knobs = Knobs {
        lose_write_rate: 1.0,
        ..Knobs::quiet()
    };
    let (base, _stop) = start_sim_with(tenant(40), knobs).await;
    write_config(&ws.0, &base);
    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(applied.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&applied.stdout);
    let not_kept = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("not kept:"))
        .count();
    assert_eq!(not_kept as u64, expected.users_changed, "{stdout}");
    assert!(stdout.contains(" 0 updated,"), "{stdout}");
}

/// SIGINT during the writes: the writes in flight finish, no new one is sent, the run is
/// journaled as interrupted with what it did, the partial summary is printed, exit 130.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_apply_journals_an_interrupted_run_with_every_write() {
    let ws = workspace("sigint");
    let doc = tenant(1_000);
    let expected = write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, slow_single_writes()).await;
    write_slow_single_writes_config(&ws.0, &base);
    let mut child = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    wait_until_writing(&base, 40, &mut child).await;
    signal(&child, "-INT");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Writes the tenant took: a 429 (possible when the machine is loaded and the client's
    // limiter drifts from the tenant's bucket) is a refusal at the gate, retried, not a write.
    let stats = sim_get(&base, "/sim/stats").await;
    let sent: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] != "GET"
                && r["route"] != "/api/v2/oauth/token"
                && r["status"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert!(
        sent < expected.users_changed,
        "the interrupt must land mid-run"
    );

    // The partial summary: every planned user in exactly one list.
    let report = json_of(&output);
    let applied = &report["applied"];
    let count = |key: &str| applied[key].as_array().unwrap().len() as u64;
    assert_eq!(
        count("usersUpdated")
            + count("usersAlreadyCurrent")
            + count("usersFailed")
            + count("usersNotAttempted"),
        expected.users_changed,
        "{applied:#}"
    );
    assert_eq!(
        count("usersUpdated"),
        sent,
        "every write sent finished and was kept"
    );
    assert!(count("usersNotAttempted") > 0);
    assert!(
        applied["stoppedEarly"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{applied:#}"
    );

    // The journal: an interrupted run (not a killed one: it has counts and an end), with
    // every write the tenant received.
    let history = json_of(&run(&ws.0, &["history", "--output", "json"]).await);
    let last = &history["runs"][0];
    assert_eq!(last["outcome"], "interrupted", "{last:#}");
    assert!(!last["endedAt"].is_null(), "{last:#}");
    assert_eq!(last["writes"], sent, "every write sent is journaled");
    assert_eq!(last["counts"]["usersUpdated"], sent);
    assert_eq!(
        last["counts"]["usersNotAttempted"],
        expected.users_changed - sent
    );
    let ids: Vec<String> = user_ids(&applied["usersUpdated"]);
    assert_eq!(ids.len() as u64, sent);
}

/// `docs/apply-json.md` lists exactly the fields the command prints: a run that updates users,
/// and a run whose writes the tenant does not keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_document_is_exactly_what_docs_apply_json_md_lists() {
    let mut documents = Vec::new();
    for lose_write_rate in [0.0, 1.0] {
        let ws = workspace(&format!("apply-doc-{lose_write_rate}"));
        write_hris(&ws.0, &tenant(40));
        let knobs = Knobs {
            lose_write_rate,
            ..Knobs::quiet()
        };
        let (base, _stop) = start_sim_with(tenant(40), knobs).await;
        write_config(&ws.0, &base);
        // The run that succeeds applies a saved plan: its document has `savedPlan` too.
        let applied = if lose_write_rate == 0.0 {
            let saved = run(&ws.0, &["plan", "--out", "plan.json"]).await;
            assert_eq!(saved.status.code(), Some(2));
            run(&ws.0, &["apply", "--yes", "--output", "json", "plan.json"]).await
        } else {
            run(&ws.0, &["apply", "--yes", "--output", "json"]).await
        };
        let document = json_of(&applied);
        let expected_exit = if lose_write_rate == 0.0 { 0 } else { 1 };
        assert_eq!(applied.status.code(), Some(expected_exit), "{document:#}");
        documents.push(document);
    }
    let opaque = ["plan", "applied.api.requests"];
    let page = json_doc::read("apply-json.md");
    let documented = json_doc::documented(&page);
    let mut printed = json_doc::Fields::new();
    for document in &documents {
        json_doc::printed(document, "", &opaque, &mut printed);
    }
    json_doc::assert_same("apply-json.md", &documented, &printed);
    let examples = json_doc::examples(&page);
    assert_eq!(examples.len(), 1, "one example");
    let mut shown = json_doc::Fields::new();
    json_doc::printed(&examples[0], "", &opaque, &mut shown);
    json_doc::assert_example_documented("apply-json.md", &documented, &shown);
}

/// The tenant refuses every user write: the breaker stops the run after a few dozen, and the
/// report lists every user it did not finish, in text and in JSON. Before, users whose writes
/// were in doubt were neither listed nor counted ("see the failures below", and none were).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_the_breaker_lists_every_user_it_did_not_finish() {
    for output in ["text", "json"] {
        let ws = workspace(&format!("breaker-{output}"));
        let expected = write_hris(&ws.0, &tenant(400));
        let knobs = Knobs {
            reject_write_rate: 1.0,
            ..Knobs::quiet()
        };
        let (base, _stop) = start_sim_with(tenant(400), knobs).await;
        write_config(&ws.0, &base);
        let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
        std::fs::write(
            ws.0.join("skillsync.toml"),
            config + "\n[sync]\nbulk_threshold = 100000\n",
        )
        .unwrap();
        assert!(expected.users_changed > 100, "enough users to stop early");

        let args: &[&str] = if output == "json" {
            &["apply", "--yes", "--output", "json"]
        } else {
            &["apply", "--yes"]
        };
        let applied = run_with(&ws.0, args).await;
        assert_eq!(applied.status.code(), Some(1));
        let rejected = sim_get(&base, "/sim/stats").await["writesRejected"]
            .as_u64()
            .unwrap();
        assert!(
            (21..expected.users_changed).contains(&rejected),
            "the breaker stops the run soon after 20 failures: {rejected} writes sent"
        );
        let (failed, not_attempted) = if output == "json" {
            let applied = &json_of(&applied)["applied"];
            assert!(
                applied["stoppedEarly"]
                    .as_str()
                    .unwrap()
                    .contains("users failed"),
                "{applied:#}"
            );
            let failed = user_ids(&applied["usersFailed"]);
            let not_attempted = user_ids(&applied["usersNotAttempted"]);
            assert!(
                applied["usersFailed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|u| u["failure"] == "refused"
                        && u["reason"]
                            .as_str()
                            .unwrap()
                            .contains("rejected by the tenant")),
                "each failure carries the tenant's reason: {applied:#}"
            );
            assert!(
                applied["usersNotAttempted"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|u| u["reason"].as_str().unwrap().contains("users failed")),
                "each user not attempted says why: {applied:#}"
            );
            (failed, not_attempted)
        } else {
            let stdout = String::from_utf8_lossy(&applied.stdout);
            let listed = |prefix: &str| -> Vec<String> {
                let mut users: Vec<String> = stdout
                    .lines()
                    .filter_map(|l| l.trim_start().strip_prefix(prefix))
                    .map(|rest| {
                        let user = rest.split("(user ").nth(1).expect("the user id");
                        user.split(')').next().unwrap().to_string()
                    })
                    .collect();
                users.sort();
                users
            };
            assert!(stdout.contains("users failed"), "{stdout}");
            (listed("failed: "), listed("not attempted: "))
        };
        assert_eq!(
            failed.len() as u64,
            rejected,
            "one failure per write refused"
        );
        assert_eq!(
            (failed.len() + not_attempted.len()) as u64,
            expected.users_changed,
            "every user the plan meant to change is listed once"
        );
        assert!(failed.iter().all(|u| !not_attempted.contains(u)));

        let history = json_of(&run(&ws.0, &["history", "--output", "json"]).await);
        let counts = &history["runs"][0]["counts"];
        assert_eq!(counts["usersPlanned"], expected.users_changed);
        assert_eq!(counts["usersFailed"], rejected);
        assert_eq!(
            counts["usersNotAttempted"],
            expected.users_changed - rejected
        );
    }
}

/// `assign --output json` is the document `docs/assign-json.md` lists; an assignment the
/// tenant accepts and drops is caught by the read-back, as apply's are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_prints_the_documented_document_and_reads_its_write_back() {
    let doc = tenant(20);
    let user = doc.users[2].clone();
    let skill = doc
        .skills
        .iter()
        .find(|d| d.locale == user.locale && !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .unwrap()
        .name
        .clone();
    let mut documents = Vec::new();
    for (lose_write_rate, exit) in [(0.0, 0), (1.0, 1)] {
        let ws = workspace(&format!("assign-doc-{lose_write_rate}"));
        write_hris(&ws.0, &doc);
        let knobs = Knobs {
            lose_write_rate,
            ..Knobs::quiet()
        };
        let (base, _stop) = start_sim_with(doc.clone(), knobs).await;
        write_config(&ws.0, &base);
        let assigned = run_with(
            &ws.0,
            &["assign", "E00002", &skill, "10", "--output", "json"],
        )
        .await;
        let document = json_of(&assigned);
        assert_eq!(assigned.status.code(), Some(exit), "{document:#}");
        assert_eq!(document["schemaVersion"], 1);
        assert_eq!(document["after"]["level"], 10);
        if lose_write_rate == 0.0 {
            assert_eq!(document["outcome"], "updated", "{document:#}");
            // Again: the tenant holds it now.
            let again = run_with(
                &ws.0,
                &["assign", "E00002", &skill, "10", "--output", "json"],
            )
            .await;
            let again = json_of(&again);
            assert_eq!(again["outcome"], "alreadyCurrent", "{again:#}");
            assert_eq!(again["before"]["level"], 10);
            documents.push(again);
        } else {
            assert_eq!(document["outcome"], "failed", "{document:#}");
            assert_eq!(document["failure"], "notKept", "{document:#}");
        }
        documents.push(document);
    }
    let page = json_doc::read("assign-json.md");
    let documented = json_doc::documented(&page);
    let mut printed = json_doc::Fields::new();
    for document in &documents {
        json_doc::printed(document, "", &[], &mut printed);
    }
    json_doc::assert_same("assign-json.md", &documented, &printed);
    let examples = json_doc::examples(&page);
    assert_eq!(examples.len(), 1, "one example");
    let mut shown = json_doc::Fields::new();
    json_doc::printed(&examples[0], "", &[], &mut shown);
    json_doc::assert_example_documented("assign-json.md", &documented, &shown);
}

/// Reads of the tenant's API (the token endpoint aside) the simulator has answered.
fn reads_in(stats: &Value) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "GET" && r["route"] != "/api/v2/oauth/token")
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// An apply killed while it still reads the tenant is in `history` as interrupted. Before,
/// the run was journaled only at its first write, so a run killed earlier left no trace.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_while_it_reads_is_in_history_as_interrupted() {
    let ws = workspace("killed-reading");
    let doc = tenant(1_000);
    write_hris(&ws.0, &doc);
    // Two requests a second: the read of 1,000 users takes seconds, long enough to kill it.
    let knobs = Knobs {
        rate_limit: skillsync_sim::Rate::PerSecond(2.0),
        burst: 1,
        ..Knobs::quiet()
    };
    let (base, _stop) = start_sim_with(doc, knobs).await;
    write_config(&ws.0, &base);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    let config = config
        .replace("requests_per_second = 1000", "requests_per_second = 2")
        .replace("burst = 100", "burst = 1");
    std::fs::write(ws.0.join("skillsync.toml"), config).unwrap();

    let mut child = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while reads_in(&sim_get(&base, "/sim/stats").await) < 2 {
        assert!(std::time::Instant::now() < deadline, "the read never began");
        assert!(child.try_wait().unwrap().is_none(), "apply ended first");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    signal(&child, "-KILL");
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), 0);

    let history = json_of(&run(&ws.0, &["history", "--output", "json"]).await);
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{history:#}");
    assert_eq!(runs[0]["command"], "apply");
    assert_eq!(runs[0]["outcome"], "interrupted", "{history:#}");
    assert!(runs[0]["endedAt"].is_null());
    assert_eq!(runs[0]["writes"], 0);
}

/// A sync that ends before writing is journaled with why: nothing to change is a succeeded
/// run with no writes, a guard's refusal a refused run naming the guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_ends_without_writing_is_journaled_with_why() {
    let ws = workspace("ends-without-writing");
    let doc = tenant(200);
    write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim(doc).await;
    write_config(&ws.0, &base);

    let refused = run(&ws.0, &["apply", "--yes", "--max-removals", "0"]).await;
    assert_eq!(refused.status.code(), Some(1));
    let first = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let again = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(again.status.code(), Some(0), "{again:?}");

    let history = json_of(&run(&ws.0, &["history", "--output", "json"]).await);
    let outcomes: Vec<&str> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["succeeded", "succeeded", "refused"],
        "{history:#}"
    );
    let newest = &history["runs"][0];
    assert_eq!(newest["writes"], 0);
    assert!(newest["counts"]["requests"].as_u64().unwrap() > 0);
    let refused = &history["runs"][2];
    assert!(
        refused["counts"]["stopped"]
            .as_str()
            .unwrap()
            .contains("max_removals"),
        "{refused:#}"
    );
}

//! One writer per tenant, with real processes: two `apply` on one tenant at once never both
//! write (the second refuses with exit 75, or waits with `--wait`), a killed holder's lease
//! expires so the next run proceeds, and a holder whose lease was taken over stops.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use skillsync_sim::GenerateOptions;

fn tenant() -> skillsync_sim::TenantDoc {
    skillsync_sim::generate(&GenerateOptions {
        agents: 1_000,
        skills: 8,
        proficiencies: 3,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 2,
        seed: 11,
    })
}

/// A workspace whose apply takes several seconds (one write at a time against a throttled
/// tenant), with the lease lasting `ttl`.
async fn slow_workspace(
    tag: &str,
    ttl: &str,
) -> (
    Workspace,
    String,
    tokio::sync::oneshot::Sender<()>,
    Expected,
) {
    let ws = workspace(tag);
    let expected = write_hris(&ws.0, &tenant());
    let (base, stop) = start_sim_with(tenant(), slow_single_writes()).await;
    write_slow_single_writes_config(&ws.0, &base);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        config + &format!("\n[store]\nlease_ttl = \"{ttl}\"\n"),
    )
    .unwrap();
    (ws, base, stop, expected)
}

fn finish(child: std::process::Child) -> std::process::Output {
    child.wait_with_output().unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn runs(dir: &std::path::Path) -> Vec<Value> {
    let history = skillsync(dir, &["history", "--output", "json"]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    history["runs"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_on_the_same_tenant_refuses_while_the_first_writes() {
    let (ws, base, _stop, expected) = slow_workspace("lease-refuse", "60s").await;
    let mut first = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    wait_until_writing(&base, 40, &mut first).await;

    let second = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(second.status.code(), Some(75), "{}", text(&second));
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another skillsync is writing to this tenant: apply")
            && said.contains(&format!("pid {}", first.id())),
        "names the holder: {said}"
    );

    let first = tokio::task::spawn_blocking(move || finish(first))
        .await
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(stats["duplicatesCreated"], 0);
    // Exactly one run wrote: the refused one started no run at all.
    let runs = runs(&ws.0);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["counts"]["usersUpdated"], expected.users_changed);
    let replanned = run(&ws.0, &["plan"]).await;
    assert_eq!(replanned.status.code(), Some(0), "nothing left to do");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_the_second_apply_runs_after_the_first_and_finds_nothing_to_do() {
    let (ws, base, _stop, _) = slow_workspace("lease-wait", "60s").await;
    let mut first = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    wait_until_writing(&base, 40, &mut first).await;

    let second = run(
        &ws.0,
        &["apply", "--yes", "--wait", "2m", "--output", "json"],
    )
    .await;
    let first = tokio::task::spawn_blocking(move || finish(first))
        .await
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    // It waited for the lease before reading the tenant: it found nothing left to do, and no
    // definition is duplicated.
    let document: Value = serde_json::from_slice(&second.stdout).unwrap();
    let applied = &document["applied"];
    assert!(
        applied.is_null() || applied["usersUpdated"].as_array().unwrap().is_empty(),
        "{document:#}"
    );
    assert_eq!(sim_get(&base, "/sim/stats").await["duplicatesCreated"], 0);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_lease_expires_and_the_next_run_proceeds() {
    let (ws, base, _stop, _) = slow_workspace("lease-kill", "5s").await;
    let mut first = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    wait_until_writing(&base, 40, &mut first).await;
    signal(&first, "-KILL");
    let _ = first.wait();

    // Still leased: the dead holder's lease has not run out yet.
    let refused = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(refused.status.code(), Some(75), "{}", text(&refused));

    // Once it runs out, the next run takes over and finishes the job.
    let resumed = run(&ws.0, &["apply", "--yes", "--wait", "1m"]).await;
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    let replanned = run(&ws.0, &["plan"]).await;
    assert_eq!(replanned.status.code(), Some(0), "{}", text(&replanned));
    assert_eq!(sim_get(&base, "/sim/stats").await["duplicatesCreated"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_was_taken_over_stops_writing() {
    let (ws, base, _stop, expected) = slow_workspace("lease-taken", "60s").await;
    let mut first = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    wait_until_writing(&base, 40, &mut first).await;

    // Another holder takes the lease over (as if the first had stopped renewing long ago).
    let journal =
        skillsync_store::SqliteStore::open(&ws.0.join("skillsync.db")).expect("the journal");
    let key = format!("{base}/api/v2 {}", skillsync_sim::DEMO_CLIENT_ID);
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let taken = skillsync_store::Journal::acquire_lease(
        &journal,
        &key,
        &skillsync_store::LeaseHolder {
            host: "elsewhere".into(),
            pid: 1,
            command: "apply".into(),
        },
        Duration::from_secs(60),
        later,
    )
    .unwrap();
    assert!(
        matches!(taken, skillsync_store::Acquired::Held(_)),
        "{taken:?}"
    );

    let first = tokio::task::spawn_blocking(move || finish(first))
        .await
        .unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let document: Value = serde_json::from_slice(&first.stdout).unwrap();
    let applied = &document["applied"];
    let stopped = applied["stoppedEarly"].as_str().unwrap_or_default();
    assert!(stopped.contains("lease"), "{applied:#}");
    let not_attempted = applied["usersNotAttempted"].as_array().unwrap().len() as u64;
    assert!(
        not_attempted > 0 && not_attempted < expected.users_changed,
        "it stopped mid-run: {not_attempted} not attempted"
    );
}

/// A lease that runs out while its holder is busy reading (a slow tenant, a short lease) is
/// taken back when nobody else took it meanwhile: the run goes on instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_ran_out_during_a_slow_read_is_taken_back_if_nobody_took_it() {
    let ws = workspace("lease-slow-read");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 30,
        skills: 4,
        proficiencies: 2,
        locales: vec!["en-us".into()],
        profiles: 1,
        seed: 5,
    });
    write_hris(&ws.0, &doc);
    // Every request takes longer than the lease lasts.
    let slow = skillsync_sim::Knobs {
        latency: skillsync_sim::DurationRange {
            min: Duration::from_millis(1_200),
            max: Duration::from_millis(1_200),
        },
        ..skillsync_sim::Knobs::quiet()
    };
    let (base, _stop) = start_sim_with(doc, slow).await;
    write_config(&ws.0, &base);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        config + "\n[store]\nlease_ttl = \"1s\"\n",
    )
    .unwrap();

    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let runs = runs(&ws.0);
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs:#?}");
}

/// Ctrl-C before the first write (here: while the tenant is being read) ends the command at
/// once and gives the lease up, so the next run need not wait for it to run out.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_before_the_first_write_gives_the_lease_up() {
    let ws = workspace("lease-ctrl-c");
    let doc = tenant();
    write_hris(&ws.0, &doc);
    let slow = skillsync_sim::Knobs {
        latency: skillsync_sim::DurationRange {
            min: Duration::from_millis(2_000),
            max: Duration::from_millis(2_000),
        },
        ..skillsync_sim::Knobs::quiet()
    };
    let (base, _stop) = start_sim_with(doc, slow).await;
    write_config(&ws.0, &base);
    let mut child = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    // The lease is taken before the tenant is read: once a user page is asked for, it is held.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stats = sim_get(&base, "/sim/stats").await;
        let reading = stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "GET" && r["route"] == "/api/v2/routing/users");
        if reading {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never read the tenant"
        );
        assert!(child.try_wait().unwrap().is_none(), "ended too soon");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&child, "-INT");
    let output = tokio::task::spawn_blocking(move || finish(child))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert_eq!(writes_in(&sim_get(&base, "/sim/stats").await), 0);

    let journal =
        skillsync_store::SqliteStore::open(&ws.0.join("skillsync.db")).expect("the journal");
    let key = format!("{base}/api/v2 {}", skillsync_sim::DEMO_CLIENT_ID);
    let now = skillsync_store::Journal::acquire_lease(
        &journal,
        &key,
        &skillsync_store::LeaseHolder {
            host: "test".into(),
            pid: 2,
            command: "apply".into(),
        },
        Duration::from_secs(60),
        jiff::Timestamp::now(),
    )
    .unwrap();
    assert!(
        matches!(now, skillsync_store::Acquired::Held(_)),
        "the interrupted command gave its lease up: {now:?}"
    );
}

//! One writer per tenant, with real processes, on every store (SQLite always; PostgreSQL when
//! `SKILLSYNC_TEST_DATABASE_URL` is set): two `apply` on one tenant at once never both write
//! (the second refuses with exit 75, or waits with `--wait`), a killed holder's lease expires
//! so the next run proceeds, and a holder whose lease was taken over stops. Two hosts on one
//! PostgreSQL share what was retired.

mod common;

use std::time::Duration;

use common::store::TestStore;
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

/// Appends the store's `[store]` table to the workspace's config.
fn use_store(dir: &std::path::Path, store: &TestStore, ttl: &str) {
    let config = std::fs::read_to_string(dir.join("skillsync.toml")).unwrap();
    std::fs::write(
        dir.join("skillsync.toml"),
        config + &store.config_table(dir, ttl),
    )
    .unwrap();
}

/// A workspace whose apply takes several seconds (one write at a time against a throttled
/// tenant), with the lease lasting `ttl`.
async fn slow_workspace(
    tag: &str,
    ttl: &str,
    store: &TestStore,
) -> (
    Workspace,
    String,
    tokio::sync::oneshot::Sender<()>,
    Expected,
) {
    let ws = workspace(&format!("{tag}-{}", store.name()));
    let expected = write_hris(&ws.0, &tenant());
    let (base, stop) = start_sim_with(tenant(), slow_single_writes()).await;
    write_slow_single_writes_config(&ws.0, &base);
    use_store(&ws.0, store, ttl);
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

fn lease_key(base: &str) -> String {
    format!("{base}/api/v2 {}", skillsync_sim::DEMO_CLIENT_ID)
}

fn holder(host: &str) -> skillsync_store::LeaseHolder {
    skillsync_store::LeaseHolder {
        host: host.into(),
        pid: 1,
        command: "apply".into(),
    }
}

crate::on_every_store!(
    a_second_apply_on_the_same_tenant_refuses_while_the_first_writes,
    with_wait_the_second_apply_runs_after_the_first_and_finds_nothing_to_do,
    two_applies_started_together_never_both_write,
    a_lease_shorter_than_one_request_is_renewed_while_the_request_waits,
);
#[cfg(unix)]
crate::on_every_store!(
    a_killed_holders_lease_expires_and_the_next_run_proceeds,
    a_holder_whose_lease_was_taken_over_stops_writing,
    ctrl_c_before_the_first_write_gives_the_lease_up,
);

async fn a_second_apply_on_the_same_tenant_refuses_while_the_first_writes(store: TestStore) {
    let (ws, base, _stop, expected) = slow_workspace("lease-refuse", "60s", &store).await;
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

async fn with_wait_the_second_apply_runs_after_the_first_and_finds_nothing_to_do(store: TestStore) {
    let (ws, base, _stop, _) = slow_workspace("lease-wait", "60s", &store).await;
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

async fn a_killed_holders_lease_expires_and_the_next_run_proceeds(store: TestStore) {
    let (ws, base, _stop, _) = slow_workspace("lease-kill", "5s", &store).await;
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

/// The holder is paused (a suspended VM, a stopped process) for longer than its lease lasts;
/// another holder takes the lease meanwhile. Resumed, the first finds it lost and stops
/// scheduling writes instead of writing beside the new holder.
async fn a_holder_whose_lease_was_taken_over_stops_writing(store: TestStore) {
    let (ws, base, _stop, expected) = slow_workspace("lease-taken", "2s", &store).await;
    let mut first = spawn(&ws.0, &["apply", "--yes", "--output", "json"]);
    wait_until_writing(&base, 40, &mut first).await;

    signal(&first, "-STOP");
    let journal = store.open(&ws.0).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let taken = loop {
        let asked = journal
            .acquire_lease(
                &lease_key(&base),
                &holder("elsewhere"),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        match asked {
            skillsync_store::Acquired::Held(lease) => break lease,
            skillsync_store::Acquired::Busy(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the paused holder's lease never ran out"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let writes_when_taken = writes_in(&sim_get(&base, "/sim/stats").await);
    signal(&first, "-CONT");

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
    // Resumed, it scheduled no new write: only those already scheduled when it was paused
    // (at most max_in_flight = 8, waiting on the client's rate limiter) still went out, and
    // each carries the version it was planned from, so the tenant refuses it if the new
    // holder changed that user meanwhile.
    let writes_after = writes_in(&sim_get(&base, "/sim/stats").await);
    assert!(
        writes_after <= writes_when_taken + 8,
        "{writes_when_taken} writes when the lease was taken, {writes_after} after"
    );
    // The new holder's lease was left alone.
    let renewed = journal
        .renew_lease(&taken, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(renewed.is_some(), "the new holder still holds the lease");
}

/// Every request takes longer than the lease lasts (a slow tenant, a short lease): the lease
/// is renewed beside the work, not between requests, so the run goes on instead of failing.
async fn a_lease_shorter_than_one_request_is_renewed_while_the_request_waits(store: TestStore) {
    let ws = workspace(&format!("lease-slow-read-{}", store.name()));
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
    use_store(&ws.0, &store, "1s");

    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let runs = runs(&ws.0);
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs:#?}");
}

/// Ctrl-C before the first write (here: while the tenant is being read) ends the command at
/// once and gives the lease up, so the next run need not wait for it to run out.
async fn ctrl_c_before_the_first_write_gives_the_lease_up(store: TestStore) {
    let ws = workspace(&format!("lease-ctrl-c-{}", store.name()));
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
    use_store(&ws.0, &store, "60s");
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

    let now = store
        .open(&ws.0)
        .await
        .acquire_lease(&lease_key(&base), &holder("test"), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        matches!(now, skillsync_store::Acquired::Held(_)),
        "the interrupted command gave its lease up: {now:?}"
    );
}

/// Two `apply --yes` started at the same instant, round after round on a fresh tenant: one
/// writes, the other refuses (75) or, started after the first finished, finds nothing to do.
/// Never two writers: no duplicated definition, no lost write.
async fn two_applies_started_together_never_both_write(store: TestStore) {
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 200,
        skills: 6,
        proficiencies: 2,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 2,
        seed: 23,
    });
    for round in 0..5 {
        let ws = workspace(&format!("lease-race-{round}-{}", store.name()));
        let expected = write_hris(&ws.0, &doc);
        let (base, _stop) = start_sim_with(doc.clone(), skillsync_sim::Knobs::quiet()).await;
        write_config(&ws.0, &base);
        use_store(&ws.0, &store, "60s");
        let last_run = runs(&ws.0)
            .first()
            .map_or(0, |run| run["id"].as_i64().unwrap());
        let both = [
            spawn(&ws.0, &["apply", "--yes", "--output", "json"]),
            spawn(&ws.0, &["apply", "--yes", "--output", "json"]),
        ];
        let outputs = tokio::task::spawn_blocking(move || both.map(finish))
            .await
            .unwrap();
        let mut codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap()).collect();
        codes.sort();
        assert!(
            codes == [0, 0] || codes == [0, 75],
            "round {round}: {codes:?}\n{}\n{}",
            text(&outputs[0]),
            text(&outputs[1])
        );
        let stats = sim_get(&base, "/sim/stats").await;
        assert_eq!(stats["duplicatesCreated"], 0, "round {round}");
        // Exactly one run of this round wrote, and it wrote every change (a PostgreSQL journal
        // also holds the earlier rounds' runs).
        let writers: Vec<Value> = runs(&ws.0)
            .into_iter()
            .filter(|run| run["id"].as_i64().unwrap() > last_run)
            .filter(|run| run["counts"]["usersUpdated"].as_u64().unwrap_or(0) > 0)
            .collect();
        assert_eq!(writers.len(), 1, "round {round}: {writers:#?}");
        assert_eq!(
            writers[0]["counts"]["usersUpdated"], expected.users_changed,
            "round {round}"
        );
        let replanned = run(&ws.0, &["plan"]).await;
        assert_eq!(
            replanned.status.code(),
            Some(0),
            "round {round}: nothing left to do"
        );
    }
}

/// Two hosts (two workspaces, two configs) pointed at one PostgreSQL journal: a code one of
/// them retires is left alone by the other's plans. A third host with a journal of its own
/// would recreate it, which is what sharing the journal prevents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_one_postgresql_share_retirements() {
    let Some(shared) = TestStore::postgres("shared_retirements").await else {
        return;
    };
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 60,
        skills: 4,
        proficiencies: 2,
        locales: vec!["en-us".into()],
        profiles: 1,
        seed: 31,
    });
    let retired = skillsync_sim::proficiency_name(0);
    let (base, _stop) = start_sim_with(doc.clone(), skillsync_sim::Knobs::quiet()).await;
    let host = |tag: &str, store: &TestStore| {
        let ws = workspace(tag);
        write_hris(&ws.0, &doc);
        write_config(&ws.0, &base);
        use_store(&ws.0, store, "60s");
        ws
    };
    let first = host("shared-first", &shared);
    let second = host("shared-second", &shared);
    let alone = host("shared-alone", &TestStore::Sqlite);

    let retiring = skillsync(&first.0, &["retire", retired.as_str(), "--delete", "--yes"]);
    assert_eq!(retiring.status.code(), Some(0), "{}", text(&retiring));

    let creates = |dir: &std::path::Path| -> Vec<String> {
        let plan = skillsync(dir, &["plan", "--output", "json"]);
        let plan: Value =
            serde_json::from_slice(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&plan)));
        plan["definitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["action"] == "create")
            .map(|d| d["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        !creates(&second.0).contains(&retired),
        "the second host knows {retired} is retired"
    );
    assert!(
        creates(&alone.0).contains(&retired),
        "a host with its own journal would recreate {retired}"
    );
    let applied = skillsync(&second.0, &["apply", "--yes"]);
    assert!(
        matches!(applied.status.code(), Some(0)),
        "{}",
        text(&applied)
    );
    let state = sim_get(&base, "/sim/state").await;
    assert!(
        !state["proficiencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"].as_str() == Some(retired.as_str())),
        "{retired} stays deleted"
    );
}

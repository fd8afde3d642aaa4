//! The journal through its public API, on real stores: every backend-neutral case runs on
//! SQLite and, when `SKILLSYNC_TEST_DATABASE_URL` is set, on PostgreSQL (see `support`). Cases
//! about files, SQLite's own migrations and its explicit-clock leases are SQLite's alone;
//! PostgreSQL's own cases are in `postgres.rs`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use skillsync_store::{
    Acquired, DefinitionState, Held, Journal, Lease, LeaseHolder, Mapping, NewRun, ProfileState,
    Retirement, RetirementMode, RunCounts, RunId, RunOutcome, Snapshot, SqliteStore, StoreError,
    StrategyState, UserLists, WriteRecord, WriteStatus, WriteTarget,
};
use support::{TempDir, backends};

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_750_000_000 + seconds).unwrap()
}

fn new_run(command: &str, at: Timestamp) -> NewRun {
    NewRun {
        command: command.into(),
        config_hash: "cfg-1234".into(),
        started_at: at,
        dialect: "routing".into(),
    }
}

fn skills(version: u64, level: u8) -> Snapshot {
    Snapshot::User(UserLists {
        version: Some(version),
        skills: Some(vec![Held {
            definition_id: "1".into(),
            level,
            active: true,
        }]),
        proficiencies: None,
    })
}

fn definition(name: &str) -> DefinitionState {
    DefinitionState {
        id: "skill-9".into(),
        kind: "skill".into(),
        name: name.into(),
        locale: "fr-ca".into(),
        active: true,
        description: "Facturation".into(),
        routing_profile_id: "rp-1".into(),
        version: 1,
    }
}

fn write(
    run: RunId,
    subject: &str,
    status: WriteStatus,
    at: Timestamp,
    settles_at: Option<Timestamp>,
) -> WriteRecord {
    WriteRecord {
        run,
        target: WriteTarget::UserSkills,
        subject: subject.into(),
        before: skills(4, 3),
        after: skills(4, 5),
        status,
        detail: Some(format!("req-{subject}")),
        at,
        settles_at,
    }
}

#[tokio::test]
async fn run_round_trip_with_writes_and_counts() {
    for backend in backends("round-trip").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;

        let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
        let writes = vec![
            write(run, "u1", WriteStatus::Applied, t(1), Some(t(31))),
            WriteRecord {
                target: WriteTarget::Definition,
                before: Snapshot::Absent,
                after: Snapshot::Definition(definition("Billing (fr-ca)")),
                detail: None,
                settles_at: None,
                ..write(run, "skill-9", WriteStatus::Applied, t(2), None)
            },
            write(run, "u2", WriteStatus::Failed, t(3), None),
        ];
        store.record_writes(&writes).await.unwrap();
        let counts = RunCounts {
            definitions_created: 1,
            users_planned: 2,
            users_updated: 1,
            users_failed: 1,
            requests: 4,
            stopped: Some("u2: the tenant refused the write".into()),
            ..RunCounts::default()
        };
        store
            .finish_run(run, RunOutcome::Failed, &counts, t(5))
            .await
            .unwrap();
        drop(store);

        let store = backend.open().await;
        let summary = store.run(run).await.unwrap().expect("the run is there");
        assert_eq!(summary.id, run);
        assert_eq!(summary.command, "apply");
        assert_eq!(summary.config_hash, "cfg-1234");
        assert_eq!(summary.dialect, "routing");
        assert_eq!(summary.started_at, t(0));
        assert_eq!(summary.ended_at, Some(t(5)));
        assert_eq!(summary.outcome, RunOutcome::Failed);
        assert_eq!(summary.counts, Some(counts));
        assert_eq!(summary.writes, 3);
        assert_eq!(summary.settles_at, Some(t(31)));
        assert_eq!(store.writes(run).await.unwrap(), writes);
        assert_eq!(store.runs(10).await.unwrap(), vec![summary]);
        assert_eq!(store.run(RunId(run.0 + 1)).await.unwrap(), None);
        assert!(store.writes(RunId(run.0 + 1)).await.unwrap().is_empty());

        // Finishing twice and unknown runs are refused.
        let err = store
            .finish_run(run, RunOutcome::Succeeded, &RunCounts::default(), t(6))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyFinished { .. }), "{err}");
        let err = store
            .finish_run(
                RunId(999),
                RunOutcome::Succeeded,
                &RunCounts::default(),
                t(8),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::UnknownRun { run: 999, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&backend.shown()), "{err}");
    }
}

#[tokio::test]
async fn runs_are_newest_first_and_limited() {
    for backend in backends("newest-first").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let mut ids: Vec<RunId> = Vec::new();
        for i in 0..5 {
            ids.push(store.start_run(&new_run("plan", t(i))).await.unwrap());
        }
        for &id in &ids[..4] {
            store
                .finish_run(id, RunOutcome::Succeeded, &RunCounts::default(), t(100))
                .await
                .unwrap();
        }
        let runs = store.runs(3).await.unwrap();
        let got: Vec<RunId> = runs.iter().map(|r| r.id).collect();
        assert_eq!(got, vec![ids[4], ids[3], ids[2]]);
        assert_eq!(runs[0].outcome, RunOutcome::Interrupted);
        assert_eq!(runs[0].counts, None);
        assert_eq!(runs[1].counts, Some(RunCounts::default()));
        assert_eq!(runs[1].outcome, RunOutcome::Succeeded);
        assert!(store.runs(0).await.unwrap().is_empty());
        assert_eq!(store.runs(usize::MAX).await.unwrap().len(), 5);
    }
}

#[tokio::test]
async fn unfinished_run_is_interrupted_after_reopening() {
    for backend in backends("interrupted").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let done = store.start_run(&new_run("apply", t(0))).await.unwrap();
        store
            .finish_run(done, RunOutcome::Succeeded, &RunCounts::default(), t(1))
            .await
            .unwrap();
        let killed = store.start_run(&new_run("apply", t(10))).await.unwrap();
        store
            .record_writes(&[write(
                killed,
                "u1",
                WriteStatus::Applied,
                t(11),
                Some(t(41)),
            )])
            .await
            .unwrap();
        // The process "dies": no finish_run, the connection just goes away.
        drop(store);

        let store = backend.open().await;
        let summary = store.run(killed).await.unwrap().unwrap();
        assert_eq!(summary.outcome, RunOutcome::Interrupted);
        assert_eq!(summary.ended_at, None);
        assert_eq!(summary.writes, 1, "writes before the kill are kept");
        assert_eq!(
            store.run(done).await.unwrap().unwrap().outcome,
            RunOutcome::Succeeded
        );
        assert_eq!(store.runs(1).await.unwrap()[0].id, killed);
    }
}

#[tokio::test]
async fn a_run_stopped_by_a_signal_is_finished_as_interrupted_with_its_counts() {
    for backend in backends("signal").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
        store
            .record_writes(&[write(run, "u1", WriteStatus::Applied, t(1), Some(t(31)))])
            .await
            .unwrap();
        let counts = RunCounts {
            users_planned: 10,
            users_updated: 1,
            users_not_attempted: 9,
            requests: 3,
            stopped: Some("interrupted (Ctrl-C)".into()),
            ..RunCounts::default()
        };
        store
            .finish_run(run, RunOutcome::Interrupted, &counts, t(2))
            .await
            .unwrap();
        drop(store);

        let store = backend.open().await;
        let summary = store.run(run).await.unwrap().unwrap();
        assert_eq!(summary.outcome, RunOutcome::Interrupted);
        assert_eq!(summary.ended_at, Some(t(2)));
        assert_eq!(summary.counts, Some(counts));
        assert_eq!(summary.writes, 1);
        assert_eq!(summary.settles_at, Some(t(31)));
        // Finished is finished, interrupted or not.
        let err = store
            .finish_run(run, RunOutcome::Succeeded, &RunCounts::default(), t(3))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyFinished { .. }), "{err}");
    }
}

#[tokio::test]
async fn every_kind_of_snapshot_round_trips() {
    for backend in backends("snapshots").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let run = store.start_run(&new_run("retire", t(0))).await.unwrap();
        let snapshots = [
            Snapshot::Absent,
            Snapshot::User(UserLists::default()),
            Snapshot::User(UserLists {
                version: Some(7),
                skills: Some(vec![]),
                proficiencies: Some(vec![
                    Held {
                        definition_id: "p1".into(),
                        level: 10,
                        active: false,
                    },
                    Held {
                        definition_id: "p2".into(),
                        level: 1,
                        active: true,
                    },
                ]),
            }),
            Snapshot::Definition(definition("Billing (fr-ca)")),
            Snapshot::Definition(DefinitionState {
                active: false,
                description: String::new(),
                version: u64::MAX,
                ..definition("Facturation – «ancienne» ✓")
            }),
            Snapshot::Profile(ProfileState {
                id: "rp-1".into(),
                name: "Sales".into(),
                skills: vec!["s1".into(), "s2".into()],
                proficiencies: vec![],
                version: 12,
            }),
            Snapshot::Strategy(StrategyState {
                id: "strategy-1".into(),
                name: "Escalations".into(),
                proficiencies: vec!["p1".into()],
                version: 3,
            }),
            Snapshot::Legacy { value: json!(null) },
            Snapshot::Legacy {
                value: json!([{"skillId": 1, "proficiency": 3}]),
            },
            // Looks like a typed snapshot, but was kept as found: it stays legacy.
            Snapshot::Legacy {
                value: json!({"type": "absent"}),
            },
            Snapshot::Legacy {
                value: json!({"type": "legacy", "value": 1}),
            },
        ];
        let writes: Vec<WriteRecord> = snapshots
            .iter()
            .enumerate()
            .map(|(i, snapshot)| WriteRecord {
                target: match snapshot {
                    Snapshot::Strategy(_) => WriteTarget::Strategy,
                    _ => WriteTarget::Profile,
                },
                before: snapshot.clone(),
                after: snapshots[snapshots.len() - 1 - i].clone(),
                ..write(run, &format!("s{i}"), WriteStatus::Applied, t(1), None)
            })
            .collect();
        store.record_writes(&writes).await.unwrap();
        drop(store);
        let store = backend.open().await;
        assert_eq!(store.writes(run).await.unwrap(), writes);
        assert_eq!(
            store
                .last_write("s3", WriteTarget::Profile)
                .await
                .unwrap()
                .unwrap()
                .before,
            Snapshot::Definition(definition("Billing (fr-ca)"))
        );
    }
}

fn held(id: &str, level: u8, active: bool) -> Held {
    Held {
        definition_id: id.into(),
        level,
        active,
    }
}

/// A user's lists before a write are stored against the lists written (a level change among
/// many skills keeps one entry, not every definition id) and read back whole, whatever the
/// two lists hold: entries changed, removed, added, reordered, repeated, lists not written.
#[tokio::test]
async fn a_users_lists_before_a_write_read_back_whole() {
    for backend in backends("user-deltas").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
        let many: Vec<Held> = (0..10)
            .map(|n| held(&format!("a0b1c2d3-e4f5-4a6b-8c7d-00000000000{n}"), 3, true))
            .collect();
        let mut raised = many.clone();
        raised[4].level = 4;
        let user = |version, skills: Option<Vec<Held>>, proficiencies: Option<Vec<Held>>| {
            Snapshot::User(UserLists {
                version,
                skills,
                proficiencies,
            })
        };
        let pairs = [
            // One level raised among ten: the common apply.
            (
                user(Some(3), Some(many.clone()), Some(vec![held("p1", 2, true)])),
                user(Some(3), Some(raised.clone()), None),
            ),
            // Removed, added, reordered, repeated, deactivated.
            (
                user(
                    Some(1),
                    Some(vec![
                        held("s2", 1, true),
                        held("s1", 5, true),
                        held("s9", 7, false),
                        held("s1", 5, true),
                    ]),
                    Some(vec![held("p1", 2, true), held("p2", 8, true)]),
                ),
                user(
                    Some(2),
                    Some(vec![
                        held("s1", 5, true),
                        held("s2", 1, false),
                        held("s3", 4, true),
                    ]),
                    Some(vec![held("p2", 8, true)]),
                ),
            ),
            // Lists before that are empty, absent or not read.
            (
                user(None, Some(vec![]), None),
                user(Some(1), Some(vec![held("s1", 1, true)]), Some(vec![])),
            ),
            (user(None, None, None), user(None, None, None)),
            // Read back as written: the confirmation of a lost answer.
            (
                user(Some(4), Some(raised.clone()), None),
                user(Some(4), Some(raised.clone()), None),
            ),
            // The read-back of a write not kept: after is what was found, or nothing.
            (user(Some(4), Some(raised.clone()), None), Snapshot::Absent),
            (
                Snapshot::Absent,
                user(Some(1), Some(vec![held("s1", 1, true)]), None),
            ),
        ];
        let writes: Vec<WriteRecord> = pairs
            .iter()
            .enumerate()
            .map(|(i, (before, after))| WriteRecord {
                before: before.clone(),
                after: after.clone(),
                ..write(
                    run,
                    &format!("u{i}"),
                    WriteStatus::Applied,
                    t(i as i64),
                    None,
                )
            })
            .collect();
        store.record_writes(&writes).await.unwrap();
        drop(store);
        let store = backend.open().await;
        assert_eq!(store.writes(run).await.unwrap(), writes);
        let last = store
            .last_write("u0", WriteTarget::UserSkills)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((last.before, last.after), pairs[0].clone());
    }
}

/// Env var telling [`child_process_for_kill_test`] which database to write to.
const CHILD_DB: &str = "SKILLSYNC_STORE_TEST_CHILD_DB";

/// Not a test on its own: the body the next test runs in a child process it then SIGKILLs.
#[tokio::test]
async fn child_process_for_kill_test() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&db)).unwrap();
    let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
    store
        .record_writes(&[write(run, "u1", WriteStatus::Applied, t(1), Some(t(31)))])
        .await
        .unwrap();
    println!("ready {}", run.0);
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[tokio::test]
async fn killed_process_leaves_an_interrupted_run() {
    let dir = TempDir::new("sigkill");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_for_kill_test",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, dir.db())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut run = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        // The harness prints "test child_process_for_kill_test ... " on the same line.
        let line = line.unwrap();
        if let Some((_, id)) = line.split_once("ready ") {
            run = Some(RunId(id.trim().parse().unwrap()));
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no checkpoint, no close.
    child.wait().unwrap();
    let run = run.expect("the child started a run");

    let store = SqliteStore::open(&dir.db()).unwrap();
    let summary = store.run(run).await.unwrap().unwrap();
    assert_eq!(summary.outcome, RunOutcome::Interrupted);
    assert_eq!(summary.writes, 1);
    assert_eq!(store.settles_at(run).await.unwrap(), Some(t(31)));
}

#[tokio::test]
async fn last_write_is_the_newest_for_a_subject_and_target() {
    for backend in backends("last-write").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let first = store.start_run(&new_run("apply", t(0))).await.unwrap();
        let second = store.start_run(&new_run("assign", t(100))).await.unwrap();
        store
            .record_writes(&[
                write(first, "u1", WriteStatus::Applied, t(1), Some(t(31))),
                write(first, "u2", WriteStatus::Applied, t(2), Some(t(32))),
                WriteRecord {
                    target: WriteTarget::UserProficiencies,
                    ..write(first, "u1", WriteStatus::Applied, t(500), None)
                },
            ])
            .await
            .unwrap();
        store
            .record_writes(&[
                write(second, "u1", WriteStatus::Conflict, t(101), None),
                write(second, "u1", WriteStatus::Applied, t(102), Some(t(132))),
            ])
            .await
            .unwrap();
        // Recorded later but made earlier: `at` decides, not journal order.
        store
            .record_writes(&[write(second, "u1", WriteStatus::Failed, t(50), None)])
            .await
            .unwrap();

        let last = store
            .last_write("u1", WriteTarget::UserSkills)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (last.run, last.at, last.status),
            (second, t(102), WriteStatus::Applied)
        );
        let last = store
            .last_write("u1", WriteTarget::UserProficiencies)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.at, t(500));
        let last = store
            .last_write("u2", WriteTarget::UserSkills)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.at, t(2));
        assert_eq!(
            store
                .last_write("u3", WriteTarget::UserSkills)
                .await
                .unwrap(),
            None
        );

        // Sub-second times order correctly too (stored with fixed-width fractions).
        let third = store.start_run(&new_run("assign", t(600))).await.unwrap();
        let base = t(601);
        let half = base.checked_add(SignedDuration::from_millis(500)).unwrap();
        store
            .record_writes(&[
                write(third, "u9", WriteStatus::Applied, half, None),
                write(third, "u9", WriteStatus::Failed, base, None),
            ])
            .await
            .unwrap();
        let last = store
            .last_write("u9", WriteTarget::UserSkills)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.at, half);
    }
}

/// (subject, run, at, status) of the newest user-skills write to each of `subjects`, by subject.
async fn newest(
    store: &dyn Journal,
    subjects: &[&str],
) -> Vec<(String, i64, Timestamp, WriteStatus)> {
    let mut found: Vec<(String, i64, Timestamp, WriteStatus)> = store
        .last_writes(subjects, WriteTarget::UserSkills)
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.subject, w.run.0, w.at, w.status))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The newest write per subject is kept apart once a run finishes (folded), and runs still
/// open are read as they are: whatever finished or not, `last_write` and `last_writes` give the
/// newest by `at`, then journal order, as they did when an index on every write answered.
#[tokio::test]
async fn last_writes_are_the_same_before_and_after_their_runs_finish() {
    for backend in backends("last-writes-fold").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let first = store.start_run(&new_run("apply", t(0))).await.unwrap();
        let second = store.start_run(&new_run("apply", t(100))).await.unwrap();
        let mut records = Vec::new();
        for n in 0..50 {
            records.push(write(
                first,
                &format!("u{n}"),
                WriteStatus::Applied,
                t(n),
                None,
            ));
        }
        store.record_writes(&records).await.unwrap();
        store
            .record_writes(&[
                write(second, "u1", WriteStatus::Applied, t(101), None),
                // Made before the first run's write to u2, though journaled after it.
                write(second, "u2", WriteStatus::Failed, t(1), None),
                write(second, "u99", WriteStatus::Unknown, t(102), None),
            ])
            .await
            .unwrap();
        let subjects: Vec<String> = (0..60)
            .map(|n| format!("u{n}"))
            .chain(["u99".into()])
            .collect();
        let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let expected = {
            let mut all: Vec<(String, i64, Timestamp, WriteStatus)> = (0..50)
                .map(|n| (format!("u{n}"), first.0, t(n), WriteStatus::Applied))
                .collect();
            all[1] = ("u1".into(), second.0, t(101), WriteStatus::Applied);
            // u2's write of the second run is older than the first run's: it stays the first's.
            all.push(("u99".into(), second.0, t(102), WriteStatus::Unknown));
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        };
        assert_eq!(
            newest(store.as_ref(), &subjects).await,
            expected,
            "neither run finished"
        );
        store
            .finish_run(first, RunOutcome::Succeeded, &RunCounts::default(), t(60))
            .await
            .unwrap();
        assert_eq!(
            newest(store.as_ref(), &subjects).await,
            expected,
            "the first run finished"
        );
        store
            .finish_run(second, RunOutcome::Failed, &RunCounts::default(), t(200))
            .await
            .unwrap();
        assert_eq!(
            newest(store.as_ref(), &subjects).await,
            expected,
            "both finished"
        );
        // A write journaled after its run finished is found too.
        store
            .record_writes(&[write(first, "u3", WriteStatus::Applied, t(300), None)])
            .await
            .unwrap();
        let u3 = store
            .last_write("u3", WriteTarget::UserSkills)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((u3.run, u3.at), (first, t(300)));
        // Reopened, the same.
        drop(store);
        let store = backend.open().await;
        let mut reopened = expected.clone();
        let u3_at = reopened.iter().position(|w| w.0 == "u3").unwrap();
        reopened[u3_at] = ("u3".into(), first.0, t(300), WriteStatus::Applied);
        assert_eq!(newest(store.as_ref(), &subjects).await, reopened);
        assert!(
            store
                .last_writes(&[], WriteTarget::UserSkills)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// A run killed while it held the tenant's lease is never finished; the next holder's run
/// takes its writes into the last writes, and `last_write` still finds them and any its
/// process journals afterwards.
#[tokio::test]
async fn a_dead_holders_writes_stay_found_after_the_next_holder_fences_its_run() {
    for backend in backends("last-writes-dead").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let ttl = std::time::Duration::from_millis(200);
        let Acquired::Held(old) = store
            .acquire_lease("tenant", &holder("apply", 1), ttl)
            .await
            .unwrap()
        else {
            panic!("a free lease")
        };
        let killed = store.start_run(&new_run("apply", t(0))).await.unwrap();
        store.fence_run(killed, &old).await.unwrap();
        store
            .record_writes(&[write(killed, "u1", WriteStatus::Applied, t(1), None)])
            .await
            .unwrap();
        tokio::time::sleep(ttl * 2).await;
        let Acquired::Held(new) = store
            .acquire_lease("tenant", &holder("apply", 2), ttl * 100)
            .await
            .unwrap()
        else {
            panic!("an expired lease is taken over")
        };
        let next = store.start_run(&new_run("apply", t(10))).await.unwrap();
        store.fence_run(next, &new).await.unwrap();
        let u1 = store
            .last_write("u1", WriteTarget::UserSkills)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u1.run, killed);
        // The old holder finishing a write it had in flight.
        store
            .record_writes(&[write(killed, "u2", WriteStatus::Applied, t(2), None)])
            .await
            .unwrap();
        let u2 = store
            .last_write("u2", WriteTarget::UserSkills)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((u2.run, u2.at), (killed, t(2)));
        assert_eq!(
            store.run(killed).await.unwrap().unwrap().outcome,
            RunOutcome::Interrupted,
            "folding finishes nothing"
        );
    }
}

#[tokio::test]
async fn settles_at_is_the_latest_over_applied_writes_only() {
    for backend in backends("settles-at").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
        let other = store.start_run(&new_run("apply", t(0))).await.unwrap();
        assert_eq!(store.settles_at(run).await.unwrap(), None);
        store
            .record_writes(&[
                write(run, "u1", WriteStatus::Applied, t(1), Some(t(31))),
                write(run, "u2", WriteStatus::Applied, t(5), Some(t(35))),
                write(run, "u3", WriteStatus::Applied, t(6), None),
                write(run, "u4", WriteStatus::Failed, t(9), Some(t(99))),
                write(run, "u5", WriteStatus::Unknown, t(9), Some(t(98))),
                write(run, "u6", WriteStatus::Conflict, t(9), Some(t(97))),
                write(other, "u7", WriteStatus::Applied, t(9), Some(t(200))),
            ])
            .await
            .unwrap();
        assert_eq!(store.settles_at(run).await.unwrap(), Some(t(35)));
        assert_eq!(
            store.run(run).await.unwrap().unwrap().settles_at,
            Some(t(35))
        );
        assert_eq!(store.settles_at(other).await.unwrap(), Some(t(200)));
        assert_eq!(store.settles_at(RunId(12345)).await.unwrap(), None);
    }
}

#[tokio::test]
async fn mappings_upsert_by_code_and_locale() {
    for backend in backends("mappings").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let mapping = |code: &str, locale: &str, id: &str, at: i64| Mapping {
            code: code.into(),
            locale: locale.into(),
            kind: "skill".into(),
            definition_id: id.into(),
            seen_at: t(at),
        };
        store
            .remember_mappings(&[
                mapping("BILL", "fr-ca", "11", 0),
                mapping("BILL", "en-us", "10", 0),
                mapping("ACCT", "en-us", "20", 0),
            ])
            .await
            .unwrap();
        store
            .remember_mappings(&[mapping("BILL", "fr-ca", "12", 9)])
            .await
            .unwrap();
        store.remember_mappings(&[]).await.unwrap();
        // The same variant twice in one batch: the later one wins, as if written in turn.
        store
            .remember_mappings(&[
                mapping("ACCT", "en-us", "21", 5),
                mapping("ACCT", "en-us", "22", 6),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.mappings().await.unwrap(),
            vec![
                mapping("ACCT", "en-us", "22", 6),
                mapping("BILL", "en-us", "10", 0),
                mapping("BILL", "fr-ca", "12", 9),
            ]
        );
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for backend in backends("migrations").await {
        eprintln!("on {}", backend.name());
        let first = backend.open().await;
        let run = first.start_run(&new_run("apply", t(0))).await.unwrap();
        // A second handle on the same journal while the first is open, then a third after both.
        let second = backend.open().await;
        assert_eq!(second.run(run).await.unwrap().unwrap().command, "apply");
        drop(first);
        drop(second);
        let third = backend.open().await;
        assert_eq!(third.runs(10).await.unwrap().len(), 1);
        let next = third.start_run(&new_run("plan", t(1))).await.unwrap();
        assert!(next.0 > run.0);
    }
}

#[tokio::test]
async fn open_understands_store_urls() {
    let dir = TempDir::new("urls");
    let journal = skillsync_store::open("sqlite::memory:").await.unwrap();
    journal.start_run(&new_run("demo", t(0))).await.unwrap();
    assert_eq!(journal.runs(10).await.unwrap().len(), 1);

    let path = dir.db();
    skillsync_store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());

    let err = skillsync_store::open(&format!("sqlite://{}/missing/dir/x.db", dir.0.display()))
        .await
        .err()
        .unwrap();
    let StoreError::Open { source, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(source, rusqlite::Error::SqliteFailure(..)),
        "{source:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("cannot open the journal at ") && text.contains("missing/dir/x.db"),
        "{text}"
    );
    assert!(text.ends_with("check [store] url"), "{text}");

    let not_a_db = dir.0.join("notes.txt");
    std::fs::write(
        &not_a_db,
        "this is not a database, just some text ".repeat(50),
    )
    .unwrap();
    let err = SqliteStore::open(&not_a_db).unwrap_err();
    assert!(err.to_string().contains("notes.txt"), "{err}");
}

#[tokio::test]
async fn record_writes_is_one_transaction() {
    for backend in backends("one-transaction").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
        let batch: Vec<WriteRecord> = (0..1_000)
            .map(|i| {
                write(
                    run,
                    &format!("u{i}"),
                    WriteStatus::Applied,
                    t(i),
                    Some(t(i + 30)),
                )
            })
            .collect();

        // The last record names a run that does not exist: nothing of the batch is kept.
        let mut bad = batch.clone();
        bad[999].run = RunId(run.0 + 100);
        let err = store.record_writes(&bad).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownRun { .. }), "{err}");
        assert_eq!(store.writes(run).await.unwrap().len(), 0);
        assert_eq!(store.run(run).await.unwrap().unwrap().writes, 0);

        store.record_writes(&batch).await.unwrap();
        assert_eq!(store.run(run).await.unwrap().unwrap().writes, 1_000);
        assert_eq!(store.writes(run).await.unwrap(), batch);
        assert_eq!(store.settles_at(run).await.unwrap(), Some(t(999 + 30)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journal_is_usable_from_many_tasks() {
    for backend in backends("many-tasks").await {
        eprintln!("on {}", backend.name());
        let store: std::sync::Arc<dyn Journal> = backend.open().await.into();
        let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..8 {
            let store = store.clone();
            tasks.spawn(async move {
                for i in 0..25 {
                    store
                        .record_writes(&[write(
                            run,
                            &format!("u{task}-{i}"),
                            WriteStatus::Applied,
                            t(i),
                            None,
                        )])
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(store.run(run).await.unwrap().unwrap().writes, 200);
    }
}

fn holder(command: &str, pid: u32) -> LeaseHolder {
    LeaseHolder {
        host: "host-a".into(),
        pid,
        command: command.into(),
    }
}

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

/// One writer per tenant: a live lease is refused to a second holder, naming the first; an
/// expired one is taken over with the next fencing number, and the old holder cannot renew it.
/// SQLite's explicit clock moves time on; PostgreSQL's case waits for a short lease instead.
#[tokio::test]
async fn a_lease_has_one_holder_and_a_taken_over_holder_is_fenced_off() {
    let dir = TempDir::new("lease");
    let store = SqliteStore::open(&dir.db()).unwrap();
    let key = "https://tenant.example/api/v2 client-1";
    let Acquired::Held(first) = store
        .acquire_lease_at(key, &holder("apply", 100), MINUTE, t(0))
        .unwrap()
    else {
        panic!("a free lease is taken")
    };
    assert_eq!(first.fence, 1);
    assert_eq!(first.expires_at, t(60));
    let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
    store.fence_run(run, &first).await.unwrap();
    store
        .record_writes(&[write(run, "u1", WriteStatus::Applied, t(1), None)])
        .await
        .unwrap();

    // A second process, while the first holds it: refused, naming the holder.
    match store
        .acquire_lease_at(key, &holder("apply", 200), MINUTE, t(30))
        .unwrap()
    {
        Acquired::Busy(held) => {
            assert_eq!(held.holder, holder("apply", 100));
            assert_eq!(held.acquired_at, t(0));
        }
        other => panic!("two holders: {other:?}"),
    }
    // Another tenant's lease is independent.
    assert!(matches!(
        store
            .acquire_lease_at("other tenant", &holder("assign", 300), MINUTE, t(30))
            .unwrap(),
        Acquired::Held(_)
    ));
    // Renewed while live.
    assert_eq!(
        store.renew_lease_at(&first, MINUTE, t(50)).unwrap(),
        Some(t(110))
    );

    // The first holder stops renewing (killed): once expired, a second one takes over.
    let Acquired::Held(second) = store
        .acquire_lease_at(key, &holder("apply", 200), MINUTE, t(111))
        .unwrap()
    else {
        panic!("an expired lease is taken over")
    };
    assert_eq!(second.fence, 2);
    assert_eq!(store.renew_lease_at(&first, MINUTE, t(112)).unwrap(), None);
    // A write of the old holder that reached the tenant anyway is still journaled: the
    // journal never leaves a landed write out.
    store
        .record_writes(&[write(run, "u2", WriteStatus::Applied, t(112), None)])
        .await
        .unwrap();
    assert_eq!(store.writes(run).await.unwrap().len(), 2);

    // Released: free at once, and the fencing number keeps rising.
    store.release_lease_at(&second, t(120)).unwrap();
    let Acquired::Held(third) = store
        .acquire_lease_at(key, &holder("retire", 300), MINUTE, t(121))
        .unwrap()
    else {
        panic!("a released lease is free")
    };
    assert_eq!(third.fence, 3);
}

/// Two processes on one SQLite file race for the lease: exactly one wins each round.
#[tokio::test]
async fn concurrent_acquisitions_have_one_winner() {
    let dir = TempDir::new("lease-race");
    let path = dir.db();
    drop(SqliteStore::open(&path).unwrap());
    for round in 0..20 {
        let key = format!("tenant-{round}");
        let winners: usize = std::thread::scope(|scope| {
            let tries: Vec<_> = (0..4)
                .map(|pid| {
                    let (path, key) = (path.clone(), key.clone());
                    scope.spawn(move || {
                        let store = SqliteStore::open(&path).unwrap();
                        matches!(
                            store
                                .acquire_lease_at(&key, &holder("apply", pid), MINUTE, t(0))
                                .unwrap(),
                            Acquired::Held(_)
                        )
                    })
                })
                .collect();
            tries
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_retirement_is_replaced_per_variant_and_can_be_forgotten() {
    for backend in backends("retirements").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let run = store.start_run(&new_run("retire", t(0))).await.unwrap();
        let soft = Retirement {
            code: "ACW_SALES".into(),
            locale: "de-de".into(),
            kind: "proficiency".into(),
            name: "ACW_Sales".into(),
            mode: RetirementMode::Soft,
            definition_ids: vec!["d1".into(), "d2".into()],
            run,
            retired_at: t(1),
        };
        store.record_retirement(&soft).await.unwrap();
        let hard = Retirement {
            mode: RetirementMode::Hard,
            retired_at: t(2),
            ..soft.clone()
        };
        store.record_retirement(&hard).await.unwrap();
        // Sorted by code as bytes: upper case before lower case, `_` after letters.
        let other = Retirement {
            code: "ACWX".into(),
            locale: "en-us".into(),
            definition_ids: vec![],
            ..soft.clone()
        };
        let lower = Retirement {
            code: "acw".into(),
            ..other.clone()
        };
        store.record_retirement(&lower).await.unwrap();
        store.record_retirement(&other).await.unwrap();
        assert_eq!(
            store.retirements().await.unwrap(),
            [other.clone(), hard, lower.clone()]
        );

        let unknown = Retirement {
            run: RunId(run.0 + 99),
            ..soft
        };
        let err = store.record_retirement(&unknown).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownRun { .. }), "{err}");
        assert!(store.forget_retirement("ACW_SALES", "de-de").await.unwrap());
        assert!(!store.forget_retirement("ACW_SALES", "de-de").await.unwrap());
        assert_eq!(store.retirements().await.unwrap(), [other, lower]);
    }
}

/// The trait's lease calls, on the store's own clock: taken, refused to another holder while
/// live, renewed, released (free at once, its fencing number kept), and a run fenced under it.
#[tokio::test]
async fn a_lease_on_the_stores_clock_is_held_renewed_and_released() {
    for backend in backends("lease-clock").await {
        eprintln!("on {}", backend.name());
        let store = backend.open().await;
        let key = "https://tenant.example/api/v2 client-1";
        let before = Timestamp::now();
        let Acquired::Held(first) = store
            .acquire_lease(key, &holder("apply", 100), MINUTE)
            .await
            .unwrap()
        else {
            panic!("a free lease is taken")
        };
        assert_eq!((first.key.as_str(), first.fence), (key, 1));
        assert_eq!(first.holder, holder("apply", 100));
        // Same machine: the store's clock is close to ours.
        let skew = first.acquired_at.duration_since(before).abs();
        assert!(skew < SignedDuration::from_secs(5), "{skew:?}");
        assert_eq!(
            first.expires_at.duration_since(first.acquired_at),
            SignedDuration::from_secs(60)
        );

        match store
            .acquire_lease(key, &holder("assign", 200), MINUTE)
            .await
            .unwrap()
        {
            Acquired::Busy(held) => assert_eq!(held, first),
            other => panic!("two holders: {other:?}"),
        }
        assert!(matches!(
            store
                .acquire_lease("other tenant", &holder("assign", 300), MINUTE)
                .await
                .unwrap(),
            Acquired::Held(Lease { fence: 1, .. })
        ));

        let renewed = store
            .renew_lease(&first, 2 * MINUTE)
            .await
            .unwrap()
            .expect("a live lease is renewed");
        assert!(renewed > first.expires_at, "{renewed} {}", first.expires_at);

        let run = store.start_run(&new_run("apply", t(0))).await.unwrap();
        store.fence_run(run, &first).await.unwrap();
        let err = store
            .fence_run(RunId(run.0 + 50), &first)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownRun { .. }), "{err}");

        store.release_lease(&first).await.unwrap();
        assert_eq!(store.renew_lease(&first, MINUTE).await.unwrap(), None);
        let Acquired::Held(second) = store
            .acquire_lease(key, &holder("retire", 400), MINUTE)
            .await
            .unwrap()
        else {
            panic!("a released lease is free")
        };
        assert_eq!(second.fence, 2, "the fencing number keeps rising");
        // The first holder releasing again (late) does not free the second's lease.
        store.release_lease(&first).await.unwrap();
        assert!(matches!(
            store
                .acquire_lease(key, &holder("apply", 500), MINUTE)
                .await
                .unwrap(),
            Acquired::Busy(Lease { fence: 2, .. })
        ));
    }
}

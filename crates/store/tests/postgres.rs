//! What only the PostgreSQL journal has to show: hosts racing for a lease through separate
//! connection pools, leases timed by the server's clock, migrations shared by several hosts,
//! a schema taken from the URL, and connection failures that are quick and keep the password
//! out of every message. Cases that need a server are skipped (with a line saying so) unless
//! `SKILLSYNC_TEST_DATABASE_URL` names one; the others always run.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use skillsync_store::{Acquired, Journal, LeaseHolder, PostgresStore, StoreError};
use support::Schema;

fn holder(pid: u32) -> LeaseHolder {
    LeaseHolder {
        host: format!("host-{pid}"),
        pid,
        command: "apply".into(),
    }
}

/// The error and all its causes, as a person printing the chain would see them.
fn chain(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        text.push_str(&format!(": {e}"));
        cause = e.source();
    }
    text
}

/// The message of a failed connection, checked: a [`StoreError::Connect`] whose whole chain
/// never shows the password `hunter2`.
fn connect_error_without_the_password(err: &StoreError) -> String {
    let text = chain(err);
    eprintln!("{text}");
    assert!(matches!(err, StoreError::Connect { .. }), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
    assert!(
        !format!("{err:?}").contains("hunter2"),
        "the password leaked: {err:?}"
    );
    text
}

/// Every round, several hosts (each a store with its own pool) ask for one lease at once:
/// exactly one gets it, and each round's holder has a higher fencing number than the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_racing_for_a_lease_have_one_winner_and_rising_fences() {
    const HOSTS: usize = 4;
    const ROUNDS: usize = 25;
    let Some(schema) = Schema::create().await else {
        return;
    };
    let mut stores = Vec::new();
    for _ in 0..HOSTS {
        stores.push(Arc::new(PostgresStore::open(&schema.url()).await.unwrap()));
    }
    let key = "https://tenant.example/api/v2 client-1";
    let mut last_fence = 0;
    for round in 0..ROUNDS {
        let start = Arc::new(tokio::sync::Barrier::new(HOSTS));
        let mut tries = tokio::task::JoinSet::new();
        for (pid, store) in stores.iter().enumerate() {
            let (store, start) = (store.clone(), start.clone());
            tries.spawn(async move {
                start.wait().await;
                store
                    .acquire_lease(key, &holder(pid as u32), Duration::from_secs(60))
                    .await
                    .unwrap()
            });
        }
        let mut held = Vec::new();
        let mut busy = Vec::new();
        while let Some(outcome) = tries.join_next().await {
            match outcome.unwrap() {
                Acquired::Held(lease) => held.push(lease),
                Acquired::Busy(lease) => busy.push(lease),
            }
        }
        assert_eq!(held.len(), 1, "round {round}: {held:?}");
        let winner = held.pop().unwrap();
        assert!(winner.fence > last_fence, "round {round}: {winner:?}");
        for other in &busy {
            assert_eq!(other, &winner, "round {round}: the losers see the winner");
        }
        last_fence = winner.fence;
        stores[0].release_lease(&winner).await.unwrap();
    }
    assert_eq!(last_fence, ROUNDS as i64, "one fencing number per round");
}

/// A holder that stops renewing loses the lease when it expires by the server's clock; the
/// next holder gets the next fencing number and the old one can no longer renew.
#[tokio::test]
async fn a_short_lease_is_taken_over_once_it_expires() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let first_host = PostgresStore::open(&schema.url()).await.unwrap();
    let second_host = PostgresStore::open(&schema.url()).await.unwrap();
    let ttl = Duration::from_millis(300);
    let key = "tenant";
    let Acquired::Held(first) = first_host
        .acquire_lease(key, &holder(1), ttl)
        .await
        .unwrap()
    else {
        panic!("a free lease is taken")
    };
    assert_eq!(
        first.expires_at.duration_since(first.acquired_at),
        jiff::SignedDuration::from_millis(300),
        "the server's timestamps, to the microsecond"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refusals = 0;
    let second = loop {
        match second_host
            .acquire_lease(key, &holder(2), ttl * 100)
            .await
            .unwrap()
        {
            Acquired::Held(lease) => break lease,
            Acquired::Busy(held) => {
                assert_eq!(held, first);
                refusals += 1;
            }
        }
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        refusals > 0,
        "refused while the first holder's lease was live"
    );
    assert!(
        second.acquired_at >= first.expires_at,
        "{second:?} {first:?}"
    );
    assert_eq!(second.fence, first.fence + 1);
    assert_eq!(second.holder, holder(2));
    assert_eq!(first_host.renew_lease(&first, ttl).await.unwrap(), None);
    assert!(
        second_host
            .renew_lease(&second, ttl * 100)
            .await
            .unwrap()
            .is_some()
    );
}

/// Several hosts opening a new journal at once create it once, and opening again changes
/// nothing; everything lands in the schema the URL names.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_in_the_urls_schema() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = schema.url();
        opens.spawn(async move { PostgresStore::open(&url).await.map(drop) });
    }
    while let Some(opened) = opens.join_next().await {
        opened.unwrap().unwrap();
    }
    let store = PostgresStore::open(&schema.url()).await.unwrap();
    assert!(store.runs(10).await.unwrap().is_empty());
    assert_eq!(
        schema.tables().await,
        [
            "events",
            "last_writes",
            "leases",
            "mappings",
            "retirements",
            "runs",
            "skillsync_schema_history",
            "writes"
        ]
    );
    let history = schema
        .admin()
        .await
        .query_one(
            &format!(
                "SELECT count(*), max(version) FROM {}.skillsync_schema_history",
                schema.name()
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!((history.get::<_, i64>(0), history.get::<_, i32>(1)), (4, 4));
}

/// Read-only commands never create a journal: in a schema without one, `open_existing` finds
/// nothing and leaves the schema empty.
#[tokio::test]
async fn open_existing_creates_nothing_in_an_empty_schema() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    assert!(
        skillsync_store::open_existing(&schema.url())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        schema.tables().await.is_empty(),
        "{:?}",
        schema.tables().await
    );

    let journal = skillsync_store::open(&schema.url()).await.unwrap();
    let run = journal
        .start_run(&skillsync_store::NewRun {
            command: "apply".into(),
            config_hash: "h".into(),
            started_at: jiff::Timestamp::now(),
            dialect: "routing".into(),
        })
        .await
        .unwrap();
    let existing = skillsync_store::open_existing(&schema.url())
        .await
        .unwrap()
        .expect("a created journal is found");
    assert_eq!(existing.run(run).await.unwrap().unwrap().command, "apply");
}

/// A journal migrated by a newer skillsync (a migration this build does not have) is refused,
/// saying so, rather than written with a schema it does not know.
#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    drop(PostgresStore::open(&schema.url()).await.unwrap());
    schema
        .admin()
        .await
        .execute(
            &format!(
                "INSERT INTO {}.skillsync_schema_history (version, name, applied_on, checksum)
                 VALUES (5, 'from_the_future', '2030-01-01T00:00:00Z', '1')",
                schema.name()
            ),
            &[],
        )
        .await
        .unwrap();
    let err = PostgresStore::open(&schema.url()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooNew {
                found: 5,
                known: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade skillsync"), "{err}");
}

/// A database that is not there: the server's error names the problem, the password appears
/// nowhere.
#[tokio::test]
async fn a_missing_database_is_an_error_without_the_password() {
    let Ok(server) = std::env::var(support::DATABASE_URL) else {
        eprintln!(
            "{} is not set: the PostgreSQL case is skipped",
            support::DATABASE_URL
        );
        return;
    };
    // Same server, with a password (trust authentication ignores it) and a database that
    // does not exist.
    let (scheme, rest) = server.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = rest.split(['/', '?']).next().unwrap();
    let url = format!("{scheme}://postgres:hunter2-secret@{host}/skillsync_no_such_database");
    let err = skillsync_store::open(&url).await.err().unwrap();
    let text = connect_error_without_the_password(&err);
    assert!(text.contains("does not exist"), "{text}");
}

/// Nothing listening, or a listener that never answers: an error within seconds, naming the
/// URL without its password.
#[tokio::test]
async fn an_unreachable_server_fails_fast_without_the_password() {
    // Port 1 on the loopback: refused at once.
    let started = Instant::now();
    let err = skillsync_store::open("postgres://skillsync:hunter2-secret@127.0.0.1:1/journal")
        .await
        .err()
        .unwrap();
    let text = connect_error_without_the_password(&err);
    assert!(text.contains("127.0.0.1:1/journal"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A socket that accepts connections but never speaks: the connect timeout ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let err = skillsync_store::open_existing(&format!(
        "postgresql://skillsync:hunter2-secret@127.0.0.1:{port}/journal?connect_timeout=1"
    ))
    .await
    .err()
    .unwrap();
    connect_error_without_the_password(&err);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

/// TLS is not supported yet: a URL that requires it is refused up front rather than sent in
/// clear, and the refusal says why without the password.
#[tokio::test]
async fn a_url_that_requires_tls_is_refused() {
    for mode in ["require", "verify-ca", "verify-full"] {
        let url = format!("postgres://skillsync:hunter2@db.internal:5432/journal?sslmode={mode}");
        let err = skillsync_store::open(&url).await.err().unwrap();
        assert!(matches!(err, StoreError::Unsupported { .. }), "{err}");
        let text = chain(&err);
        assert!(text.contains("TLS to PostgreSQL"), "{text}");
        assert!(!text.contains("hunter2"), "the password leaked: {text}");
    }
    let err = skillsync_store::open("postgres://db.internal/journal?no_such_option=1")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::PostgresUrl { .. }), "{err}");
    assert!(err.to_string().contains("check [store] url"), "{err}");
}

/// A URL whose search path names a schema that is not there: nothing is created elsewhere
/// instead, and the error says the migration failed.
#[tokio::test]
async fn a_missing_schema_is_an_error_not_a_journal_elsewhere() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let url = schema.url().replace(
        &format!("search_path%3D{}", schema.name()),
        "search_path%3Dskillsync_no_such_schema",
    );
    assert!(
        skillsync_store::open_existing(&url)
            .await
            .unwrap()
            .is_none()
    );
    let err = skillsync_store::open(&url).await.err().unwrap();
    let text = chain(&err);
    eprintln!("{text}");
    assert!(matches!(err, StoreError::PostgresMigrate { .. }), "{text}");
    assert!(text.contains("no schema has been selected"), "{text}");
    assert!(schema.tables().await.is_empty());
}

/// A journal in a later schema of the search path is not the journal of the first one, where
/// the store would migrate: read-only commands find none there and create nothing.
#[tokio::test]
async fn open_existing_looks_only_in_the_schema_it_would_use() {
    let (Some(empty), Some(full)) = (Schema::create().await, Schema::create().await) else {
        return;
    };
    drop(skillsync_store::open(&full.url()).await.unwrap());
    let both = empty.url().replace(
        &format!("search_path%3D{}", empty.name()),
        &format!("search_path%3D{}%2C{}", empty.name(), full.name()),
    );
    assert!(both.contains(full.name()), "{both}");
    assert!(
        skillsync_store::open_existing(&both)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        empty.tables().await.is_empty(),
        "{:?}",
        empty.tables().await
    );
}

/// A journal as version 3 of the schema left it (an index on every write, no last writes):
/// migration 4 keeps answering `last_write` as that index did, from the finished run it folds
/// and the unfinished one it leaves to be scanned.
#[tokio::test]
async fn migration_4_answers_last_write_as_the_per_write_index_did() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    drop(PostgresStore::open(&schema.url()).await.unwrap());
    // Back to version 3, with the rows an older skillsync wrote.
    let name = schema.name();
    let user = |level: u8| {
        format!(
            r#"{{"type":"user","version":1,"skills":[{{"definitionId":"d1","level":{level},"active":true}}],"proficiencies":null}}"#
        )
    };
    schema
        .admin()
        .await
        .batch_execute(&format!(
            "SET search_path = {name};
             DROP TABLE last_writes;
             ALTER TABLE runs DROP COLUMN folded;
             CREATE INDEX writes_by_subject ON writes (subject, target, at);
             DELETE FROM skillsync_schema_history WHERE version = 4;
             INSERT INTO runs (command, config_hash, dialect, started_at, ended_at, outcome,
                               counts_json)
                 VALUES ('apply', 'h1', 'routing', '2025-01-01T00:00:00.000000000Z',
                         '2025-01-01T00:01:00.000000000Z', 'succeeded', '{{}}');
             INSERT INTO runs (command, config_hash, dialect, started_at)
                 VALUES ('apply', 'h1', 'routing', '2025-01-02T00:00:00.000000000Z');
             INSERT INTO writes (run_id, target, subject, before_json, after_json, status, at)
                 VALUES (1, 'user_skills', 'u1', '{b}', '{l2}', 'conflict',
                         '2025-01-01T00:00:01.000000000Z'),
                        (1, 'user_skills', 'u1', '{b}', '{l3}', 'applied',
                         '2025-01-01T00:00:02.000000000Z'),
                        (1, 'user_skills', 'u2', '{b}', '{l4}', 'applied',
                         '2025-01-01T00:00:03.000000000Z'),
                        (2, 'user_skills', 'u1', '{b}', '{l6}', 'applied',
                         '2025-01-02T00:00:01.000000000Z'),
                        (2, 'user_skills', 'u3', '{b}', '{l7}', 'unknown',
                         '2025-01-02T00:00:02.000000000Z');",
            b = user(1),
            l2 = user(2),
            l3 = user(3),
            l4 = user(4),
            l6 = user(6),
            l7 = user(7),
        ))
        .await
        .unwrap();
    let store = PostgresStore::open(&schema.url()).await.unwrap();
    let folded: Vec<(i64, bool)> = schema
        .admin()
        .await
        .query(
            &format!("SELECT id, folded FROM {name}.runs ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(folded, [(1, true), (2, false)], "only the finished run");
    let level = |w: &skillsync_store::WriteRecord| {
        w.after.user().unwrap().skills.as_ref().unwrap()[0].level
    };
    let target = skillsync_store::WriteTarget::UserSkills;
    let u1 = store.last_write("u1", target).await.unwrap().unwrap();
    assert_eq!(
        (u1.run.0, level(&u1)),
        (2, 6),
        "the unfinished run's newer write"
    );
    let u2 = store.last_write("u2", target).await.unwrap().unwrap();
    assert_eq!((u2.run.0, level(&u2)), (1, 4));
    let u3 = store.last_write("u3", target).await.unwrap().unwrap();
    assert_eq!(u3.status, skillsync_store::WriteStatus::Unknown);
    assert_eq!(store.last_write("u4", target).await.unwrap(), None);
    let mut many: Vec<(String, i64)> = store
        .last_writes(&["u1", "u2", "u3", "u4"], target)
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.subject, w.run.0))
        .collect();
    many.sort();
    assert_eq!(many, [("u1".into(), 2), ("u2".into(), 1), ("u3".into(), 2)]);
}

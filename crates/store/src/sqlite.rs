//! The SQLite journal.
//!
//! One connection behind a mutex; WAL mode with `synchronous=NORMAL` (a committed write
//! survives a killed process; only a power loss can take back the last commits, never corrupt
//! the file), or `FULL` for the event queue's own connection (an event acknowledged to the HRIS
//! must survive a power loss too; see [`SqliteStore::open_durable`]); a busy timeout so that
//! two skillsync processes sharing a file wait for each other instead of failing. Every write
//! is an `IMMEDIATE` transaction, so a writer takes the lock up front and never fails half-way
//! on an upgrade.
//!
//! The schema is built by numbered migrations; the number applied is kept in the `user_version`
//! pragma. To change the schema, append to [`MIGRATIONS`]; never edit one that has shipped.
//! Pending migrations run in one transaction with foreign keys off, as SQLite's table-rebuild
//! procedure asks (a CHECK constraint cannot be altered, so a table whose CHECK changes is
//! rebuilt: new table, copy, drop, rename); `PRAGMA foreign_key_check` must pass before the
//! transaction commits, and foreign keys are back on afterwards.
//!
//! Values are stored in the text forms [`crate::row`] describes (and decodes, for every
//! backend). Calls block on the file for as long as a statement takes: the journal's calls are
//! short, so async callers call them directly.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

mod events;

use crate::row::{
    self, Columns, LEASE_COLUMNS, MAPPINGS_SELECT, RETIREMENTS_SELECT, RUN_SELECT, RawLease,
    RawMapping, RawRetirement, RawRun, RawWrite, WRITE_SELECT, to_json, ts,
};
use crate::{
    Acquired, Journal, Lease, LeaseHolder, Mapping, NewRun, Retirement, RunCounts, RunId,
    RunOutcome, RunSummary, StoreError, WriteRecord, WriteTarget,
};

/// How long a call waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one entry per version: `MIGRATIONS[n]` takes `user_version` from `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, writes, mappings.
    "CREATE TABLE runs (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         command     TEXT NOT NULL,
         config_hash TEXT NOT NULL,
         dialect     TEXT NOT NULL,
         started_at  TEXT NOT NULL,
         ended_at    TEXT,
         outcome     TEXT CHECK (outcome IN ('succeeded', 'failed', 'refused')),
         counts_json TEXT,
         CHECK ((ended_at IS NULL) = (outcome IS NULL))
     );
     CREATE TABLE writes (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         run_id      INTEGER NOT NULL REFERENCES runs (id),
         target      TEXT NOT NULL
                     CHECK (target IN ('user_skills', 'user_proficiencies', 'definition')),
         subject     TEXT NOT NULL,
         before_json TEXT NOT NULL,
         after_json  TEXT NOT NULL,
         status      TEXT NOT NULL CHECK (status IN ('applied', 'conflict', 'failed', 'unknown')),
         detail      TEXT,
         at          TEXT NOT NULL,
         settles_at  TEXT
     );
     CREATE INDEX writes_by_subject ON writes (subject, target, at);
     CREATE INDEX writes_by_run ON writes (run_id, status, settles_at);
     CREATE TABLE mappings (
         code          TEXT NOT NULL,
         locale        TEXT NOT NULL,
         kind          TEXT NOT NULL,
         definition_id TEXT NOT NULL,
         seen_at       TEXT NOT NULL,
         PRIMARY KEY (code, locale)
     ) WITHOUT ROWID;",
    // 2: routing-profile writes (retire strips profiles) and retirements. SQLite cannot alter a
    // CHECK constraint, so `writes` is rebuilt with its rows and ids.
    "CREATE TABLE writes_v2 (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         run_id      INTEGER NOT NULL REFERENCES runs (id),
         target      TEXT NOT NULL
                     CHECK (target IN ('user_skills', 'user_proficiencies', 'definition', 'profile')),
         subject     TEXT NOT NULL,
         before_json TEXT NOT NULL,
         after_json  TEXT NOT NULL,
         status      TEXT NOT NULL CHECK (status IN ('applied', 'conflict', 'failed', 'unknown')),
         detail      TEXT,
         at          TEXT NOT NULL,
         settles_at  TEXT
     );
     INSERT INTO writes_v2
         (id, run_id, target, subject, before_json, after_json, status, detail, at, settles_at)
         SELECT id, run_id, target, subject, before_json, after_json, status, detail, at, settles_at
         FROM writes;
     DROP TABLE writes;
     ALTER TABLE writes_v2 RENAME TO writes;
     CREATE INDEX writes_by_subject ON writes (subject, target, at);
     CREATE INDEX writes_by_run ON writes (run_id, status, settles_at);
     CREATE TABLE retirements (
         code                TEXT NOT NULL,
         locale              TEXT NOT NULL,
         kind                TEXT NOT NULL,
         name                TEXT NOT NULL,
         mode                TEXT NOT NULL CHECK (mode IN ('soft', 'hard')),
         definition_ids_json TEXT NOT NULL,
         run_id              INTEGER NOT NULL REFERENCES runs (id),
         retired_at          TEXT NOT NULL,
         PRIMARY KEY (code, locale)
     ) WITHOUT ROWID;",
    // 3: a run stopped by a signal is finished as interrupted. `runs` is rebuilt with its rows,
    // its ids and its id sequence (`writes` and `retirements` refer to it; `migrate` turns
    // foreign keys off around the rebuild and checks them before committing).
    "CREATE TABLE runs_v3 (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         command     TEXT NOT NULL,
         config_hash TEXT NOT NULL,
         dialect     TEXT NOT NULL,
         started_at  TEXT NOT NULL,
         ended_at    TEXT,
         outcome     TEXT CHECK (outcome IN ('succeeded', 'failed', 'refused', 'interrupted')),
         counts_json TEXT,
         CHECK ((ended_at IS NULL) = (outcome IS NULL))
     );
     INSERT INTO runs_v3
         (id, command, config_hash, dialect, started_at, ended_at, outcome, counts_json)
         SELECT id, command, config_hash, dialect, started_at, ended_at, outcome, counts_json
         FROM runs;
     DELETE FROM sqlite_sequence WHERE name = 'runs_v3';
     INSERT INTO sqlite_sequence (name, seq)
         SELECT 'runs_v3', seq FROM sqlite_sequence WHERE name = 'runs';
     DROP TABLE runs;
     ALTER TABLE runs_v3 RENAME TO runs;",
    // 4: one writer per tenant. A lease per key (API base + client id), its fencing number
    // raised at every acquisition; a run taken under a lease records its key and number (an
    // auditor can tell which writes were made under which lease).
    "CREATE TABLE leases (
         key         TEXT PRIMARY KEY,
         fence       INTEGER NOT NULL,
         host        TEXT NOT NULL,
         pid         INTEGER NOT NULL,
         command     TEXT NOT NULL,
         acquired_at TEXT NOT NULL,
         expires_at  TEXT NOT NULL
     ) WITHOUT ROWID;
     ALTER TABLE runs ADD COLUMN lease_key TEXT;
     ALTER TABLE runs ADD COLUMN fence INTEGER;",
    // 5: the queue of HRIS events `serve` receives (see `crate::events`). A settled event has
    // left the queue for good, so it holds no claim; an unsettled one has no settle time. The
    // indexes serve claiming (queued events of a lane in order), the overlay (applied events
    // after a time) and the status page (the newest received).
    "CREATE TABLE events (
         id            TEXT NOT NULL PRIMARY KEY,
         lane          TEXT NOT NULL CHECK (lane IN ('skills', 'proficiencies')),
         employee_id   TEXT NOT NULL,
         occurred_at   TEXT NOT NULL,
         received_at   TEXT NOT NULL,
         body          TEXT NOT NULL,
         state         TEXT NOT NULL
                       CHECK (state IN ('queued', 'applied', 'rejected', 'superseded')),
         reason        TEXT,
         run_id        INTEGER REFERENCES runs (id),
         settled_at    TEXT,
         attempts      INTEGER NOT NULL DEFAULT 0,
         claimed_by    TEXT,
         claimed_until TEXT,
         CHECK ((state = 'queued') = (settled_at IS NULL)),
         CHECK ((claimed_by IS NULL) = (claimed_until IS NULL)),
         CHECK (state = 'queued' OR claimed_by IS NULL)
     );
     CREATE INDEX events_to_claim ON events (state, lane, occurred_at, received_at, id);
     CREATE INDEX events_by_occurrence ON events (state, occurred_at, received_at, id);
     CREATE INDEX events_by_arrival ON events (received_at, id);",
    // 6: routing-strategy writes (retire strips strategies). `writes` is rebuilt as in 2, with
    // its rows, ids and id sequence.
    "CREATE TABLE writes_v6 (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         run_id      INTEGER NOT NULL REFERENCES runs (id),
         target      TEXT NOT NULL
                     CHECK (target IN ('user_skills', 'user_proficiencies', 'definition', 'profile', 'strategy')),
         subject     TEXT NOT NULL,
         before_json TEXT NOT NULL,
         after_json  TEXT NOT NULL,
         status      TEXT NOT NULL CHECK (status IN ('applied', 'conflict', 'failed', 'unknown')),
         detail      TEXT,
         at          TEXT NOT NULL,
         settles_at  TEXT
     );
     INSERT INTO writes_v6
         (id, run_id, target, subject, before_json, after_json, status, detail, at, settles_at)
         SELECT id, run_id, target, subject, before_json, after_json, status, detail, at, settles_at
         FROM writes;
     DELETE FROM sqlite_sequence WHERE name = 'writes_v6';
     INSERT INTO sqlite_sequence (name, seq)
         SELECT 'writes_v6', seq FROM sqlite_sequence WHERE name = 'writes';
     DROP TABLE writes;
     ALTER TABLE writes_v6 RENAME TO writes;
     CREATE INDEX writes_by_subject ON writes (subject, target, at);
     CREATE INDEX writes_by_run ON writes (run_id, status, settles_at);",
    // 7: the newest write per (subject, target), for `drift` and `why`, in a table of its own
    // filled once per run (`crate::row::FOLD_RUN_SQLITE`) instead of an index on every write: user
    // ids are random, so that index dirtied one page per journaled write at every commit, the
    // largest cost of journaling a 100,000-agent apply (docs/BENCHMARKS.md). A run is folded
    // when it finishes; until then (in progress, killed) readers scan its writes. Finished runs
    // of an existing journal are folded here; unfinished ones are left to be scanned, since an
    // older skillsync may still be writing them. From this version on, a user's lists before a
    // write may be stored against the lists written (`crate::row::before_json`), which an
    // older skillsync would misread: the version number keeps it out.
    "DROP INDEX writes_by_subject;
     CREATE TABLE last_writes (
         subject  TEXT NOT NULL,
         target   TEXT NOT NULL,
         at       TEXT NOT NULL,
         write_id INTEGER NOT NULL,
         PRIMARY KEY (subject, target)
     ) WITHOUT ROWID;
     ALTER TABLE runs ADD COLUMN folded INTEGER NOT NULL DEFAULT 0;
     INSERT INTO last_writes (subject, target, at, write_id)
         SELECT subject, target, at, id FROM (
             SELECT subject, target, at, id,
                    ROW_NUMBER() OVER (PARTITION BY subject, target ORDER BY at DESC, id DESC) AS n
             FROM writes WHERE run_id IN (SELECT id FROM runs WHERE ended_at IS NOT NULL)
         ) AS newest
         WHERE n = 1
         ORDER BY subject, target;
     UPDATE runs SET folded = 1 WHERE ended_at IS NOT NULL;",
    // 8: the same `writes`, its CHECKs spelled as comparisons. SQLite evaluates a CHECK's
    // `IN (…)` list by building a temporary index of the list for every row inserted, which was
    // a third of the instructions of journaling a write (docs/BENCHMARKS.md); `=` … `OR` checks
    // the same values without it. Rebuilt as in 6, with its rows, ids and id sequence.
    "CREATE TABLE writes_v8 (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         run_id      INTEGER NOT NULL REFERENCES runs (id),
         target      TEXT NOT NULL
                     CHECK (target = 'user_skills' OR target = 'user_proficiencies'
                            OR target = 'definition' OR target = 'profile' OR target = 'strategy'),
         subject     TEXT NOT NULL,
         before_json TEXT NOT NULL,
         after_json  TEXT NOT NULL,
         status      TEXT NOT NULL
                     CHECK (status = 'applied' OR status = 'conflict' OR status = 'failed'
                            OR status = 'unknown'),
         detail      TEXT,
         at          TEXT NOT NULL,
         settles_at  TEXT
     );
     INSERT INTO writes_v8
         (id, run_id, target, subject, before_json, after_json, status, detail, at, settles_at)
         SELECT id, run_id, target, subject, before_json, after_json, status, detail, at, settles_at
         FROM writes;
     DELETE FROM sqlite_sequence WHERE name = 'writes_v8';
     INSERT INTO sqlite_sequence (name, seq)
         SELECT 'writes_v8', seq FROM sqlite_sequence WHERE name = 'writes';
     DROP TABLE writes;
     ALTER TABLE writes_v8 RENAME TO writes;
     CREATE INDEX writes_by_run ON writes (run_id, status, settles_at);",
];

/// The journal in a SQLite database file (or in memory).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The path as given, for messages.
    path: String,
    /// Whether the connection commits with `synchronous=FULL` (the event queue's) rather than
    /// the journal's `NORMAL`.
    durable: bool,
    /// What the fold needs of each write this store journaled, per run not finished yet:
    /// `finish_run` folds a run from these instead of reading its rows back and sorting them
    /// (two thirds of the fold's cost), when they are all of the run's writes. A run finished
    /// through another store, or never, leaves its entries here until this store is dropped.
    unfolded: Mutex<HashMap<i64, Vec<Unfolded>>>,
}

/// A journaled write as [`SqliteStore::unfolded`] keeps it.
struct Unfolded {
    subject: String,
    target: &'static str,
    at: Arc<str>,
    id: i64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn text(&self, index: usize) -> rusqlite::Result<String> {
        self.get(index)
    }

    fn opt_text(&self, index: usize) -> rusqlite::Result<Option<String>> {
        self.get(index)
    }

    fn int(&self, index: usize) -> rusqlite::Result<i64> {
        self.get(index)
    }

    fn opt_int(&self, index: usize) -> rusqlite::Result<Option<i64>> {
        self.get(index)
    }
}

impl SqliteStore {
    /// Opens (creating if absent) the journal at `path` and brings its schema up to date.
    /// The directory must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path).map_err(open_err(&shown, "open the file"))?;
        Self::setup(conn, shown, true, false)
    }

    /// Opens the store at `path` as [`open`](Self::open) does, on a connection that commits
    /// with `synchronous=FULL`: every commit reaches the disk before it returns, so an event
    /// acknowledged to the HRIS survives a power loss. For the event queue, none of whose commits
    /// (an event acknowledged, an event settled) may be taken back; the journal keeps the
    /// cheaper `NORMAL`.
    pub fn open_durable(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path).map_err(open_err(&shown, "open the file"))?;
        Self::setup(conn, shown, true, true)
    }

    /// A private journal in memory, gone when dropped; for tests and demos.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(open_err(":memory:", "open it"))?;
        Self::setup(conn, ":memory:".into(), false, false)
    }

    fn setup(
        mut conn: Connection,
        path: String,
        file: bool,
        durable: bool,
    ) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(open_err(&path, "set busy_timeout"))?;
        if file {
            // Returns the mode in force; a file system without shared memory may refuse WAL,
            // and the journal still works in the default rollback mode.
            let _mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(open_err(&path, "set journal_mode=WAL"))?;
        }
        if durable {
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(open_err(&path, "set synchronous=FULL"))?;
        } else {
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(open_err(&path, "set synchronous=NORMAL"))?;
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err(&path, "enable foreign keys"))?;
        migrate(&mut conn, &path)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
            durable,
            unfolded: Mutex::default(),
        })
    }

    fn query_err(&self, action: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let path = self.path.clone();
        let action = action.into();
        move |source| StoreError::Query {
            path,
            action,
            source,
        }
    }

    /// The rows `sql` selects with `params`, each read by `read` and then decoded outside the
    /// lock by `decode`.
    fn select<R, T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
        decode: fn(R, &str) -> Result<T, StoreError>,
        action: &str,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.conn.lock();
        let raws = (|| {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params, read)?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(self.query_err(action))?;
        drop(conn);
        raws.into_iter()
            .map(|raw| decode(raw, &self.path))
            .collect()
    }

    fn select_runs(
        &self,
        tail: &str,
        param: i64,
        action: &str,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let sql = format!("{RUN_SELECT} {tail}");
        self.select(
            &sql,
            [param],
            |row| RawRun::read(row),
            RawRun::decode,
            action,
        )
    }

    fn select_writes(
        &self,
        tail: &str,
        params: impl rusqlite::Params,
        action: &str,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        let sql = format!("{WRITE_SELECT} {tail}");
        self.select(
            &sql,
            params,
            |row| RawWrite::read(row),
            RawWrite::decode,
            action,
        )
    }
}

impl SqliteStore {
    /// The newest write of kind `target` to each of `subjects` that has one: the folded entry
    /// of `last_writes` or a newer write of a run not folded yet, then those rows, read under
    /// one lock so that a fold in between cannot hide a write.
    fn newest_writes(
        &self,
        subjects: &[&str],
        target: WriteTarget,
        action: &str,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        let wanted: std::collections::HashSet<&str> = subjects.iter().copied().collect();
        let conn = self.conn.lock();
        let raws = (|| {
            let mut candidates: Vec<(String, String, i64)> = Vec::new();
            {
                let mut folded = conn.prepare_cached(
                    "SELECT at, write_id FROM last_writes WHERE subject = ?1 AND target = ?2",
                )?;
                for subject in &wanted {
                    let found = folded
                        .query_row(params![subject, target.as_str()], |row| {
                            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                        })
                        .optional()?;
                    if let Some((at, id)) = found {
                        candidates.push((subject.to_string(), at, id));
                    }
                }
            }
            {
                let mut unfolded = conn.prepare_cached(row::UNFOLDED_WRITES)?;
                let rows = unfolded.query_map([target.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
                for candidate in rows {
                    candidates.push(candidate?);
                }
            }
            let newest = row::newest_per_subject(&wanted, candidates);
            let mut ids: Vec<i64> = newest.into_values().map(|(_, id)| id).collect();
            ids.sort_unstable();
            let mut read = conn.prepare_cached(&format!("{WRITE_SELECT} WHERE id = ?1"))?;
            ids.into_iter()
                .map(|id| read.query_row([id], |row| RawWrite::read(row)))
                .collect::<Result<Vec<_>, _>>()
        })()
        .map_err(self.query_err(action))?;
        drop(conn);
        raws.into_iter().map(|raw| raw.decode(&self.path)).collect()
    }
}

/// A step of opening the journal failed.
fn open_err(path: &str, action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Open {
        path,
        action,
        source,
    }
}

/// Brings the schema to the newest version, one transaction for all pending migrations. Safe
/// when several processes open the same file at once: the version is re-read under the write
/// lock.
///
/// Migrations may rebuild tables that others refer to, so foreign keys are off while they run
/// (the pragma does nothing inside a transaction, hence here, around it) and, if they were on,
/// checked with `PRAGMA foreign_key_check` before committing and turned back on afterwards,
/// whatever happened.
fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    if schema_version(conn, path, known)? == known {
        return Ok(());
    }
    let enforced: bool = conn
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .map_err(open_err(path, "read the foreign_keys setting"))?;
    if enforced {
        conn.pragma_update(None, "foreign_keys", false)
            .map_err(open_err(path, "turn foreign keys off for the migration"))?;
    }
    let migrated = migrate_in_transaction(conn, path, known, enforced);
    if enforced {
        let restored = conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(open_err(path, "enable foreign keys"));
        migrated?;
        restored
    } else {
        migrated
    }
}

/// The schema version in `user_version`, refused if this build cannot use it.
fn schema_version(conn: &Connection, path: &str, known: i64) -> Result<i64, StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_err(path, "read the schema version"))?;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    if found < 0 {
        return Err(StoreError::NotAJournal {
            path: path.to_owned(),
            found,
        });
    }
    Ok(found)
}

fn migrate_in_transaction(
    conn: &mut Connection,
    path: &str,
    known: i64,
    check_foreign_keys: bool,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err(path, "start the schema migration"))?;
    let from = schema_version(&tx, path, known)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let version = index as i64 + 1;
        let migrate_err = |source| StoreError::Migrate {
            path: path.to_owned(),
            version,
            source,
        };
        tx.execute_batch(sql).map_err(migrate_err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_err)?;
    }
    if check_foreign_keys && from < known {
        let migrate_err = |source| StoreError::Migrate {
            path: path.to_owned(),
            version: known,
            source,
        };
        let violations = (|| {
            let mut stmt = tx.prepare("PRAGMA foreign_key_check")?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(migrate_err)?;
        if let Some((table, rowid, parent)) = violations.first().cloned() {
            return Err(StoreError::DanglingReference {
                path: path.to_owned(),
                version: known,
                table,
                rowid,
                parent,
                violations: violations.len(),
            });
        }
    }
    tx.commit().map_err(|source| StoreError::Migrate {
        path: path.to_owned(),
        version: known,
        source,
    })
}

type TxError = crate::error::TxError<rusqlite::Error>;

/// Rows per `INSERT` statement when journaling writes: a bulk request's 100 users in one,
/// 900 parameters, well under SQLite's limit of 32,766.
const INSERT_CHUNK: usize = 100;

/// `INSERT INTO writes` of `rows` rows, nine parameters each.
fn insert_writes_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO writes
             (run_id, target, subject, before_json, after_json, status, detail, at, settles_at)
         VALUES ",
    );
    for n in 0..rows {
        if n > 0 {
            sql.push(',');
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    sql
}

/// One write as its row's values.
struct WriteRow<'a> {
    run: i64,
    target: &'static str,
    subject: &'a str,
    before: String,
    after: String,
    status: &'static str,
    detail: Option<&'a str>,
    at: &'a str,
    settles_at: Option<&'a str>,
}

impl<'a> WriteRow<'a> {
    fn new(w: &'a WriteRecord, times: &'a TimeTexts) -> Self {
        WriteRow {
            run: w.run.0,
            target: w.target.as_str(),
            subject: &w.subject,
            before: row::before_json(&w.before, &w.after),
            after: row::after_json(&w.after),
            status: w.status.as_str(),
            detail: w.detail.as_deref(),
            at: times.text(w.at),
            settles_at: w.settles_at.map(|t| &**times.text(t)),
        }
    }
}

/// The stored text of each instant in a batch of writes, formatted once: a batch was
/// journaled at one instant and settles at one, so formatting each row's own was a tenth of
/// the cost of journaling it.
struct TimeTexts(std::collections::BTreeMap<Timestamp, Arc<str>>);

impl TimeTexts {
    fn of(writes: &[WriteRecord]) -> Self {
        let mut texts = std::collections::BTreeMap::new();
        for t in writes
            .iter()
            .flat_map(|w| std::iter::once(w.at).chain(w.settles_at))
        {
            texts.entry(t).or_insert_with(|| ts(t).into());
        }
        TimeTexts(texts)
    }

    fn text(&self, t: Timestamp) -> &Arc<str> {
        self.0
            .get(&t)
            .expect("every instant of the batch was formatted")
    }
}

/// Folds `run`'s writes into `last_writes` and marks it folded (see [`row::FOLD_RUN_SQLITE`]).
fn fold(tx: &rusqlite::Transaction<'_>, run: i64) -> Result<(), TxError> {
    tx.prepare_cached(row::FOLD_RUN_SQLITE)?.execute([run])?;
    tx.prepare_cached(row::MARK_FOLDED)?.execute([run])?;
    Ok(())
}

/// How many writes run `run` has in the journal.
fn writes_of(tx: &rusqlite::Transaction<'_>, run: i64) -> Result<usize, TxError> {
    let count: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM writes WHERE run_id = ?1")?
        .query_row([run], |row| row.get(0))?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// [`fold`] from the run's writes as this store journaled them, in the order
/// [`row::FOLD_RUN_SQLITE`] takes them: the same entries, without reading the rows back.
fn fold_journaled(
    tx: &rusqlite::Transaction<'_>,
    run: i64,
    mut writes: Vec<Unfolded>,
) -> Result<(), TxError> {
    writes.sort_unstable_by(|a, b| {
        (&a.subject, a.target, &a.at, a.id).cmp(&(&b.subject, b.target, &b.at, b.id))
    });
    for chunk in writes.chunks(INSERT_CHUNK) {
        let mut upsert = tx.prepare_cached(&upsert_last_writes_sql(chunk.len()))?;
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|w| -> [&dyn rusqlite::ToSql; 4] { [&w.subject, &w.target, &w.at, &w.id] })
            .collect();
        upsert.execute(values.as_slice())?;
    }
    tx.prepare_cached(row::MARK_FOLDED)?.execute([run])?;
    Ok(())
}

/// [`row::FOLD_RUN_SQLITE`]'s upsert of `rows` given rows.
fn upsert_last_writes_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO last_writes (subject, target, at, write_id) VALUES ");
    for n in 0..rows {
        if n > 0 {
            sql.push(',');
        }
        sql.push_str("(?, ?, ?, ?)");
    }
    sql.push(' ');
    sql.push_str(row::NEWER_WINS);
    sql
}

/// Runs `f` in one `IMMEDIATE` transaction on `conn`, committing if it succeeds.
fn transact<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, TxError>,
) -> Result<T, TxError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

impl SqliteStore {
    /// Runs `f` in one `IMMEDIATE` transaction, committing if it succeeds.
    fn write_tx<T>(
        &self,
        action: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock();
        transact(&mut conn, f).map_err(|e| self.tx_err(action, e))
    }

    fn tx_err(&self, action: &str, e: TxError) -> StoreError {
        match e {
            TxError::Sql(e) => self.query_err(action)(e),
            TxError::Store(e) => e,
        }
    }

    fn unknown_run(&self, run: i64) -> TxError {
        TxError::Store(StoreError::UnknownRun {
            path: self.path.clone(),
            run,
        })
    }
}

/// `now + ttl`, saturating: a lease cannot outlive the calendar.
fn lease_end(now: Timestamp, ttl: Duration) -> Timestamp {
    now.checked_add(jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// Leases by an explicit clock: one host's SQLite file has one clock, the machine's.
impl SqliteStore {
    /// [`Journal::acquire_lease`] at `now` by the caller's clock (tests move it).
    pub fn acquire_lease_at(
        &self,
        key: &str,
        holder: &LeaseHolder,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Acquired, StoreError> {
        let expires = lease_end(now, ttl);
        self.write_tx("acquire the tenant's lease", |tx| {
            let current = tx
                .query_row(
                    &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE key = ?1"),
                    [key],
                    |row| RawLease::read(row),
                )
                .optional()?;
            let fence = match current {
                Some(current) => {
                    let expires_at = current.expires_at(&self.path).map_err(TxError::Store)?;
                    if expires_at > now {
                        let held = current.decode(&self.path, key).map_err(TxError::Store)?;
                        return Ok(Acquired::Busy(held));
                    }
                    current.fence() + 1
                }
                None => 1,
            };
            tx.execute(
                "INSERT INTO leases (key, fence, host, pid, command, acquired_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (key) DO UPDATE SET fence = excluded.fence, host = excluded.host,
                     pid = excluded.pid, command = excluded.command,
                     acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                params![
                    key,
                    fence,
                    holder.host,
                    i64::from(holder.pid),
                    holder.command,
                    ts(now),
                    ts(expires)
                ],
            )?;
            Ok(Acquired::Held(Lease {
                key: key.to_string(),
                fence,
                holder: holder.clone(),
                acquired_at: now,
                expires_at: expires,
            }))
        })
    }

    /// [`Journal::renew_lease`] at `now` by the caller's clock.
    pub fn renew_lease_at(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let expires = lease_end(now, ttl);
        self.write_tx("renew the tenant's lease", |tx| {
            // Only while it is still ours: same fencing number, not yet expired.
            let renewed = tx.execute(
                "UPDATE leases SET expires_at = ?1 WHERE key = ?2 AND fence = ?3 AND expires_at > ?4",
                params![ts(expires), lease.key, lease.fence, ts(now)],
            )?;
            Ok((renewed == 1).then_some(expires))
        })
    }

    /// [`Journal::release_lease`] at `now` by the caller's clock.
    pub fn release_lease_at(&self, lease: &Lease, now: Timestamp) -> Result<(), StoreError> {
        self.write_tx("release the tenant's lease", |tx| {
            // Expired, not deleted: the fencing number must keep rising.
            tx.execute(
                "UPDATE leases SET expires_at = ?1 WHERE key = ?2 AND fence = ?3",
                params![ts(now), lease.key, lease.fence],
            )?;
            Ok(())
        })
    }
}

#[async_trait::async_trait]
impl Journal for SqliteStore {
    async fn start_run(&self, run: &NewRun) -> Result<RunId, StoreError> {
        self.write_tx("record the start of a run", |tx| {
            tx.execute(
                "INSERT INTO runs (command, config_hash, dialect, started_at) VALUES (?1, ?2, ?3, ?4)",
                params![run.command, run.config_hash, run.dialect, ts(run.started_at)],
            )?;
            Ok(RunId(tx.last_insert_rowid()))
        })
    }

    async fn record_writes(&self, writes: &[WriteRecord]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let action = format!("record {} write(s)", writes.len());
        // Serialized before the connection is locked: other callers wait only for SQLite.
        let times = TimeTexts::of(writes);
        let rows: Vec<WriteRow<'_>> = writes.iter().map(|w| WriteRow::new(w, &times)).collect();
        self.write_tx(&action, |tx| {
            let mut runs: Vec<i64> = writes.iter().map(|w| w.run.0).collect();
            runs.sort_unstable();
            runs.dedup();
            let mut folded_runs = Vec::new();
            {
                let mut folded = tx.prepare_cached("SELECT folded FROM runs WHERE id = ?1")?;
                for run in runs {
                    match folded
                        .query_row([run], |row| row.get::<_, bool>(0))
                        .optional()?
                    {
                        None => return Err(self.unknown_run(run)),
                        Some(true) => folded_runs.push(run),
                        Some(false) => {}
                    }
                }
            }
            // Many rows per statement: a statement's own cost (its cursors, its statement
            // journal, the AUTOINCREMENT counter read and written) is paid per chunk, not per
            // row.
            let mut journaled = Vec::with_capacity(rows.len());
            for (chunk, records) in rows.chunks(INSERT_CHUNK).zip(writes.chunks(INSERT_CHUNK)) {
                let mut insert = tx.prepare_cached(&insert_writes_sql(chunk.len()))?;
                let values: Vec<&dyn rusqlite::ToSql> = chunk
                    .iter()
                    .flat_map(|row| -> [&dyn rusqlite::ToSql; 9] {
                        [
                            &row.run,
                            &row.target,
                            &row.subject,
                            &row.before,
                            &row.after,
                            &row.status,
                            &row.detail,
                            &row.at,
                            &row.settles_at,
                        ]
                    })
                    .collect();
                insert.execute(values.as_slice())?;
                // One statement takes the next ids in order (AUTOINCREMENT, under the write
                // lock), so the last one names them all.
                let first = tx.last_insert_rowid() - chunk.len() as i64 + 1;
                journaled.extend(records.iter().zip(first..).map(|(w, id)| {
                    (
                        w.run.0,
                        Unfolded {
                            subject: w.subject.clone(),
                            target: w.target.as_str(),
                            at: Arc::clone(times.text(w.at)),
                            id,
                        },
                    )
                }));
            }
            // Writes journaled after their run was folded (a run that lost its lease finishing
            // what it had in flight) are folded at once, or `last_write` would miss them.
            for run in folded_runs {
                fold(tx, run)?;
            }
            Ok(journaled)
        })
        .map(|journaled| {
            let mut unfolded = self.unfolded.lock();
            for (run, write) in journaled {
                unfolded.entry(run).or_default().push(write);
            }
        })
    }

    async fn finish_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        counts: &RunCounts,
        ended_at: Timestamp,
    ) -> Result<(), StoreError> {
        let counts = to_json(counts);
        let unfolded = self.unfolded.lock().remove(&run.0);
        self.write_tx(&format!("record the end of run {run}"), |tx| {
            let ended: Option<Option<String>> = tx
                .query_row("SELECT ended_at FROM runs WHERE id = ?1", [run.0], |row| {
                    row.get(0)
                })
                .optional()?;
            row::check_unfinished(&self.path, run.0, ended).map_err(TxError::Store)?;
            tx.execute(
                "UPDATE runs SET ended_at = ?2, outcome = ?3, counts_json = ?4 WHERE id = ?1",
                params![run.0, ts(ended_at), outcome.as_str(), counts],
            )?;
            match unfolded {
                Some(writes) if writes.len() == writes_of(tx, run.0)? => {
                    fold_journaled(tx, run.0, writes)?
                }
                // Some of the run's writes were journaled elsewhere (another connection, a
                // store opened again): read them all back.
                _ => fold(tx, run.0)?,
            }
            Ok(())
        })
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select_runs("ORDER BY r.id DESC LIMIT ?1", limit, "list runs")
    }

    async fn run(&self, id: RunId) -> Result<Option<RunSummary>, StoreError> {
        let mut runs = self.select_runs("WHERE r.id = ?1", id.0, &format!("read run {id}"))?;
        Ok(runs.pop())
    }

    async fn writes(&self, run: RunId) -> Result<Vec<WriteRecord>, StoreError> {
        self.select_writes(
            "WHERE run_id = ?1 ORDER BY id",
            [run.0],
            &format!("read the writes of run {run}"),
        )
    }

    async fn last_write(
        &self,
        subject: &str,
        target: WriteTarget,
    ) -> Result<Option<WriteRecord>, StoreError> {
        let action = format!("read the last {target} write to {subject}");
        Ok(self.newest_writes(&[subject], target, &action)?.pop())
    }

    async fn last_writes(
        &self,
        subjects: &[&str],
        target: WriteTarget,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        let action = format!(
            "read the last {target} writes to {} subjects",
            subjects.len()
        );
        self.newest_writes(subjects, target, &action)
    }

    async fn settles_at(&self, run: RunId) -> Result<Option<Timestamp>, StoreError> {
        let conn = self.conn.lock();
        let text: Option<String> = conn
            .query_row(
                "SELECT MAX(settles_at) FROM writes WHERE run_id = ?1 AND status = 'applied'",
                [run.0],
                |row| row.get(0),
            )
            .map_err(self.query_err(format!("read when run {run} settles")))?;
        drop(conn);
        row::opt_timestamp(&self.path, "writes.settles_at", text)
    }

    async fn remember_mappings(&self, mappings: &[Mapping]) -> Result<(), StoreError> {
        if mappings.is_empty() {
            return Ok(());
        }
        let action = format!("remember {} mapping(s)", mappings.len());
        self.write_tx(&action, |tx| {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO mappings (code, locale, kind, definition_id, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (code, locale) DO UPDATE SET
                     kind = excluded.kind,
                     definition_id = excluded.definition_id,
                     seen_at = excluded.seen_at",
            )?;
            for m in mappings {
                upsert.execute(params![
                    m.code,
                    m.locale,
                    m.kind,
                    m.definition_id,
                    ts(m.seen_at)
                ])?;
            }
            Ok(())
        })
    }

    async fn mappings(&self) -> Result<Vec<Mapping>, StoreError> {
        self.select(
            MAPPINGS_SELECT,
            [],
            |row| RawMapping::read(row),
            RawMapping::decode,
            "read the mappings",
        )
    }

    async fn record_retirement(&self, retirement: &Retirement) -> Result<(), StoreError> {
        let action = format!(
            "record the retirement of {} ({})",
            retirement.code, retirement.locale
        );
        let ids = to_json(&retirement.definition_ids);
        self.write_tx(&action, |tx| {
            let started: bool = tx
                .prepare_cached("SELECT 1 FROM runs WHERE id = ?1")?
                .exists([retirement.run.0])?;
            if !started {
                return Err(self.unknown_run(retirement.run.0));
            }
            tx.execute(
                row::RETIREMENT_UPSERT,
                params![
                    retirement.code,
                    retirement.locale,
                    retirement.kind,
                    retirement.name,
                    retirement.mode.as_str(),
                    ids,
                    retirement.run.0,
                    ts(retirement.retired_at),
                ],
            )?;
            Ok(())
        })
    }

    async fn retirements(&self) -> Result<Vec<Retirement>, StoreError> {
        self.select(
            RETIREMENTS_SELECT,
            [],
            |row| RawRetirement::read(row),
            RawRetirement::decode,
            "read the retirements",
        )
    }

    async fn forget_retirement(&self, code: &str, locale: &str) -> Result<bool, StoreError> {
        let action = format!("forget the retirement of {code} ({locale})");
        self.write_tx(&action, |tx| {
            let removed = tx.execute(
                "DELETE FROM retirements WHERE code = ?1 AND locale = ?2",
                params![code, locale],
            )?;
            Ok(removed > 0)
        })
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<Acquired, StoreError> {
        self.acquire_lease_at(key, holder, ttl, Timestamp::now())
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.renew_lease_at(lease, ttl, Timestamp::now())
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.release_lease_at(lease, Timestamp::now())
    }

    async fn fence_run(&self, run: RunId, lease: &Lease) -> Result<(), StoreError> {
        self.write_tx("record the run's lease", |tx| {
            let updated = tx.execute(
                "UPDATE runs SET lease_key = ?1, fence = ?2 WHERE id = ?3",
                params![lease.key, lease.fence, run.0],
            )?;
            if updated == 0 {
                return Err(self.unknown_run(run.0));
            }
            let dead: Vec<i64> = {
                let mut stmt = tx.prepare_cached(row::DEAD_UNFOLDED_RUNS)?;
                let rows = stmt.query_map(params![lease.key, lease.fence], |row| row.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            for run in dead {
                fold(tx, run)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InvalidValue, Snapshot, WriteTarget};
    use serde_json::Value;

    #[tokio::test]
    async fn stored_timestamps_sort_as_text() {
        let whole = Timestamp::from_second(1_700_000_000).unwrap();
        let later = whole
            .checked_add(jiff::SignedDuration::from_nanos(500))
            .unwrap();
        assert_eq!(ts(whole), "2023-11-14T22:13:20.000000000Z");
        assert!(ts(whole) < ts(later));
        assert_eq!(ts(later).parse::<Timestamp>().unwrap(), later);
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let store = SqliteStore::in_memory().unwrap();
        let mut conn = store.conn.into_inner();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn, ":memory:").unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[tokio::test]
    async fn migration_2_keeps_the_writes_of_a_version_1_journal_and_accepts_profile_writes() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (command, config_hash, dialect, started_at)
                 VALUES ('apply', 'h', 'routing', '2025-01-01T00:00:00.000000000Z');
             INSERT INTO writes (run_id, target, subject, before_json, after_json, status, at)
                 VALUES (1, 'user_skills', 'u1', 'null', '[]', 'applied',
                         '2025-01-01T00:00:01.000000000Z');",
        )
        .unwrap();
        migrate(&mut conn, ":memory:").unwrap();
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: ":memory:".into(),
            durable: false,
            unfolded: Mutex::default(),
        };
        let kept = store.writes(RunId(1)).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].subject, "u1");
        assert_eq!(kept[0].before, Snapshot::Legacy { value: Value::Null });
        assert_eq!(
            kept[0].after,
            Snapshot::Legacy {
                value: serde_json::json!([])
            }
        );
        let profile_write = WriteRecord {
            target: WriteTarget::Profile,
            subject: "p1".into(),
            ..kept[0].clone()
        };
        store.record_writes(&[profile_write]).await.unwrap();
        let targets: Vec<WriteTarget> = store
            .writes(RunId(1))
            .await
            .unwrap()
            .iter()
            .map(|w| w.target)
            .collect();
        assert_eq!(targets, [WriteTarget::UserSkills, WriteTarget::Profile]);
    }

    /// A directory under the system temp dir, unique per process and test, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("skillsync-sqlite-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn db(&self) -> std::path::PathBuf {
            self.0.join("journal.db")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A journal file at schema version 2, as the previous skillsync left it (written with
    /// foreign keys on, as it did), with `rows` run in it.
    fn version_2_file(path: &Path, rows: &str) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(rows).unwrap();
    }

    fn store_on(conn: Connection) -> SqliteStore {
        SqliteStore {
            conn: Mutex::new(conn),
            path: ":memory:".into(),
            durable: false,
            unfolded: Mutex::default(),
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_750_000_000 + seconds).unwrap()
    }

    #[tokio::test]
    async fn migration_3_keeps_a_version_2_journal_and_stores_interrupted_runs() {
        let dir = TempDir::new("migration-3");
        version_2_file(
            &dir.db(),
            "INSERT INTO runs (command, config_hash, dialect, started_at, ended_at, outcome,
                               counts_json)
                 VALUES ('apply', 'h1', 'routing', '2025-01-01T00:00:00.000000000Z',
                         '2025-01-01T00:01:00.000000000Z', 'failed',
                         '{\"usersUpdated\": 2, \"usersFailed\": 1, \"definitionsCreated\": 0}');
             INSERT INTO runs (command, config_hash, dialect, started_at)
                 VALUES ('retire', 'h2', 'users', '2025-01-02T00:00:00.000000000Z');
             INSERT INTO runs (command, config_hash, dialect, started_at)
                 VALUES ('plan', 'h3', 'users', '2025-01-03T00:00:00.000000000Z');
             DELETE FROM runs WHERE id = 3;
             INSERT INTO writes (run_id, target, subject, before_json, after_json, status, at,
                                 settles_at)
                 VALUES (1, 'user_skills', 'u1', '[{\"skillId\": 1}]',
                         '{\"version\": 4, \"skills\": []}', 'applied',
                         '2025-01-01T00:00:01.000000000Z', '2025-01-01T00:00:31.000000000Z'),
                        (2, 'profile', 'p1', 'null', '{\"skills\": [\"d1\"]}', 'failed',
                         '2025-01-02T00:00:01.000000000Z', NULL);
             INSERT INTO retirements (code, locale, kind, name, mode, definition_ids_json,
                                      run_id, retired_at)
                 VALUES ('ACW', 'de-de', 'skill', 'ACW', 'soft', '[\"d1\"]', 2,
                         '2025-01-02T00:00:02.000000000Z');
             INSERT INTO mappings (code, locale, kind, definition_id, seen_at)
                 VALUES ('ACW', 'de-de', 'skill', 'd1', '2025-01-02T00:00:03.000000000Z');",
        );

        let store = SqliteStore::open(&dir.db()).unwrap();
        {
            let conn = store.conn.lock();
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .unwrap();
            assert_eq!(version, MIGRATIONS.len() as i64);
            let enforced: bool = conn
                .pragma_query_value(None, "foreign_keys", |row| row.get(0))
                .unwrap();
            assert!(enforced, "foreign keys are back on after the migration");
            // The children still refer to the rebuilt table, and the reference is enforced.
            for child in ["writes", "retirements"] {
                let parent: String = conn
                    .query_row(
                        &format!("SELECT \"table\" FROM pragma_foreign_key_list('{child}')"),
                        [],
                        |row| row.get(0),
                    )
                    .unwrap();
                assert_eq!(parent, "runs", "{child}");
            }
            let dangling = conn.execute(
                "INSERT INTO writes (run_id, target, subject, before_json, after_json, status, at)
                 VALUES (77, 'profile', 'p', 'null', 'null', 'failed', 'x')",
                [],
            );
            assert!(dangling.is_err(), "a write to a missing run is refused");
        }

        let runs = store.runs(10).await.unwrap();
        let ids: Vec<i64> = runs.iter().map(|r| r.id.0).collect();
        assert_eq!(ids, [2, 1]);
        let (retire, apply) = (&runs[0], &runs[1]);
        assert_eq!(apply.command, "apply");
        assert_eq!(apply.config_hash, "h1");
        assert_eq!(apply.outcome, RunOutcome::Failed);
        assert_eq!(
            apply.ended_at,
            Some("2025-01-01T00:01:00Z".parse().unwrap())
        );
        assert_eq!(
            apply.counts,
            Some(RunCounts {
                users_updated: 2,
                users_failed: 1,
                ..RunCounts::default()
            })
        );
        assert_eq!(apply.writes, 1);
        assert_eq!(
            apply.settles_at,
            Some("2025-01-01T00:00:31Z".parse().unwrap())
        );
        assert_eq!(retire.outcome, RunOutcome::Interrupted);
        assert_eq!((retire.ended_at, &retire.counts), (None, &None));
        assert_eq!(retire.dialect, "users");
        let writes = store.writes(RunId(1)).await.unwrap();
        assert_eq!(
            (&writes[0].subject, &writes[0].before),
            (
                &"u1".to_owned(),
                &Snapshot::Legacy {
                    value: serde_json::json!([{"skillId": 1}])
                }
            )
        );
        assert_eq!(
            store.writes(RunId(2)).await.unwrap()[0].target,
            WriteTarget::Profile
        );
        assert_eq!(store.retirements().await.unwrap()[0].run, RunId(2));
        assert_eq!(store.mappings().await.unwrap()[0].definition_id, "d1");

        // The unfinished run can now be finished as interrupted, with its counts.
        let counts = RunCounts {
            profiles_updated: 1,
            requests: 9,
            stopped: Some("interrupted by Ctrl-C".into()),
            ..RunCounts::default()
        };
        store
            .finish_run(RunId(2), RunOutcome::Interrupted, &counts, at(0))
            .await
            .unwrap();
        let retire = store.run(RunId(2)).await.unwrap().unwrap();
        assert_eq!(retire.outcome, RunOutcome::Interrupted);
        assert_eq!(retire.ended_at, Some(at(0)));
        assert_eq!(retire.counts, Some(counts));

        // Ids carry on from the old sequence: run 3 was deleted, and is not handed out again.
        let next = store
            .start_run(&NewRun {
                command: "apply".into(),
                config_hash: "h4".into(),
                started_at: at(1),
                dialect: "routing".into(),
            })
            .await
            .unwrap();
        assert_eq!(next, RunId(4));
        drop(store);
        // Opening again migrates nothing and keeps everything.
        let store = SqliteStore::open(&dir.db()).unwrap();
        assert_eq!(store.runs(10).await.unwrap().len(), 3);
    }

    /// A journal at schema version 6 (the last with an index on every write), as the previous
    /// skillsync left it: one finished run, one killed mid-way.
    fn version_6_file(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        for migration in &MIGRATIONS[..6] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        let user = |level: u8| {
            format!(
                r#"{{"type":"user","version":1,"skills":[{{"definitionId":"d1","level":{level},"active":true}}],"proficiencies":null}}"#
            )
        };
        conn.execute_batch(
            "INSERT INTO runs (command, config_hash, dialect, started_at, ended_at, outcome,
                               counts_json)
                 VALUES ('apply', 'h1', 'routing', '2025-01-01T00:00:00.000000000Z',
                         '2025-01-01T00:01:00.000000000Z', 'succeeded', '{}');
             INSERT INTO runs (command, config_hash, dialect, started_at)
                 VALUES ('apply', 'h1', 'routing', '2025-01-02T00:00:00.000000000Z');",
        )
        .unwrap();
        let mut insert = conn
            .prepare(
                "INSERT INTO writes (run_id, target, subject, before_json, after_json, status,
                                     at, settles_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
            )
            .unwrap();
        for (run, target, subject, level, status, at) in [
            (
                1,
                "user_skills",
                "u1",
                2,
                "conflict",
                "2025-01-01T00:00:01.000000000Z",
            ),
            (
                1,
                "user_skills",
                "u1",
                3,
                "applied",
                "2025-01-01T00:00:02.000000000Z",
            ),
            (
                1,
                "user_skills",
                "u2",
                4,
                "applied",
                "2025-01-01T00:00:03.000000000Z",
            ),
            (
                1,
                "user_proficiencies",
                "u2",
                5,
                "failed",
                "2025-01-01T00:00:04.000000000Z",
            ),
            // The killed run: newer for u1, the only one for u3.
            (
                2,
                "user_skills",
                "u1",
                6,
                "applied",
                "2025-01-02T00:00:01.000000000Z",
            ),
            (
                2,
                "user_skills",
                "u3",
                7,
                "unknown",
                "2025-01-02T00:00:02.000000000Z",
            ),
        ] {
            insert
                .execute(params![
                    run,
                    target,
                    subject,
                    user(1),
                    user(level),
                    status,
                    at
                ])
                .unwrap();
        }
    }

    fn level(write: &WriteRecord) -> u8 {
        write.after.user().unwrap().skills.as_ref().unwrap()[0].level
    }

    #[tokio::test]
    async fn migration_7_answers_last_write_as_the_per_write_index_did() {
        let dir = TempDir::new("migration-7");
        version_6_file(&dir.db());
        let store = SqliteStore::open(&dir.db()).unwrap();
        {
            let conn = store.conn.lock();
            let folded: Vec<(i64, bool)> = conn
                .prepare("SELECT id, folded FROM runs ORDER BY id")
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(folded, [(1, true), (2, false)], "only the finished run");
            let index: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'writes_by_subject'",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(index, 0, "no index keyed by user is left to maintain");
            let entries: Vec<(String, String, i64)> = conn
                .prepare(
                    "SELECT subject, target, write_id FROM last_writes ORDER BY subject, target",
                )
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                entries,
                [
                    ("u1".into(), "user_skills".into(), 2),
                    ("u2".into(), "user_proficiencies".into(), 4),
                    ("u2".into(), "user_skills".into(), 3),
                ]
            );
        }
        let last = |subject: &'static str, target| {
            let store = &store;
            async move { store.last_write(subject, target).await.unwrap() }
        };
        // The killed run's newer write wins over the folded one; the killed run's only write
        // is found though it was never folded.
        let u1 = last("u1", WriteTarget::UserSkills).await.unwrap();
        assert_eq!((u1.run, level(&u1)), (RunId(2), 6));
        let u2 = last("u2", WriteTarget::UserSkills).await.unwrap();
        assert_eq!(
            (u2.run, level(&u2), u2.status),
            (RunId(1), 4, crate::WriteStatus::Applied)
        );
        let u2 = last("u2", WriteTarget::UserProficiencies).await.unwrap();
        assert_eq!(u2.status, crate::WriteStatus::Failed);
        let u3 = last("u3", WriteTarget::UserSkills).await.unwrap();
        assert_eq!((u3.run, u3.status), (RunId(2), crate::WriteStatus::Unknown));
        assert_eq!(last("u4", WriteTarget::UserSkills).await, None);
        let mut many = store
            .last_writes(&["u1", "u2", "u3", "u4"], WriteTarget::UserSkills)
            .await
            .unwrap();
        many.sort_by(|a, b| a.subject.cmp(&b.subject));
        let found: Vec<(&str, i64, u8)> = many
            .iter()
            .map(|w| (w.subject.as_str(), w.run.0, level(w)))
            .collect();
        assert_eq!(found, [("u1", 2, 6), ("u2", 1, 4), ("u3", 2, 7)]);
        // The old runs read as before.
        assert_eq!(store.writes(RunId(1)).await.unwrap().len(), 4);
        assert_eq!(store.run(RunId(2)).await.unwrap().unwrap().writes, 2);
    }

    /// The same writes, as one run after another whose newest write to `u1` is later than
    /// some of this run's: out of order, ties on `at`, several targets, batches of every size.
    async fn journal_two_runs(store: &SqliteStore) -> RunId {
        let new_run = || NewRun {
            command: "apply".into(),
            config_hash: "h".into(),
            started_at: at(0),
            dialect: "routing".into(),
        };
        let write = |run: RunId, subject: &str, target, seconds| WriteRecord {
            run,
            target,
            subject: subject.into(),
            before: crate::Snapshot::Absent,
            after: crate::Snapshot::Absent,
            status: crate::WriteStatus::Applied,
            detail: None,
            at: at(seconds),
            settles_at: None,
        };
        let (skills, proficiencies) = (WriteTarget::UserSkills, WriteTarget::UserProficiencies);
        let earlier = store.start_run(&new_run()).await.unwrap();
        store
            .record_writes(&[
                write(earlier, "u1", skills, 50),
                write(earlier, "u2", skills, 1),
            ])
            .await
            .unwrap();
        store
            .finish_run(
                earlier,
                RunOutcome::Succeeded,
                &RunCounts::default(),
                at(60),
            )
            .await
            .unwrap();
        let run = store.start_run(&new_run()).await.unwrap();
        let batches = [
            vec![write(run, "u3", skills, 10), write(run, "u1", skills, 40)],
            vec![
                write(run, "u3", skills, 5),
                write(run, "u2", proficiencies, 7),
            ],
            (0..250)
                .map(|n| write(run, &format!("v{}", n % 70), skills, 20 + n / 100))
                .collect(),
            vec![write(run, "u3", skills, 10), write(run, "u2", skills, 2)],
        ];
        for batch in batches {
            store.record_writes(&batch).await.unwrap();
        }
        run
    }

    fn last_writes_table(path: &Path) -> Vec<(String, String, String, i64)> {
        let conn = Connection::open(path).unwrap();
        conn.prepare("SELECT subject, target, at, write_id FROM last_writes ORDER BY 1, 2")
            .unwrap()
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A run folded from the writes its store journaled leaves `last_writes` exactly as folding
    /// it from its rows does (the only way for a run whose writes another store journaled).
    #[tokio::test]
    async fn a_run_folded_from_memory_gives_the_entries_its_rows_give() {
        let dir = TempDir::new("fold-from-memory");
        let (from_memory, from_rows) = (dir.0.join("memory.db"), dir.0.join("rows.db"));
        for path in [&from_memory, &from_rows] {
            let store = SqliteStore::open(path).unwrap();
            let run = journal_two_runs(&store).await;
            let store = if *path == from_rows {
                drop(store);
                SqliteStore::open(path).unwrap()
            } else {
                assert_eq!(store.unfolded.lock()[&run.0].len(), 256);
                store
            };
            store
                .finish_run(run, RunOutcome::Succeeded, &RunCounts::default(), at(90))
                .await
                .unwrap();
            assert!(store.unfolded.lock().is_empty());
        }
        let entries = last_writes_table(&from_memory);
        assert_eq!(entries, last_writes_table(&from_rows));
        let entry = |subject: &str, target: &str| {
            entries
                .iter()
                .find(|e| e.0 == subject && e.1 == target)
                .map(|e| (e.2.clone(), e.3))
                .unwrap()
        };
        // The earlier run's newer write stays; a tie on `at` goes to the later write.
        assert_eq!(entry("u1", "user_skills"), (ts(at(50)), 1));
        assert_eq!(entry("u3", "user_skills"), (ts(at(10)), 257));
        assert_eq!(entry("u2", "user_skills"), (ts(at(2)), 258));
        assert_eq!(entry("u2", "user_proficiencies"), (ts(at(7)), 6));
        assert_eq!(entries.len(), 4 + 70);
    }

    #[tokio::test]
    async fn migration_8_keeps_every_write_and_its_id_and_still_refuses_unknown_values() {
        let dir = TempDir::new("migration-8");
        version_6_file(&dir.db());
        {
            let conn = Connection::open(dir.db()).unwrap();
            conn.execute_batch(MIGRATIONS[6]).unwrap();
            conn.pragma_update(None, "user_version", 7).unwrap();
        }
        let store = SqliteStore::open(&dir.db()).unwrap();
        let ids_and_statuses = |conn: &Connection| -> Vec<(i64, i64, String)> {
            conn.prepare("SELECT id, run_id, status FROM writes ORDER BY id")
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        {
            let conn = store.conn.lock();
            let rows = ids_and_statuses(&conn);
            assert_eq!(rows.len(), 6);
            assert_eq!(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                [1, 2, 3, 4, 5, 6]
            );
            assert_eq!(rows[3], (4, 1, "failed".into()));
            // Still checked, as every version before: a value no skillsync writes is refused.
            for (target, status) in [("bogus", "applied"), ("user_skills", "bogus")] {
                let refused = conn.execute(
                    "INSERT INTO writes (run_id, target, subject, before_json, after_json,
                                         status, at)
                     VALUES (1, ?1, 'u9', '{}', '{}', ?2, '2025-01-03T00:00:00.000000000Z')",
                    params![target, status],
                );
                assert!(
                    refused.is_err_and(|e| e.to_string().contains("CHECK")),
                    "{target}/{status}"
                );
            }
            // …without a temporary index of the allowed values built for every row.
            let opcodes: Vec<String> = conn
                .prepare(&format!(
                    "EXPLAIN {}",
                    insert_writes_sql(2).replace('?', "NULL")
                ))
                .unwrap()
                .query_map([], |row| row.get::<_, String>(1))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(opcodes.iter().any(|op| op == "Insert"));
            assert!(
                !opcodes.iter().any(|op| op == "OpenEphemeral"),
                "{opcodes:?}"
            );
        }
        let last = store
            .last_write("u2", WriteTarget::UserProficiencies)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.status, crate::WriteStatus::Failed);
        // The id sequence goes on where it was.
        store
            .record_writes(&[WriteRecord {
                run: RunId(2),
                target: WriteTarget::UserSkills,
                subject: "u4".into(),
                before: crate::Snapshot::Absent,
                after: crate::Snapshot::Absent,
                status: crate::WriteStatus::Applied,
                detail: None,
                at: at(1),
                settles_at: None,
            }])
            .await
            .unwrap();
        let conn = store.conn.lock();
        assert_eq!(ids_and_statuses(&conn).last().unwrap().0, 7);
    }

    #[tokio::test]
    async fn a_migration_that_would_leave_a_dangling_reference_is_refused() {
        let dir = TempDir::new("dangling");
        version_2_file(
            &dir.db(),
            "PRAGMA foreign_keys = OFF;
             INSERT INTO writes (run_id, target, subject, before_json, after_json, status, at)
                 VALUES (5, 'user_skills', 'u1', 'null', 'null', 'applied',
                         '2025-01-01T00:00:01.000000000Z');",
        );
        let err = SqliteStore::open(&dir.db()).unwrap_err();
        match &err {
            StoreError::DanglingReference {
                version,
                table,
                rowid,
                parent,
                violations,
                ..
            } => {
                assert_eq!(*version, MIGRATIONS.len() as i64);
                assert_eq!(
                    (table.as_str(), *rowid, parent.as_str(), *violations),
                    ("writes", Some(1), "runs", 1)
                );
            }
            other => panic!("{other}"),
        }
        assert!(
            err.to_string()
                .contains("writes row 1 refers to a runs row"),
            "{err}"
        );
        let conn = Connection::open(dir.db()).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, 2, "left at the previous version");
        let outcome_check: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'runs'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(
            !outcome_check.contains("interrupted"),
            "runs was not rebuilt"
        );
    }

    #[tokio::test]
    async fn an_invalid_schema_version_is_not_a_journal() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", -3).unwrap();
        let err = migrate(&mut conn, ":memory:").unwrap_err();
        assert!(
            matches!(err, StoreError::NotAJournal { found: -3, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn snapshots_that_are_json_but_not_typed_read_as_legacy_and_bad_json_is_corrupt() {
        let store = SqliteStore::in_memory().unwrap();
        store
            .conn
            .lock()
            .execute_batch(
                "INSERT INTO runs (command, config_hash, dialect, started_at)
                     VALUES ('apply', 'h', 'routing', '2025-01-01T00:00:00.000000000Z');
                 INSERT INTO writes (run_id, target, subject, before_json, after_json, status, at)
                     VALUES (1, 'user_skills', 'u1', '{\"type\": \"user\", \"version\": 2}',
                             '{\"version\": 3, \"skills\": [{\"skillId\": 7}]}', 'applied',
                             '2025-01-01T00:00:01.000000000Z'),
                            (1, 'definition', 'd1', '{\"type\": \"absent\"}',
                             '{\"type\": \"skill\", \"id\": \"d1\"}', 'applied',
                             '2025-01-01T00:00:02.000000000Z'),
                            (1, 'definition', 'd2', '\"text\"', '42', 'failed',
                             '2025-01-01T00:00:03.000000000Z');",
            )
            .unwrap();
        let writes = store.writes(RunId(1)).await.unwrap();
        let pairs: Vec<(Snapshot, Snapshot)> =
            writes.into_iter().map(|w| (w.before, w.after)).collect();
        let legacy = |value| Snapshot::Legacy { value };
        assert_eq!(
            pairs,
            [
                (
                    Snapshot::User(crate::UserLists {
                        version: Some(2),
                        ..Default::default()
                    }),
                    legacy(serde_json::json!({"version": 3, "skills": [{"skillId": 7}]})),
                ),
                (
                    Snapshot::Absent,
                    legacy(serde_json::json!({"type": "skill", "id": "d1"})),
                ),
                (
                    legacy(serde_json::json!("text")),
                    legacy(serde_json::json!(42))
                ),
            ]
        );

        store
            .conn
            .lock()
            .execute_batch(
                "INSERT INTO writes (run_id, target, subject, before_json, after_json, status, at)
                     VALUES (1, 'user_skills', 'u2', 'null', '{not json', 'applied',
                             '2025-01-01T00:00:04.000000000Z');",
            )
            .unwrap();
        let err = store.writes(RunId(1)).await.unwrap_err();
        match &err {
            StoreError::Corrupt {
                what: "writes.after_json",
                value,
                source: InvalidValue::Json(_),
                ..
            } => assert_eq!(value, "{not json"),
            other => panic!("{other}"),
        }
        let cause = std::error::Error::source(&err)
            .and_then(std::error::Error::source)
            .expect("the parser's error is in the chain");
        assert!(
            cause.downcast_ref::<serde_json::Error>().is_some(),
            "{cause}"
        );
    }

    #[tokio::test]
    async fn counts_are_read_leniently() {
        let store = SqliteStore::in_memory().unwrap();
        let stored = [
            // As the untyped apply wrote them: the same names.
            r#"{"definitionsCreated": 1, "usersUpdated": 5, "usersFailed": 2, "requests": 40}"#,
            // A failed apply: its reason was `error`.
            r#"{"error": "the tenant refused the token"}"#,
            // Retire: unknown names are ignored, a null error is no reason.
            r#"{"mode": "soft", "usersStripped": 3, "conflicts": 1, "error": null}"#,
            // A field of the wrong type is dropped, the rest kept.
            r#"{"usersUpdated": "five", "requests": 4, "stopped": 7}"#,
            // Not an object: no counts.
            "null",
            "[1, 2]",
            r#""done""#,
        ];
        {
            let conn = store.conn.lock();
            for counts in stored {
                conn.execute(
                    "INSERT INTO runs (command, config_hash, dialect, started_at, ended_at,
                                       outcome, counts_json)
                     VALUES ('apply', 'h', 'routing', '2025-01-01T00:00:00.000000000Z',
                             '2025-01-01T00:00:09.000000000Z', 'succeeded', ?1)",
                    [counts],
                )
                .unwrap();
            }
        }
        let mut runs = store.runs(100).await.unwrap();
        runs.reverse();
        let counts: Vec<Option<RunCounts>> = runs.into_iter().map(|r| r.counts).collect();
        assert_eq!(
            counts,
            [
                Some(RunCounts {
                    definitions_created: 1,
                    users_updated: 5,
                    users_failed: 2,
                    requests: 40,
                    ..RunCounts::default()
                }),
                Some(RunCounts {
                    stopped: Some("the tenant refused the token".into()),
                    ..RunCounts::default()
                }),
                Some(RunCounts {
                    conflicts: 1,
                    ..RunCounts::default()
                }),
                Some(RunCounts {
                    requests: 4,
                    ..RunCounts::default()
                }),
                None,
                None,
                None,
            ]
        );

        store
            .conn
            .lock()
            .execute_batch(
                "INSERT INTO runs (command, config_hash, dialect, started_at, ended_at, outcome,
                                   counts_json)
                 VALUES ('apply', 'h', 'routing', '2025-01-01T00:00:00.000000000Z',
                         '2025-01-01T00:00:09.000000000Z', 'succeeded', '{\"requests\": ');",
            )
            .unwrap();
        let err = store.runs(100).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    what: "runs.counts_json",
                    source: InvalidValue::Json(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn corrupt_values_carry_their_typed_cause() {
        let store = SqliteStore::in_memory().unwrap();
        store
            .conn
            .lock()
            .execute_batch(
                "INSERT INTO runs (command, config_hash, dialect, started_at)
                     VALUES ('apply', 'h', 'routing', 'yesterday');",
            )
            .unwrap();
        let err = store.run(RunId(1)).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Corrupt {
                    what: "runs.started_at",
                    source: InvalidValue::Timestamp(_),
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "journal at :memory:: runs.started_at holds \"yesterday\", which is not valid"
        );
        let cause = std::error::Error::source(&err)
            .and_then(std::error::Error::source)
            .unwrap();
        assert!(cause.downcast_ref::<jiff::Error>().is_some(), "{cause}");

        // Written by something else: a name this build does not know.
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, command TEXT, config_hash TEXT,
                                dialect TEXT, started_at TEXT, ended_at TEXT, outcome TEXT,
                                counts_json TEXT);
             CREATE TABLE writes (run_id INTEGER, status TEXT, settles_at TEXT);
             INSERT INTO runs VALUES (1, 'apply', 'h', 'routing',
                                      '2025-01-01T00:00:00.000000000Z',
                                      '2025-01-01T00:00:01.000000000Z', 'cancelled', '{}');",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
            .unwrap();
        migrate(&mut conn, ":memory:").unwrap();
        let err = store_on(conn).run(RunId(1)).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Corrupt {
                    what: "runs.outcome",
                    source: InvalidValue::Unexpected { .. },
                    ..
                }
            ),
            "{err}"
        );
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(cause, "expected succeeded, failed, refused or interrupted");
    }

    #[tokio::test]
    async fn database_errors_are_the_source_and_the_message_says_what_was_done() {
        let store = SqliteStore::in_memory().unwrap();
        store
            .conn
            .lock()
            .execute_batch("DROP TABLE mappings")
            .unwrap();
        let err = store.mappings().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "journal at :memory:: cannot read the mappings"
        );
        let StoreError::Query { source, .. } = &err else {
            panic!("{err}")
        };
        assert!(source.to_string().contains("no such table"), "{source}");
    }
}

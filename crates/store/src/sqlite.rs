//! The SQLite journal.
//!
//! One connection behind a mutex; WAL mode with `synchronous=NORMAL` (a committed write
//! survives a killed process; only a power loss can take back the last commits, never corrupt
//! the file); a busy timeout so that two skillsync processes sharing a file wait for each other
//! instead of failing. Every write is an `IMMEDIATE` transaction, so a writer takes the lock up
//! front and never fails half-way on an upgrade.
//!
//! The schema is built by numbered migrations; the number applied is kept in the `user_version`
//! pragma. To change the schema, append to [`MIGRATIONS`]; never edit one that has shipped.
//!
//! Timestamps are stored as RFC 3339 text in UTC with exactly nine fractional digits
//! (`2025-01-02T03:04:05.000000000Z`), so that text order is time order and `MAX`/`ORDER BY`
//! work on them. JSON is stored as text.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{
    Journal, Mapping, NewRun, Retirement, RetirementMode, RunId, RunOutcome, RunSummary,
    StoreError, WriteRecord, WriteStatus, WriteTarget,
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
];

/// The columns of a [`RunSummary`], with the write count and settle time computed.
const RUN_SELECT: &str =
    "SELECT r.id, r.command, r.config_hash, r.dialect, r.started_at, r.ended_at,
            r.outcome, r.counts_json,
            (SELECT COUNT(*) FROM writes w WHERE w.run_id = r.id),
            (SELECT MAX(w.settles_at) FROM writes w
              WHERE w.run_id = r.id AND w.status = 'applied')
     FROM runs r";

/// The columns of a [`WriteRecord`].
const WRITE_SELECT: &str =
    "SELECT run_id, target, subject, before_json, after_json, status, detail, at, settles_at
     FROM writes";

/// The journal in a SQLite database file (or in memory).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The path as given, for messages.
    path: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if absent) the journal at `path` and brings its schema up to date.
    /// The directory must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Self::setup(conn, shown, true)
    }

    /// A private journal in memory, gone when dropped; for tests and demos.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Open {
            path: ":memory:".into(),
            message: e.to_string(),
        })?;
        Self::setup(conn, ":memory:".into(), false)
    }

    fn setup(mut conn: Connection, path: String, file: bool) -> Result<Self, StoreError> {
        let open_err = |what: &str, e: rusqlite::Error| StoreError::Open {
            path: path.clone(),
            message: format!("{what}: {e}"),
        };
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_err("cannot set busy_timeout", e))?;
        if file {
            // Returns the mode in force; a file system without shared memory may refuse WAL,
            // and the journal still works in the default rollback mode.
            let _mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(|e| open_err("cannot set journal_mode=WAL", e))?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| open_err("cannot set synchronous=NORMAL", e))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| open_err("cannot enable foreign_keys", e))?;
        migrate(&mut conn, &path)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn query_err(&self, action: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let path = self.path.clone();
        let action = action.into();
        move |e| StoreError::Query {
            path,
            action,
            message: e.to_string(),
        }
    }

    fn corrupt(&self, what: &'static str, value: &str, message: impl ToString) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
            value: value.to_owned(),
            message: message.to_string(),
        }
    }

    fn timestamp(&self, what: &'static str, text: &str) -> Result<Timestamp, StoreError> {
        text.parse().map_err(|e| self.corrupt(what, text, e))
    }

    fn opt_timestamp(
        &self,
        what: &'static str,
        text: Option<String>,
    ) -> Result<Option<Timestamp>, StoreError> {
        text.map(|t| self.timestamp(what, &t)).transpose()
    }

    fn json(&self, what: &'static str, text: &str) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(text).map_err(|e| self.corrupt(what, text, e))
    }

    fn decode_run(&self, raw: RawRun) -> Result<RunSummary, StoreError> {
        let outcome = match raw.outcome.as_deref() {
            None => RunOutcome::Interrupted,
            Some("succeeded") => RunOutcome::Succeeded,
            Some("failed") => RunOutcome::Failed,
            Some("refused") => RunOutcome::Refused,
            Some(other) => {
                return Err(self.corrupt(
                    "runs.outcome",
                    other,
                    "expected succeeded, failed or refused",
                ));
            }
        };
        Ok(RunSummary {
            id: RunId(raw.id),
            command: raw.command,
            config_hash: raw.config_hash,
            dialect: raw.dialect,
            started_at: self.timestamp("runs.started_at", &raw.started_at)?,
            ended_at: self.opt_timestamp("runs.ended_at", raw.ended_at)?,
            outcome,
            counts: match raw.counts {
                Some(text) => self.json("runs.counts_json", &text)?,
                None => serde_json::Value::Null,
            },
            writes: u64::try_from(raw.writes).unwrap_or(0),
            settles_at: self.opt_timestamp("writes.settles_at", raw.settles_at)?,
        })
    }

    fn decode_write(&self, raw: RawWrite) -> Result<WriteRecord, StoreError> {
        Ok(WriteRecord {
            run: RunId(raw.run),
            target: WriteTarget::parse(&raw.target).ok_or_else(|| {
                self.corrupt(
                    "writes.target",
                    &raw.target,
                    "expected user_skills, user_proficiencies, definition or profile",
                )
            })?,
            subject: raw.subject,
            before: self.json("writes.before_json", &raw.before)?,
            after: self.json("writes.after_json", &raw.after)?,
            status: WriteStatus::parse(&raw.status).ok_or_else(|| {
                self.corrupt(
                    "writes.status",
                    &raw.status,
                    "expected applied, conflict, failed or unknown",
                )
            })?,
            detail: raw.detail,
            at: self.timestamp("writes.at", &raw.at)?,
            settles_at: self.opt_timestamp("writes.settles_at", raw.settles_at)?,
        })
    }

    fn select_runs(
        &self,
        tail: &str,
        param: i64,
        action: &str,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let conn = self.conn.lock();
        let raws = (|| {
            let mut stmt = conn.prepare_cached(&format!("{RUN_SELECT} {tail}"))?;
            let rows = stmt.query_map([param], RawRun::from_row)?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(self.query_err(action))?;
        drop(conn);
        raws.into_iter().map(|raw| self.decode_run(raw)).collect()
    }

    fn select_writes(
        &self,
        tail: &str,
        params: impl rusqlite::Params,
        action: &str,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        let conn = self.conn.lock();
        let raws = (|| {
            let mut stmt = conn.prepare_cached(&format!("{WRITE_SELECT} {tail}"))?;
            let rows = stmt.query_map(params, RawWrite::from_row)?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(self.query_err(action))?;
        drop(conn);
        raws.into_iter().map(|raw| self.decode_write(raw)).collect()
    }
}

/// Brings the schema to the newest version, one transaction for all pending migrations. Safe
/// when several processes open the same file at once: the version is re-read under the write
/// lock.
fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let version = |conn: &Connection| -> Result<i64, StoreError> {
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(open_err)?;
        if v > known {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: v,
                known,
            });
        }
        if v < 0 {
            return Err(StoreError::Open {
                path: path.to_owned(),
                message: format!(
                    "schema version {v} is not valid; this is not a skillsync journal"
                ),
            });
        }
        Ok(v)
    };
    if version(conn)? == known {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let from = version(&tx)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let to = index as i64 + 1;
        let migrate_err = |e: rusqlite::Error| StoreError::Migrate {
            path: path.to_owned(),
            version: to,
            message: e.to_string(),
        };
        tx.execute_batch(sql).map_err(migrate_err)?;
        tx.pragma_update(None, "user_version", to)
            .map_err(migrate_err)?;
    }
    tx.commit().map_err(|e| StoreError::Migrate {
        path: path.to_owned(),
        version: known,
        message: e.to_string(),
    })
}

/// A timestamp as stored: UTC, nine fractional digits, so text order is time order.
fn ts(t: Timestamp) -> String {
    format!("{t:.9}")
}

struct RawRun {
    id: i64,
    command: String,
    config_hash: String,
    dialect: String,
    started_at: String,
    ended_at: Option<String>,
    outcome: Option<String>,
    counts: Option<String>,
    writes: i64,
    settles_at: Option<String>,
}

impl RawRun {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawRun {
            id: row.get(0)?,
            command: row.get(1)?,
            config_hash: row.get(2)?,
            dialect: row.get(3)?,
            started_at: row.get(4)?,
            ended_at: row.get(5)?,
            outcome: row.get(6)?,
            counts: row.get(7)?,
            writes: row.get(8)?,
            settles_at: row.get(9)?,
        })
    }
}

struct RawWrite {
    run: i64,
    target: String,
    subject: String,
    before: String,
    after: String,
    status: String,
    detail: Option<String>,
    at: String,
    settles_at: Option<String>,
}

impl RawWrite {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawWrite {
            run: row.get(0)?,
            target: row.get(1)?,
            subject: row.get(2)?,
            before: row.get(3)?,
            after: row.get(4)?,
            status: row.get(5)?,
            detail: row.get(6)?,
            at: row.get(7)?,
            settles_at: row.get(8)?,
        })
    }
}

/// What a failed step inside a write transaction means.
enum TxError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Sql(e)
    }
}

impl SqliteStore {
    /// Runs `f` in one `IMMEDIATE` transaction, committing if it succeeds.
    fn write_tx<T>(
        &self,
        action: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock();
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        result.map_err(|e| match e {
            TxError::Sql(e) => self.query_err(action)(e),
            TxError::Store(e) => e,
        })
    }

    fn unknown_run(&self, run: i64) -> TxError {
        TxError::Store(StoreError::UnknownRun {
            path: self.path.clone(),
            run,
        })
    }
}

impl Journal for SqliteStore {
    fn start_run(&self, run: &NewRun) -> Result<RunId, StoreError> {
        self.write_tx("record the start of a run", |tx| {
            tx.execute(
                "INSERT INTO runs (command, config_hash, dialect, started_at) VALUES (?1, ?2, ?3, ?4)",
                params![run.command, run.config_hash, run.dialect, ts(run.started_at)],
            )?;
            Ok(RunId(tx.last_insert_rowid()))
        })
    }

    fn record_writes(&self, writes: &[WriteRecord]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let action = format!("record {} write(s)", writes.len());
        self.write_tx(&action, |tx| {
            let mut runs: Vec<i64> = writes.iter().map(|w| w.run.0).collect();
            runs.sort_unstable();
            runs.dedup();
            {
                let mut exists = tx.prepare_cached("SELECT 1 FROM runs WHERE id = ?1")?;
                for run in runs {
                    if !exists.exists([run])? {
                        return Err(self.unknown_run(run));
                    }
                }
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO writes
                     (run_id, target, subject, before_json, after_json, status, detail, at, settles_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for w in writes {
                insert.execute(params![
                    w.run.0,
                    w.target.as_str(),
                    w.subject,
                    w.before.to_string(),
                    w.after.to_string(),
                    w.status.as_str(),
                    w.detail,
                    ts(w.at),
                    w.settles_at.map(ts),
                ])?;
            }
            Ok(())
        })
    }

    fn finish_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        counts: &serde_json::Value,
        ended_at: Timestamp,
    ) -> Result<(), StoreError> {
        if outcome == RunOutcome::Interrupted {
            return Err(StoreError::InterruptedIsDerived {
                path: self.path.clone(),
                run: run.0,
            });
        }
        self.write_tx(&format!("record the end of run {run}"), |tx| {
            let ended: Option<Option<String>> = tx
                .query_row("SELECT ended_at FROM runs WHERE id = ?1", [run.0], |row| {
                    row.get(0)
                })
                .optional()?;
            match ended {
                None => return Err(self.unknown_run(run.0)),
                Some(Some(_)) => {
                    return Err(TxError::Store(StoreError::AlreadyFinished {
                        path: self.path.clone(),
                        run: run.0,
                    }));
                }
                Some(None) => {}
            }
            tx.execute(
                "UPDATE runs SET ended_at = ?2, outcome = ?3, counts_json = ?4 WHERE id = ?1",
                params![run.0, ts(ended_at), outcome.as_str(), counts.to_string()],
            )?;
            Ok(())
        })
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select_runs("ORDER BY r.id DESC LIMIT ?1", limit, "list runs")
    }

    fn run(&self, id: RunId) -> Result<Option<RunSummary>, StoreError> {
        let mut runs = self.select_runs("WHERE r.id = ?1", id.0, &format!("read run {id}"))?;
        Ok(runs.pop())
    }

    fn writes(&self, run: RunId) -> Result<Vec<WriteRecord>, StoreError> {
        self.select_writes(
            "WHERE run_id = ?1 ORDER BY id",
            [run.0],
            &format!("read the writes of run {run}"),
        )
    }

    fn last_write(
        &self,
        subject: &str,
        target: WriteTarget,
    ) -> Result<Option<WriteRecord>, StoreError> {
        let mut found = self.select_writes(
            "WHERE subject = ?1 AND target = ?2 ORDER BY at DESC, id DESC LIMIT 1",
            params![subject, target.as_str()],
            &format!("read the last {target} write to {subject}"),
        )?;
        Ok(found.pop())
    }

    fn settles_at(&self, run: RunId) -> Result<Option<Timestamp>, StoreError> {
        let conn = self.conn.lock();
        let text: Option<String> = conn
            .query_row(
                "SELECT MAX(settles_at) FROM writes WHERE run_id = ?1 AND status = 'applied'",
                [run.0],
                |row| row.get(0),
            )
            .map_err(self.query_err(format!("read when run {run} settles")))?;
        drop(conn);
        self.opt_timestamp("writes.settles_at", text)
    }

    fn remember_mappings(&self, mappings: &[Mapping]) -> Result<(), StoreError> {
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

    fn mappings(&self) -> Result<Vec<Mapping>, StoreError> {
        let conn = self.conn.lock();
        let raws = (|| {
            let mut stmt = conn.prepare_cached(
                "SELECT code, locale, kind, definition_id, seen_at FROM mappings
                 ORDER BY code, locale",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(self.query_err("read the mappings"))?;
        drop(conn);
        raws.into_iter()
            .map(|(code, locale, kind, definition_id, seen_at)| {
                Ok(Mapping {
                    seen_at: self.timestamp("mappings.seen_at", &seen_at)?,
                    code,
                    locale,
                    kind,
                    definition_id,
                })
            })
            .collect()
    }

    fn record_retirement(&self, retirement: &Retirement) -> Result<(), StoreError> {
        let action = format!(
            "record the retirement of {} ({})",
            retirement.code, retirement.locale
        );
        let ids = serde_json::Value::from(retirement.definition_ids.clone()).to_string();
        self.write_tx(&action, |tx| {
            let started: bool = tx
                .prepare_cached("SELECT 1 FROM runs WHERE id = ?1")?
                .exists([retirement.run.0])?;
            if !started {
                return Err(self.unknown_run(retirement.run.0));
            }
            tx.execute(
                "INSERT INTO retirements
                     (code, locale, kind, name, mode, definition_ids_json, run_id, retired_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (code, locale) DO UPDATE SET
                     kind = excluded.kind,
                     name = excluded.name,
                     mode = excluded.mode,
                     definition_ids_json = excluded.definition_ids_json,
                     run_id = excluded.run_id,
                     retired_at = excluded.retired_at",
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

    fn retirements(&self) -> Result<Vec<Retirement>, StoreError> {
        type Row = (String, String, String, String, String, String, i64, String);
        let conn = self.conn.lock();
        let raws: Vec<Row> = (|| {
            let mut stmt = conn.prepare_cached(
                "SELECT code, locale, kind, name, mode, definition_ids_json, run_id, retired_at
                 FROM retirements ORDER BY code, locale",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                ))
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(self.query_err("read the retirements"))?;
        drop(conn);
        raws.into_iter()
            .map(|(code, locale, kind, name, mode, ids, run, at)| {
                let mode = RetirementMode::parse(&mode).ok_or_else(|| {
                    self.corrupt("retirements.mode", &mode, "expected soft or hard")
                })?;
                let definition_ids: Vec<String> = serde_json::from_str(&ids)
                    .map_err(|e| self.corrupt("retirements.definition_ids_json", &ids, e))?;
                Ok(Retirement {
                    retired_at: self.timestamp("retirements.retired_at", &at)?,
                    code,
                    locale,
                    kind,
                    name,
                    mode,
                    definition_ids,
                    run: RunId(run),
                })
            })
            .collect()
    }

    fn forget_retirement(&self, code: &str, locale: &str) -> Result<bool, StoreError> {
        let action = format!("forget the retirement of {code} ({locale})");
        self.write_tx(&action, |tx| {
            let removed = tx.execute(
                "DELETE FROM retirements WHERE code = ?1 AND locale = ?2",
                params![code, locale],
            )?;
            Ok(removed > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_timestamps_sort_as_text() {
        let whole = Timestamp::from_second(1_700_000_000).unwrap();
        let later = whole
            .checked_add(jiff::SignedDuration::from_nanos(500))
            .unwrap();
        assert_eq!(ts(whole), "2023-11-14T22:13:20.000000000Z");
        assert!(ts(whole) < ts(later));
        assert_eq!(ts(later).parse::<Timestamp>().unwrap(), later);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let store = SqliteStore::in_memory().unwrap();
        let mut conn = store.conn.into_inner();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn, ":memory:").unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn migration_2_keeps_the_writes_of_a_version_1_journal_and_accepts_profile_writes() {
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
        };
        let kept = store.writes(RunId(1)).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].subject, "u1");
        let profile_write = WriteRecord {
            target: WriteTarget::Profile,
            subject: "p1".into(),
            ..kept[0].clone()
        };
        store.record_writes(&[profile_write]).unwrap();
        let targets: Vec<WriteTarget> = store
            .writes(RunId(1))
            .unwrap()
            .iter()
            .map(|w| w.target)
            .collect();
        assert_eq!(targets, [WriteTarget::UserSkills, WriteTarget::Profile]);
    }

    #[test]
    fn a_retirement_is_replaced_per_variant_and_can_be_forgotten() {
        let store = SqliteStore::in_memory().unwrap();
        let at = Timestamp::from_second(1_750_000_000).unwrap();
        let run = store
            .start_run(&NewRun {
                command: "retire".into(),
                config_hash: "h".into(),
                started_at: at,
                dialect: "routing".into(),
            })
            .unwrap();
        let soft = Retirement {
            code: "ACW_SALES".into(),
            locale: "de-de".into(),
            kind: "proficiency".into(),
            name: "ACW_Sales".into(),
            mode: RetirementMode::Soft,
            definition_ids: vec!["d1".into(), "d2".into()],
            run,
            retired_at: at,
        };
        store.record_retirement(&soft).unwrap();
        let hard = Retirement {
            mode: RetirementMode::Hard,
            ..soft.clone()
        };
        store.record_retirement(&hard).unwrap();
        assert_eq!(store.retirements().unwrap(), [hard]);
        let unknown = Retirement {
            run: RunId(99),
            ..soft
        };
        assert!(matches!(
            store.record_retirement(&unknown),
            Err(StoreError::UnknownRun { run: 99, .. })
        ));
        assert!(store.forget_retirement("ACW_SALES", "de-de").unwrap());
        assert!(!store.forget_retirement("ACW_SALES", "de-de").unwrap());
        assert!(store.retirements().unwrap().is_empty());
    }
}

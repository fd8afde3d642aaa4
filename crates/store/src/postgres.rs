//! The PostgreSQL journal, for shared deployments: every host that runs skillsync against a
//! tenant points at one database, and the lease keeps them to one writer at a time.
//!
//! - **Connections**: a small pool of tokio-postgres connections, without TLS for now (a URL
//!   that asks for it is refused rather than silently sent in clear). Connecting gives up after
//!   the URL's `connect_timeout` (5 s if it names none), so an unreachable server is an error,
//!   not a hang.
//! - **Schema**: refinery migrations embedded from `migrations/postgres`, numbered like
//!   SQLite's; version 1 is the SQLite schema at its version 4, version 2 adds the event queue
//!   as SQLite's version 5 does. Tables and refinery's history
//!   (`skillsync_schema_history`, a name of its own so another refinery user's table in the
//!   same schema is never taken for ours) go to the first schema of the connection's `search_path`, which
//!   the URL sets as libpq does: `?options=-c%20search_path%3Dmyschema`. [`PostgresStore::open`]
//!   runs pending migrations under an advisory lock, so hosts starting together do not race to
//!   create the tables; [`PostgresStore::open_existing`] creates nothing.
//! - **Values**: the text forms SQLite uses (see [`crate::row`], which decodes both), with
//!   timestamps in `COLLATE "C"` columns so that comparing and sorting them is comparing times.
//! - **Leases**: timed by the server's clock (`clock_timestamp()`), never the caller's, so hosts
//!   whose clocks disagree still agree on who holds one. Acquiring is one upsert that takes the
//!   row only if it has expired; PostgreSQL locks the row either way, so of two hosts racing for
//!   it one wins and the other reads the winner.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use jiff::Timestamp;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

mod events;

use crate::error::TxError;
use crate::row::{
    self, Columns, LEASE_COLUMNS, MAPPINGS_SELECT, RETIREMENTS_SELECT, RUN_SELECT, RawLease,
    RawMapping, RawRetirement, RawRun, RawWrite, WRITE_SELECT, to_json, ts,
};
use crate::{
    Acquired, Journal, Lease, LeaseHolder, Mapping, NewRun, Retirement, RunCounts, RunId,
    RunOutcome, RunSummary, StoreError, WriteRecord, WriteTarget, redact,
};

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a pooled connection to come free.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per store: a skillsync process makes a few journal calls at a time at most.
const POOL_SIZE: usize = 4;

/// The longest lease asked of the server: longer ones are cut to this, which keeps the end
/// within the calendar both sides can write and exact as a count of microseconds in a float.
const LONGEST_LEASE: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The advisory lock class that serializes migrations of one schema (the second key is the
/// schema name's hash).
const MIGRATION_LOCK: i32 = 0x736b_696c; // "skil"

type PgTxError = TxError<tokio_postgres::Error>;

/// How long one journal query may take before it fails.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The table where the applied migrations are listed.
const HISTORY_TABLE: &str = "skillsync_schema_history";

/// The journal in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    /// The URL without any password, for messages.
    url: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Columns for tokio_postgres::Row {
    type Error = tokio_postgres::Error;

    fn text(&self, index: usize) -> Result<String, Self::Error> {
        self.try_get(index)
    }

    fn opt_text(&self, index: usize) -> Result<Option<String>, Self::Error> {
        self.try_get(index)
    }

    fn int(&self, index: usize) -> Result<i64, Self::Error> {
        self.try_get(index)
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, Self::Error> {
        self.try_get(index)
    }
}

/// An SQL expression for the `timestamptz` `expr` in the form the journal stores (see
/// [`row::ts`]): UTC with nine fractional digits, the last three zero since the server keeps
/// microseconds.
fn stored(expr: &str) -> String {
    format!(r#"to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"000Z"')"#)
}

/// A lease's length as the float of microseconds the lease statements multiply an interval by.
fn ttl_micros(ttl: Duration) -> f64 {
    ttl.min(LONGEST_LEASE).as_micros() as f64
}

/// The connection settings `url` names, refused if it asks for TLS (not supported yet).
fn config(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let sslmode = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "sslmode")
        .map(|(_, value)| value);
    if let Some(mode @ ("require" | "verify-ca" | "verify-full")) = sslmode {
        return Err(StoreError::Unsupported {
            url: redact(url),
            reason: format!(
                "TLS to PostgreSQL (sslmode={mode}) is not supported yet: use sslmode=disable \
                 over a trusted network or an SSH tunnel"
            ),
        });
    }
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|source| StoreError::PostgresUrl {
            url: redact(url),
            source,
        })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // A journal call that hangs would hang the run (and its lease renewals) rather than stop
    // it: a dead peer is given up after QUERY_TIMEOUT of unanswered sends, a query the server
    // holds (a lock, an overloaded database) after as long, unless the URL says otherwise.
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(QUERY_TIMEOUT);
    }
    let options = config.get_options().unwrap_or_default().to_string();
    if !options.contains("statement_timeout") {
        let limit = format!("-c statement_timeout={}", QUERY_TIMEOUT.as_millis());
        config.options(format!("{options} {limit}").trim());
    }
    Ok(config)
}

impl PostgresStore {
    /// Connects to the journal at `url` (a `postgres://` or `postgresql://` URL) and brings
    /// its schema up to date, creating it in an empty schema.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::pool(url)?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to the journal at `url` only if its schema was ever created there: `None`
    /// otherwise, with nothing created, so that read-only commands never create a journal.
    /// One that exists is brought up to date, as [`open`](Self::open) does.
    pub async fn open_existing(url: &str) -> Result<Option<Self>, StoreError> {
        let store = Self::pool(url)?;
        let action = "look for the journal's schema";
        let client = store.client(action).await?;
        // In the schema it would migrate, not anywhere on the search path: a journal found
        // in a later schema would otherwise be created anew in the first.
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM information_schema.tables
                                 WHERE table_schema = current_schema() AND table_name = $1)",
                &[&HISTORY_TABLE],
            )
            .await
            .map_err(store.pg_err(action))?;
        drop(client);
        if !row.get::<_, bool>(0) {
            return Ok(None);
        }
        store.migrate().await?;
        Ok(Some(store))
    }

    /// The pool; it connects on first use.
    fn pool(url: &str) -> Result<Self, StoreError> {
        let config = config(url)?;
        let connect = config.get_connect_timeout().copied();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(connect)
            .recycle_timeout(connect)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .build()
            .expect("a pool with a runtime accepts timeouts");
        Ok(PostgresStore {
            pool,
            url: redact(url),
        })
    }

    /// Runs the pending migrations under an advisory lock on the schema, on a connection of
    /// its own that is closed afterwards (so the lock never outlives it, whatever fails).
    async fn migrate(&self) -> Result<(), StoreError> {
        let action = "bring its schema up to date";
        let mut client = Object::take(self.client(action).await?);
        client
            .execute(
                "SELECT pg_advisory_lock($1, hashtext(coalesce(current_schema(), '')))",
                &[&MIGRATION_LOCK],
            )
            .await
            .map_err(self.pg_err(action))?;
        let mut runner = embedded::migrations::runner();
        runner.set_migration_table_name(HISTORY_TABLE);
        let known = runner.get_migrations().iter().map(|m| m.version()).max();
        let client: &mut tokio_postgres::Client = &mut client;
        runner
            .run_async(client)
            .await
            .map(drop)
            .map_err(|source| match (source.kind(), known) {
                (refinery::error::Kind::MissingVersion(found), Some(known)) => StoreError::TooNew {
                    path: self.url.clone(),
                    found: i64::from(found.version()),
                    known: i64::from(known),
                },
                _ => StoreError::PostgresMigrate {
                    url: self.url.clone(),
                    source,
                },
            })
    }

    async fn client(&self, action: &str) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|source| StoreError::Connect {
            url: self.url.clone(),
            action: action.to_owned(),
            source,
        })
    }

    fn pg_err(&self, action: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
        let url = self.url.clone();
        let action = action.to_owned();
        move |source| StoreError::Postgres {
            url,
            action,
            source,
        }
    }

    fn unknown_run(&self, run: i64) -> PgTxError {
        TxError::Store(StoreError::UnknownRun {
            path: self.url.clone(),
            run,
        })
    }

    /// Runs `sql` with `params` and reads every row with `read`.
    async fn select<R>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        read: fn(&tokio_postgres::Row) -> Result<R, tokio_postgres::Error>,
        action: &str,
    ) -> Result<Vec<R>, StoreError> {
        let client = self.client(action).await?;
        let rows = async {
            let statement = client.prepare_cached(sql).await?;
            let rows = client.query(&statement, params).await?;
            rows.iter().map(read).collect::<Result<Vec<_>, _>>()
        }
        .await
        .map_err(self.pg_err(action))?;
        Ok(rows)
    }

    async fn select_runs(
        &self,
        tail: &str,
        param: i64,
        action: &str,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let sql = format!("{RUN_SELECT} {tail}");
        let raws = self.select(&sql, &[&param], RawRun::read, action).await?;
        raws.into_iter().map(|raw| raw.decode(&self.url)).collect()
    }

    async fn select_writes(
        &self,
        tail: &str,
        params: &[&(dyn ToSql + Sync)],
        action: &str,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        let sql = format!("{WRITE_SELECT} {tail}");
        let raws = self.select(&sql, params, RawWrite::read, action).await?;
        raws.into_iter().map(|raw| raw.decode(&self.url)).collect()
    }

    /// Maps what a transaction's body returned into the journal's error for `action`.
    fn settle<T>(&self, action: &str, result: Result<T, PgTxError>) -> Result<T, StoreError> {
        result.map_err(|e| match e {
            TxError::Sql(source) => self.pg_err(action)(source),
            TxError::Store(e) => e,
        })
    }

    /// Fails with [`StoreError::UnknownRun`] for the lowest of `runs` never started; else the
    /// runs already folded. The runs' rows stay share-locked until the transaction ends, so a
    /// `finish_run` folding one of them waits for these writes and folds them too.
    async fn check_runs(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        mut runs: Vec<i64>,
    ) -> Result<Vec<i64>, PgTxError> {
        runs.sort_unstable();
        runs.dedup();
        let rows = tx
            .query(
                "SELECT id, folded FROM runs WHERE id = ANY($1) FOR SHARE",
                &[&runs],
            )
            .await?;
        let found: Vec<(i64, bool)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        match runs
            .into_iter()
            .find(|run| !found.iter().any(|(id, _)| id == run))
        {
            Some(missing) => Err(self.unknown_run(missing)),
            None => Ok(found
                .into_iter()
                .filter_map(|(id, folded)| folded.then_some(id))
                .collect()),
        }
    }

    /// The newest write of kind `target` to each of `subjects` that has one: the folded entry
    /// of `last_writes` or a newer write of a run not folded yet, read in one transaction.
    async fn newest_writes(
        &self,
        subjects: &[&str],
        target: WriteTarget,
        action: &str,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        let wanted: std::collections::HashSet<&str> = subjects.iter().copied().collect();
        let listed: Vec<&str> = wanted.iter().copied().collect();
        let mut client = self.client(action).await?;
        let raws = async {
            // One snapshot for the three reads: a fold committed in between cannot hide a
            // write from both the table and the scan.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let folded = tx
                .query(
                    "SELECT subject, at, write_id FROM last_writes
                     WHERE target = $1 AND subject = ANY($2)",
                    &[&target.as_str(), &listed],
                )
                .await?;
            let unfolded = tx.query(row::UNFOLDED_WRITES, &[&target.as_str()]).await?;
            let candidates = folded
                .iter()
                .chain(&unfolded)
                .map(|row| (row.get(0), row.get(1), row.get(2)))
                .collect::<Vec<(String, String, i64)>>();
            let ids: Vec<i64> = row::newest_per_subject(&wanted, candidates)
                .into_values()
                .map(|(_, id)| id)
                .collect();
            let rows = tx
                .query(
                    &format!("{WRITE_SELECT} WHERE id = ANY($1) ORDER BY id"),
                    &[&ids],
                )
                .await?;
            tx.commit().await?;
            rows.iter()
                .map(RawWrite::read)
                .collect::<Result<Vec<_>, _>>()
        }
        .await
        .map_err(self.pg_err(action))?;
        raws.into_iter().map(|raw| raw.decode(&self.url)).collect()
    }
}

/// Folds `run`'s writes into `last_writes` and marks it folded (see [`row::FOLD_RUN_POSTGRES`]).
async fn fold(tx: &deadpool_postgres::Transaction<'_>, run: i64) -> Result<(), PgTxError> {
    tx.execute(row::FOLD_RUN_POSTGRES, &[&run]).await?;
    tx.execute(row::MARK_FOLDED, &[&run]).await?;
    Ok(())
}

#[async_trait::async_trait]
impl Journal for PostgresStore {
    async fn start_run(&self, run: &NewRun) -> Result<RunId, StoreError> {
        let action = "record the start of a run";
        let client = self.client(action).await?;
        let row = client
            .query_one(
                "INSERT INTO runs (command, config_hash, dialect, started_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[
                    &run.command,
                    &run.config_hash,
                    &run.dialect,
                    &ts(run.started_at),
                ],
            )
            .await
            .map_err(self.pg_err(action))?;
        Ok(RunId(row.get(0)))
    }

    async fn record_writes(&self, writes: &[WriteRecord]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let action = format!("record {} write(s)", writes.len());
        let mut client = self.client(&action).await?;
        // One statement for the batch, the rows kept in the order given (ids are journal
        // order).
        let runs: Vec<i64> = writes.iter().map(|w| w.run.0).collect();
        let targets: Vec<&str> = writes.iter().map(|w| w.target.as_str()).collect();
        let subjects: Vec<&str> = writes.iter().map(|w| w.subject.as_str()).collect();
        let befores: Vec<String> = writes
            .iter()
            .map(|w| row::before_json(&w.before, &w.after))
            .collect();
        let afters: Vec<String> = writes.iter().map(|w| row::after_json(&w.after)).collect();
        let statuses: Vec<&str> = writes.iter().map(|w| w.status.as_str()).collect();
        let details: Vec<Option<&str>> = writes.iter().map(|w| w.detail.as_deref()).collect();
        let ats: Vec<String> = writes.iter().map(|w| ts(w.at)).collect();
        let settles: Vec<Option<String>> = writes.iter().map(|w| w.settles_at.map(ts)).collect();
        let result = async {
            let tx = client.transaction().await?;
            let folded_runs = self.check_runs(&tx, runs.clone()).await?;
            tx.execute(
                "INSERT INTO writes
                     (run_id, target, subject, before_json, after_json, status, detail, at,
                      settles_at)
                 SELECT run_id, target, subject, before_json, after_json, status, detail, at,
                        settles_at
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $8::text[], $9::text[])
                      WITH ORDINALITY AS w (run_id, target, subject, before_json, after_json,
                                            status, detail, at, settles_at, n)
                 ORDER BY n",
                &[
                    &runs, &targets, &subjects, &befores, &afters, &statuses, &details, &ats,
                    &settles,
                ],
            )
            .await?;
            // Writes journaled after their run was folded (a run that lost its lease finishing
            // what it had in flight) are folded at once, or `last_write` would miss them.
            for run in folded_runs {
                fold(&tx, run).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.settle(&action, result)
    }

    async fn finish_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        counts: &RunCounts,
        ended_at: Timestamp,
    ) -> Result<(), StoreError> {
        let action = format!("record the end of run {run}");
        let counts = to_json(counts);
        let mut client = self.client(&action).await?;
        let result = async {
            let tx = client.transaction().await?;
            let ended = tx
                .query_opt(
                    "SELECT ended_at FROM runs WHERE id = $1 FOR UPDATE",
                    &[&run.0],
                )
                .await?;
            let ended = ended.map(|row| row.get::<_, Option<String>>(0));
            row::check_unfinished(&self.url, run.0, ended).map_err(TxError::Store)?;
            tx.execute(
                "UPDATE runs SET ended_at = $2, outcome = $3, counts_json = $4 WHERE id = $1",
                &[&run.0, &ts(ended_at), &outcome.as_str(), &counts],
            )
            .await?;
            fold(&tx, run.0).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.settle(&action, result)
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select_runs("ORDER BY r.id DESC LIMIT $1", limit, "list runs")
            .await
    }

    async fn run(&self, id: RunId) -> Result<Option<RunSummary>, StoreError> {
        let action = format!("read run {id}");
        let mut runs = self.select_runs("WHERE r.id = $1", id.0, &action).await?;
        Ok(runs.pop())
    }

    async fn writes(&self, run: RunId) -> Result<Vec<WriteRecord>, StoreError> {
        let action = format!("read the writes of run {run}");
        self.select_writes("WHERE run_id = $1 ORDER BY id", &[&run.0], &action)
            .await
    }

    async fn last_write(
        &self,
        subject: &str,
        target: WriteTarget,
    ) -> Result<Option<WriteRecord>, StoreError> {
        let action = format!("read the last {target} write to {subject}");
        Ok(self.newest_writes(&[subject], target, &action).await?.pop())
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
        self.newest_writes(subjects, target, &action).await
    }

    async fn settles_at(&self, run: RunId) -> Result<Option<Timestamp>, StoreError> {
        let action = format!("read when run {run} settles");
        let client = self.client(&action).await?;
        let row = client
            .query_one(
                "SELECT MAX(settles_at) FROM writes WHERE run_id = $1 AND status = 'applied'",
                &[&run.0],
            )
            .await
            .map_err(self.pg_err(&action))?;
        row::opt_timestamp(&self.url, "writes.settles_at", row.get(0))
    }

    async fn remember_mappings(&self, mappings: &[Mapping]) -> Result<(), StoreError> {
        if mappings.is_empty() {
            return Ok(());
        }
        let action = format!("remember {} mapping(s)", mappings.len());
        // One upsert cannot touch a row twice: of a (code, locale) given twice the last wins,
        // as it does when each is written in turn.
        let mut seen_keys = std::collections::HashSet::new();
        let latest: Vec<&Mapping> = mappings
            .iter()
            .rev()
            .filter(|m| seen_keys.insert((m.code.as_str(), m.locale.as_str())))
            .collect();
        let codes: Vec<&str> = latest.iter().map(|m| m.code.as_str()).collect();
        let locales: Vec<&str> = latest.iter().map(|m| m.locale.as_str()).collect();
        let kinds: Vec<&str> = latest.iter().map(|m| m.kind.as_str()).collect();
        let ids: Vec<&str> = latest.iter().map(|m| m.definition_id.as_str()).collect();
        let seen: Vec<String> = latest.iter().map(|m| ts(m.seen_at)).collect();
        let client = self.client(&action).await?;
        client
            .execute(
                "INSERT INTO mappings (code, locale, kind, definition_id, seen_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                 ON CONFLICT (code, locale) DO UPDATE SET
                     kind = excluded.kind,
                     definition_id = excluded.definition_id,
                     seen_at = excluded.seen_at",
                &[&codes, &locales, &kinds, &ids, &seen],
            )
            .await
            .map_err(self.pg_err(&action))?;
        Ok(())
    }

    async fn mappings(&self) -> Result<Vec<Mapping>, StoreError> {
        let raws = self
            .select(MAPPINGS_SELECT, &[], RawMapping::read, "read the mappings")
            .await?;
        raws.into_iter().map(|raw| raw.decode(&self.url)).collect()
    }

    async fn record_retirement(&self, retirement: &Retirement) -> Result<(), StoreError> {
        let action = format!(
            "record the retirement of {} ({})",
            retirement.code, retirement.locale
        );
        let ids = to_json(&retirement.definition_ids);
        let mut client = self.client(&action).await?;
        let result = async {
            let tx = client.transaction().await?;
            self.check_runs(&tx, vec![retirement.run.0]).await?;
            tx.execute(
                row::RETIREMENT_UPSERT,
                &[
                    &retirement.code,
                    &retirement.locale,
                    &retirement.kind,
                    &retirement.name,
                    &retirement.mode.as_str(),
                    &ids,
                    &retirement.run.0,
                    &ts(retirement.retired_at),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.settle(&action, result)
    }

    async fn retirements(&self) -> Result<Vec<Retirement>, StoreError> {
        let raws = self
            .select(
                RETIREMENTS_SELECT,
                &[],
                RawRetirement::read,
                "read the retirements",
            )
            .await?;
        raws.into_iter().map(|raw| raw.decode(&self.url)).collect()
    }

    async fn forget_retirement(&self, code: &str, locale: &str) -> Result<bool, StoreError> {
        let action = format!("forget the retirement of {code} ({locale})");
        let client = self.client(&action).await?;
        let removed = client
            .execute(
                "DELETE FROM retirements WHERE code = $1 AND locale = $2",
                &[&code, &locale],
            )
            .await
            .map_err(self.pg_err(&action))?;
        Ok(removed > 0)
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<Acquired, StoreError> {
        let action = "acquire the tenant's lease";
        // Taken (inserted, or the expired row updated with the next fencing number) or not in
        // one statement. Either way PostgreSQL has locked the row until the transaction ends,
        // so the holder read back below is the one that won.
        let take = format!(
            "WITH clock AS (SELECT clock_timestamp() AS now)
             INSERT INTO leases AS held (key, fence, host, pid, command, acquired_at, expires_at)
             SELECT $1, 1, $2, $3, $4, {now}, {end} FROM clock
             ON CONFLICT (key) DO UPDATE SET
                 fence = held.fence + 1, host = excluded.host, pid = excluded.pid,
                 command = excluded.command, acquired_at = excluded.acquired_at,
                 expires_at = excluded.expires_at
             WHERE held.expires_at <= excluded.acquired_at
             RETURNING {LEASE_COLUMNS}",
            now = stored("clock.now"),
            end = stored("clock.now + $5::float8 * interval '1 microsecond'"),
        );
        let mut client = self.client(action).await?;
        let result = async {
            let tx = client.transaction().await?;
            let pid = i64::from(holder.pid);
            let params: [&(dyn ToSql + Sync); 5] =
                [&key, &holder.host, &pid, &holder.command, &ttl_micros(ttl)];
            let taken = tx.query_opt(&take, &params).await?;
            let (row, ours) = match taken {
                Some(row) => (row, true),
                None => {
                    let sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE key = $1");
                    (tx.query_one(&sql, &[&key]).await?, false)
                }
            };
            tx.commit().await?;
            Ok((RawLease::read(&row)?, ours))
        }
        .await;
        let (raw, ours) = self.settle(action, result)?;
        let lease = raw.decode(&self.url, key)?;
        Ok(if ours {
            Acquired::Held(lease)
        } else {
            Acquired::Busy(lease)
        })
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        let action = "renew the tenant's lease";
        // Only while it is still ours: same fencing number, not yet expired.
        let sql = format!(
            "WITH clock AS (SELECT clock_timestamp() AS now)
             UPDATE leases SET expires_at = {end} FROM clock
             WHERE key = $1 AND fence = $2 AND expires_at > {now}
             RETURNING expires_at",
            now = stored("clock.now"),
            end = stored("clock.now + $3::float8 * interval '1 microsecond'"),
        );
        let client = self.client(action).await?;
        let renewed = client
            .query_opt(&sql, &[&lease.key, &lease.fence, &ttl_micros(ttl)])
            .await
            .map_err(self.pg_err(action))?;
        renewed
            .map(|row| row::timestamp(&self.url, "leases.expires_at", &row.get::<_, String>(0)))
            .transpose()
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let action = "release the tenant's lease";
        // Expired, not deleted: the fencing number must keep rising.
        let sql = format!(
            "UPDATE leases SET expires_at = {now} WHERE key = $1 AND fence = $2",
            now = stored("clock_timestamp()"),
        );
        let client = self.client(action).await?;
        client
            .execute(&sql, &[&lease.key, &lease.fence])
            .await
            .map_err(self.pg_err(action))?;
        Ok(())
    }

    async fn fence_run(&self, run: RunId, lease: &Lease) -> Result<(), StoreError> {
        let action = "record the run's lease";
        let mut client = self.client(action).await?;
        let result = async {
            let tx = client.transaction().await?;
            let updated = tx
                .execute(
                    "UPDATE runs SET lease_key = $1, fence = $2 WHERE id = $3",
                    &[&lease.key, &lease.fence, &run.0],
                )
                .await?;
            if updated == 0 {
                return Err(self.unknown_run(run.0));
            }
            let dead = tx
                .query(row::DEAD_UNFOLDED_RUNS, &[&lease.key, &lease.fence])
                .await?;
            for dead in dead {
                // Locked as `finish_run` locks a run, so a straggler's writes being journaled
                // now are folded by one of the two.
                let id: i64 = dead.get(0);
                tx.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", &[&id])
                    .await?;
                fold(&tx, id).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.settle(action, result)
    }
}

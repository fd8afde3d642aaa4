//! The journal: what skillsync did, so that an auditor can read it and the next run can use it.
//!
//! - **runs**: command, configuration hash, dialect, start, end, counts and outcome. A run
//!   that never finished (the process was killed, the machine lost power) has no end and
//!   reads back as [`RunOutcome::Interrupted`]; so does one stopped by a signal, which is
//!   finished as interrupted with what it did.
//! - **writes**: every write a run made: the subject (a user id, a definition or a routing
//!   profile), the state before and after, the status, the error text or request id, the
//!   time, and the time the routing cache will have settled on it (`propagation_window` after
//!   the write). The newest write to each subject is kept apart (**last writes**, filled once
//!   per run when it finishes), so that journaling a write touches no index keyed by user.
//! - **mappings**: which tenant definition each HRIS (code, locale) resolved to.
//! - **retirements**: the (code, locale) variants `skillsync retire` took out of management,
//!   soft or hard, so that later plans leave them alone.
//!
//! Everything goes through the [`Journal`] trait. [`SqliteStore`] is the default
//! implementation (a file next to the configuration); [`PostgresStore`] is the shared one, for
//! several hosts working on the same tenants. [`open`] picks one from the `[store] url`
//! setting. Both keep the same columns in the same text forms, decoded by one module.
//!
//! The same store keeps the queue of HRIS events `skillsync serve` receives (see [`EventQueue`],
//! opened by [`open_events`]), next to the runs that apply them.
//!
//! This is the only crate that knows SQL. Calls are short: SQLite's run on the caller's thread,
//! PostgreSQL's on a small connection pool (which needs a tokio runtime).
#![deny(missing_docs)]

mod error;
mod events;
pub mod intercept;
mod postgres;
mod row;
mod sqlite;
mod user_json;

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use error::{InvalidValue, StoreError};
pub use events::{
    EventLane, EventOutcome, EventQueue, EventQueueStats, EventRecord, EventState, NewEvent,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The journal's id of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every planned change was made (or there was none to make).
    Succeeded,
    /// The run stopped or finished with failures.
    Failed,
    /// A guard stopped the run before its first write (removal threshold, window, empty list).
    Refused,
    /// The run was stopped by a signal (finished as interrupted, with what it did), or never
    /// finished at all (it has a start but no end: the process was killed). A run still in
    /// progress in another process reads as interrupted too until it finishes.
    Interrupted,
}

impl RunOutcome {
    /// The outcome's name, as stored and printed: `succeeded`, `failed`, `refused`, `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Refused => "refused",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run about to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// The command, e.g. `apply` or `assign`.
    pub command: String,
    /// A hash of the resolved configuration, so two runs can be told apart by their settings.
    pub config_hash: String,
    /// When the run started.
    pub started_at: Timestamp,
    /// The API dialect, `routing` or `users`.
    pub dialect: String,
}

/// One run as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's id.
    pub id: RunId,
    /// The command, e.g. `apply`.
    pub command: String,
    /// The hash of the configuration it ran with.
    pub config_hash: String,
    /// The API dialect it ran with.
    pub dialect: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it finished; `None` for a run that never finished (killed, or still running).
    pub ended_at: Option<Timestamp>,
    /// How it ended; [`RunOutcome::Interrupted`] when it has no end.
    pub outcome: RunOutcome,
    /// The counts given to [`Journal::finish_run`]; `None` for a run that never finished (or
    /// one finished by an older skillsync with counts that are not a JSON object).
    pub counts: Option<RunCounts>,
    /// How many writes it journaled, whatever their status.
    pub writes: u64,
    /// When the routing cache will have settled on its last applied write; `None` when it
    /// applied none with a settle time.
    pub settles_at: Option<Timestamp>,
}

/// What became of one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteStatus {
    /// The tenant accepted it.
    Applied,
    /// The tenant refused it because the object changed since it was read (412/409).
    Conflict,
    /// The tenant refused it, or it was never sent successfully.
    Failed,
    /// The outcome is not known, e.g. the connection failed after the request was sent.
    Unknown,
}

impl WriteStatus {
    /// The status's name, as stored and printed: `applied`, `conflict`, `failed`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteStatus::Applied => "applied",
            WriteStatus::Conflict => "conflict",
            WriteStatus::Failed => "failed",
            WriteStatus::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "applied" => WriteStatus::Applied,
            "conflict" => WriteStatus::Conflict,
            "failed" => WriteStatus::Failed,
            "unknown" => WriteStatus::Unknown,
            _ => return None,
        })
    }
}

impl fmt::Display for WriteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteTarget {
    /// A user's skills list.
    UserSkills,
    /// A user's proficiencies list.
    UserProficiencies,
    /// A skill or proficiency definition.
    Definition,
    /// A routing profile's lists (retire strips references from them).
    Profile,
    /// A routing strategy's proficiency list (retire strips references from it).
    Strategy,
}

impl WriteTarget {
    /// The target's name, as stored and printed: `user_skills`, `user_proficiencies`,
    /// `definition`, `profile`, `strategy`.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteTarget::UserSkills => "user_skills",
            WriteTarget::UserProficiencies => "user_proficiencies",
            WriteTarget::Definition => "definition",
            WriteTarget::Profile => "profile",
            WriteTarget::Strategy => "strategy",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user_skills" => WriteTarget::UserSkills,
            "user_proficiencies" => WriteTarget::UserProficiencies,
            "definition" => WriteTarget::Definition,
            "profile" => WriteTarget::Profile,
            "strategy" => WriteTarget::Strategy,
            _ => return None,
        })
    }
}

impl fmt::Display for WriteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One write a run made, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// The run that made it.
    pub run: RunId,
    /// What it changed.
    pub target: WriteTarget,
    /// The user id, or the definition's id (or its name when it has no id yet).
    pub subject: String,
    /// The state before, as read; [`Snapshot::Absent`] when there was none.
    pub before: Snapshot,
    /// The state written (or, for a write confirmed by a re-read, the state found).
    pub after: Snapshot,
    /// What became of it.
    pub status: WriteStatus,
    /// The error text, or the tenant's request id.
    pub detail: Option<String>,
    /// When it was made.
    pub at: Timestamp,
    /// When the routing cache will have settled on it; `None` when it will not change routing.
    pub settles_at: Option<Timestamp>,
}

/// The state of one tenant object before or after a journaled write. The write path records
/// these, and `verify`, `drift` and `history` read them back, so their shape is the journal's
/// contract: change it only by adding variants or optional fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Snapshot {
    /// Nothing: a definition before it was created, or a deleted one after.
    Absent,
    /// A user's assignment lists.
    User(UserLists),
    /// A skill or proficiency definition.
    Definition(DefinitionState),
    /// A routing profile's lists.
    Profile(ProfileState),
    /// A routing strategy's proficiency list.
    Strategy(StrategyState),
    /// A record written before the journal was typed, kept as found.
    Legacy {
        /// The JSON as stored.
        value: serde_json::Value,
    },
}

impl Snapshot {
    /// The user lists, when this is a user's snapshot.
    pub fn user(&self) -> Option<&UserLists> {
        match self {
            Snapshot::User(lists) => Some(lists),
            _ => None,
        }
    }
}

/// A user's assignment lists as read or written. A list that was not read or not written is
/// `None` (a skills-only write leaves proficiencies alone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLists {
    /// The user's version the write was conditioned on (`If-Match`), or the version read.
    pub version: Option<u64>,
    /// The skills list.
    pub skills: Option<Vec<Held>>,
    /// The proficiencies list.
    pub proficiencies: Option<Vec<Held>>,
}

/// One assignment in a journaled list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// The tenant definition id.
    pub definition_id: String,
    /// The level, 1 to 10.
    pub level: u8,
    /// Whether it is active.
    pub active: bool,
}

/// A definition's fields as read or written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionState {
    /// The tenant id.
    pub id: String,
    /// `skill` or `proficiency`.
    pub kind: String,
    /// The name.
    pub name: String,
    /// The locale (lowercase BCP-47).
    pub locale: String,
    /// Whether it is active.
    pub active: bool,
    /// The description.
    pub description: String,
    /// The routing profile it belongs to.
    pub routing_profile_id: String,
    /// The tenant's version.
    pub version: u64,
}

/// A routing strategy's proficiency list as read or written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyState {
    /// The strategy id.
    pub id: String,
    /// The strategy's name.
    pub name: String,
    /// Proficiency definition ids its conditions reference.
    pub proficiencies: Vec<String>,
    /// The tenant's version.
    pub version: u64,
}

/// A routing profile's lists as read or written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileState {
    /// The profile id.
    pub id: String,
    /// The profile's name.
    pub name: String,
    /// Skill definition ids.
    pub skills: Vec<String>,
    /// Proficiency definition ids.
    pub proficiencies: Vec<String>,
    /// The tenant's version.
    pub version: u64,
}

/// What a run did, as journaled when it finishes and shown by `history`. Every command fills
/// the counts that apply to it; the rest stay zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunCounts {
    /// Definitions created.
    pub definitions_created: u64,
    /// Definitions reactivated.
    pub definitions_reactivated: u64,
    /// Definitions updated.
    pub definitions_updated: u64,
    /// Definitions deactivated (soft retire).
    pub definitions_deactivated: u64,
    /// Definitions deleted (hard retire).
    pub definitions_deleted: u64,
    /// Users the run meant to change.
    pub users_planned: u64,
    /// Users written.
    pub users_updated: u64,
    /// Users found already as wanted when re-read.
    pub users_already_current: u64,
    /// Users that could not be written.
    pub users_failed: u64,
    /// Users not attempted because the run stopped.
    pub users_not_attempted: u64,
    /// Users whose write the tenant accepted but did not keep (found by the read-back).
    pub users_not_kept: u64,
    /// Routing profiles written (retire strips them).
    pub profiles_updated: u64,
    /// Conflicts met and re-merged.
    pub conflicts: u64,
    /// API requests made.
    pub requests: u64,
    /// Why the run stopped early or failed, when it did.
    pub stopped: Option<String>,
}

/// Which tenant definition one HRIS (code, locale) resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// The HRIS code.
    pub code: String,
    /// The locale (lowercase BCP-47).
    pub locale: String,
    /// `skill` or `proficiency`.
    pub kind: String,
    /// The tenant's definition id.
    pub definition_id: String,
    /// When this mapping was last observed.
    pub seen_at: Timestamp,
}

/// How a catalog variant was retired by `skillsync retire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetirementMode {
    /// Marked inactive in the tenant; its assignments kept for reporting.
    Soft,
    /// Its references stripped and the definition deleted.
    Hard,
}

impl RetirementMode {
    /// The mode's name, as stored and printed: `soft`, `hard`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetirementMode::Soft => "soft",
            RetirementMode::Hard => "hard",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "soft" => RetirementMode::Soft,
            "hard" => RetirementMode::Hard,
            _ => return None,
        })
    }
}

impl fmt::Display for RetirementMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A catalog variant (code, locale) that `skillsync retire` took out of management: later
/// plans neither reactivate, recreate nor reassign it while this record exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// The HRIS code.
    pub code: String,
    /// The locale (lowercase BCP-47).
    pub locale: String,
    /// `skill` or `proficiency`.
    pub kind: String,
    /// The definition's name in the tenant.
    pub name: String,
    /// Soft or hard.
    pub mode: RetirementMode,
    /// The tenant definitions it covered (the canonical one and any duplicates).
    pub definition_ids: Vec<String>,
    /// The run that retired it.
    pub run: RunId,
    /// When.
    pub retired_at: Timestamp,
}

/// Who holds a tenant's lease: enough for a person to find the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The command, e.g. `apply`.
    pub command: String,
}

/// A tenant's lease: one writer per tenant at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// What it guards: the tenant's API base and client id.
    pub key: String,
    /// Raised at every acquisition: a holder that finds a higher number than its own has lost
    /// the lease, and the runs record the number they wrote under.
    pub fence: i64,
    /// Who holds it.
    pub holder: LeaseHolder,
    /// Since when.
    pub acquired_at: Timestamp,
    /// Until when, unless renewed.
    pub expires_at: Timestamp,
}

/// What asking for a lease gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Ours now.
    Held(Lease),
    /// Someone else's, still live.
    Busy(Lease),
}

/// The journal of runs, writes and mappings, shared by every process (and, on PostgreSQL,
/// every host) pointed at the same store. Each write method is one transaction. Leases are
/// timed by the store's own clock (PostgreSQL's `clock_timestamp()`; for SQLite, the one
/// machine's), so hosts whose clocks disagree still agree on who holds one.
#[async_trait::async_trait]
pub trait Journal: Send + Sync {
    /// Records the start of a run and returns its id. Until [`finish_run`](Self::finish_run)
    /// is called the run reads back as [`RunOutcome::Interrupted`].
    async fn start_run(&self, run: &NewRun) -> Result<RunId, StoreError>;

    /// Journals a batch of writes in one transaction: all of them or, on error, none.
    /// Fails with [`StoreError::UnknownRun`] if a record names a run that was never started.
    async fn record_writes(&self, writes: &[WriteRecord]) -> Result<(), StoreError>;

    /// Records the end of a run: its outcome, counts and end time. A run can be finished once.
    /// [`RunOutcome::Interrupted`] is for a run stopped by a signal that journals what it did.
    async fn finish_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        counts: &RunCounts,
        ended_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The latest `limit` runs, newest first. Runs without an end are
    /// [`RunOutcome::Interrupted`].
    async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError>;

    /// One run, or `None` if there is no such run.
    async fn run(&self, id: RunId) -> Result<Option<RunSummary>, StoreError>;

    /// The writes of one run in the order they were journaled (empty for an unknown run).
    async fn writes(&self, run: RunId) -> Result<Vec<WriteRecord>, StoreError>;

    /// The newest write (by `at`, then by journal order) to `subject` of kind `target`, of
    /// any status and any run; for `drift`.
    async fn last_write(
        &self,
        subject: &str,
        target: WriteTarget,
    ) -> Result<Option<WriteRecord>, StoreError>;

    /// [`last_write`](Self::last_write) for many subjects at once, for `drift`: the newest
    /// write of kind `target` to each of `subjects` that has one, in no particular order (each
    /// names its subject). Stores answer it with one pass over the writes of runs still in
    /// progress or killed, where one call per subject would make that pass once per subject.
    async fn last_writes(
        &self,
        subjects: &[&str],
        target: WriteTarget,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        let mut found = Vec::new();
        for subject in subjects {
            if let Some(write) = self.last_write(subject, target).await? {
                found.push(write);
            }
        }
        Ok(found)
    }

    /// The latest `settles_at` over the run's [`WriteStatus::Applied`] writes: when the
    /// routing cache will reflect the whole run; for `verify`. `None` when the run applied no
    /// write with a settle time, or does not exist.
    async fn settles_at(&self, run: RunId) -> Result<Option<Timestamp>, StoreError>;

    /// Inserts or replaces mappings by (code, locale), in one transaction.
    async fn remember_mappings(&self, mappings: &[Mapping]) -> Result<(), StoreError>;

    /// Every mapping, ordered by code, then locale.
    async fn mappings(&self) -> Result<Vec<Mapping>, StoreError>;

    /// Records a retirement, replacing any earlier one of the same (code, locale). Fails with
    /// [`StoreError::UnknownRun`] if its run was never started.
    async fn record_retirement(&self, retirement: &Retirement) -> Result<(), StoreError>;

    /// Every retirement in force, ordered by code, then locale.
    async fn retirements(&self) -> Result<Vec<Retirement>, StoreError>;

    /// Forgets the retirement of (code, locale), so later plans manage it again; true when
    /// there was one.
    async fn forget_retirement(&self, code: &str, locale: &str) -> Result<bool, StoreError>;

    /// Takes the lease `key` for `ttl` from the store's now unless someone else holds it
    /// unexpired; a taken lease gets the next fencing number. One transaction: two callers
    /// never both win.
    async fn acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        ttl: std::time::Duration,
    ) -> Result<Acquired, StoreError>;

    /// Extends the lease to the store's now + `ttl` if it is still ours (same fencing number,
    /// not expired); the new expiry, or `None` when it was lost.
    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: std::time::Duration,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// Gives the lease up (it expires now; its fencing number stays).
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Records that `run` writes under `lease` (its key and fencing number). Its writes are
    /// still journaled after the lease is lost: a write that reached the tenant is never left
    /// out of the journal; the holder stops scheduling writes once it cannot renew.
    async fn fence_run(&self, run: RunId, lease: &Lease) -> Result<(), StoreError>;
}

/// Opens the journal a `[store] url` names:
///
/// - `sqlite://PATH` (also `sqlite:PATH`): a SQLite file, created if absent; a relative path is
///   used as given (relative to the working directory, so callers resolve it against the
///   configuration file first if they want that); `sqlite:///abs/path` is absolute;
/// - `sqlite::memory:`: a private in-memory journal, gone when dropped (for tests and demos);
/// - `postgres://…` / `postgresql://…`: a PostgreSQL database, its schema created or brought
///   up to date in the first schema of the connection's `search_path` (set it as libpq does:
///   `?options=-c%20search_path%3Dskillsync`); no TLS yet, so `sslmode=require` and
///   `verify-*` are [`StoreError::Unsupported`].
///
/// Anything else is [`StoreError::InvalidUrl`]. Error messages never repeat a password the
/// URL may carry.
pub async fn open(url: &str) -> Result<Box<dyn Journal>, StoreError> {
    Ok(match locate(url)? {
        Location::Postgres(url) => Box::new(PostgresStore::open(url).await?),
        Location::Memory => Box::new(SqliteStore::in_memory()?),
        Location::File(path) => Box::new(SqliteStore::open(path)?),
    })
}

/// Opens the HRIS event queue at `url`, the same URLs as [`open`] takes, creating the database
/// and bringing its schema up to date as [`open`] does. The queue has a connection (SQLite,
/// committing with `synchronous=FULL` so that a stored event survives a power loss) or a pool
/// (PostgreSQL) of its own, apart from the journal's. `sqlite::memory:` is a private queue,
/// gone when dropped.
pub async fn open_events(url: &str) -> Result<Box<dyn EventQueue>, StoreError> {
    Ok(match locate(url)? {
        Location::Postgres(url) => Box::new(PostgresStore::open(url).await?),
        Location::Memory => Box::new(SqliteStore::in_memory()?),
        Location::File(path) => Box::new(SqliteStore::open_durable(path)?),
    })
}

/// Where a store URL points.
enum Location<'a> {
    /// A PostgreSQL URL, trimmed.
    Postgres(&'a str),
    /// A private SQLite database in memory.
    Memory,
    /// A SQLite file.
    File(&'a std::path::Path),
}

/// Where `url` points, or why it cannot be understood.
fn locate(url: &str) -> Result<Location<'_>, StoreError> {
    let trimmed = url.trim();
    if is_postgres(trimmed) {
        return Ok(Location::Postgres(trimmed));
    }
    if trimmed == "sqlite::memory:" || trimmed == "sqlite://:memory:" {
        return Ok(Location::Memory);
    }
    let path = trimmed
        .strip_prefix("sqlite://")
        .or_else(|| trimmed.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::InvalidUrl {
            url: redact(trimmed),
            reason: "expected sqlite://PATH, sqlite::memory: or postgres://…".into(),
        })?;
    if path.is_empty() {
        return Err(StoreError::InvalidUrl {
            url: redact(trimmed),
            reason: "the path is empty; write e.g. sqlite://skillsync.db".into(),
        });
    }
    Ok(Location::File(std::path::Path::new(path)))
}

/// Opens the journal at `url` only if it already exists: `None` for an SQLite file that is not
/// there yet, or a PostgreSQL schema the journal was never created in, so that read-only
/// commands never create one.
pub async fn open_existing(url: &str) -> Result<Option<Box<dyn Journal>>, StoreError> {
    let trimmed = url.trim();
    if is_postgres(trimmed) {
        let store = PostgresStore::open_existing(trimmed).await?;
        return Ok(store.map(|store| Box::new(store) as Box<dyn Journal>));
    }
    let file = trimmed
        .strip_prefix("sqlite://")
        .or_else(|| trimmed.strip_prefix("sqlite:"))
        .filter(|path| !path.is_empty() && !path.starts_with(':'));
    match file {
        Some(path) if !std::path::Path::new(path).exists() => Ok(None),
        _ => open(url).await.map(Some),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URL with any `user:password@` and any `password=` value replaced, for messages: a store
/// URL's password is never printed or logged. Covers libpq key-value strings
/// (`host=db password=…`), a password in the query (`?password=…`) and one holding an
/// unencoded `/`; when in doubt it masks more, never less.
pub fn redact(url: &str) -> String {
    let masked = mask_password_values(url);
    let Some(scheme_end) = masked.find("://") else {
        return masked;
    };
    let rest = &masked[scheme_end + 3..];
    // The user info ends at the last `@` before the query: a password may hold a `/`.
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}://***@{}", &masked[..scheme_end], &rest[at + 1..]),
        None => masked,
    }
}

/// Every `password=VALUE` (any case) with its value masked, up to a space, `&` or `;`.
fn mask_password_values(text: &str) -> String {
    const KEY: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let value = from + found + KEY.len();
        out.push_str(&text[from..value]);
        out.push_str("***");
        from = text[value..]
            .find([' ', '&', ';'])
            .map_or(text.len(), |end| value + end);
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_credentials_only() {
        assert_eq!(
            redact("postgres://me:s3cret@db.example:5432/skillsync"),
            "postgres://***@db.example:5432/skillsync"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact("sqlite://a@b.db"), "sqlite://***@b.db");
        assert_eq!(redact("sqlite:dir/a@b.db"), "sqlite:dir/a@b.db");
        assert_eq!(
            redact("host=db user=me password=s3cret dbname=j"),
            "host=db user=me password=*** dbname=j"
        );
        assert_eq!(
            redact("postgres://db/j?sslmode=require&Password=s3cret"),
            "postgres://db/j?sslmode=require&Password=***"
        );
        assert_eq!(redact("postgres://me:p/w@db/j"), "postgres://***@db/j");
    }

    #[tokio::test]
    async fn a_journal_that_does_not_exist_is_not_created_by_open_existing() {
        let dir =
            std::env::temp_dir().join(format!("skillsync-open-existing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.db");
        let url = format!("sqlite://{}", path.display());
        assert!(open_existing(&url).await.unwrap().is_none());
        assert!(!path.exists(), "nothing was created");
        drop(open(&url).await.unwrap());
        assert!(open_existing(&url).await.unwrap().is_some());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn unknown_schemes_and_empty_paths_are_invalid() {
        for url in ["mysql://x/y", "skillsync.db", "sqlite://", "sqlite:"] {
            let err = open(url).await.err().expect(url);
            assert!(matches!(err, StoreError::InvalidUrl { .. }), "{url}: {err}");
            assert!(err.to_string().contains("[store] url"), "{err}");
            let err = open_events(url).await.err().expect(url);
            assert!(matches!(err, StoreError::InvalidUrl { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in [
            WriteStatus::Applied,
            WriteStatus::Conflict,
            WriteStatus::Failed,
            WriteStatus::Unknown,
        ] {
            assert_eq!(WriteStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for t in [
            WriteTarget::UserSkills,
            WriteTarget::UserProficiencies,
            WriteTarget::Definition,
            WriteTarget::Profile,
        ] {
            assert_eq!(WriteTarget::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    /// The stored form is the journal's contract with older and newer skillsyncs.
    #[test]
    fn snapshots_and_counts_have_their_documented_json_shape() {
        use serde_json::json;
        let shapes = [
            (Snapshot::Absent, json!({"type": "absent"})),
            (
                Snapshot::User(UserLists {
                    version: Some(3),
                    skills: Some(vec![Held {
                        definition_id: "d1".into(),
                        level: 4,
                        active: true,
                    }]),
                    proficiencies: None,
                }),
                json!({
                    "type": "user",
                    "version": 3,
                    "skills": [{"definitionId": "d1", "level": 4, "active": true}],
                    "proficiencies": null,
                }),
            ),
            (
                Snapshot::Definition(DefinitionState {
                    id: "d1".into(),
                    kind: "skill".into(),
                    name: "Billing".into(),
                    locale: "en-us".into(),
                    active: true,
                    description: "".into(),
                    routing_profile_id: "rp".into(),
                    version: 2,
                }),
                json!({
                    "type": "definition", "id": "d1", "kind": "skill", "name": "Billing",
                    "locale": "en-us", "active": true, "description": "",
                    "routingProfileId": "rp", "version": 2,
                }),
            ),
            (
                Snapshot::Profile(ProfileState {
                    id: "rp".into(),
                    name: "Sales".into(),
                    skills: vec!["d1".into()],
                    proficiencies: vec![],
                    version: 5,
                }),
                json!({
                    "type": "profile", "id": "rp", "name": "Sales", "skills": ["d1"],
                    "proficiencies": [], "version": 5,
                }),
            ),
            (
                Snapshot::Legacy {
                    value: json!([1, {"a": null}]),
                },
                json!({"type": "legacy", "value": [1, {"a": null}]}),
            ),
        ];
        for (snapshot, shape) in shapes {
            assert_eq!(serde_json::to_value(&snapshot).unwrap(), shape);
            assert_eq!(serde_json::from_value::<Snapshot>(shape).unwrap(), snapshot);
        }
        let counts = RunCounts {
            users_not_kept: 1,
            stopped: Some("why".into()),
            ..RunCounts::default()
        };
        let value = serde_json::to_value(&counts).unwrap();
        assert_eq!(value["usersNotKept"], 1);
        assert_eq!(value["stopped"], "why");
        assert_eq!(serde_json::from_value::<RunCounts>(value).unwrap(), counts);
    }
}

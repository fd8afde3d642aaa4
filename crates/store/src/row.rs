//! Rows as every backend stores them, and their decoding into the journal's types.
//!
//! SQLite and PostgreSQL keep the same columns in the same text forms, so the rules for reading
//! them back live here once: timestamps as fixed-width RFC 3339 text, snapshots and counts as
//! serde JSON read leniently, the names a column may hold. A backend only says how to read one
//! column of its own row type ([`Columns`]) and which SQL to run; the column lists below are
//! plain SQL that both dialects accept, and fix the order [`Columns`] reads them in.
//!
//! Timestamps are stored as RFC 3339 text in UTC with exactly nine fractional digits
//! (`2025-01-02T03:04:05.000000000Z`), so that text order is time order and `MAX`/`ORDER BY`
//! work on them (PostgreSQL declares these columns `COLLATE "C"` so that its order is the
//! bytes' order, as SQLite's is).
//!
//! [`Snapshot`]s (`writes.before_json`, `writes.after_json`) and [`RunCounts`]
//! (`runs.counts_json`) are stored as their serde JSON text. Rows written before the journal was
//! typed hold arbitrary JSON: a snapshot that is valid JSON but not a [`Snapshot`] reads back as
//! [`Snapshot::Legacy`], and counts are read leniently (unknown fields ignored, fields of the
//! wrong type dropped, an old `error` text kept as `stopped`; counts that are not an object read
//! as `None`). Only text that is not JSON at all is [`StoreError::Corrupt`].
//!
//! Since schema version 7 (PostgreSQL 4), a user's lists before a write are stored as their
//! difference from the lists written (`{"type":"userDelta",…}`, see [`before_json`]) and read
//! back whole: the journal's typed records are the same, its rows smaller.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::user_json;
use crate::{
    EventLane, EventQueueStats, EventRecord, EventState, Held, InvalidValue, Lease, LeaseHolder,
    Mapping, Retirement, RetirementMode, RunCounts, RunId, RunOutcome, RunSummary, Snapshot,
    StoreError, WriteRecord, WriteStatus, WriteTarget,
};

/// The columns of a [`RunSummary`], with the write count and settle time computed.
pub(crate) const RUN_SELECT: &str =
    "SELECT r.id, r.command, r.config_hash, r.dialect, r.started_at, r.ended_at,
            r.outcome, r.counts_json,
            (SELECT COUNT(*) FROM writes w WHERE w.run_id = r.id),
            (SELECT MAX(w.settles_at) FROM writes w
              WHERE w.run_id = r.id AND w.status = 'applied')
     FROM runs r";

/// The columns of a [`WriteRecord`].
pub(crate) const WRITE_SELECT: &str =
    "SELECT run_id, target, subject, before_json, after_json, status, detail, at, settles_at
     FROM writes";

/// The upsert every fold ends with: an entry is replaced only by a newer write (by `at`, then
/// by journal order). A macro so that the fold statements below can be spelled with it.
macro_rules! newer_wins {
    () => {
        "ON CONFLICT (subject, target) DO UPDATE SET at = excluded.at, write_id = excluded.write_id
     WHERE excluded.at > last_writes.at
        OR (excluded.at = last_writes.at AND excluded.write_id > last_writes.write_id)"
    };
}

/// That upsert, for a fold that builds its own statement.
pub(crate) const NEWER_WINS: &str = newer_wins!();

/// Folds run `$1`'s writes into `last_writes`: for each (subject, target) its newest write (by
/// `at`, then journal order), replacing an entry only with a newer one. Rows go in key order, so
/// a run's fold touches each page of the table once, where maintaining a per-write index on
/// random user ids dirtied a page per write at every commit (docs/BENCHMARKS.md). Idempotent:
/// folding a run again (writes journaled after it was folded) changes only what is newer.
///
/// SQLite's: every write of the run in (subject, target, at, id) order, each one newer than
/// the one before it for the same key, so the upsert ends at the newest; one sort, no window
/// (a third of the time of picking the newest per key first).
pub(crate) const FOLD_RUN_SQLITE: &str = concat!(
    "INSERT INTO last_writes (subject, target, at, write_id)
     SELECT subject, target, at, id FROM writes WHERE run_id = $1
     ORDER BY subject, target, at, id
     ",
    newer_wins!()
);

/// [`FOLD_RUN_SQLITE`] for PostgreSQL, whose upsert may not touch a row twice: the newest
/// write per key first.
pub(crate) const FOLD_RUN_POSTGRES: &str = concat!(
    "INSERT INTO last_writes (subject, target, at, write_id)
     SELECT DISTINCT ON (subject, target) subject, target, at, id FROM writes WHERE run_id = $1
     ORDER BY subject, target, at DESC, id DESC
     ",
    newer_wins!()
);

/// Marks run `$1` folded: its writes are in `last_writes`, and readers need not scan them.
pub(crate) const MARK_FOLDED: &str = "UPDATE runs SET folded = TRUE WHERE id = $1";

/// The runs not folded yet that a run taking lease `$1` with fence `$2` outlives: earlier
/// holders of the same lease, unfinished (killed, or still finishing the writes they had in
/// flight when they lost it). Folding them keeps `last_write` from scanning a dead run's writes
/// for ever; a straggler's writes journaled afterwards are folded as they are recorded.
pub(crate) const DEAD_UNFOLDED_RUNS: &str =
    "SELECT id FROM runs WHERE lease_key = $1 AND fence < $2 AND NOT folded AND ended_at IS NULL";

/// (subject, at, id) of every write of kind `$1` in a run not folded yet: a run in progress,
/// one that was killed, or one journaled by a skillsync older than `last_writes`.
pub(crate) const UNFOLDED_WRITES: &str = "SELECT subject, at, id FROM writes
     WHERE target = $1 AND run_id IN (SELECT id FROM runs WHERE NOT folded)";

/// The newest of `candidates` (subject, at as stored, write id) per subject among `subjects`:
/// the newest by `at`, then by journal order, as [`FOLD_RUN_SQLITE`] decides. Stored times are
/// fixed-width text, so text order is time order.
pub(crate) fn newest_per_subject(
    subjects: &std::collections::HashSet<&str>,
    candidates: impl IntoIterator<Item = (String, String, i64)>,
) -> std::collections::HashMap<String, (String, i64)> {
    let mut newest: std::collections::HashMap<String, (String, i64)> =
        std::collections::HashMap::new();
    for (subject, at, id) in candidates {
        if !subjects.contains(subject.as_str()) {
            continue;
        }
        match newest.get_mut(&subject) {
            Some(best) if (&best.0, best.1) >= (&at, id) => {}
            Some(best) => *best = (at, id),
            None => {
                newest.insert(subject, (at, id));
            }
        }
    }
    newest
}

/// Every mapping, in the order [`Journal::mappings`](crate::Journal::mappings) promises.
pub(crate) const MAPPINGS_SELECT: &str =
    "SELECT code, locale, kind, definition_id, seen_at FROM mappings ORDER BY code, locale";

/// Every retirement, in the order [`Journal::retirements`](crate::Journal::retirements)
/// promises.
pub(crate) const RETIREMENTS_SELECT: &str =
    "SELECT code, locale, kind, name, mode, definition_ids_json, run_id, retired_at
     FROM retirements ORDER BY code, locale";

/// Records a retirement, replacing any earlier one of the same (code, locale). The placeholders
/// `$1`…`$8` first appear in the order of their numbers: PostgreSQL numbers them, and SQLite
/// reads them as named parameters indexed in order of appearance, so both bind them by
/// position.
pub(crate) const RETIREMENT_UPSERT: &str = "INSERT INTO retirements
         (code, locale, kind, name, mode, definition_ids_json, run_id, retired_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (code, locale) DO UPDATE SET
         kind = excluded.kind,
         name = excluded.name,
         mode = excluded.mode,
         definition_ids_json = excluded.definition_ids_json,
         run_id = excluded.run_id,
         retired_at = excluded.retired_at";

/// The columns of a [`Lease`] but its key.
pub(crate) const LEASE_COLUMNS: &str = "fence, host, pid, command, acquired_at, expires_at";

/// The columns of an [`EventRecord`], unqualified (the claim's `RETURNING` lists them too).
pub(crate) const EVENT_COLUMNS: &str = "id, lane, employee_id, occurred_at, received_at, body, \
     state, reason, run_id, settled_at, attempts";

/// The order events are claimed and overlaid in: when they happened, ties broken by arrival
/// and then id so that every process sees the same order.
pub(crate) const EVENT_ORDER: &str = "occurred_at, received_at, id";

/// The events `tail` (a `WHERE`/`ORDER BY`/`LIMIT` below) selects. The tails are shared by
/// both backends, their placeholders numbered in order of first appearance as
/// [`RETIREMENT_UPSERT`] explains.
pub(crate) fn event_select(tail: &str) -> String {
    format!("SELECT {EVENT_COLUMNS} FROM events {tail}")
}

/// One event by id.
pub(crate) const EVENT_BY_ID: &str = "WHERE id = $1";

/// Applied events after a time, for the overlay.
pub(crate) fn applied_since_tail() -> String {
    format!("WHERE state = 'applied' AND occurred_at > $1 ORDER BY {EVENT_ORDER}")
}

/// The newest received events, of any state.
pub(crate) const RECENT_TAIL: &str = "ORDER BY received_at DESC, id DESC LIMIT $1";

/// The newest received events in one state.
pub(crate) const RECENT_IN_STATE_TAIL: &str =
    "WHERE state = $1 ORDER BY received_at DESC, id DESC LIMIT $2";

/// Per state: how many events, and when the oldest of them was received.
pub(crate) const EVENT_STATS: &str =
    "SELECT state, COUNT(*), MIN(received_at) FROM events GROUP BY state";

/// How a backend reads one column of its row type; the error is the driver's own.
pub(crate) trait Columns {
    type Error;
    fn text(&self, index: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, index: usize) -> Result<Option<String>, Self::Error>;
    fn int(&self, index: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, index: usize) -> Result<Option<i64>, Self::Error>;
}

/// A timestamp as stored: UTC, nine fractional digits, so text order is time order.
pub(crate) fn ts(t: Timestamp) -> String {
    format!("{t:.9}")
}

/// A value as stored: its serde JSON text.
pub(crate) fn to_json(value: &impl serde::Serialize) -> String {
    // Cannot fail: the journal's types have string map keys and no custom serializers.
    serde_json::to_string(value).expect("journal values serialize to JSON")
}

fn corrupt(journal: &str, what: &'static str, value: &str, source: InvalidValue) -> StoreError {
    StoreError::Corrupt {
        path: journal.to_owned(),
        what,
        value: value.to_owned(),
        source,
    }
}

fn unexpected(
    journal: &str,
    what: &'static str,
    value: &str,
    expected: &'static str,
) -> StoreError {
    corrupt(journal, what, value, InvalidValue::Unexpected { expected })
}

/// A stored timestamp; `journal` names the store in the error.
pub(crate) fn timestamp(
    journal: &str,
    what: &'static str,
    text: &str,
) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|e| corrupt(journal, what, text, InvalidValue::Timestamp(e)))
}

/// A stored timestamp that may be absent.
pub(crate) fn opt_timestamp(
    journal: &str,
    what: &'static str,
    text: Option<String>,
) -> Result<Option<Timestamp>, StoreError> {
    text.map(|t| timestamp(journal, what, &t)).transpose()
}

fn json(journal: &str, what: &'static str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(journal, what, text, InvalidValue::Json(e)))
}

/// A stored snapshot; valid JSON that is not a [`Snapshot`] (written before the journal was
/// typed) is [`Snapshot::Legacy`].
fn snapshot(journal: &str, what: &'static str, text: &str) -> Result<Snapshot, StoreError> {
    if let Ok(snapshot) = serde_json::from_str(text) {
        return Ok(snapshot);
    }
    let value = json(journal, what, text)?;
    Ok(Snapshot::deserialize(&value).unwrap_or(Snapshot::Legacy { value }))
}

/// The tag of a user's state before a write, stored as its difference from the state written
/// (see [`before_json`]).
const DELTA_TAG: &str = "userDelta";

/// The tag serde gives a [`Snapshot::User`].
const USER_TAG: &str = "user";

/// A user's lists before a write, stored against the lists written: each entry of a list that
/// was written is the index of an entry of the written list equal to it, or the entry itself;
/// a list that was not written is kept whole. A level change among ten skills stores one entry
/// and nine small numbers instead of ten definition ids: less for a 100,000-agent apply to
/// insert, commit and checkpoint (its list before went from 375 to 236 bytes on average).
#[derive(serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserDelta<'a> {
    #[serde(rename = "type")]
    tag: std::borrow::Cow<'a, str>,
    version: Option<u64>,
    skills: Option<Vec<DeltaEntry<'a>>>,
    proficiencies: Option<Vec<DeltaEntry<'a>>>,
}

/// One entry of a list in a [`UserDelta`].
#[derive(serde::Serialize, Deserialize)]
#[serde(untagged)]
enum DeltaEntry<'a> {
    /// The written list's entry at this index.
    Same(usize),
    /// This entry.
    Held(std::borrow::Cow<'a, Held>),
}

/// `list` as entries of a [`UserDelta`] against `written` (`None`: the list was not written,
/// so every entry is kept whole).
fn delta_entries<'a>(
    list: &'a [Held],
    written: Option<&'a [Held]>,
) -> impl Iterator<Item = user_json::Entry<'a>> {
    list.iter().map(move |held| {
        match written.and_then(|written| written.iter().position(|w| w == held)) {
            Some(index) => user_json::Entry::Same(index),
            None => user_json::Entry::Held(held),
        }
    })
}

/// The stored text of a write's `before`: a user's lists as their difference from the lists
/// written (`after`), read back whole by [`RawWrite::decode`]; any other snapshot as its serde
/// JSON.
pub(crate) fn before_json(before: &Snapshot, after: &Snapshot) -> String {
    match (before, after) {
        (Snapshot::User(before), Snapshot::User(after)) => user_json::delta(
            DELTA_TAG,
            before.version,
            before
                .skills
                .as_deref()
                .map(|list| delta_entries(list, after.skills.as_deref())),
            before
                .proficiencies
                .as_deref()
                .map(|list| delta_entries(list, after.proficiencies.as_deref())),
        ),
        _ => to_json(before),
    }
}

/// The stored text of a write's `after`: its serde JSON.
pub(crate) fn after_json(after: &Snapshot) -> String {
    match after {
        Snapshot::User(lists) => user_json::user(USER_TAG, lists),
        other => to_json(other),
    }
}

/// The stored `before` as a [`UserDelta`], or `None` when it is a snapshot of its own.
fn before_delta<'a>(journal: &str, text: &'a str) -> Result<Option<UserDelta<'a>>, StoreError> {
    // Written by `before_json`, whose first key is the tag; anything else is a snapshot.
    if !text.starts_with(r#"{"type":"userDelta""#) {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| corrupt(journal, "writes.before_json", text, InvalidValue::Json(e)))
}

impl UserDelta<'_> {
    /// The whole snapshot, given the write's `after`.
    fn resolve(self, journal: &str, text: &str, after: &Snapshot) -> Result<Snapshot, StoreError> {
        let invalid = || {
            unexpected(
                journal,
                "writes.before_json",
                text,
                "a user's lists against the lists written",
            )
        };
        let Snapshot::User(written) = after else {
            return Err(invalid());
        };
        let list = |entries: Option<Vec<DeltaEntry<'_>>>, written: Option<&Vec<Held>>| {
            entries
                .map(|entries| {
                    entries
                        .into_iter()
                        .map(|entry| match entry {
                            DeltaEntry::Same(index) => written
                                .and_then(|w| w.get(index))
                                .cloned()
                                .ok_or_else(invalid),
                            DeltaEntry::Held(held) => Ok(held.into_owned()),
                        })
                        .collect::<Result<Vec<Held>, StoreError>>()
                })
                .transpose()
        };
        Ok(Snapshot::User(crate::UserLists {
            version: self.version,
            skills: list(self.skills, written.skills.as_ref())?,
            proficiencies: list(self.proficiencies, written.proficiencies.as_ref())?,
        }))
    }
}

/// Counts as stored, read leniently: see the module documentation.
fn counts(value: Value) -> Option<RunCounts> {
    let Value::Object(mut fields) = value else {
        return None;
    };
    // Before the journal was typed, a failed run's counts carried its reason as `error` (null,
    // from retire, when there was none; dropped, as any unknown field would be).
    if !fields.contains_key("stopped")
        && let Some(error @ Value::String(_)) = fields.remove("error")
    {
        fields.insert("stopped".to_owned(), error);
    }
    if let Ok(counts) = RunCounts::deserialize(&Value::Object(fields.clone())) {
        return Some(counts);
    }
    // Some field has the wrong type: keep the fields that read on their own.
    let readable: serde_json::Map<String, Value> = fields
        .into_iter()
        .filter(|(name, value)| {
            let one = serde_json::Map::from_iter([(name.clone(), value.clone())]);
            RunCounts::deserialize(&Value::Object(one)).is_ok()
        })
        .collect();
    Some(RunCounts::deserialize(&Value::Object(readable)).unwrap_or_default())
}

/// Whether a run can be finished, given what its `ended_at` column held (`None`: there is no
/// such run): only once, whatever the outcome.
pub(crate) fn check_unfinished(
    journal: &str,
    run: i64,
    ended: Option<Option<String>>,
) -> Result<(), StoreError> {
    match ended {
        None => Err(StoreError::UnknownRun {
            path: journal.to_owned(),
            run,
        }),
        Some(Some(_)) => Err(StoreError::AlreadyFinished {
            path: journal.to_owned(),
            run,
        }),
        Some(None) => Ok(()),
    }
}

/// A row of [`RUN_SELECT`].
pub(crate) struct RawRun {
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
    pub(crate) fn read<R: Columns + ?Sized>(row: &R) -> Result<Self, R::Error> {
        Ok(RawRun {
            id: row.int(0)?,
            command: row.text(1)?,
            config_hash: row.text(2)?,
            dialect: row.text(3)?,
            started_at: row.text(4)?,
            ended_at: row.opt_text(5)?,
            outcome: row.opt_text(6)?,
            counts: row.opt_text(7)?,
            writes: row.int(8)?,
            settles_at: row.opt_text(9)?,
        })
    }

    pub(crate) fn decode(self, journal: &str) -> Result<RunSummary, StoreError> {
        let outcome = match self.outcome.as_deref() {
            None => RunOutcome::Interrupted,
            Some("succeeded") => RunOutcome::Succeeded,
            Some("failed") => RunOutcome::Failed,
            Some("refused") => RunOutcome::Refused,
            Some("interrupted") => RunOutcome::Interrupted,
            Some(other) => {
                return Err(unexpected(
                    journal,
                    "runs.outcome",
                    other,
                    "succeeded, failed, refused or interrupted",
                ));
            }
        };
        Ok(RunSummary {
            id: RunId(self.id),
            command: self.command,
            config_hash: self.config_hash,
            dialect: self.dialect,
            started_at: timestamp(journal, "runs.started_at", &self.started_at)?,
            ended_at: opt_timestamp(journal, "runs.ended_at", self.ended_at)?,
            outcome,
            counts: match self.counts {
                Some(text) => counts(json(journal, "runs.counts_json", &text)?),
                None => None,
            },
            writes: u64::try_from(self.writes).unwrap_or(0),
            settles_at: opt_timestamp(journal, "writes.settles_at", self.settles_at)?,
        })
    }
}

/// A row of [`WRITE_SELECT`].
pub(crate) struct RawWrite {
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
    pub(crate) fn read<R: Columns + ?Sized>(row: &R) -> Result<Self, R::Error> {
        Ok(RawWrite {
            run: row.int(0)?,
            target: row.text(1)?,
            subject: row.text(2)?,
            before: row.text(3)?,
            after: row.text(4)?,
            status: row.text(5)?,
            detail: row.opt_text(6)?,
            at: row.text(7)?,
            settles_at: row.opt_text(8)?,
        })
    }

    pub(crate) fn decode(self, journal: &str) -> Result<WriteRecord, StoreError> {
        let after = snapshot(journal, "writes.after_json", &self.after)?;
        Ok(WriteRecord {
            run: RunId(self.run),
            target: WriteTarget::parse(&self.target).ok_or_else(|| {
                unexpected(
                    journal,
                    "writes.target",
                    &self.target,
                    "user_skills, user_proficiencies, definition or profile",
                )
            })?,
            subject: self.subject,
            before: match before_delta(journal, &self.before)? {
                Some(delta) => delta.resolve(journal, &self.before, &after)?,
                None => snapshot(journal, "writes.before_json", &self.before)?,
            },
            after,
            status: WriteStatus::parse(&self.status).ok_or_else(|| {
                unexpected(
                    journal,
                    "writes.status",
                    &self.status,
                    "applied, conflict, failed or unknown",
                )
            })?,
            detail: self.detail,
            at: timestamp(journal, "writes.at", &self.at)?,
            settles_at: opt_timestamp(journal, "writes.settles_at", self.settles_at)?,
        })
    }
}

/// A row of [`MAPPINGS_SELECT`].
pub(crate) struct RawMapping {
    code: String,
    locale: String,
    kind: String,
    definition_id: String,
    seen_at: String,
}

impl RawMapping {
    pub(crate) fn read<R: Columns + ?Sized>(row: &R) -> Result<Self, R::Error> {
        Ok(RawMapping {
            code: row.text(0)?,
            locale: row.text(1)?,
            kind: row.text(2)?,
            definition_id: row.text(3)?,
            seen_at: row.text(4)?,
        })
    }

    pub(crate) fn decode(self, journal: &str) -> Result<Mapping, StoreError> {
        Ok(Mapping {
            seen_at: timestamp(journal, "mappings.seen_at", &self.seen_at)?,
            code: self.code,
            locale: self.locale,
            kind: self.kind,
            definition_id: self.definition_id,
        })
    }
}

/// A row of [`RETIREMENTS_SELECT`].
pub(crate) struct RawRetirement {
    code: String,
    locale: String,
    kind: String,
    name: String,
    mode: String,
    definition_ids: String,
    run: i64,
    retired_at: String,
}

impl RawRetirement {
    pub(crate) fn read<R: Columns + ?Sized>(row: &R) -> Result<Self, R::Error> {
        Ok(RawRetirement {
            code: row.text(0)?,
            locale: row.text(1)?,
            kind: row.text(2)?,
            name: row.text(3)?,
            mode: row.text(4)?,
            definition_ids: row.text(5)?,
            run: row.int(6)?,
            retired_at: row.text(7)?,
        })
    }

    pub(crate) fn decode(self, journal: &str) -> Result<Retirement, StoreError> {
        let mode = RetirementMode::parse(&self.mode)
            .ok_or_else(|| unexpected(journal, "retirements.mode", &self.mode, "soft or hard"))?;
        let definition_ids: Vec<String> =
            serde_json::from_str(&self.definition_ids).map_err(|e| {
                corrupt(
                    journal,
                    "retirements.definition_ids_json",
                    &self.definition_ids,
                    InvalidValue::Json(e),
                )
            })?;
        Ok(Retirement {
            retired_at: timestamp(journal, "retirements.retired_at", &self.retired_at)?,
            code: self.code,
            locale: self.locale,
            kind: self.kind,
            name: self.name,
            mode,
            definition_ids,
            run: RunId(self.run),
        })
    }
}

/// A row of [`LEASE_COLUMNS`].
pub(crate) struct RawLease {
    fence: i64,
    host: String,
    pid: i64,
    command: String,
    acquired_at: String,
    expires_at: String,
}

impl RawLease {
    pub(crate) fn read<R: Columns + ?Sized>(row: &R) -> Result<Self, R::Error> {
        Ok(RawLease {
            fence: row.int(0)?,
            host: row.text(1)?,
            pid: row.int(2)?,
            command: row.text(3)?,
            acquired_at: row.text(4)?,
            expires_at: row.text(5)?,
        })
    }

    /// Its fencing number.
    pub(crate) fn fence(&self) -> i64 {
        self.fence
    }

    /// When the lease runs out, without decoding the rest.
    pub(crate) fn expires_at(&self, journal: &str) -> Result<Timestamp, StoreError> {
        timestamp(journal, "leases.expires_at", &self.expires_at)
    }

    pub(crate) fn decode(self, journal: &str, key: &str) -> Result<Lease, StoreError> {
        Ok(Lease {
            key: key.to_owned(),
            fence: self.fence,
            holder: LeaseHolder {
                host: self.host,
                pid: u32::try_from(self.pid).unwrap_or_default(),
                command: self.command,
            },
            acquired_at: timestamp(journal, "leases.acquired_at", &self.acquired_at)?,
            expires_at: timestamp(journal, "leases.expires_at", &self.expires_at)?,
        })
    }
}

/// A row of [`EVENT_COLUMNS`].
pub(crate) struct RawEvent {
    id: String,
    lane: String,
    employee_id: String,
    occurred_at: String,
    received_at: String,
    body: String,
    state: String,
    reason: Option<String>,
    run: Option<i64>,
    settled_at: Option<String>,
    attempts: i64,
}

impl RawEvent {
    pub(crate) fn read<R: Columns + ?Sized>(row: &R) -> Result<Self, R::Error> {
        Ok(RawEvent {
            id: row.text(0)?,
            lane: row.text(1)?,
            employee_id: row.text(2)?,
            occurred_at: row.text(3)?,
            received_at: row.text(4)?,
            body: row.text(5)?,
            state: row.text(6)?,
            reason: row.opt_text(7)?,
            run: row.opt_int(8)?,
            settled_at: row.opt_text(9)?,
            attempts: row.int(10)?,
        })
    }

    pub(crate) fn decode(self, journal: &str) -> Result<EventRecord, StoreError> {
        Ok(EventRecord {
            lane: EventLane::parse(&self.lane).ok_or_else(|| {
                unexpected(
                    journal,
                    "events.lane",
                    &self.lane,
                    "skills or proficiencies",
                )
            })?,
            state: event_state(journal, &self.state)?,
            occurred_at: timestamp(journal, "events.occurred_at", &self.occurred_at)?,
            received_at: timestamp(journal, "events.received_at", &self.received_at)?,
            settled_at: opt_timestamp(journal, "events.settled_at", self.settled_at)?,
            id: self.id,
            employee_id: self.employee_id,
            body: self.body,
            reason: self.reason,
            run: self.run.map(RunId),
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
        })
    }
}

fn event_state(journal: &str, text: &str) -> Result<EventState, StoreError> {
    EventState::parse(text).ok_or_else(|| {
        unexpected(
            journal,
            "events.state",
            text,
            "queued, applied, rejected or superseded",
        )
    })
}

/// The rows of [`EVENT_STATS`]: (state, count, oldest `received_at`), added up.
pub(crate) fn event_stats(
    journal: &str,
    rows: Vec<(String, i64, Option<String>)>,
) -> Result<EventQueueStats, StoreError> {
    let mut stats = EventQueueStats::default();
    for (state, count, oldest) in rows {
        let count = u64::try_from(count).unwrap_or(0);
        match event_state(journal, &state)? {
            EventState::Queued => {
                stats.queued = count;
                stats.oldest_queued = opt_timestamp(journal, "events.received_at", oldest)?;
            }
            EventState::Applied => stats.applied = count,
            EventState::Rejected => stats.rejected = count,
            EventState::Superseded => stats.superseded = count,
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(n: usize, level: u8) -> Held {
        Held {
            definition_id: format!("a0b1c2d3-e4f5-4a6b-8c7d-{n:012}"),
            level,
            active: true,
        }
    }

    #[test]
    fn a_level_change_stores_one_entry_of_the_list_before() {
        let before: Vec<Held> = (0..10).map(|n| held(n, 3)).collect();
        let mut after = before.clone();
        after[4].level = 4;
        let user = |skills: Vec<Held>| {
            Snapshot::User(crate::UserLists {
                version: Some(7),
                skills: Some(skills),
                proficiencies: None,
            })
        };
        let stored = before_json(&user(before.clone()), &user(after.clone()));
        assert_eq!(
            stored,
            r#"{"type":"userDelta","version":7,"skills":[0,1,2,3,{"definitionId":"a0b1c2d3-e4f5-4a6b-8c7d-000000000004","level":3,"active":true},5,6,7,8,9],"proficiencies":null}"#
        );
        assert!(stored.len() * 4 < to_json(&user(before.clone())).len());
        let delta = before_delta("j", &stored).unwrap().unwrap();
        assert_eq!(
            delta.resolve("j", &stored, &user(after)).unwrap(),
            user(before)
        );
    }

    fn any_lists() -> impl proptest::strategy::Strategy<Value = crate::UserLists> {
        use proptest::prelude::*;
        // Ids from a small pool, so lists before and after share entries; some of them with
        // what JSON must escape.
        let id = prop_oneof![
            "[a-f0-9]{8}-[a-f0-9]{4}",
            "[a-c]{1,3}",
            "[\\x00-\\x1f\"\\\\/a é\u{2028}\u{1F600}]{0,6}",
        ];
        let held = (id, 0u8..=255, any::<bool>()).prop_map(|(definition_id, level, active)| Held {
            definition_id,
            level,
            active,
        });
        let list = proptest::option::of(proptest::collection::vec(held, 0..6));
        (proptest::option::of(any::<u64>()), list.clone(), list).prop_map(
            |(version, skills, proficiencies)| crate::UserLists {
                version,
                skills,
                proficiencies,
            },
        )
    }

    proptest::proptest! {
        /// The lists are written by hand (`user_json`) for speed, byte for byte as serde
        /// writes them, which is what every reader (and an older skillsync) parses.
        #[test]
        fn stored_user_lists_are_serde_json_to_the_byte(
            before in any_lists(),
            after in any_lists(),
        ) {
            let (before, after) = (Snapshot::User(before), Snapshot::User(after));
            proptest::prop_assert_eq!(after_json(&after), to_json(&after));
            let (Snapshot::User(b), Snapshot::User(a)) = (&before, &after) else { unreachable!() };
            let serde_delta = to_json(&UserDelta {
                tag: std::borrow::Cow::Borrowed(DELTA_TAG),
                version: b.version,
                skills: b.skills.as_deref().map(|list| serde_entries(list, a.skills.as_deref())),
                proficiencies: b
                    .proficiencies
                    .as_deref()
                    .map(|list| serde_entries(list, a.proficiencies.as_deref())),
            });
            let stored = before_json(&before, &after);
            proptest::prop_assert_eq!(&stored, &serde_delta);
            let delta = before_delta("j", &stored).unwrap().unwrap();
            proptest::prop_assert_eq!(delta.resolve("j", &stored, &after).unwrap(), before);
        }
    }

    /// [`delta_entries`] as serde's [`DeltaEntry`]s: the reference the stored text is held to.
    fn serde_entries<'a>(list: &'a [Held], written: Option<&'a [Held]>) -> Vec<DeltaEntry<'a>> {
        delta_entries(list, written)
            .map(|entry| match entry {
                user_json::Entry::Same(index) => DeltaEntry::Same(index),
                user_json::Entry::Held(held) => DeltaEntry::Held(std::borrow::Cow::Borrowed(held)),
            })
            .collect()
    }

    #[test]
    fn a_delta_that_names_an_entry_the_write_lacks_is_corrupt() {
        let stored = r#"{"type":"userDelta","version":1,"skills":[3],"proficiencies":null}"#;
        let after = Snapshot::User(crate::UserLists {
            version: Some(1),
            skills: Some(vec![held(0, 1)]),
            proficiencies: None,
        });
        let delta = before_delta("j", stored).unwrap().unwrap();
        let err = delta.resolve("j", stored, &after).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    what: "writes.before_json",
                    ..
                }
            ),
            "{err}"
        );
        let delta = before_delta("j", stored).unwrap().unwrap();
        assert!(delta.resolve("j", stored, &Snapshot::Absent).is_err());
    }
}

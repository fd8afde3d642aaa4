//! The store's one error type. Each variant names the journal and what failed.

/// Errors from the journal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `[store] url` names a store this build cannot use yet.
    #[error("the journal at {url} is not supported: {reason}; check [store] url")]
    Unsupported {
        /// The URL, without any password.
        url: String,
        /// Why, and what to use instead.
        reason: String,
    },

    /// The `[store] url` cannot be understood.
    #[error("invalid journal url {url:?}: {reason}; check [store] url")]
    InvalidUrl {
        /// The URL, without any password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The database could not be opened or set up (missing directory, permissions, not a
    /// SQLite file, locked for too long).
    #[error("cannot open the journal at {path}: {message}; check [store] url")]
    Open {
        /// The database path (`:memory:` for an in-memory journal).
        path: String,
        /// What the database said.
        message: String,
    },

    /// The database was written by a newer skillsync whose schema this one does not know.
    #[error(
        "the journal at {path} has schema version {found}, newer than the {known} this skillsync \
         knows; upgrade skillsync or point [store] url elsewhere"
    )]
    TooNew {
        /// The database path.
        path: String,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },

    /// A schema migration failed; the database is left at the previous version.
    #[error("cannot migrate the journal at {path} to schema version {version}: {message}")]
    Migrate {
        /// The database path.
        path: String,
        /// The version being migrated to.
        version: i64,
        /// What the database said.
        message: String,
    },

    /// A read or write failed.
    #[error("journal at {path}: cannot {action}: {message}")]
    Query {
        /// The database path.
        path: String,
        /// What was being done, e.g. `record 12 writes`.
        action: String,
        /// What the database said.
        message: String,
    },

    /// A stored value cannot be read back (edited by hand, or written by something else).
    #[error("journal at {path}: {what} holds {value:?}, which is not valid: {message}")]
    Corrupt {
        /// The database path.
        path: String,
        /// Which column, e.g. `runs.started_at`.
        what: &'static str,
        /// The value found.
        value: String,
        /// Why it is not valid.
        message: String,
    },

    /// A call named a run that was never started.
    #[error("journal at {path}: there is no run {run}")]
    UnknownRun {
        /// The database path.
        path: String,
        /// The run id.
        run: i64,
    },

    /// [`finish_run`](crate::Journal::finish_run) was called for a run that already finished.
    #[error("journal at {path}: run {run} already finished")]
    AlreadyFinished {
        /// The database path.
        path: String,
        /// The run id.
        run: i64,
    },

    /// [`finish_run`](crate::Journal::finish_run) was asked to store
    /// [`RunOutcome::Interrupted`](crate::RunOutcome::Interrupted), which is derived, never
    /// stored.
    #[error(
        "journal at {path}: run {run} cannot be finished as interrupted; a run is interrupted \
         exactly when it is never finished, so finish it as succeeded, failed or refused"
    )]
    InterruptedIsDerived {
        /// The database path.
        path: String,
        /// The run id.
        run: i64,
    },
}

//! The store's error types. Each [`StoreError`] variant names the journal and what failed; the
//! underlying cause (the database's error, the JSON or timestamp parser's) is its
//! [`source`](std::error::Error::source), of its real type, and is not repeated in the message:
//! print the chain (e.g. `{:#}` with anyhow) to see it.

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
    #[error("cannot open the journal at {path}: cannot {action}; check [store] url")]
    Open {
        /// The database path (`:memory:` for an in-memory journal).
        path: String,
        /// The step that failed, e.g. `open the file` or `enable foreign keys`.
        action: &'static str,
        /// What the database said.
        #[source]
        source: rusqlite::Error,
    },

    /// The database holds a schema version no skillsync ever wrote: it is some other SQLite
    /// file.
    #[error(
        "the journal at {path} has schema version {found}, which is not valid: it is not a \
         skillsync journal; check [store] url"
    )]
    NotAJournal {
        /// The database path.
        path: String,
        /// The schema version found in the file.
        found: i64,
    },

    /// The database was written by a newer skillsync whose schema this one does not know.
    #[error(
        "the journal at {path} has schema version {found}, newer than the {known} this skillsync \
         knows; upgrade skillsync or point [store] url elsewhere"
    )]
    TooNew {
        /// The database path, or its URL without any password.
        path: String,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },

    /// A schema migration failed; the database is left at the previous version.
    #[error("cannot migrate the journal at {path} to schema version {version}")]
    Migrate {
        /// The database path.
        path: String,
        /// The version being migrated to (the newest known when committing failed).
        version: i64,
        /// What the database said.
        #[source]
        source: rusqlite::Error,
    },

    /// A schema migration would leave a row referring to a row that does not exist (the file
    /// was edited by hand or written by something else); the database is left at the previous
    /// version.
    #[error(
        "cannot migrate the journal at {path} to schema version {version}: {table} {} refers to \
         a {parent} row that does not exist ({violations} such row(s) in all)",
        rowid.map_or_else(|| "has a row that".to_owned(), |id| format!("row {id}"))
    )]
    DanglingReference {
        /// The database path.
        path: String,
        /// The version being migrated to.
        version: i64,
        /// The table holding the first offending row, e.g. `writes`.
        table: String,
        /// That row's rowid (`None` for a table without rowids).
        rowid: Option<i64>,
        /// The table it refers to, e.g. `runs`.
        parent: String,
        /// How many offending rows there are.
        violations: usize,
    },

    /// A read or write failed.
    #[error("journal at {path}: cannot {action}")]
    Query {
        /// The database path.
        path: String,
        /// What was being done, e.g. `record 12 write(s)`.
        action: String,
        /// What the database said.
        #[source]
        source: rusqlite::Error,
    },

    /// A `postgres://` URL that PostgreSQL's client cannot read (an unknown option, a value
    /// out of range).
    #[error("invalid journal url {url:?}; check [store] url")]
    PostgresUrl {
        /// The URL, without any password.
        url: String,
        /// What the client said.
        #[source]
        source: tokio_postgres::Error,
    },

    /// No connection to PostgreSQL could be had: the server is down or unreachable, refused
    /// the login or has no such database, or did not answer within the connect timeout.
    #[error(
        "cannot connect to the journal at {url} to {action}; check [store] url and that the \
         server is up"
    )]
    Connect {
        /// The URL, without any password.
        url: String,
        /// What the connection was for, e.g. `list runs`.
        action: String,
        /// What the pool or the server said.
        #[source]
        source: deadpool_postgres::PoolError,
    },

    /// A PostgreSQL statement failed.
    #[error("journal at {url}: cannot {action}")]
    Postgres {
        /// The URL, without any password.
        url: String,
        /// What was being done, e.g. `record 12 write(s)`.
        action: String,
        /// What the server said.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The PostgreSQL schema could not be brought up to date (or its recorded migrations do
    /// not match this build's); the journal is left as it was.
    #[error("cannot migrate the journal at {url}; check [store] url")]
    PostgresMigrate {
        /// The URL, without any password.
        url: String,
        /// What the migration tool said.
        #[source]
        source: refinery::Error,
    },

    /// A stored value cannot be read back (edited by hand, or written by something else).
    #[error("journal at {path}: {what} holds {value:?}, which is not valid")]
    Corrupt {
        /// The database path, or its URL without any password.
        path: String,
        /// Which column, e.g. `runs.started_at`.
        what: &'static str,
        /// The value found.
        value: String,
        /// Why it is not valid.
        #[source]
        source: InvalidValue,
    },

    /// A call named a run that was never started.
    #[error("journal at {path}: there is no run {run}")]
    UnknownRun {
        /// The database path, or its URL without any password.
        path: String,
        /// The run id.
        run: i64,
    },

    /// [`finish_run`](crate::Journal::finish_run) was called for a run that already finished.
    #[error("journal at {path}: run {run} already finished")]
    AlreadyFinished {
        /// The database path, or its URL without any password.
        path: String,
        /// The run id.
        run: i64,
    },
}

/// What a failed step inside a write transaction means: the driver's error (`E`), to be
/// wrapped with what was being done, or a journal error already complete.
pub(crate) enum TxError<E> {
    Sql(E),
    Store(StoreError),
}

impl<E> From<E> for TxError<E> {
    fn from(e: E) -> Self {
        TxError::Sql(e)
    }
}

/// Why a stored value cannot be read back: the source of [`StoreError::Corrupt`].
#[derive(Debug, thiserror::Error)]
pub enum InvalidValue {
    /// Not an RFC 3339 timestamp.
    #[error("not a timestamp")]
    Timestamp(#[source] jiff::Error),
    /// Not JSON, or not JSON of the expected shape.
    #[error("not the JSON expected")]
    Json(#[source] serde_json::Error),
    /// Not one of the names the column may hold.
    #[error("expected {expected}")]
    Unexpected {
        /// What the column may hold, e.g. `soft or hard`.
        expected: &'static str,
    },
}

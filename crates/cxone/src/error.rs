//! The client's one error type. Each variant names the call and what to do next.

use std::time::Duration;

use skillsync_core::Version;

/// One field the tenant rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// JSON path, e.g. `skills[2].level`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Errors from the tenant client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings are unusable (bad URL, plain http to a remote host, empty secret).
    #[error("client settings: {0}")]
    Settings(String),

    /// The CA file could not be read or parsed.
    #[error("cannot use CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },

    /// The token endpoint refused the client (wrong id or secret, scope not granted).
    #[error("the tenant refused the OAuth client ({code}): {message}")]
    Auth {
        /// OAuth error code, e.g. `invalid_client`.
        code: String,
        /// The tenant's explanation.
        message: String,
    },

    /// The token lacks a scope the call needs. Never retried: only an administrator can fix it.
    #[error(
        "{method} {route} needs scope `{scope}`, which the token was not granted; \
         grant it to the OAuth client in the tenant (Security > OAuth > Clients) or add it to `scopes`"
    )]
    MissingScope {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// The missing scope.
        scope: String,
    },

    /// Someone else changed the object since we read it (412 in the routing dialect, 409 in
    /// the users dialect, a per-entry 412 in bulk). Re-read, re-merge, retry.
    #[error(
        "{what} {id} changed since it was read (we had version {expected:?}); re-read and merge"
    )]
    Conflict {
        /// Kind of object.
        what: &'static str,
        /// Its id.
        id: String,
        /// The version we wrote against.
        expected: Option<Version>,
    },

    /// The object does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// Kind of object.
        what: &'static str,
        /// Its id.
        id: String,
    },

    /// A delete refused because users or profiles still reference the definition.
    #[error("{what} {id} is still referenced by {users} user(s) and {profiles} routing profile(s)")]
    Referenced {
        /// Kind of definition.
        what: &'static str,
        /// Its id.
        id: String,
        /// Users referencing it.
        users: u64,
        /// Profiles referencing it.
        profiles: u64,
    },

    /// The tenant rejected the request as invalid (4xx). Not retried.
    #[error("{method} {route} was rejected with {status} {code}: {message}")]
    Rejected {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// HTTP status.
        status: u16,
        /// The tenant's error code.
        code: String,
        /// The tenant's message.
        message: String,
        /// Per-field problems.
        details: Vec<FieldProblem>,
    },

    /// The tenant stayed unavailable (5xx, timeouts, dropped connections, throttling) through
    /// every retry the policy allows. The outcome of a write is unknown.
    #[error("{method} {route} failed after {attempts} attempt(s) over {elapsed:?}: {last}")]
    Unavailable {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        last: String,
    },

    /// The tenant answered something this client cannot read.
    #[error("unexpected answer from {method} {route}: {message}")]
    Protocol {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// What was wrong.
        message: String,
    },

    /// The dialect cannot do this (e.g. bulk in the users dialect).
    #[error("the {dialect} dialect does not support {operation}")]
    Unsupported {
        /// Dialect name.
        dialect: &'static str,
        /// Operation.
        operation: &'static str,
    },
}

impl Error {
    /// True when the outcome is unknown and a retry (after looking again) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

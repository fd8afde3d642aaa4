//! The engine's one error type: what stopped a command before it could report per user.

/// Errors from the engine's front doors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The live read failed.
    #[error("cannot read the tenant")]
    ReadTenant(#[source] Box<skillsync_cxone::Error>),
    /// The journal could not be read or written.
    #[error("cannot use the journal")]
    Journal(#[source] skillsync_store::StoreError),
    /// The journal records a retirement whose locale is not a locale.
    #[error("the journal holds a retirement of {code} whose locale is not valid")]
    BadRetirement {
        /// The retired code.
        code: String,
        /// Why the locale is invalid.
        #[source]
        source: skillsync_core::LocaleError,
    },
    /// A step that is not a user write failed (a definition the write needs, a read).
    #[error("{action} failed")]
    Tenant {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: Box<skillsync_cxone::Error>,
    },
}

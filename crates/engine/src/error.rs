//! The engine's one error type: what stopped a command before it could report per user.

/// Errors from the engine's front doors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The live read failed.
    #[error("cannot read the tenant")]
    ReadTenant(#[source] Box<skillsync_cxone::Error>),
    /// The desired state was refused while it was prepared (files with errors): nothing was
    /// written and no run was journaled.
    #[error("the desired state is invalid: {} problem(s)", .0.iter().filter(|p| p.is_error()).count())]
    Invalid(Vec<skillsync_core::Problem>),
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
    /// Another process holds the tenant's lease (and `wait` ran out).
    #[error(
        "another skillsync is writing to this tenant: {} (pid {} on {}) since {}; its lease runs until {} unless renewed",
        .0.holder.command, .0.holder.pid, .0.holder.host,
        .0.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC"), .0.expires_at.strftime("%H:%M:%S UTC")
    )]
    LeaseHeld(Box<skillsync_store::Lease>),
    /// The lease taken before the tenant was read ran out before the first write (a prompt
    /// left open longer than the lease lasts): the plan may be stale.
    #[error(
        "the tenant's lease ran out before the first write and another skillsync took it meanwhile (the confirmation took longer than [store] lease_ttl); nothing written: run again"
    )]
    LeaseExpired,
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

/// An error with its causes, `outer: inner: innermost`, for the texts a report and the
/// journal keep (a status line alone would drop the tenant's own words).
pub fn explain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        // Some errors repeat their cause in their own message; say it once.
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_said_once() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(super::explain(&error), "outer: connection refused");
    }
}

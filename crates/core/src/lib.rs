//! The pure heart of skillsync: the domain it reasons about, with no I/O and no async.
//!
//! Everything here can be unit-tested without a network, a clock or a file system: the client
//! crate maps the tenant's wire format to these types, and the planner (next) maps desired and
//! live state to a plan.
#![deny(missing_docs)]

pub mod domain;

pub use domain::{
    Assignment, Definition, DefinitionId, Kind, Level, LevelError, Locale, LocaleError,
    UserAssignments, UserId, Version,
};

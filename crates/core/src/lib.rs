//! The pure heart of skillsync: the domain it reasons about, with no I/O and no async.
//!
//! Everything here can be unit-tested without a network, a clock or a file system: the client
//! crate maps the tenant's wire format to these types, the HRIS readers map CSV files to the
//! desired state, and the planner maps desired and live state to a plan.
#![deny(missing_docs)]

pub mod desired;
pub mod dialect;
pub mod domain;
pub mod events;
pub mod hris;
pub mod naming;
pub mod ownership;
pub mod plan;
pub mod problem;
pub mod render;
pub mod scale;
pub mod window;

pub use desired::{
    Agent, Catalog, CatalogEntry, Code, Desired, EmployeeId, Retired, RetiredMode, SourceFiles,
    Wanted,
};
pub use dialect::{DialectCarries, refuse_uncarried, uncarried, uncarried_assignment};
pub use domain::{
    Assignment, AssignmentOp, Definition, DefinitionId, Kind, Level, LevelError, Locale,
    LocaleError, UserAssignments, UserId, Version, apply_assignment_op, assignment_difference,
};
pub use events::{
    Change, Event, EventId, EventProblem, Lane, MAX_EVENTS_PER_REQUEST, apply_event, check_event,
    overlay, parse_events,
};
pub use hris::{CatalogFirst, Columns, Loaded, Source, read_catalog_first, read_desired};
pub use naming::{NamePattern, NamePatternError};
pub use ownership::{Adopt, Ownership, check_takeovers};
pub use plan::{AbsentAgents, Live, Plan, PlanOptions, Resolution, locate_by_name, plan, resolve};
pub use problem::{Problem, Severity};
pub use render::{Style, plan_human, plan_json, problems_human, problems_json};
pub use scale::{ProficiencyScale, ScaleError};
pub use window::{Opening, Window, WindowError};

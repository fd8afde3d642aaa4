//! The reconciler: reads the live tenant through `cxone`, asks `core` for a plan, checks the
//! guards, and executes it: definitions, then skills, then proficiencies, re-merging on
//! conflict. (Journaling every write in `store` comes next.)
#![deny(missing_docs)]

mod apply;
mod assign;
mod fan_out;
mod guard;
mod live;
pub mod retire;
pub mod verify;

pub use apply::{
    ApplyOptions, ApplyReport, DefinitionFailed, JournalRun, LIVE_READ_COUNTS_AS_LOOKUP_FOR, Phase,
    Progress, apply,
};
pub use assign::{Assigned, assign};
pub use guard::{Refusal, RemovalLimit, check as check_guards, real_removals};
pub use live::{LiveProgress, read_live};

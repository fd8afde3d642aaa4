//! The reconciler. [`sync`] is the front door: live read, plan, guards, confirmation, writes,
//! read-back, and the run's start and end in the journal. Every user write of `apply`,
//! `retire` and `assign` goes through one write path (`write.rs`) with one error policy
//! ([`classify`]).
#![deny(missing_docs)]

mod apply;
mod assign;
mod entries;
mod error;
mod fan_out;
mod guard;
mod lease;
mod live;
mod read_back;
pub mod retire;
mod sync;
pub mod verify;
mod write;

pub use apply::{
    ApplyContext, ApplyOptions, ApplyReport, LIVE_READ_COUNTS_AS_LOOKUP_FOR, Phase, Progress, apply,
};
pub use assign::{AssignRequest, Assigned, assign};
pub use error::{Error, explain};
pub use guard::{Refusal, RemovalLimit};
pub use lease::LeaseOptions;
pub use live::{LiveProgress, read_agents, read_live, read_profile_ids};
pub use sync::{
    Lists, PlanCheck, Prepared, RunLabel, SyncHooks, SyncOptions, SyncOutcome, SyncReport,
    SyncScope, SyncWindow, run_counts, sync, sync_prepared,
};
pub use write::{
    FailureKind, Interrupt, JournalRun, Policy, StopReason, UserOutcome, WriteOptions, Written,
    classify,
};

/// The tenant definitions skillsync created or adopted in earlier runs: a run journals the
/// mapping of each definition it creates or adopts before its first user write.
pub async fn managed_definitions(
    journal: &dyn skillsync_store::Journal,
) -> Result<std::collections::BTreeSet<skillsync_core::DefinitionId>, Error> {
    Ok(journal
        .mappings()
        .await
        .map_err(Error::Journal)?
        .into_iter()
        .map(|m| skillsync_core::DefinitionId::from(m.definition_id))
        .collect())
}

/// The catalog variants `skillsync retire` took out of management, as the journal records
/// them: every plan leaves them alone.
pub async fn retirements(
    journal: &dyn skillsync_store::Journal,
) -> Result<Vec<skillsync_core::Retired>, Error> {
    let mut retired = Vec::new();
    for r in journal.retirements().await.map_err(Error::Journal)? {
        let locale =
            skillsync_core::Locale::parse(&r.locale).map_err(|source| Error::BadRetirement {
                code: r.code.clone(),
                source,
            })?;
        retired.push(skillsync_core::Retired {
            code: skillsync_core::Code::from(r.code.as_str()),
            locale,
            definitions: r
                .definition_ids
                .into_iter()
                .map(skillsync_core::DefinitionId::from)
                .collect(),
            mode: match r.mode {
                skillsync_store::RetirementMode::Soft => skillsync_core::RetiredMode::Soft,
                skillsync_store::RetirementMode::Hard => skillsync_core::RetiredMode::Hard,
            },
            run: r.run.0,
        });
    }
    Ok(retired)
}

//! The journal's typed entries made from the client's domain types: what the write path records
//! and `verify` and `drift` read back.

use skillsync_core::{Assignment, Definition, UserAssignments};
use skillsync_cxone::{Profile, Strategy, UserWrite};
use skillsync_store::{DefinitionState, Held, ProfileState, Snapshot, StrategyState, UserLists};

fn held(list: &[Assignment]) -> Vec<Held> {
    list.iter()
        .map(|a| Held {
            definition_id: a.definition.to_string(),
            level: a.level.get(),
            active: a.active,
        })
        .collect()
}

/// A user's lists as read.
pub(crate) fn user_read(user: &UserAssignments) -> Snapshot {
    Snapshot::User(UserLists {
        version: Some(user.version.0),
        skills: Some(held(&user.skills)),
        proficiencies: user.proficiencies.as_deref().map(held),
    })
}

/// The lists a write sends, with the version it was conditioned on.
pub(crate) fn user_written(write: &UserWrite) -> Snapshot {
    Snapshot::User(UserLists {
        version: Some(write.version.0),
        skills: write.skills.as_deref().map(held),
        proficiencies: write.proficiencies.as_deref().map(held),
    })
}

/// A definition's fields.
pub(crate) fn definition(d: &Definition) -> Snapshot {
    Snapshot::Definition(DefinitionState {
        id: d.id.to_string(),
        kind: d.kind.noun().to_string(),
        name: d.name.clone(),
        locale: d.locale.to_string(),
        active: d.active,
        description: d.description.clone(),
        routing_profile_id: d.routing_profile_id.clone(),
        version: d.version.0,
    })
}

/// A routing profile's lists.
pub(crate) fn profile(p: &Profile) -> Snapshot {
    Snapshot::Profile(ProfileState {
        id: p.id.clone(),
        name: p.name.clone(),
        skills: p.skills.iter().map(ToString::to_string).collect(),
        proficiencies: p.proficiencies.iter().map(ToString::to_string).collect(),
        version: p.version.0,
    })
}

/// A routing strategy's proficiency list.
pub(crate) fn strategy(s: &Strategy) -> Snapshot {
    Snapshot::Strategy(StrategyState {
        id: s.id.clone(),
        name: s.name.clone(),
        proficiencies: s.proficiencies.iter().map(ToString::to_string).collect(),
        version: s.version.0,
    })
}

//! Reading the live tenant: every definition of both kinds, every profile id and every user,
//! with as few calls as the API allows (largest pages, the four lists read concurrently).

use std::collections::BTreeSet;

use futures::TryStreamExt;
use skillsync_core::{Kind, Live};
use skillsync_cxone::{DefinitionQuery, TenantApi, UserQuery};

/// Progress of a read, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveProgress {
    /// Users read so far.
    pub users: usize,
    /// Definitions read so far.
    pub definitions: usize,
}

/// Reads what the plan needs. `progress` is called as users arrive.
pub async fn read_live(
    api: &dyn TenantApi,
    progress: &(dyn Fn(LiveProgress) + Sync),
) -> skillsync_cxone::Result<Live> {
    let definitions = async {
        let (skills, proficiencies) = tokio::try_join!(
            api.definitions(Kind::Skill, DefinitionQuery::default())
                .try_collect::<Vec<_>>(),
            api.definitions(Kind::Proficiency, DefinitionQuery::default())
                .try_collect::<Vec<_>>(),
        )?;
        let mut all = skills;
        all.extend(proficiencies);
        Ok::<_, skillsync_cxone::Error>(all)
    };
    let profiles = async {
        api.profiles(None)
            .map_ok(|p| p.id)
            .try_collect::<BTreeSet<String>>()
            .await
    };
    let users = async {
        let mut users = Vec::new();
        let mut stream = api.users(UserQuery::default());
        while let Some(user) = stream.try_next().await? {
            users.push(user);
            if users.len() % 500 == 0 {
                progress(LiveProgress {
                    users: users.len(),
                    definitions: 0,
                });
            }
        }
        Ok::<_, skillsync_cxone::Error>(users)
    };
    let (definitions, profile_ids, users) = tokio::try_join!(definitions, profiles, users)?;
    progress(LiveProgress {
        users: users.len(),
        definitions: definitions.len(),
    });
    Ok(Live {
        definitions,
        users,
        profile_ids,
        sees_proficiencies: api.capabilities().proficiencies,
    })
}

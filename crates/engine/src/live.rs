//! Reading the live tenant: every definition of both kinds, every profile id and every user,
//! with as few calls as the API allows (largest pages, the four lists read concurrently).

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use skillsync_core::{Kind, Live, UserId};
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

/// Users read at once by [`read_agents`].
const USERS_IN_PARALLEL: usize = 8;

/// Reads what a plan for a few agents needs: every definition and profile id (as
/// [`read_live`]), and those users one by one instead of the whole listing. A user the tenant
/// does not have is left out (the plan skips that agent with a warning).
pub async fn read_agents(api: &dyn TenantApi, users: &[UserId]) -> skillsync_cxone::Result<Live> {
    let mut live = read_live_without_users(api).await?;
    let read: Vec<skillsync_cxone::Result<Option<skillsync_core::UserAssignments>>> =
        futures::stream::iter(users)
            .map(|id| async move {
                match api.user(id).await {
                    Ok(user) => Ok(Some(user)),
                    Err(skillsync_cxone::Error::NotFound { .. }) => Ok(None),
                    Err(error) => Err(error),
                }
            })
            .buffered(USERS_IN_PARALLEL)
            .collect()
            .await;
    for user in read {
        live.users.extend(user?);
    }
    Ok(live)
}

async fn read_live_without_users(api: &dyn TenantApi) -> skillsync_cxone::Result<Live> {
    let (skills, proficiencies, profile_ids) = tokio::try_join!(
        api.definitions(Kind::Skill, DefinitionQuery::default())
            .try_collect::<Vec<_>>(),
        api.definitions(Kind::Proficiency, DefinitionQuery::default())
            .try_collect::<Vec<_>>(),
        api.profiles(None)
            .map_ok(|p| p.id)
            .try_collect::<BTreeSet<String>>(),
    )?;
    let mut definitions = skills;
    definitions.extend(proficiencies);
    Ok(Live {
        definitions,
        users: Vec::new(),
        profile_ids,
        sees_proficiencies: api.capabilities().proficiencies,
    })
}

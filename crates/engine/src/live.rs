//! Reading the live tenant: every definition of both kinds and every user, with as few calls
//! as the API allows (largest pages, the lists read concurrently), and the routing profiles
//! only when the plan must check one (a definition to write names a profile no definition of
//! the tenant names: [`Live::profiles_to_check`]).

use std::collections::{BTreeSet, HashSet};

use futures::{StreamExt, TryStreamExt};
use skillsync_core::{Catalog, Kind, Live, UserId};
use skillsync_cxone::{DefinitionQuery, TenantApi, UserQuery};

/// Progress of a read, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveProgress {
    /// Users read so far.
    pub users: usize,
    /// Definitions read so far.
    pub definitions: usize,
}

/// Reads what the plan needs. `progress` is called as users arrive. `catalog` names the
/// definitions skillsync may own: a dialect without a locale field gets its definitions'
/// locales from it, and reads only their assignments.
pub async fn read_live(
    api: &dyn TenantApi,
    catalog: &Catalog,
    progress: &(dyn Fn(LiveProgress) + Sync),
) -> skillsync_cxone::Result<Live> {
    let users = |query: UserQuery| async move {
        let mut users = Vec::new();
        let mut stream = api.users(query);
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
    let mut live = if api.capabilities().locale_in_name {
        // Which definitions are the catalog's is known only from their names, so they are
        // read first; then only their assignments.
        let mut live = read_live_without_users(api, catalog).await?;
        let catalog_names: HashSet<String> = catalog
            .entries
            .values()
            .map(|e| e.name.to_lowercase())
            .collect();
        // No catalog (`export`, adopting a tenant): every definition's assignments.
        let definitions = (!catalog.entries.is_empty()).then(|| {
            live.definitions
                .iter()
                .filter(|d| catalog_names.contains(&d.name.to_lowercase()))
                .map(|d| d.id.clone())
                .collect()
        });
        live.users = users(UserQuery {
            definitions,
            ..UserQuery::default()
        })
        .await?;
        live
    } else {
        let (mut live, read) = tokio::try_join!(
            read_live_without_users(api, catalog),
            users(UserQuery::default())
        )?;
        live.users = read;
        live
    };
    live.users.shrink_to_fit();
    progress(LiveProgress {
        users: live.users.len(),
        definitions: live.definitions.len(),
    });
    Ok(live)
}

/// Users read at once by [`read_agents`].
const USERS_IN_PARALLEL: usize = 8;

/// Reads what a plan for a few agents needs: every definition and the profile ids to check (as
/// [`read_live`]), and those users one by one instead of the whole listing. A user the tenant
/// does not have is left out (the plan skips that agent with a warning).
pub async fn read_agents(
    api: &dyn TenantApi,
    catalog: &Catalog,
    users: &[UserId],
) -> skillsync_cxone::Result<Live> {
    let mut live = read_live_without_users(api, catalog).await?;
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

async fn read_live_without_users(
    api: &dyn TenantApi,
    catalog: &Catalog,
) -> skillsync_cxone::Result<Live> {
    let (skills, proficiencies) = tokio::try_join!(
        api.definitions(Kind::Skill, DefinitionQuery::default())
            .try_collect::<Vec<_>>(),
        api.definitions(Kind::Proficiency, DefinitionQuery::default())
            .try_collect::<Vec<_>>(),
    )?;
    let mut definitions = skills;
    definitions.extend(proficiencies);
    let capabilities = api.capabilities();
    if capabilities.locale_in_name {
        skillsync_core::locate_by_name(&mut definitions, catalog);
    }
    let mut live = Live {
        definitions,
        users: Vec::new(),
        profile_ids: BTreeSet::new(),
        sees_proficiencies: capabilities.proficiencies,
        without_profiles: !capabilities.profiles,
    };
    // Listed only when the plan must check a profile: a run that writes no definition (a
    // no-change re-sync, the usual nightly run) spends no call on it. The users are still
    // being read meanwhile.
    if !live.profiles_to_check(catalog).is_empty() {
        live.profile_ids = read_profile_ids(api).await?;
    }
    Ok(live)
}

/// Every routing profile id of the tenant, for a caller that needs them all (`export` checks
/// each definition's).
pub async fn read_profile_ids(api: &dyn TenantApi) -> skillsync_cxone::Result<BTreeSet<String>> {
    api.profiles(None).map_ok(|p| p.id).try_collect().await
}

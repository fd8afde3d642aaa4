//! After the writes, the run reads back the users it changed and checks that the tenant kept
//! what it accepted: a tenant (or a proxy, or a replica) that answers 200 and drops the write
//! must not produce a run that says it succeeded.

use std::collections::BTreeSet;

use foldhash::HashMap;
use rayon::prelude::*;

use futures::TryStreamExt;
use skillsync_core::{DefinitionId, UserAssignments, UserId};
use skillsync_cxone::{TenantApi, UserQuery};

use crate::fan_out::fan_out;
use crate::write::{FailureKind, Rewrite, Rewritten, Writer};

/// Users per page of the user listing.
pub(crate) const USER_PAGE: usize = 500;

/// What reading one user back found.
pub(crate) enum ReadBack {
    /// The user as the tenant holds it now.
    Found(UserAssignments),
    /// The tenant no longer has the user.
    Gone,
    /// The read failed (after the client's retries): nothing is known.
    Unknown(String),
}

/// Reads `users` back the cheaper way: one GET each when they are fewer than the pages of
/// the whole listing (`tenant_users` users), else the listing in pages, as the live read does.
/// A listing that fails part-way falls back to one GET for each user it did not deliver, so
/// one bad page never leaves thousands of users unknown.
pub(crate) async fn read_users(
    api: &dyn TenantApi,
    users: &BTreeSet<UserId>,
    definitions: Option<Vec<DefinitionId>>,
    tenant_users: usize,
    concurrency: usize,
) -> HashMap<UserId, ReadBack> {
    let mut found = HashMap::with_capacity_and_hasher(users.len(), Default::default());
    if users.len() > tenant_users.div_ceil(USER_PAGE) {
        // A dialect that reads per definition lists only the holders of the definitions
        // written (no page of every agent): a user it leaves out holds none of them now.
        let holders_only = api.capabilities().per_definition_writes.is_some();
        let only: foldhash::HashSet<UserId> = users.iter().cloned().collect();
        let mut listing = api.users(UserQuery {
            definitions,
            holders_only,
            only: Some(std::sync::Arc::new(only)),
            ..UserQuery::default()
        });
        loop {
            match listing.try_next().await {
                Ok(Some(user)) if users.contains(&user.user_id) => {
                    found.insert(user.user_id.clone(), ReadBack::Found(user));
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    // The whole listing was read: whoever is missing is gone, or holds none of
                    // the definitions.
                    for user in users {
                        found.entry(user.clone()).or_insert_with(|| {
                            if holders_only {
                                ReadBack::Found(UserAssignments {
                                    user_id: user.clone(),
                                    skills: Vec::new(),
                                    proficiencies: None,
                                    version: skillsync_core::Version(0),
                                    modified_at: None,
                                    unmapped: Default::default(),
                                })
                            } else {
                                ReadBack::Gone
                            }
                        });
                    }
                    return found;
                }
                Err(error) => {
                    tracing::warn!(error = %crate::explain(&error), "the read-back's listing failed; reading the rest one by one");
                    break;
                }
            }
        }
    }
    let missing: Vec<UserId> = users
        .iter()
        .filter(|u| !found.contains_key(*u))
        .cloned()
        .collect();
    let read = fan_out(
        missing,
        concurrency,
        |_| 1,
        |_| {},
        |user| async move {
            let read = match api.user(&user).await {
                Ok(now) => ReadBack::Found(now),
                Err(skillsync_cxone::Error::NotFound { .. }) => ReadBack::Gone,
                Err(error) => ReadBack::Unknown(crate::explain(&error)),
            };
            (user, read)
        },
    )
    .await;
    found.extend(read);
    found
}

/// The definitions whose assignment `write` changes from the user as read.
fn changed_definitions(write: &skillsync_cxone::UserWrite) -> Vec<DefinitionId> {
    let (before, unmapped) = match &write.as_read {
        Some(read) => (read.skills.as_slice(), &read.unmapped),
        None => (&[][..], &Default::default()),
    };
    let after = write.skills.as_deref().unwrap_or_default();
    skillsync_core::assignment_difference(before, unmapped, after)
        .into_iter()
        .map(|(_, a)| a.definition)
        .collect()
}

/// `now` holds only the definitions in `read`; the user's other assignments are taken from
/// `as_read`, where the write left them.
fn complete_from(
    now: &mut UserAssignments,
    as_read: &UserAssignments,
    read: &BTreeSet<DefinitionId>,
) {
    let mut skills: Vec<_> = as_read
        .skills
        .iter()
        .filter(|a| !read.contains(&a.definition))
        .cloned()
        .collect();
    skills.extend(
        now.skills
            .drain(..)
            .filter(|a| read.contains(&a.definition)),
    );
    now.skills = skills;
    now.unmapped.retain(|d, _| read.contains(d));
    now.unmapped.extend(
        as_read
            .unmapped
            .iter()
            .filter(|(d, _)| !read.contains(*d))
            .map(|(d, v)| (d.clone(), *v)),
    );
}

/// Reads back every user whose write was accepted and asks `rewrite` whether the tenant holds
/// what is wanted; a user it would write again was not kept. Returns the users read back.
pub(crate) async fn check(
    writer: &Writer<'_>,
    api: &dyn TenantApi,
    rewrite: &dyn Rewrite,
    tenant_users: usize,
    concurrency: usize,
) -> usize {
    let accepted = writer.accepted();
    if accepted.is_empty() {
        return 0;
    }
    let ids: BTreeSet<UserId> = accepted.iter().map(|(u, _)| u.clone()).collect();
    // A dialect that reads assignments per definition reads back only the definitions some
    // write changed; each user's others are as the write found them (it did not touch them).
    let per_definition = api.capabilities().per_definition_writes.is_some();
    let written: Option<BTreeSet<DefinitionId>> = per_definition.then(|| {
        accepted
            .iter()
            .flat_map(|(_, write)| changed_definitions(write))
            .collect()
    });
    let mut found = read_users(
        api,
        &ids,
        written.as_ref().map(|d| d.iter().cloned().collect()),
        tenant_users,
        concurrency,
    )
    .await;
    if let Some(written) = &written {
        for (user, write) in &accepted {
            if let (Some(ReadBack::Found(now)), Some(as_read)) =
                (found.get_mut(user), write.as_read.as_ref())
            {
                complete_from(now, as_read, written);
            }
        }
    }
    // Planning each user again is the read-back's own work: on every core, as the plan is made.
    let kept: Vec<bool> = accepted
        .par_iter()
        .map(|(user, _)| match found.get(user) {
            Some(ReadBack::Found(now)) => matches!(rewrite.rewrite(now), Rewritten::Current),
            _ => false,
        })
        .collect();
    for ((user, write), kept) in accepted.iter().zip(kept) {
        if kept {
            continue;
        }
        let (found_now, kind, why) = match found.get(user) {
            Some(ReadBack::Found(now)) => match rewrite.rewrite(now) {
                Rewritten::Current => continue,
                Rewritten::Write(_) | Rewritten::Refused(_) => (
                    Some(now),
                    FailureKind::NotKept,
                    "the tenant did not keep the write: it accepted it, and a read-back shows other assignments".into(),
                ),
            },
            Some(ReadBack::Gone) | None => (
                None,
                FailureKind::NotKept,
                "the tenant did not keep the write: the user is gone".into(),
            ),
            Some(ReadBack::Unknown(error)) => (
                None,
                FailureKind::Unconfirmed,
                format!("written, but the read-back could not confirm it: {error}"),
            ),
        };
        writer.not_kept(write, found_now, kind, why).await;
    }
    accepted.len()
}

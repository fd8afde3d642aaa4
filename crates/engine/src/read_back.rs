//! After the writes, the run reads back the users it changed and checks that the tenant kept
//! what it accepted: a tenant (or a proxy, or a replica) that answers 200 and drops the write
//! must not produce a run that says it succeeded.

use std::collections::{BTreeSet, HashMap};

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
    let mut found = HashMap::with_capacity(users.len());
    if users.len() > tenant_users.div_ceil(USER_PAGE) {
        let mut listing = api.users(UserQuery {
            definitions,
            ..UserQuery::default()
        });
        loop {
            match listing.try_next().await {
                Ok(Some(user)) if users.contains(&user.user_id) => {
                    found.insert(user.user_id.clone(), ReadBack::Found(user));
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    // The whole listing was read: whoever is missing is gone.
                    for user in users {
                        found.entry(user.clone()).or_insert(ReadBack::Gone);
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
    // A dialect that reads assignments per definition reads back only those the writes
    // named, before or after: every assignment a write could have changed.
    let definitions: BTreeSet<DefinitionId> = accepted
        .iter()
        .flat_map(|(_, write)| {
            let read = write.as_read.iter().flat_map(|r| r.skills.iter());
            write.skills.iter().flatten().chain(read)
        })
        .map(|a| a.definition.clone())
        .collect();
    let found = read_users(
        api,
        &ids,
        Some(definitions.into_iter().collect()),
        tenant_users,
        concurrency,
    )
    .await;
    for (user, write) in &accepted {
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

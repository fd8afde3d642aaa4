//! After the writes, the run reads back the users it changed and checks that the tenant kept
//! what it accepted: a tenant (or a proxy, or a replica) that answers 200 and drops the write
//! must not produce a run that says it succeeded.

use std::collections::{BTreeSet, HashMap};

use futures::TryStreamExt;
use skillsync_core::{UserAssignments, UserId};
use skillsync_cxone::{TenantApi, UserQuery};

use crate::fan_out::fan_out;
use crate::write::{Rewrite, Rewritten, Writer};

/// Users per page of the user listing.
pub(crate) const USER_PAGE: usize = 500;

/// Reads `users` back the cheaper way: one GET each when they are fewer than the pages of
/// the whole listing (`tenant_users` users), else the listing in pages, as the live read does.
/// Users the tenant no longer has are absent from the answer.
pub(crate) async fn read_users(
    api: &dyn TenantApi,
    users: &BTreeSet<UserId>,
    tenant_users: usize,
    concurrency: usize,
) -> skillsync_cxone::Result<HashMap<UserId, UserAssignments>> {
    if users.len() <= tenant_users.div_ceil(USER_PAGE) {
        let read = fan_out(
            users.iter().cloned().collect(),
            concurrency,
            |_| 1,
            |_| {},
            |user| async move {
                match api.user(&user).await {
                    Ok(found) => Ok(Some(found)),
                    Err(skillsync_cxone::Error::NotFound { .. }) => Ok(None),
                    Err(error) => Err(error),
                }
            },
        )
        .await;
        let mut found = HashMap::with_capacity(users.len());
        for user in read {
            if let Some(user) = user? {
                found.insert(user.user_id.clone(), user);
            }
        }
        return Ok(found);
    }
    api.users(UserQuery::default())
        .try_filter(|u| std::future::ready(users.contains(&u.user_id)))
        .map_ok(|u| (u.user_id.clone(), u))
        .try_collect()
        .await
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
    let found = match read_users(api, &ids, tenant_users, concurrency).await {
        Ok(found) => found,
        Err(error) => {
            for (_, write) in &accepted {
                writer.not_kept(
                    write,
                    None,
                    format!(
                        "written, but the read-back could not confirm it: {}",
                        crate::explain(&error)
                    ),
                );
            }
            return accepted.len();
        }
    };
    for (user, write) in &accepted {
        match found.get(user) {
            None => writer.not_kept(
                write,
                None,
                "the tenant did not keep the write: the user is gone".into(),
            ),
            Some(now) => match rewrite.rewrite(now) {
                Rewritten::Current => {}
                Rewritten::Write(_) | Rewritten::Refused(_) => writer.not_kept(
                    write,
                    Some(now),
                    "the tenant did not keep the write: it accepted it, and a read-back shows the old assignments".into(),
                ),
            },
        }
    }
    accepted.len()
}

//! Listing users: `UserQuery::only` keeps exactly the users asked for, whole, from every page.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use skillsync_core::{UserAssignments, UserId};
use skillsync_cxone::UserQuery;
use skillsync_sim::Knobs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_users_asked_for_come_back_whole_from_every_page() {
    // 1,234 users: three pages of 500, the last one short.
    let sim = common::start(Knobs::quiet(), 1234).await;
    let api = skillsync_cxone::connect(&sim.settings()).unwrap();
    let everyone: Vec<UserAssignments> =
        api.users(UserQuery::default()).try_collect().await.unwrap();
    assert_eq!(everyone.len(), 1234);

    // One user of each page at its start and end, and some in between; one the tenant lacks.
    let wanted: Vec<UserId> = [0, 1, 499, 500, 777, 999, 1000, 1233]
        .iter()
        .map(|&i| everyone[i].user_id.clone())
        .chain([UserId::from("no-such-user")])
        .collect();
    let only = wanted.iter().cloned().collect::<foldhash::HashSet<_>>();
    let listed: Vec<UserAssignments> = api
        .users(UserQuery {
            only: Some(Arc::new(only)),
            ..UserQuery::default()
        })
        .try_collect()
        .await
        .unwrap();

    let whole: BTreeMap<&UserId, &UserAssignments> =
        everyone.iter().map(|u| (&u.user_id, u)).collect();
    assert_eq!(listed.len(), 8, "every wanted user the tenant has, once");
    for user in &listed {
        assert!(
            wanted.contains(&user.user_id),
            "{} was not asked for",
            user.user_id
        );
        assert_eq!(
            &user, &whole[&user.user_id],
            "decoded whole, as the full listing has it"
        );
    }
}

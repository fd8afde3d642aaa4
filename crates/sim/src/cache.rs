//! The routing engine's availability cache (SPEC 1.4).
//!
//! The database (what GET returns) changes at once; the cache sees a user's new skills only
//! when the propagation delay has passed. Each user keeps what the cache shows now plus a queue
//! of snapshots waiting to become visible. Snapshots become visible in commit order: a later
//! write never shows up before an earlier one, as in a real cache fed from a change log.

use std::collections::{HashMap, VecDeque};

use crate::clock::SimInstant;
use crate::model::Assignment;

#[derive(Debug, Clone, Default)]
struct CachedUser {
    visible: Vec<Assignment>,
    pending: VecDeque<(SimInstant, Vec<Assignment>)>,
}

/// What the routing engine believes about each user's skills.
#[derive(Debug, Clone, Default)]
pub struct RoutingCache {
    users: HashMap<String, CachedUser>,
}

impl RoutingCache {
    /// Makes `skills` visible at once (initial tenant contents).
    pub fn load(&mut self, user_id: &str, skills: &[Assignment]) {
        self.users.insert(
            user_id.to_string(),
            CachedUser {
                visible: skills.to_vec(),
                pending: VecDeque::new(),
            },
        );
    }

    /// Queues a committed skill list to become visible at `visible_at`.
    pub fn schedule(&mut self, user_id: &str, skills: &[Assignment], visible_at: SimInstant) {
        let user = self.users.entry(user_id.to_string()).or_default();
        let not_before = user.pending.back().map_or(visible_at, |(t, _)| *t);
        user.pending
            .push_back((visible_at.max(not_before), skills.to_vec()));
    }

    /// The skills the routing engine sees for a user at `now`.
    pub fn skills_at(&mut self, user_id: &str, now: SimInstant) -> &[Assignment] {
        let Some(user) = self.users.get_mut(user_id) else {
            return &[];
        };
        while user.pending.front().is_some_and(|(t, _)| *t <= now) {
            let (_, skills) = user.pending.pop_front().expect("checked");
            user.visible = skills;
        }
        &user.visible
    }

    /// The latest time any pending write becomes visible, if any is pending.
    pub fn settles_at(&self) -> Option<SimInstant> {
        self.users
            .values()
            .filter_map(|u| u.pending.back().map(|(t, _)| *t))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn skill(id: &str, level: u8) -> Vec<Assignment> {
        vec![Assignment {
            id: id.into(),
            level,
            active: true,
        }]
    }

    #[test]
    fn a_write_becomes_visible_only_after_its_delay() {
        let mut cache = RoutingCache::default();
        cache.load("u1", &[]);
        let t0 = SimInstant::default();
        cache.schedule("u1", &skill("s1", 5), t0 + Duration::from_secs(20));
        assert!(
            cache
                .skills_at("u1", t0 + Duration::from_secs(19))
                .is_empty()
        );
        assert_eq!(
            cache.skills_at("u1", t0 + Duration::from_secs(20)),
            skill("s1", 5)
        );
    }

    #[test]
    fn a_later_write_never_overtakes_an_earlier_one() {
        let mut cache = RoutingCache::default();
        let t0 = SimInstant::default();
        cache.schedule("u1", &skill("s1", 5), t0 + Duration::from_secs(30));
        cache.schedule("u1", &skill("s1", 9), t0 + Duration::from_secs(15));
        assert!(
            cache
                .skills_at("u1", t0 + Duration::from_secs(16))
                .is_empty()
        );
        assert_eq!(
            cache.skills_at("u1", t0 + Duration::from_secs(30)),
            skill("s1", 9)
        );
    }
}

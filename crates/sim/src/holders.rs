//! Which users hold each definition: the index behind `GET /routing/users?skillId=` and
//! `?proficiencyId=`, and behind the user count of a 409 `REFERENCED`, so that neither walks
//! every user of the tenant.
//!
//! Users are never removed and never reordered (a tenant's users are those it was loaded with,
//! in that order), so a user's position in the tenant's user map is stable and a filtered page
//! is a slice of a sorted list of positions. The tenant keeps the index in step in the only two
//! places a user's lists change: loading and `Tenant::apply_user_patch`. `POST /sim/reset`
//! restores the initial tenant, index included.

use std::collections::HashMap;

use crate::model::{Kind, User, assignments};

/// For each definition id, the positions (in the tenant's user order, ascending, each once) of
/// the users whose assignments of that kind name it: exactly the users the filter
/// `assignments(user, kind).iter().any(|a| a.id == id)` keeps.
#[derive(Debug, Clone, Default)]
pub struct Holders {
    skills: HashMap<String, Vec<u32>>,
    proficiencies: HashMap<String, Vec<u32>>,
}

const KINDS: [Kind; 2] = [Kind::Skill, Kind::Proficiency];

impl Holders {
    fn map(&self, kind: Kind) -> &HashMap<String, Vec<u32>> {
        match kind {
            Kind::Skill => &self.skills,
            Kind::Proficiency => &self.proficiencies,
        }
    }

    fn map_mut(&mut self, kind: Kind) -> &mut HashMap<String, Vec<u32>> {
        match kind {
            Kind::Skill => &mut self.skills,
            Kind::Proficiency => &mut self.proficiencies,
        }
    }

    /// Adds the user at `position`, which comes after every position added so far (loading).
    pub fn push(&mut self, position: u32, user: &User) {
        for kind in KINDS {
            for a in assignments(user, kind) {
                let list = self.map_mut(kind).entry(a.id.clone()).or_default();
                // A list naming an id twice (a fixture may) holds the user once.
                if list.last() != Some(&position) {
                    list.push(position);
                }
            }
        }
    }

    /// The user at `position` held `before`'s lists and now holds `after`'s.
    pub fn replace(&mut self, position: u32, before: &User, after: &User) {
        for kind in KINDS {
            let (old, new) = (assignments(before, kind), assignments(after, kind));
            for a in old {
                if !new.iter().any(|b| b.id == a.id) {
                    self.remove(kind, &a.id, position);
                }
            }
            for a in new {
                if !old.iter().any(|b| b.id == a.id) {
                    self.insert(kind, &a.id, position);
                }
            }
        }
    }

    fn insert(&mut self, kind: Kind, id: &str, position: u32) {
        let map = self.map_mut(kind);
        let list = match map.get_mut(id) {
            Some(list) => list,
            None => map.entry(id.to_string()).or_default(),
        };
        if let Err(at) = list.binary_search(&position) {
            list.insert(at, position);
        }
    }

    fn remove(&mut self, kind: Kind, id: &str, position: u32) {
        let map = self.map_mut(kind);
        let Some(list) = map.get_mut(id) else {
            return;
        };
        if let Ok(at) = list.binary_search(&position) {
            list.remove(at);
        }
        if list.is_empty() {
            map.remove(id);
        }
    }

    /// The positions of the users holding `id` among their assignments of `kind`, ascending.
    pub fn of(&self, kind: Kind, id: &str) -> &[u32] {
        self.map(kind).get(id).map_or(&[], Vec::as_slice)
    }
}

/// The positions in both sorted lists, ascending: each of the shorter list's looked up in the
/// longer one.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short
        .iter()
        .copied()
        .filter(|p| long.binary_search(p).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Assignment;

    fn user(skills: &[&str], proficiencies: &[&str]) -> User {
        let list = |ids: &[&str]| {
            ids.iter()
                .map(|id| Assignment {
                    id: id.to_string(),
                    level: 1,
                    active: true,
                })
                .collect()
        };
        User {
            id: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            locale: String::new(),
            routing_profile_id: String::new(),
            skills: list(skills),
            proficiencies: list(proficiencies),
            version: 1,
            date_modified: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_user_naming_an_id_twice_is_held_once_and_leaves_when_neither_is_left() {
        let mut holders = Holders::default();
        let twice = user(&["s1", "s1"], &["p1"]);
        holders.push(0, &user(&["s1"], &[]));
        holders.push(1, &twice);
        assert_eq!(holders.of(Kind::Skill, "s1"), &[0, 1]);
        assert_eq!(holders.of(Kind::Proficiency, "p1"), &[1]);
        assert_eq!(holders.of(Kind::Proficiency, "s1"), &[] as &[u32]);

        let once = user(&["s1"], &["p1"]);
        holders.replace(1, &twice, &once);
        assert_eq!(holders.of(Kind::Skill, "s1"), &[0, 1]);
        let none = user(&["s2"], &[]);
        holders.replace(1, &once, &none);
        assert_eq!(holders.of(Kind::Skill, "s1"), &[0]);
        assert_eq!(holders.of(Kind::Skill, "s2"), &[1]);
        assert_eq!(holders.of(Kind::Proficiency, "p1"), &[] as &[u32]);
    }

    #[test]
    fn a_user_taking_a_definition_lands_in_order() {
        let mut holders = Holders::default();
        for position in 0..5 {
            holders.push(position, &user(&["s"], &[]));
        }
        holders.push(5, &user(&[], &[]));
        holders.replace(2, &user(&["s"], &[]), &user(&[], &[]));
        holders.replace(5, &user(&[], &[]), &user(&["s"], &[]));
        holders.replace(2, &user(&[], &[]), &user(&["s"], &[]));
        assert_eq!(holders.of(Kind::Skill, "s"), &[0, 1, 2, 3, 4, 5]);
        assert_eq!(intersect(&[1, 3, 5, 7], &[0, 3, 4, 5]), vec![3, 5]);
    }
}

//! Domain types shared by the planner, the client and the engine.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The two classes of definition. Skills route; proficiencies never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Drives queue routing: strict path, validated against routing profiles.
    Skill,
    /// Reporting and strategy metadata: eventual path, batched.
    Proficiency,
}

impl Kind {
    /// Both kinds, skills first (the order work is done in).
    pub const ALL: [Kind; 2] = [Kind::Skill, Kind::Proficiency];

    /// The noun, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Skill => "skill",
            Kind::Proficiency => "proficiency",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // Hash, Eq and Ord are the text's own (derived over the one field), so maps keyed
        // by the id can be looked up with text borrowed from an answer.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
    };
}

id_type!(
    /// The tenant's id of a skill or proficiency definition.
    DefinitionId
);
id_type!(
    /// The tenant's id of a user (agent).
    UserId
);

/// An optimistic-concurrency version (the tenant's `version`, sent back as `If-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A proficiency level, 1–10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Level(u8);

/// A level outside 1–10.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("level {0} is outside 1–10")]
pub struct LevelError(pub i64);

impl Level {
    /// Lowest level.
    pub const MIN: Level = Level(1);
    /// Highest level.
    pub const MAX: Level = Level(10);

    /// A level, if within 1–10.
    pub fn new(value: i64) -> Result<Level, LevelError> {
        match u8::try_from(value) {
            Ok(v @ 1..=10) => Ok(Level(v)),
            _ => Err(LevelError(value)),
        }
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Level {
    type Error = LevelError;
    fn try_from(value: u8) -> Result<Self, LevelError> {
        Level::new(i64::from(value))
    }
}

impl From<Level> for u8 {
    fn from(level: Level) -> u8 {
        level.0
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A lowercase BCP-47 locale tag such as `en-us` or `de-de`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locale(String);

/// Why a locale tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocaleError {
    /// Upper case letters: the tenant compares tags exactly, in lower case.
    #[error("locale `{0}` must be lowercase (write `{lower}`)", lower = .0.to_ascii_lowercase())]
    NotLowercase(String),
    /// Not shaped like a BCP-47 tag.
    #[error("`{0}` is not a locale tag such as en-us or de-de")]
    Malformed(String),
}

impl Locale {
    /// Parses a tag, refusing upper case and malformed tags.
    pub fn parse(tag: &str) -> Result<Locale, LocaleError> {
        if tag != tag.to_ascii_lowercase() {
            return Err(LocaleError::NotLowercase(tag.to_string()));
        }
        let mut parts = tag.split('-');
        let language = parts.next().unwrap_or_default();
        let language_ok =
            (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_lowercase());
        let rest_ok = parts
            .all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if language_ok && rest_ok {
            Ok(Locale(tag.to_string()))
        } else {
            Err(LocaleError::Malformed(tag.to_string()))
        }
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Locale {
    type Error = LocaleError;
    fn try_from(value: String) -> Result<Self, LocaleError> {
        Locale::parse(&value)
    }
}

impl From<Locale> for String {
    fn from(locale: Locale) -> String {
        locale.0
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A skill or proficiency definition as the tenant holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    /// Tenant id.
    pub id: DefinitionId,
    /// Skill or proficiency.
    pub kind: Kind,
    /// Name (not unique in the tenant: duplicates are possible).
    pub name: String,
    /// Locale; the same name in two locales is two unrelated definitions.
    pub locale: Locale,
    /// Inactive definitions are soft-deleted.
    pub active: bool,
    /// Free text.
    pub description: String,
    /// The routing profile it is scoped to.
    pub routing_profile_id: String,
    /// For `If-Match`.
    pub version: Version,
}

/// One assignment of a definition to a user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignment {
    /// The definition.
    pub definition: DefinitionId,
    /// 1–10.
    pub level: Level,
    /// Inactive assignments are kept but do not route.
    pub active: bool,
}

/// A user's assignments as read from the tenant, with the version to write back against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignments {
    /// The user.
    pub user_id: UserId,
    /// Skill assignments.
    pub skills: Vec<Assignment>,
    /// Proficiency assignments; `None` where the dialect cannot see them.
    pub proficiencies: Option<Vec<Assignment>>,
    /// The version read; writes carry it.
    pub version: Version,
    /// When the tenant last changed the user, where the dialect says (`dateModified`).
    pub modified_at: Option<jiff::Timestamp>,
    /// Skills held at a tenant value that no HRIS level maps to (a dialect with its own
    /// proficiency scale, `[tenant] proficiency_scale`), with that value. Such a skill is also
    /// in `skills`, at level 1, so it is carried through like any other; the plan never takes
    /// that level for the truth: an owned one is always rewritten (or removed), never rounded.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unmapped: std::collections::BTreeMap<DefinitionId, u8>,
}

/// What a write to one assignment does, for a dialect that writes assignments one definition
/// at a time instead of a user's whole list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AssignmentOp {
    /// Gives the definition (fails where it is held).
    Assign,
    /// Changes the level or active flag of a held one (fails where it is not held).
    Update,
    /// Takes it away (fails where it is not held).
    Unassign,
}

impl fmt::Display for AssignmentOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AssignmentOp::Assign => "assign",
            AssignmentOp::Update => "update",
            AssignmentOp::Unassign => "unassign",
        })
    }
}

/// The assignment writes that turn the list `before` (with the tenant values no level maps
/// to, which always differ) into `after`: only what differs, assignments and updates in
/// `after`'s order, then removals in `before`'s.
pub fn assignment_difference(
    before: &[Assignment],
    unmapped: &std::collections::BTreeMap<DefinitionId, u8>,
    after: &[Assignment],
) -> Vec<(AssignmentOp, Assignment)> {
    let held: std::collections::HashMap<&DefinitionId, &Assignment> =
        before.iter().map(|a| (&a.definition, a)).collect();
    let wanted: std::collections::HashSet<&DefinitionId> =
        after.iter().map(|a| &a.definition).collect();
    let mut ops = Vec::new();
    for want in after {
        match held.get(&want.definition) {
            None => ops.push((AssignmentOp::Assign, want.clone())),
            Some(had)
                if had.level != want.level
                    || had.active != want.active
                    || unmapped.contains_key(&want.definition) =>
            {
                ops.push((AssignmentOp::Update, want.clone()))
            }
            Some(_) => {}
        }
    }
    for had in before {
        if !wanted.contains(&had.definition) {
            ops.push((AssignmentOp::Unassign, had.clone()));
        }
    }
    ops
}

/// `list` with one assignment write applied, as the tenant would hold it afterwards.
pub fn apply_assignment_op(list: &mut Vec<Assignment>, op: AssignmentOp, assignment: &Assignment) {
    match op {
        AssignmentOp::Assign | AssignmentOp::Update => {
            match list
                .iter_mut()
                .find(|a| a.definition == assignment.definition)
            {
                Some(held) => *held = assignment.clone(),
                None => list.push(assignment.clone()),
            }
        }
        AssignmentOp::Unassign => list.retain(|a| a.definition != assignment.definition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(id: &str, level: u8, active: bool) -> Assignment {
        Assignment {
            definition: DefinitionId(id.into()),
            level: Level::new(level.into()).unwrap(),
            active,
        }
    }

    #[test]
    fn the_difference_names_only_what_changes() {
        let before = [held("1", 5, true), held("2", 3, true), held("3", 7, false)];
        let after = [held("1", 5, true), held("3", 7, true), held("4", 9, true)];
        let ops = assignment_difference(&before, &std::collections::BTreeMap::new(), &after);
        assert_eq!(
            ops,
            vec![
                (AssignmentOp::Update, held("3", 7, true)),
                (AssignmentOp::Assign, held("4", 9, true)),
                (AssignmentOp::Unassign, held("2", 3, true)),
            ]
        );
    }

    #[test]
    fn a_value_no_level_maps_to_is_rewritten_even_at_the_level_it_is_carried_at() {
        let before = [held("1", 1, true)];
        let unmapped = std::collections::BTreeMap::from([(DefinitionId("1".into()), 2)]);
        let ops = assignment_difference(&before, &unmapped, &[held("1", 1, true)]);
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].0, AssignmentOp::Update);
    }
    #[test]
    fn levels_outside_one_to_ten_are_refused() {
        assert!(Level::new(0).is_err());
        assert!(Level::new(11).is_err());
        assert_eq!(Level::new(10).unwrap().get(), 10);
    }

    #[test]
    fn locales_are_lowercase_bcp47_and_the_error_says_how_to_fix_it() {
        assert!(Locale::parse("de-de").is_ok());
        let err = Locale::parse("de-DE").unwrap_err();
        assert_eq!(
            err.to_string(),
            "locale `de-DE` must be lowercase (write `de-de`)"
        );
        assert!(Locale::parse("german").is_err());
    }
}

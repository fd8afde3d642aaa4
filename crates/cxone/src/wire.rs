//! The tenant's wire format, private to this crate: only here does JSON meet the domain.

use serde::{Deserialize, Serialize};
use skillsync_core::{
    Assignment, Definition, DefinitionId, Kind, Level, Locale, UserAssignments, UserId, Version,
};

use crate::api::{Profile, Queue, Routed, Strategy};
use crate::error::AnswerProblem;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page<T> {
    pub entities: Vec<T>,
    pub total: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireDefinition {
    pub id: String,
    pub name: String,
    pub locale: String,
    pub active: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub routing_profile_id: String,
    pub version: u64,
}

impl WireDefinition {
    pub(crate) fn into_domain(self, kind: Kind) -> Result<Definition, AnswerProblem> {
        let locale = match Locale::parse(&self.locale) {
            Ok(locale) => locale,
            Err(source) => {
                return Err(AnswerProblem::Locale {
                    definition: self.id,
                    source,
                });
            }
        };
        Ok(Definition {
            id: DefinitionId(self.id),
            kind,
            name: self.name,
            locale,
            active: self.active,
            description: self.description,
            routing_profile_id: self.routing_profile_id,
            version: Version(self.version),
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireAssignment {
    pub id: String,
    pub level: u8,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// An assignment as a write sends it, borrowed from the domain's.
#[derive(Debug, Serialize)]
pub(crate) struct WireAssignmentRef<'a> {
    pub id: &'a str,
    pub level: u8,
    pub active: bool,
}

impl<'a> WireAssignmentRef<'a> {
    pub(crate) fn of(a: &'a Assignment) -> WireAssignmentRef<'a> {
        WireAssignmentRef {
            id: a.definition.as_str(),
            level: a.level.get(),
            active: a.active,
        }
    }
}

impl WireAssignment {
    fn into_domain(self, user: &str) -> Result<Assignment, AnswerProblem> {
        Ok(Assignment {
            level: level(user, &self.id, self.level)?,
            definition: DefinitionId(self.id),
            active: self.active,
        })
    }
}

/// A level as the domain knows it, or why the user's assignment of `definition` is refused.
fn level(user: &str, definition: &str, level: u8) -> Result<Level, AnswerProblem> {
    Level::new(i64::from(level)).map_err(|source| AnswerProblem::Level {
        user: user.to_string(),
        definition: definition.to_string(),
        source,
    })
}

fn assignments(user: &str, list: Vec<WireAssignment>) -> Result<Vec<Assignment>, AnswerProblem> {
    list.into_iter().map(|a| a.into_domain(user)).collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoutingUser {
    pub user_id: String,
    #[serde(default)]
    pub skills: Vec<WireAssignment>,
    #[serde(default)]
    pub proficiencies: Vec<WireAssignment>,
    pub version: u64,
    /// When the tenant last changed the user; older tenants may not say.
    #[serde(default)]
    pub date_modified: Option<jiff::Timestamp>,
}

impl RoutingUser {
    pub(crate) fn into_domain(self) -> Result<UserAssignments, AnswerProblem> {
        Ok(UserAssignments {
            skills: assignments(&self.user_id, self.skills)?,
            proficiencies: Some(assignments(&self.user_id, self.proficiencies)?),
            user_id: UserId(self.user_id),
            version: Version(self.version),
            modified_at: self.date_modified,
            unmapped: Default::default(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkAnswer {
    pub results: Vec<BulkEntryAnswer>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkEntryAnswer {
    #[serde(default)]
    pub user_id: serde_json::Value,
    pub status: u16,
    pub version: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DialectUser {
    pub id: String,
    #[serde(default)]
    pub skills: DialectSkills,
    pub version: u64,
}

/// A directory entry of `GET /users`; only the fields `export` reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DirectoryUser {
    pub id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
}

impl DirectoryUser {
    pub(crate) fn into_profile(self) -> Result<crate::api::UserProfile, AnswerProblem> {
        Ok(crate::api::UserProfile {
            user_id: UserId(self.id),
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DialectSkills {
    #[serde(default)]
    pub proficiencies: Vec<DialectProficiency>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DialectProficiency {
    pub skill: String,
    pub level: u8,
}

impl DialectUser {
    pub(crate) fn into_domain(self) -> Result<UserAssignments, AnswerProblem> {
        let skills = self
            .skills
            .proficiencies
            .into_iter()
            .map(|p| {
                Ok(Assignment {
                    level: level(&self.id, &p.skill, p.level)?,
                    definition: DefinitionId(p.skill),
                    active: true,
                })
            })
            .collect::<Result<_, AnswerProblem>>()?;
        Ok(UserAssignments {
            user_id: UserId(self.id),
            skills,
            proficiencies: None,
            version: Version(self.version),
            modified_at: None,
            unmapped: Default::default(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireStrategy {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub proficiencies: Vec<String>,
    pub version: u64,
}

impl From<WireStrategy> for Strategy {
    fn from(s: WireStrategy) -> Strategy {
        Strategy {
            id: s.id,
            name: s.name,
            proficiencies: s.proficiencies.into_iter().map(DefinitionId).collect(),
            version: Version(s.version),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireProfile {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub proficiencies: Vec<String>,
    pub version: u64,
}

impl From<WireProfile> for Profile {
    fn from(p: WireProfile) -> Profile {
        Profile {
            id: p.id,
            name: p.name,
            skills: p.skills.into_iter().map(DefinitionId).collect(),
            proficiencies: p.proficiencies.into_iter().map(DefinitionId).collect(),
            version: Version(p.version),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireQueue {
    pub id: String,
    pub name: String,
    pub skill_id: String,
    #[serde(default = "one")]
    pub min_level: u8,
    pub production: bool,
}

fn one() -> u8 {
    1
}

impl From<WireQueue> for Queue {
    fn from(q: WireQueue) -> Queue {
        Queue {
            id: q.id,
            name: q.name,
            skill_id: DefinitionId(q.skill_id),
            min_level: q.min_level,
            production: q.production,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRouted {
    pub interaction_id: String,
    pub routed: bool,
    pub user_id: Option<String>,
    pub reason: Option<String>,
}

impl From<WireRouted> for Routed {
    fn from(r: WireRouted) -> Routed {
        Routed {
            interaction_id: r.interaction_id,
            routed: r.routed,
            user_id: r.user_id.map(UserId),
            reason: r.reason,
        }
    }
}

//! One agent, one code, in real time (a certification just completed): ensure the definition,
//! then read the user, change that one assignment, and write back with `If-Match`, re-reading
//! on conflict. Nothing else on the user is touched.

use serde_json::json;
use skillsync_core::{Agent, Assignment, CatalogEntry, Kind, Level};
use skillsync_cxone::{Error, NewDefinition, TenantApi, UserWrite};
use skillsync_store::{WriteRecord, WriteStatus, WriteTarget};

use crate::apply::JournalRun;

/// What `assign` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The assignment before, if the agent had one.
    pub before: Option<(Level, bool)>,
    /// Whether a write was needed.
    pub written: bool,
    /// Whether the definition had to be created first.
    pub created_definition: bool,
}

/// How many times a conflicting write is re-read and retried.
const ATTEMPTS: u32 = 5;

/// Sets `agent`'s assignment of the catalog `entry` (in the agent's locale) to `level`/`active`.
pub async fn assign(
    api: &dyn TenantApi,
    agent: &Agent,
    entry: &CatalogEntry,
    level: Level,
    active: bool,
    propagation_window: std::time::Duration,
    journal: Option<JournalRun<'_>>,
) -> Result<Assigned, Error> {
    let ensured = api
        .ensure_definition(&NewDefinition {
            kind: entry.kind,
            name: entry.name.clone(),
            locale: entry.locale.clone(),
            description: entry.description.clone(),
            routing_profile_id: entry.routing_profile_id.clone(),
        })
        .await?;
    let id = ensured.definition.id.clone();
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let user = api.user(&agent.user_id).await?;
        let list = match entry.kind {
            Kind::Skill => user.skills.clone(),
            Kind::Proficiency => user.proficiencies.clone().ok_or(Error::Unsupported {
                dialect: "users",
                operation: "proficiency assignments",
            })?,
        };
        let before = list
            .iter()
            .find(|a| a.definition == id)
            .map(|a| (a.level, a.active));
        if before == Some((level, active)) {
            return Ok(Assigned {
                before,
                written: false,
                created_definition: ensured.created,
            });
        }
        let mut after = list.clone();
        match after.iter_mut().find(|a| a.definition == id) {
            Some(existing) => {
                existing.level = level;
                existing.active = active;
            }
            None => after.push(Assignment {
                definition: id.clone(),
                level,
                active,
            }),
        }
        let write = UserWrite {
            user_id: agent.user_id.clone(),
            version: user.version,
            skills: (entry.kind == Kind::Skill).then(|| after.clone()),
            proficiencies: (entry.kind == Kind::Proficiency).then(|| after.clone()),
        };
        let result = api.write_user(&write).await;
        let status = match &result {
            Ok(_) => WriteStatus::Applied,
            Err(Error::Conflict { .. }) => WriteStatus::Conflict,
            Err(e) if e.is_transient() => WriteStatus::Unknown,
            Err(_) => WriteStatus::Failed,
        };
        if let Some(j) = journal {
            let at = jiff::Timestamp::now();
            let settles = jiff::SignedDuration::try_from(propagation_window).unwrap_or_default();
            let record = WriteRecord {
                run: j.run,
                target: if entry.kind == Kind::Skill {
                    WriteTarget::UserSkills
                } else {
                    WriteTarget::UserProficiencies
                },
                subject: agent.user_id.to_string(),
                before: json!(list),
                after: json!({ "version": write.version, "skills": write.skills, "proficiencies": write.proficiencies }),
                status,
                detail: result.as_ref().err().map(ToString::to_string),
                at,
                // Only skills route, so only they have anything to settle.
                settles_at: (status == WriteStatus::Applied && entry.kind == Kind::Skill)
                    .then(|| at.checked_add(settles).ok())
                    .flatten(),
            };
            if let Err(error) = j.journal.record_writes(&[record]) {
                tracing::error!(%error, "cannot journal the assignment");
            }
        }
        match result {
            Ok(_) => {
                return Ok(Assigned {
                    before,
                    written: true,
                    created_definition: ensured.created,
                });
            }
            Err(Error::Conflict { .. }) => {
                last = Some(Error::Conflict {
                    what: "user",
                    id: agent.user_id.to_string(),
                    expected: Some(user.version),
                })
            }
            Err(e) if e.is_transient() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(Error::Unsupported {
        dialect: "any",
        operation: "assign without attempts",
    }))
}

//! `skillsync drift`: where the tenant differs from the HRIS, read-only, with the last write
//! skillsync journaled for each drifted agent (so an admin sees whether someone changed it
//! since). Exit 0: no drift; 2: drift; 1: error.

use std::process::ExitCode;

use jiff::Timestamp;
use serde::Serialize;
use skillsync_core::plan::{AssignmentChange, DefinitionAction, Totals, UserPlan};
use skillsync_core::{EmployeeId, Locale, UserId};
use skillsync_store::WriteRecord;

use crate::args::CommonArgs;
use crate::inputs::Session;
use crate::output::{OutputFormat, exit, outln, print_json};

/// The version of the `--output json` document: fields are only added within it.
const SCHEMA_VERSION: u64 = 1;

/// The `--output json` document; its schema is `docs/drift-json.md`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DriftDocument<'a> {
    schema_version: u64,
    status: DriftStatus,
    drifted: Vec<DriftedAgent<'a>>,
    definitions: &'a [DefinitionAction],
    totals: &'a Totals,
}

/// Whether the tenant differs from the HRIS; the exit code says the same (0, 2).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
enum DriftStatus {
    NoDrift,
    Drift,
}

/// One agent whose assignments differ.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DriftedAgent<'a> {
    employee_id: &'a EmployeeId,
    user_id: &'a UserId,
    locale: &'a Locale,
    changes: Vec<&'a AssignmentChange>,
    tenant_modified_at: Option<Timestamp>,
    last_write: Option<LastWrite>,
}

/// The newest write skillsync journaled to the agent's lists.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LastWrite {
    run: i64,
    at: Timestamp,
    status: &'static str,
}

impl From<WriteRecord> for LastWrite {
    fn from(write: WriteRecord) -> Self {
        LastWrite {
            run: write.run.0,
            at: write.at,
            status: write.status.as_str(),
        }
    }
}

/// The tenant's level, or its own value when no HRIS level maps to it (never rounded).
fn tenant_level(slot: &skillsync_core::plan::Slot) -> String {
    match slot.tenant_value {
        Some(value) => format!("value {value} (no HRIS level)"),
        None => format!("level {}", slot.level),
    }
}

fn describe(change: &AssignmentChange) -> String {
    let what = format!("{} {} ({})", change.kind, change.name, change.locale);
    match (change.before, change.after) {
        (None, Some(after)) => format!(
            "+ {what}: missing in the tenant; the HRIS says level {}",
            after.level
        ),
        (Some(before), None) => format!(
            "- {what}: in the tenant at {}; not in the HRIS for this agent",
            tenant_level(&before)
        ),
        (Some(before), Some(after)) => {
            let active = |a: bool| if a { "active" } else { "inactive" };
            format!(
                "~ {what}: tenant {} ({}), HRIS level {} ({})",
                tenant_level(&before),
                active(before.active),
                after.level,
                active(after.active)
            )
        }
        (None, None) => what,
    }
}

/// Runs the command.
pub async fn run(common: &CommonArgs) -> anyhow::Result<ExitCode> {
    let (session, live) = match Session::open_and_read(common, &|_| {}).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let mut plan = match session.plan(&live, common) {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    // Drift is about the HRIS's agents: a user `absent_agents = "strip"` would strip has no
    // agent to compare with (`plan` shows those).
    plan.users.retain(|u| !u.absent_from_hris);
    let config = &session.config;
    // The journal is context, not a requirement: drift still reports without it, and being
    // read-only it never creates one.
    let journal = match config.store_connect_url() {
        Ok(url) => skillsync_store::open_existing(&url).await.ok().flatten(),
        Err(_) => None,
    };
    let mut last_writes: std::collections::HashMap<String, WriteRecord> =
        std::collections::HashMap::new();
    if let Some(journal) = &journal {
        // One call per list for every drifted agent: the journal reads the runs it has not
        // folded yet once, not once per agent.
        let drifted: Vec<&str> = plan.users.iter().map(|u| u.user_id.as_str()).collect();
        for target in [
            skillsync_store::WriteTarget::UserSkills,
            skillsync_store::WriteTarget::UserProficiencies,
        ] {
            let Ok(writes) = journal.last_writes(&drifted, target).await else {
                continue;
            };
            for write in writes {
                match last_writes.get(&write.subject) {
                    Some(newest) if newest.at >= write.at => {}
                    _ => {
                        last_writes.insert(write.subject.clone(), write);
                    }
                }
            }
        }
    }
    let last_write = |user: &str| last_writes.get(user).cloned();
    let modified: std::collections::HashMap<&str, Timestamp> = live
        .users
        .iter()
        .filter_map(|u| Some((u.user_id.as_str(), u.modified_at?)))
        .collect();
    let modified_at = |user: &str| modified.get(user).copied();

    match common.output {
        OutputFormat::Json => print_json(&DriftDocument {
            schema_version: SCHEMA_VERSION,
            status: if plan.is_empty() {
                DriftStatus::NoDrift
            } else {
                DriftStatus::Drift
            },
            drifted: plan
                .users
                .iter()
                .map(|u: &UserPlan| DriftedAgent {
                    employee_id: &u.employee_id,
                    user_id: &u.user_id,
                    locale: &u.locale,
                    changes: u.changes().collect(),
                    tenant_modified_at: modified_at(u.user_id.as_str()),
                    last_write: last_write(u.user_id.as_str()).map(LastWrite::from),
                })
                .collect(),
            definitions: &plan.definitions,
            totals: &plan.totals,
        })?,
        OutputFormat::Human => {
            if plan.is_empty() {
                outln!(
                    "No drift: the tenant matches the HRIS for all {} agents.",
                    plan.totals.agents
                );
            } else {
                outln!(
                    "Drift: {} of {} agents differ from the HRIS; {} catalog definitions are missing or out of date.",
                    plan.users.len(),
                    plan.totals.agents,
                    plan.definitions.len()
                );
                for user in &plan.users {
                    outln!(
                        "  {} · user {} · {}",
                        user.employee_id,
                        user.user_id,
                        user.locale
                    );
                    for change in user.changes() {
                        outln!("    {}", describe(change));
                    }
                    let write = last_write(user.user_id.as_str());
                    let changed = modified_at(user.user_id.as_str());
                    let when = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
                    match &write {
                        Some(w) => outln!(
                            "    last skillsync write: run {} at {} ({})",
                            w.run.0,
                            when(w.at),
                            w.status.as_str()
                        ),
                        None => outln!("    never written by skillsync"),
                    }
                    if let Some(changed) = changed {
                        let since = match &write {
                            Some(w) if changed > w.at => ": changed by someone else since",
                            _ => "",
                        };
                        outln!("    tenant last changed the user: {}{since}", when(changed));
                    }
                }
                outln!(
                    "`skillsync apply` would bring them back; `skillsync plan` shows exactly how."
                );
            }
        }
    }
    Ok(if plan.is_empty() {
        exit::ok()
    } else {
        exit::changes()
    })
}

//! `skillsync drift`: where the tenant differs from the HRIS, read-only, with the last write
//! skillsync journaled for each drifted agent (so an admin sees whether someone changed it
//! since). Exit 0: no drift; 2: drift; 1: error.

use std::process::ExitCode;

use serde_json::json;
use skillsync_core::plan::AssignmentChange;

use crate::args::CommonArgs;
use crate::inputs::Session;
use crate::output::{OutputFormat, exit};

fn describe(change: &AssignmentChange) -> String {
    let what = format!("{} {} ({})", change.kind, change.name, change.locale);
    match (change.before, change.after) {
        (None, Some(after)) => format!(
            "+ {what}: missing in the tenant; the HRIS says level {}",
            after.level
        ),
        (Some(before), None) => format!(
            "- {what}: in the tenant at level {}; not in the HRIS for this agent",
            before.level
        ),
        (Some(before), Some(after)) => {
            let active = |a: bool| if a { "active" } else { "inactive" };
            format!(
                "~ {what}: tenant level {} ({}), HRIS level {} ({})",
                before.level,
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
    let session = match Session::open(common)? {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let live = session.read_live(&|_| {}).await?;
    let plan = match session.plan(&live, common) {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    let config = &session.config;
    // The journal is context, not a requirement: drift still reports without it.
    let journal = skillsync_store::open(&config.store_url).ok();
    let last_write = |user: &str| {
        let journal = journal.as_ref()?;
        [
            skillsync_store::WriteTarget::UserSkills,
            skillsync_store::WriteTarget::UserProficiencies,
        ]
        .into_iter()
        .filter_map(|target| journal.last_write(user, target).ok().flatten())
        .max_by_key(|w| w.at)
    };

    let drifted: Vec<serde_json::Value> = plan
        .users
        .iter()
        .map(|u| {
            let last = last_write(u.user_id.as_str());
            json!({
                "employeeId": u.employee_id,
                "userId": u.user_id,
                "locale": u.locale,
                "changes": u.changes().collect::<Vec<_>>(),
                "lastWrite": last.map(|w| json!({ "run": w.run.0, "at": w.at, "status": w.status.as_str() })),
            })
        })
        .collect();
    match common.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "schemaVersion": 1,
                "drifted": drifted,
                "definitions": plan.definitions,
                "totals": plan.totals,
            }))?
        ),
        OutputFormat::Human => {
            if plan.is_empty() {
                println!(
                    "No drift: the tenant matches the HRIS for all {} agents.",
                    plan.totals.agents
                );
            } else {
                println!(
                    "Drift: {} of {} agents differ from the HRIS; {} catalog definitions are missing or out of date.",
                    plan.users.len(),
                    plan.totals.agents,
                    plan.definitions.len()
                );
                for user in &plan.users {
                    println!(
                        "  {} · user {} · {}",
                        user.employee_id, user.user_id, user.locale
                    );
                    for change in user.changes() {
                        println!("    {}", describe(change));
                    }
                    match last_write(user.user_id.as_str()) {
                        Some(w) => println!(
                            "    last skillsync write: run {} at {} ({})",
                            w.run.0,
                            w.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                            w.status.as_str()
                        ),
                        None => println!("    never written by skillsync"),
                    }
                }
                println!(
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

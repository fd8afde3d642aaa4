//! The "other integration" (SPEC 1.6): a concurrent writer that owns the `Ext_` definitions and
//! changes random users' assignments to them through the same rules as any client: read,
//! change only what it owns, write with the version it read, and on a stale version re-read and
//! retry. It keeps a log of what it last wrote to each user, so a test can prove that nothing
//! it wrote was lost to someone else's last-write-wins update. Each tick it also changes one
//! `Ext_` skill's assignment in the CXone dialect's tenant, logged per (agent, skill).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::Serialize;

use crate::app::App;
use crate::cxone::{AssignOp, EntryInput, Side};
use crate::model::{Assignment, Kind, PatchRefused, Tenant, User, UserPatch, WriteFaults};

/// Name prefix of the definitions the other integration owns.
pub const OWNED_PREFIX: &str = "Ext_";

/// What the other integration last wrote to one user: its own assignments only.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WrittenAssignments {
    /// `Ext_` skill assignments after its write.
    pub skills: Vec<Assignment>,
    /// `Ext_` proficiency assignments after its write.
    pub proficiencies: Vec<Assignment>,
    /// The user's version its write produced.
    pub version: u64,
}

/// What the other integration last wrote to one agent's assignment of one `Ext_` skill in the
/// CXone dialect: the assignment as its write left it, or `assigned: false` after an unassign.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CxoneWritten {
    /// The agent.
    pub agent_id: u64,
    /// The `Ext_` skill.
    pub skill_id: u64,
    /// The proficiency it left (assigned only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proficiency: Option<u8>,
    /// The active flag it left (assigned only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Whether the agent holds the skill after its write.
    pub assigned: bool,
}

/// Per user, the other integration's last write; and per (agent, skill) in the CXone dialect.
#[derive(Debug, Clone, Default)]
pub struct OtherWriterLog {
    /// By user id.
    pub users: BTreeMap<String, WrittenAssignments>,
    /// By (agent id, skill id), the order `/sim/other-writer` lists them in.
    pub cxone: BTreeMap<(u64, u64), CxoneWritten>,
}

/// Runs until aborted, writing at the rate the knobs say (0 = paused).
pub async fn run(app: Arc<App>) {
    let mut knobs = app.knobs.subscribe();
    loop {
        let rate = knobs.borrow_and_update().other_writer;
        if rate <= 0.0 {
            if knobs.changed().await.is_err() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(1.0 / rate)) => write_once(&app).await,
            changed = knobs.changed() => if changed.is_err() { return },
        }
    }
}

fn owned_by_other(tenant: &Tenant, kind: Kind, id: &str) -> bool {
    tenant
        .definitions(kind)
        .get(id)
        .is_some_and(|d| d.name.starts_with(OWNED_PREFIX))
}

fn owned_assignments(tenant: &Tenant, user: &User) -> WrittenAssignments {
    WrittenAssignments {
        skills: user
            .skills
            .iter()
            .filter(|a| owned_by_other(tenant, Kind::Skill, &a.id))
            .cloned()
            .collect(),
        proficiencies: user
            .proficiencies
            .iter()
            .filter(|a| owned_by_other(tenant, Kind::Proficiency, &a.id))
            .cloned()
            .collect(),
        version: user.version,
    }
}

/// One tick: a read-merge-write cycle in the shared tenant, then one change in the CXone
/// dialect's, both inside one cycle so a reader of the log never sees half a tick.
async fn write_once(app: &Arc<App>) {
    let _cycle = app.other_writer_cycle.lock().await;
    // Paused while this cycle waited for its turn: a reader of the log may be counting on it.
    if app.knobs().other_writer <= 0.0 {
        return;
    }
    write_shared(app).await;
    write_cxone(app);
}

/// A read-merge-write cycle on a random user, retried on conflict.
async fn write_shared(app: &Arc<App>) {
    const ATTEMPTS: usize = 8;
    let Some(user_id) = ({
        let tenant = app.tenant.lock();
        let ids: Vec<&String> = tenant.users().keys().collect();
        ids.choose(&mut rand::rng()).map(|s| s.to_string())
    }) else {
        return;
    };
    for _ in 0..ATTEMPTS {
        let Some((version, patch)) = plan_change(app, &user_id) else {
            return;
        };
        // Time between read and write, as any real client has: other writers can slip in here.
        let think = Duration::from_millis(rand::rng().random_range(1..=5));
        tokio::time::sleep(think).await;
        let propagation = app.knobs().propagation.sample(&mut rand::rng());
        let touches_skills = patch.skills.is_some();
        let mut tenant = app.tenant.lock();
        match tenant.apply_user_patch(
            &user_id,
            patch,
            Some(version),
            app.clock.wall(),
            app.clock.now(),
            propagation,
            WriteFaults::NONE,
        ) {
            Ok((user, _)) => {
                // Logged before the tenant is released, so that no reader sees the write in the
                // tenant but not in the log.
                let written = owned_assignments(&tenant, &user);
                app.other_writer.lock().users.insert(user_id, written);
                drop(tenant);
                let mut stats = app.stats.lock();
                stats.other_writer_writes += 1;
                if touches_skills {
                    stats.cache_rebuilds += 1;
                }
                return;
            }
            Err(PatchRefused::Stale { .. }) => {
                drop(tenant);
                app.stats.lock().other_writer_conflicts += 1;
            }
            Err(_) => return,
        }
    }
}

/// Reads a user and decides one change to an `Ext_` assignment in the user's locale.
fn plan_change(app: &App, user_id: &str) -> Option<(u64, UserPatch)> {
    let tenant = app.tenant.lock();
    let user = tenant.users().get(user_id)?;
    let mut rng = rand::rng();
    let candidates: Vec<(Kind, &String)> = [Kind::Skill, Kind::Proficiency]
        .into_iter()
        .flat_map(|kind| {
            tenant
                .definitions(kind)
                .values()
                .filter(|d| d.active && d.name.starts_with(OWNED_PREFIX))
                .filter(|d| user.locale.is_empty() || d.locale == user.locale)
                .map(move |d| (kind, &d.id))
        })
        .collect();
    let &(kind, id) = candidates.choose(&mut rng)?;
    let mut list = match kind {
        Kind::Skill => user.skills.clone(),
        Kind::Proficiency => user.proficiencies.clone(),
    };
    match list.iter().position(|a| &a.id == id) {
        Some(i) if rng.random_bool(1.0 / 3.0) => {
            list.remove(i);
        }
        Some(i) => list[i].level = list[i].level % 10 + 1,
        None => list.push(Assignment {
            id: id.clone(),
            level: rng.random_range(1..=10),
            active: true,
        }),
    }
    let patch = match kind {
        Kind::Skill => UserPatch {
            skills: Some(list),
            ..UserPatch::default()
        },
        Kind::Proficiency => UserPatch {
            proficiencies: Some(list),
            ..UserPatch::default()
        },
    };
    Some((user.version, patch))
}

/// Assigns, re-grades or unassigns one random agent's `Ext_` skill in the CXone dialect, through
/// the per-skill endpoints' rules. The dialect has no versions, so there is nothing to merge:
/// each change is decided and applied under one lock and is an entry like any client's, with no
/// `--reject-write-rate`, because the log must hold only what the tenant holds.
fn write_cxone(app: &App) {
    let mut tenant = app.cxone.lock();
    let mut rng = rand::rng();
    let agents: Vec<u64> = tenant.agents().map(|a| a.agent_id).collect();
    let owned: Vec<u64> = tenant
        .skills()
        .filter(|s| s.is_active && s.skill_name.starts_with(OWNED_PREFIX))
        .map(|s| s.skill_id)
        .collect();
    let (Some(&agent_id), Some(&skill_id)) = (agents.choose(&mut rng), owned.choose(&mut rng))
    else {
        return;
    };
    let (op, entry) = match tenant.assignment(skill_id, agent_id) {
        Some(_) if rng.random_bool(1.0 / 3.0) => (
            AssignOp::Unassign,
            EntryInput {
                id: agent_id,
                is_active: None,
                proficiency: None,
            },
        ),
        Some(held) => (
            AssignOp::Update,
            EntryInput {
                id: agent_id,
                is_active: None,
                proficiency: Some(i64::from(held.proficiency % 20 + 1)),
            },
        ),
        None => (
            AssignOp::Assign,
            EntryInput {
                id: agent_id,
                is_active: Some(true),
                proficiency: Some(rng.random_range(1..=20)),
            },
        ),
    };
    let results = tenant.apply_entries(op, Side::Skill(skill_id), &[entry], 0.0);
    if results.iter().any(|r| r.outcome.is_err()) {
        return;
    }
    let held = tenant.assignment(skill_id, agent_id);
    let written = CxoneWritten {
        agent_id,
        skill_id,
        proficiency: held.map(|a| a.proficiency),
        is_active: held.map(|a| a.is_active),
        assigned: held.is_some(),
    };
    // Logged before the tenant is released, so that no reader sees the write but not the log.
    app.other_writer
        .lock()
        .cxone
        .insert((agent_id, skill_id), written);
}

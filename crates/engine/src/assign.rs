//! One agent, one code, in real time (a certification just completed): ensure the definition,
//! then change that one assignment through the write path (read, merge, `If-Match`, re-read
//! on conflict), and read it back. Nothing else on the user is touched.

use std::sync::Mutex;

use skillsync_core::{Agent, Assignment, CatalogEntry, Kind, Level, UserAssignments};
use skillsync_cxone::{NewDefinition, TenantApi, UserWrite};
use skillsync_store::{Journal, RunCounts, RunId, RunOutcome, Snapshot, WriteStatus, WriteTarget};

use crate::entries;
use crate::sync::RunLabel;
use crate::write::{
    Entry, JournalRun, Rewrite, Rewritten, StopReason, UserOutcome, WriteOptions, Writer,
};
use crate::{Error, Interrupt};

/// One assignment to set.
#[derive(Debug, Clone, Copy)]
pub struct AssignRequest<'a> {
    /// The agent.
    pub agent: &'a Agent,
    /// The catalog variant, in the agent's locale.
    pub entry: &'a CatalogEntry,
    /// The level.
    pub level: Level,
    /// Active or not.
    pub active: bool,
}

/// What `assign` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The assignment before, if the agent had one (as first read).
    pub before: Option<(Level, bool)>,
    /// How the user ended.
    pub outcome: UserOutcome,
    /// Whether the definition had to be created first.
    pub created_definition: bool,
    /// The journal's run.
    pub run: RunId,
    /// Why the run stopped, if it did.
    pub stopped: Option<StopReason>,
    /// The run's counts, as journaled.
    pub counts: RunCounts,
}

impl Assigned {
    /// How the run ended, as journaled; the CLI's exit code follows it.
    pub fn run_outcome(&self) -> RunOutcome {
        match (&self.outcome, &self.stopped) {
            (_, Some(StopReason::Interrupted)) => RunOutcome::Interrupted,
            (UserOutcome::Updated | UserOutcome::AlreadyCurrent, None) => RunOutcome::Succeeded,
            _ => RunOutcome::Failed,
        }
    }
}

/// Sets the agent's assignment of the catalog entry, journaled as its own run.
pub async fn assign(
    api: &dyn TenantApi,
    journal: &dyn Journal,
    label: &RunLabel,
    request: AssignRequest<'_>,
    options: WriteOptions,
    interrupt: Option<&Interrupt>,
) -> Result<Assigned, Error> {
    crate::lease::holding(journal, label, interrupt, async |lease| {
        assign_under(api, journal, label, request, options, (interrupt, lease)).await
    })
    .await
}

/// [`assign`] once the lease (if any) is held.
async fn assign_under(
    api: &dyn TenantApi,
    journal: &dyn Journal,
    label: &RunLabel,
    request: AssignRequest<'_>,
    options: WriteOptions,
    (interrupt, lease): (Option<&Interrupt>, Option<&crate::lease::HeldLease<'_>>),
) -> Result<Assigned, Error> {
    crate::lease::start_writing(interrupt).await;
    let run = crate::lease::begin_run(journal, label, lease).await?;
    let requests_before = api.counters().total_requests();
    let result = assign_in_run(
        api,
        JournalRun { journal, run },
        request,
        options,
        (interrupt, lease),
    )
    .await;
    let mut counts = match &result {
        Ok(assigned) => RunCounts {
            definitions_created: u64::from(assigned.created_definition),
            ..assigned.counts.clone()
        },
        // The definition could not be ensured: the one user planned failed.
        Err(error) => RunCounts {
            users_planned: 1,
            users_failed: 1,
            stopped: Some(crate::explain(error)),
            ..RunCounts::default()
        },
    };
    counts.requests = api.counters().total_requests() - requests_before;
    let outcome = match &result {
        Ok(assigned) => assigned.run_outcome(),
        Err(_) => RunOutcome::Failed,
    };
    journal
        .finish_run(run, outcome, &counts, jiff::Timestamp::now())
        .await
        .map_err(Error::Journal)?;
    result
}

async fn assign_in_run(
    api: &dyn TenantApi,
    journal: JournalRun<'_>,
    request: AssignRequest<'_>,
    options: WriteOptions,
    (interrupt, lease): (Option<&Interrupt>, Option<&crate::lease::HeldLease<'_>>),
) -> Result<Assigned, Error> {
    let AssignRequest {
        agent,
        entry,
        level,
        active,
    } = request;
    let writer = Writer::new(api, Some(journal), options, interrupt, lease);
    let ensured = api
        .ensure_definition(&NewDefinition {
            kind: entry.kind,
            name: entry.name.clone(),
            locale: entry.locale.clone(),
            description: entry.description.clone(),
            routing_profile_id: entry.routing_profile_id.clone(),
        })
        .await
        .map_err(|source| Error::Tenant {
            action: format!("ensuring {} {} ({})", entry.kind, entry.name, entry.locale),
            source: Box::new(source),
        })?;
    if ensured.created {
        // Created here, so skillsync's to manage: later syncs need no `--adopt` for it.
        journal
            .journal
            .remember_mappings(&[skillsync_store::Mapping {
                code: entry.code.to_string(),
                locale: entry.locale.to_string(),
                kind: entry.kind.noun().to_string(),
                definition_id: ensured.definition.id.to_string(),
                seen_at: jiff::Timestamp::now(),
            }])
            .await
            .map_err(Error::Journal)?;
        writer
            .record(vec![Entry {
                target: WriteTarget::Definition,
                subject: ensured.definition.id.to_string(),
                before: Snapshot::Absent,
                after: entries::definition(&ensured.definition),
                status: WriteStatus::Applied,
                detail: None,
                routes: false,
            }])
            .await;
    }
    let one = OneEntry {
        kind: entry.kind,
        assignment: Assignment {
            definition: ensured.definition.id.clone(),
            level,
            active,
        },
        first_seen: Mutex::new(None),
    };
    writer
        .reconcile(vec![agent.user_id.clone()], &one, &|_, _| {})
        .await;
    crate::read_back::check(&writer, api, &one, 1, 1).await;
    let written = writer.finish([agent.user_id.clone()]);
    let counts = written.run_counts();
    let outcome = written
        .users
        .into_values()
        .next()
        .unwrap_or(UserOutcome::NotAttempted(StopReason::Tenant(
            "not reached".into(),
        )));
    let before = one.first_seen.into_inner().expect("not poisoned").flatten();
    Ok(Assigned {
        before,
        outcome,
        created_definition: ensured.created,
        run: journal.run,
        stopped: written.stopped,
        counts,
    })
}

/// Sets one entry of one list; everything else on the user is carried through as held.
struct OneEntry {
    kind: Kind,
    assignment: Assignment,
    /// The entry as first read, for the report.
    first_seen: Mutex<Option<Option<(Level, bool)>>>,
}

impl Rewrite for OneEntry {
    fn rewrite(&self, live: &UserAssignments) -> Rewritten {
        let list = match self.kind {
            Kind::Skill => &live.skills,
            Kind::Proficiency => match &live.proficiencies {
                Some(list) => list,
                None => {
                    return Rewritten::Refused(
                        "this dialect cannot write proficiency assignments".into(),
                    );
                }
            },
        };
        let wanted = &self.assignment;
        let held = list.iter().find(|a| a.definition == wanted.definition);
        self.first_seen
            .lock()
            .expect("not poisoned")
            .get_or_insert(held.map(|a| (a.level, a.active)));
        if held.is_some_and(|a| {
            a.level == wanted.level
                && a.active == wanted.active
                && !live.unmapped.contains_key(&a.definition)
        }) {
            return Rewritten::Current;
        }
        let mut after = list.clone();
        match after.iter_mut().find(|a| a.definition == wanted.definition) {
            Some(existing) => *existing = wanted.clone(),
            None => after.push(wanted.clone()),
        }
        Rewritten::Write(UserWrite {
            user_id: live.user_id.clone(),
            version: live.version,
            skills: (self.kind == Kind::Skill).then(|| after.clone()),
            proficiencies: (self.kind == Kind::Proficiency).then_some(after),
            as_read: Some(live.clone()),
        })
    }
}

//! `skillsync why`: why an agent does (not) get a queue's calls, in one screen.
//!
//! Reads the queue's requirement (skill, minimum level), the agent's assignments in the tenant
//! (one GET), the definitions, the HRIS files and the journal's settles-at of the last write to
//! that user, and names every reason with its fix. Read-only: no lease, no journal created, no
//! tenant write. Exit 0 eligible; 3 not eligible; 1 error.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use jiff::Timestamp;
use serde::Serialize;
use skillsync_core::{
    Agent, Assignment, Code, Definition, Desired, EmployeeId, Kind, Locale, Problem,
    UserAssignments, Wanted,
};
use skillsync_cxone::Queue;
use skillsync_store::{Journal, WriteRecord, WriteStatus, WriteTarget};

use super::validate::report_problems;
use crate::args::CommonArgs;
use crate::inputs::Session;
use crate::output::{OutputFormat, exit, out, print_json};

/// Explain why an agent does or does not get a queue's calls (routing eligibility)
///
/// Routing hands a queue's interactions only to agents holding the queue's one locale-specific
/// skill as a *skill* (proficiencies never route), active, at the queue's minimum level or
/// above, on an active definition, and only once the routing cache has caught up with the
/// last write. `why` reads the queue, the agent's assignments in the tenant, the definitions,
/// the HRIS files and the journal's settle time of the last write to the agent, and names
/// every reason with its fix:
///
///   level under the minimum  "HRIS gives level 3; the queue needs 5"
///   a proficiency            "assigned as a proficiency; routing reads skills only"
///   another locale's variant "the en-us variant is assigned; the agent is de-de"
///   inactive                 "the assignment is inactive" / "the definition is inactive"
///   missing                  "not assigned in the tenant, but the HRIS wants it"
///   still settling           "written 12 s ago; settles at 14:02:31 UTC"
///
/// --queue NAME|ID checks one queue (its skill resolved through catalog.csv); --code CODE
/// checks that code at any level; with neither, every queue is listed with eligible or not.
/// EMPLOYEE_ID is an employee_id or user_id from agents.csv. It never writes: no lease, no
/// journal created, no tenant write.
///
/// Exit codes: 0 eligible (with neither flag: for at least one queue); 3 not eligible;
/// 1 error (unknown employee, queue or code, with near matches). With --output json it prints
/// one document: fields in docs/why-json.md.
///
///   skillsync why E1042 --queue Billing        # why doesn't Maria get Billing calls?
///   skillsync why E1042 --code PAY -o json
///   skillsync why E1042                        # every queue, eligible or not
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct WhyArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The agent: an employee_id or user_id from agents.csv.
    #[arg(value_name = "EMPLOYEE_ID")]
    pub employee: String,

    /// The queue, by name or id (`GET /routing/queues`).
    #[arg(long, value_name = "NAME|ID", conflicts_with = "code")]
    pub queue: Option<String>,

    /// A catalog code: is the agent routable on it at any level?
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
}

/// Not eligible (documented in the README's exit-code table).
fn not_eligible() -> ExitCode {
    ExitCode::from(3)
}

/// The version of the `--output json` document: fields are only added within it.
const SCHEMA_VERSION: u64 = 1;

/// One reason an agent is not routed, with its fix.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Reason {
    /// A stable name for scripts.
    reason: &'static str,
    /// What is wrong, in one sentence.
    message: String,
    /// What to do about it.
    fix: String,
}

/// What is checked: the skill (name, locale), the least level, and where it comes from.
struct Target<'a> {
    queue: Option<&'a Queue>,
    code: Option<Code>,
    skill: Option<&'a Definition>,
    name: String,
    locale: Locale,
    min_level: u8,
}

/// The last journaled write to the agent's skills while the routing cache has not caught up.
struct Pending {
    write: WriteRecord,
    settles_at: Timestamp,
}

/// Everything a check reads.
struct Facts<'a> {
    agent: &'a Agent,
    desired: &'a Desired,
    assignments_file: &'a str,
    catalog_file: &'a str,
    agents_file: &'a str,
    definitions: &'a [Definition],
    user: &'a UserAssignments,
    queues: &'a [Queue],
    pending: Option<Pending>,
    now: Timestamp,
}

/// The verdict on one target.
struct Check<'a> {
    target: Target<'a>,
    held: Option<Assignment>,
    wanted: Option<Wanted>,
    reasons: Vec<Reason>,
    /// What the next `apply` changes about it, when it does not block routing now.
    notes: Vec<String>,
}

impl Check<'_> {
    fn eligible(&self) -> bool {
        self.reasons.is_empty()
    }
}

impl<'a> Facts<'a> {
    fn definition(&self, id: &skillsync_core::DefinitionId) -> Option<&Definition> {
        self.definitions.iter().find(|d| &d.id == id)
    }

    /// The catalog code whose variant in `locale` is named `name` (a skill before a proficiency).
    fn code_named(&self, name: &str, locale: &Locale) -> Option<Code> {
        let mut found: Vec<_> = self
            .desired
            .catalog
            .entries
            .values()
            .filter(|e| e.name == name && &e.locale == locale)
            .collect();
        found.sort_by_key(|e| e.kind != Kind::Skill);
        found.first().map(|e| e.code.clone())
    }

    /// Queues whose skill has this name in the agent's locale (where the agent could be routed).
    fn queues_in_agent_locale(&self, name: &str) -> Vec<String> {
        self.queues
            .iter()
            .filter(|q| {
                self.definition(&q.skill_id)
                    .is_some_and(|d| d.name == name && d.locale == self.agent.locale)
            })
            .map(|q| q.name.clone())
            .collect()
    }

    /// A queue's requirement: its skill, resolved to a catalog code by name and locale.
    fn queue_target<'q>(&self, queue: &'q Queue) -> Target<'q>
    where
        'a: 'q,
    {
        let skill = self
            .definitions
            .iter()
            .find(|d| d.id == queue.skill_id && d.kind == Kind::Skill);
        let (name, locale) = match skill {
            Some(s) => (s.name.clone(), s.locale.clone()),
            None => (queue.skill_id.to_string(), self.agent.locale.clone()),
        };
        Target {
            queue: Some(queue),
            code: self.code_named(&name, &locale),
            skill,
            name,
            locale,
            min_level: queue.min_level,
        }
    }

    fn check<'t>(&self, target: Target<'t>) -> Check<'t> {
        let emp = &self.agent.employee_id;
        let min = target.min_level;
        let code = target.code.clone();
        let code_shown = code.as_ref().map_or(target.name.clone(), |c| c.to_string());
        let kind = code.as_ref().and_then(|c| self.desired.catalog.kind_of(c));
        let wanted = code.as_ref().and_then(|c| {
            self.desired
                .assignments
                .get(emp)
                .and_then(|m| m.get(c))
                .cloned()
        });
        let at_line = |w: &Wanted| format!("{}:{}", self.assignments_file, w.line);
        let held = target
            .skill
            .and_then(|s| self.user.skills.iter().find(|a| a.definition == s.id))
            .cloned();
        let mut reasons = Vec::new();

        match target.skill {
            None => reasons.push(Reason {
                reason: "noSkillDefinition",
                message: format!(
                    "the tenant has no skill {} ({})",
                    target.name, target.locale
                ),
                fix: match kind {
                    Some(Kind::Skill) => format!(
                        "run `skillsync apply`: {code_shown} is in {}, so apply creates it",
                        self.catalog_file
                    ),
                    _ => "create the skill in CXone, or point the queue at one that exists"
                        .to_string(),
                },
            }),
            Some(skill) if !skill.active => reasons.push(Reason {
                reason: "definitionInactive",
                message: format!(
                    "the definition is inactive: skill {} ({}) routes nobody",
                    skill.name, skill.locale
                ),
                fix: if kind == Some(Kind::Skill) {
                    format!(
                        "run `skillsync apply`: {code_shown} is in {}, so apply reactivates it",
                        self.catalog_file
                    )
                } else {
                    "reactivate it in CXone (active: true), or point the queue at an active skill"
                        .to_string()
                },
            }),
            Some(_) => {}
        }

        if let Some(a) = &held {
            if !a.active {
                reasons.push(Reason {
                    reason: "assignmentInactive",
                    message: format!(
                        "the assignment is inactive (level {}): kept, but not routed",
                        a.level.get()
                    ),
                    fix: match &wanted {
                        Some(w) if w.active => format!(
                            "run `skillsync apply`: the HRIS has it active ({})",
                            at_line(w)
                        ),
                        Some(w) => format!(
                            "{} sets active=false: set it to true, then `skillsync apply`",
                            at_line(w)
                        ),
                        None if code.is_some() => format!(
                            "add `{emp},{code_shown},{},true` to {}, then `skillsync apply`",
                            a.level.get().max(min),
                            self.assignments_file
                        ),
                        None => format!(
                            "activate it in CXone: {} is outside the catalog, so skillsync leaves it alone",
                            target.name
                        ),
                    },
                });
            }
            if a.level.get() < min {
                let tenant = a.level.get();
                reasons.push(Reason {
                    reason: "levelBelowMinimum",
                    message: match &wanted {
                        Some(w) if w.level.get() == tenant => {
                            format!("HRIS gives level {tenant}; the queue needs {min}")
                        }
                        Some(w) => format!(
                            "the tenant has level {tenant} (the HRIS gives {}); the queue needs {min}",
                            w.level.get()
                        ),
                        None => format!("the tenant has level {tenant}; the queue needs {min}"),
                    },
                    fix: match &wanted {
                        Some(w) if w.level.get() >= min => format!(
                            "run `skillsync apply`: it sets level {}",
                            w.level.get()
                        ),
                        Some(w) => format!(
                            "raise {code_shown} for {emp} to {min} or more at {}, then `skillsync apply`",
                            at_line(w)
                        ),
                        None => format!("raise it to {min} or more in CXone or in the HRIS"),
                    },
                });
            }
        } else {
            let held_defs = |list: &[Assignment], kind: Kind| -> Vec<&Definition> {
                list.iter()
                    .filter_map(|a| self.definition(&a.definition))
                    .filter(|d| d.kind == kind && d.name == target.name)
                    .collect()
            };
            let other_locales: Vec<&Definition> = held_defs(&self.user.skills, Kind::Skill)
                .into_iter()
                .filter(|d| d.locale != target.locale)
                .collect();
            let as_proficiency = held_defs(
                self.user.proficiencies.as_deref().unwrap_or(&[]),
                Kind::Proficiency,
            );
            let agent_locale = &self.agent.locale;
            if kind == Some(Kind::Proficiency) || !as_proficiency.is_empty() {
                reasons.push(Reason {
                    reason: "proficiencyNotSkill",
                    message: if as_proficiency.is_empty() {
                        format!(
                            "{} lists {code_shown} as a proficiency; routing reads skills only",
                            self.catalog_file
                        )
                    } else {
                        format!(
                            "{} is assigned as a proficiency; routing reads skills only",
                            target.name
                        )
                    },
                    fix: if kind == Some(Kind::Proficiency) {
                        format!(
                            "make {code_shown} kind `skill` in {}, then `skillsync apply`",
                            self.catalog_file
                        )
                    } else {
                        format!(
                            "assign the skill {} ({}) instead of the proficiency",
                            target.name, target.locale
                        )
                    },
                });
            }
            let alternatives = || {
                let queues = self.queues_in_agent_locale(&target.name);
                if queues.is_empty() {
                    format!("no queue takes {} in {agent_locale}", target.name)
                } else {
                    format!("the {agent_locale} queue: {}", queues.join(", "))
                }
            };
            if agent_locale != &target.locale {
                let holds = if other_locales.iter().any(|d| &d.locale == agent_locale) {
                    format!(" and holds the {agent_locale} one")
                } else {
                    String::new()
                };
                reasons.push(Reason {
                    reason: "agentLocale",
                    message: format!(
                        "the queue needs the {} variant; the agent is {agent_locale}{holds}",
                        target.locale
                    ),
                    fix: format!(
                        "the HRIS assigns {agent_locale} variants only: use {}, or correct the agent's locale in {}",
                        alternatives(),
                        self.agents_file
                    ),
                });
            } else if !other_locales.is_empty() {
                let locales: BTreeSet<&str> =
                    other_locales.iter().map(|d| d.locale.as_str()).collect();
                let locales: Vec<&str> = locales.into_iter().collect();
                reasons.push(Reason {
                    reason: "wrongLocale",
                    message: format!(
                        "the {} variant is assigned; the agent is {agent_locale}",
                        locales.join(", ")
                    ),
                    fix: if wanted.is_some() {
                        format!(
                            "run `skillsync apply`: the HRIS resolves {code_shown} to the {} variant",
                            target.locale
                        )
                    } else {
                        format!(
                            "add `{emp},{code_shown},{min},true` to {}, then `skillsync apply`",
                            self.assignments_file
                        )
                    },
                });
            } else if reasons.iter().all(|r| r.reason != "proficiencyNotSkill") {
                let (message, fix) = match (&code, &wanted) {
                    (Some(_), Some(w)) if w.active && w.level.get() >= min => (
                        format!(
                            "not assigned in the tenant, but the HRIS wants it at level {} ({})",
                            w.level.get(),
                            at_line(w)
                        ),
                        "run `skillsync apply`".to_string(),
                    ),
                    (Some(_), Some(w)) if w.active => (
                        format!(
                            "not assigned in the tenant; the HRIS wants it at level {} ({}), under the queue's {min}",
                            w.level.get(),
                            at_line(w)
                        ),
                        format!("raise it to {min} or more, then `skillsync apply`"),
                    ),
                    (Some(_), Some(w)) => (
                        format!(
                            "not assigned in the tenant; the HRIS has it inactive ({})",
                            at_line(w)
                        ),
                        "set active=true, then `skillsync apply`".to_string(),
                    ),
                    (Some(_), None) => (
                        format!(
                            "not assigned in the tenant, and {} does not assign {code_shown} to {emp}",
                            self.assignments_file
                        ),
                        format!(
                            "add `{emp},{code_shown},{min},true` to {}, then `skillsync apply`",
                            self.assignments_file
                        ),
                    ),
                    (None, _) => (
                        format!(
                            "not assigned in the tenant, and {} ({}) is outside the catalog, so skillsync does not manage it",
                            target.name, target.locale
                        ),
                        format!(
                            "add it to {} and {}, or assign it in CXone",
                            self.catalog_file, self.assignments_file
                        ),
                    ),
                };
                reasons.push(Reason {
                    reason: "notAssigned",
                    message,
                    fix,
                });
            }
        }

        if let (Some(pending), Some(skill)) = (&self.pending, target.skill)
            && changed(&pending.write, skill)
        {
            let ago = self.now.duration_since(pending.write.at).as_secs().max(0);
            reasons.push(Reason {
                reason: "settling",
                message: format!(
                    "written {ago} s ago; settles at {} UTC",
                    clock(pending.settles_at)
                ),
                fix: format!(
                    "routing reads a cache that catches up after the propagation delay (run {}): ask again after {} UTC",
                    pending.write.run.0,
                    clock(pending.settles_at)
                ),
            });
        }

        let mut notes = Vec::new();
        if let Some(a) = held.as_ref().filter(|a| a.active && a.level.get() >= min)
            && kind == Some(Kind::Skill)
        {
            match &wanted {
                None => notes.push(format!(
                    "{} does not assign {code_shown} to {emp}: the next `skillsync apply` removes it",
                    self.assignments_file
                )),
                Some(w) if !w.active => notes.push(format!(
                    "{} has it inactive: the next `skillsync apply` deactivates it",
                    at_line(w)
                )),
                Some(w) if w.level.get() < min => notes.push(format!(
                    "the HRIS gives level {} ({}): the next `skillsync apply` lowers it from {} under the queue's {min}",
                    w.level.get(),
                    at_line(w),
                    a.level.get()
                )),
                Some(_) => {}
            }
        }

        Check {
            target,
            held,
            wanted,
            reasons,
            notes,
        }
    }
}

/// Whether a journaled write changed this skill's entry (before and after differ, or either
/// side was not recorded).
fn changed(write: &WriteRecord, skill: &Definition) -> bool {
    let entry = |lists: Option<&skillsync_store::UserLists>| {
        lists.and_then(|l| l.skills.as_ref()).map(|skills| {
            skills
                .iter()
                .find(|h| h.definition_id == skill.id.as_str())
                .cloned()
        })
    };
    match (entry(write.before.user()), entry(write.after.user())) {
        (Some(before), Some(after)) => before != after,
        _ => true,
    }
}

fn clock(at: Timestamp) -> String {
    at.strftime("%H:%M:%S").to_string()
}

/// Up to three names near `given`: case-insensitive prefix or substring, or within a few edits.
fn near<'a>(given: &str, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let given = given.to_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .filter_map(|name| {
            let lower = name.to_lowercase();
            let d = edits(&given, &lower);
            let close = d <= 2.max(given.chars().count() / 3);
            if lower.contains(&given) || given.contains(&lower) || close {
                Some((d, name))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.dedup_by_key(|(_, n)| *n);
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Edit distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn did_you_mean(near: &[&str]) -> String {
    match near {
        [] => String::new(),
        names => format!(
            "did you mean {}?",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    }
}

/// Runs the command.
pub async fn run(args: &WhyArgs) -> anyhow::Result<ExitCode> {
    let common = &args.common;
    let session = match Session::open(common).await? {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let desired = &session.loaded.desired;
    let files = &desired.files;
    let agent = desired
        .agents
        .get(&EmployeeId(args.employee.clone()))
        .or_else(|| {
            desired
                .agents
                .values()
                .find(|a| a.user_id.as_str() == args.employee)
        });
    let Some(agent) = agent else {
        let near = near(
            &args.employee,
            desired
                .agents
                .values()
                .flat_map(|a| [a.employee_id.as_str(), a.user_id.as_str()]),
        );
        let mut problem = Problem::error(
            &files.agents,
            format!(
                "no agent `{}` (neither an employee id nor a user id)",
                args.employee
            ),
        );
        problem = problem.hint(if near.is_empty() {
            "why takes an employee_id or user_id listed in agents.csv".to_string()
        } else {
            did_you_mean(&near)
        });
        return Ok(report_problems(common, &[problem]));
    };
    if let Some(code) = &args.code
        && desired.catalog.kind_of(&Code(code.clone())).is_none()
    {
        let codes: BTreeSet<&str> = desired.catalog.kinds.keys().map(|c| c.as_str()).collect();
        let near = near(code, codes.into_iter());
        let problem = Problem::error(
            &files.catalog,
            format!("code `{code}` is not in the catalog"),
        )
        .hint(if near.is_empty() {
            "--code takes a code listed in catalog.csv".to_string()
        } else {
            did_you_mean(&near)
        });
        return Ok(report_problems(common, &[problem]));
    }

    let api = session.api.as_ref();
    let base = &session.config.tenant.api_base;
    // A dialect without queues (cxone) still answers --code.
    let (queues, has_queues) = match api.queues().await {
        Ok(queues) => (queues, true),
        Err(skillsync_cxone::Error::Unsupported { .. }) => (Vec::new(), false),
        Err(error) => {
            return Err(
                anyhow::Error::new(error).context(format!("cannot read the queues of {base}"))
            );
        }
    };
    if !has_queues && args.code.is_none() {
        eprintln!(
            "error: the {} dialect has no queues to explain; ask about one skill with `skillsync why {} --code CODE`",
            session.config.tenant.dialect.name(),
            args.employee
        );
        return Ok(crate::output::exit::error());
    }
    // Every definition (to name what the agent holds) and this one user, by one GET.
    let live = skillsync_engine::read_agents(
        api,
        &session.loaded.desired.catalog,
        std::slice::from_ref(&agent.user_id),
    )
    .await
    .with_context(|| format!("cannot read the tenant at {base}"))?;
    let definitions = live.definitions;
    let Some(user) = live.users.into_iter().next() else {
        anyhow::bail!(
            "agent {} (user {}) is in {} but the tenant at {base} has no such user: \
             correct its user_id, or create the user in CXone",
            agent.employee_id,
            agent.user_id,
            files.agents
        );
    };

    // The journal is context: opened only if it exists, never created. One that exists but
    // cannot be read is said on stderr: without it a write still settling goes unseen.
    let journal = match session.config.existing_journal().await {
        Ok(journal) => journal,
        Err(error) => {
            eprintln!("warning: {error:#}; whether a write is still settling is unknown");
            None
        }
    };
    let now = Timestamp::now();
    let last_write = match &journal {
        Some(journal) => last_skills_write(journal.as_ref(), agent).await,
        None => None,
    };
    let pending = last_write.as_ref().and_then(|w| {
        (w.status == WriteStatus::Applied)
            .then_some(w.settles_at)
            .flatten()
            .filter(|at| *at > now)
            .map(|settles_at| Pending {
                write: w.clone(),
                settles_at,
            })
    });

    let catalog_file = files.catalog.clone();
    let agents_file = files.agents.clone();
    let assignments_file = files.assignments.clone();
    let facts = Facts {
        agent,
        desired,
        assignments_file: &assignments_file,
        catalog_file: &catalog_file,
        agents_file: &agents_file,
        definitions: &definitions,
        user: &user,
        queues: &queues,
        pending,
        now,
    };

    let mode;
    let checks: Vec<Check> = if let Some(asked) = &args.queue {
        mode = Mode::Queue;
        let found = queues
            .iter()
            .find(|q| &q.id == asked || &q.name == asked)
            .or_else(|| {
                let mut same: Vec<&Queue> = queues
                    .iter()
                    .filter(|q| q.name.eq_ignore_ascii_case(asked))
                    .collect();
                (same.len() == 1).then(|| same.remove(0))
            });
        let Some(queue) = found else {
            let near = near(asked, queues.iter().map(|q| q.name.as_str()));
            let problem = Problem::error(
                &format!("{base}/routing/queues"),
                format!("no queue `{asked}` in the tenant (neither a name nor an id)"),
            )
            .hint(if near.is_empty() {
                format!("`skillsync why {}` lists every queue", agent.employee_id)
            } else {
                did_you_mean(&near)
            });
            return Ok(report_problems(common, &[problem]));
        };
        vec![facts.check(facts.queue_target(queue))]
    } else if let Some(code) = &args.code {
        mode = Mode::Code;
        let code = Code(code.clone());
        let catalog = &desired.catalog;
        let entry = catalog
            .entry(&code, &agent.locale)
            .or_else(|| catalog.entries.values().find(|e| e.code == code));
        let name = entry.map_or_else(|| code.to_string(), |e| e.name.clone());
        let skill = definitions
            .iter()
            .filter(|d| d.kind == Kind::Skill && d.name == name && d.locale == agent.locale)
            .min_by_key(|d| !d.active);
        let mut check = facts.check(Target {
            queue: None,
            code: Some(code.clone()),
            skill,
            name: name.clone(),
            locale: agent.locale.clone(),
            min_level: 1,
        });
        if catalog.entry(&code, &agent.locale).is_none() {
            let locales: Vec<String> = catalog
                .locales_of(&code)
                .iter()
                .map(ToString::to_string)
                .collect();
            check.reasons.insert(
                0,
                Reason {
                    reason: "noCatalogVariant",
                    message: format!(
                        "{catalog_file} has no {} variant of {code} (only {})",
                        agent.locale,
                        locales.join(", ")
                    ),
                    fix: format!(
                        "add a {} row for {code} to {catalog_file}, then `skillsync apply`",
                        agent.locale
                    ),
                },
            );
        }
        vec![check]
    } else {
        mode = Mode::AllQueues;
        let mut sorted: Vec<&Queue> = queues.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        sorted
            .into_iter()
            .map(|q| facts.check(facts.queue_target(q)))
            .collect()
    };

    let eligible = checks.iter().any(Check::eligible);
    let code = if eligible { 0 } else { 3 };
    match common.output {
        OutputFormat::Json => print_json(&document(
            &facts,
            &args.queue,
            &args.code,
            &checks,
            eligible,
            code,
            last_write.as_ref(),
        ))?,
        OutputFormat::Human => out!("{}", human(&facts, mode, &checks)),
    }
    Ok(if eligible { exit::ok() } else { not_eligible() })
}

/// The newest write skillsync journaled to the agent's skills, of any run and status.
async fn last_skills_write(journal: &dyn Journal, agent: &Agent) -> Option<WriteRecord> {
    match journal
        .last_write(agent.user_id.as_str(), WriteTarget::UserSkills)
        .await
    {
        Ok(write) => write,
        Err(error) => {
            eprintln!(
                "warning: cannot read the journal's last write to {}: {error:#}; whether it is still settling is unknown",
                agent.employee_id
            );
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Queue,
    Code,
    AllQueues,
}

fn what(check: &Check) -> String {
    let t = &check.target;
    match t.queue {
        Some(q) => format!(
            "queue {} (skill {} ({}), level {} or above)",
            q.name, t.name, t.locale, t.min_level
        ),
        None => format!(
            "{} (skill {} ({}), any level)",
            t.code.as_ref().map_or(t.name.as_str(), |c| c.as_str()),
            t.name,
            t.locale
        ),
    }
}

fn human(facts: &Facts, mode: Mode, checks: &[Check]) -> String {
    let agent = facts.agent;
    let who = format!(
        "{} (user {}, {})",
        agent.employee_id, agent.user_id, agent.locale
    );
    let mut out = String::new();
    if mode == Mode::AllQueues {
        let eligible = checks.iter().filter(|c| c.eligible()).count();
        out.push_str(&format!(
            "{who}: eligible for {eligible} of {} queue(s).\n",
            checks.len()
        ));
        let rows: Vec<[String; 4]> = checks
            .iter()
            .map(|c| {
                let t = &c.target;
                [
                    t.queue.map_or(String::new(), |q| q.name.clone()),
                    format!("{} ({})", t.name, t.locale),
                    t.min_level.to_string(),
                    match (c.eligible(), c.reasons.first()) {
                        (true, _) => format!(
                            "eligible (level {})",
                            c.held.as_ref().map_or(0, |a| a.level.get())
                        ),
                        (false, Some(r)) if c.reasons.len() > 1 => {
                            format!(
                                "not eligible: {} (+{} more)",
                                r.message,
                                c.reasons.len() - 1
                            )
                        }
                        (false, Some(r)) => format!("not eligible: {}", r.message),
                        (false, None) => "not eligible".to_string(),
                    },
                ]
            })
            .collect();
        let header = ["queue", "skill", "needs", "result"].map(String::from);
        let width = |i: usize| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let (w0, w1, w2) = (width(0), width(1), width(2));
        for row in [&header].into_iter().chain(&rows) {
            out.push_str(&format!(
                "  {:<w0$}  {:<w1$}  {:<w2$}  {}\n",
                row[0], row[1], row[2], row[3]
            ));
        }
        if eligible < checks.len() {
            out.push_str(&format!(
                "`skillsync why {} --queue NAME` names every reason with its fix.\n",
                agent.employee_id
            ));
        }
        return out;
    }
    for check in checks {
        if check.eligible() {
            let level = check.held.as_ref().map_or(0, |a| a.level.get());
            out.push_str(&format!(
                "{who} is eligible for {}: holds it at level {level}, active.\n",
                what(check)
            ));
            for note in &check.notes {
                out.push_str(&format!("  ! {note}\n"));
            }
        } else {
            out.push_str(&format!("{who} is not eligible for {}:\n", what(check)));
            for reason in &check.reasons {
                out.push_str(&format!(
                    "  ✗ {}\n    fix: {}\n",
                    reason.message, reason.fix
                ));
            }
        }
    }
    out
}

/// The `--output json` document; its schema is `docs/why-json.md`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WhyDocument<'a> {
    schema_version: u64,
    employee_id: &'a str,
    user_id: &'a str,
    locale: &'a str,
    asked: Asked<'a>,
    eligible: bool,
    exit_code: u8,
    checked_at: Timestamp,
    last_write: Option<LastWrite>,
    checks: Vec<CheckEntry<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Asked<'a> {
    queue: Option<&'a str>,
    code: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LastWrite {
    run: i64,
    at: Timestamp,
    status: &'static str,
    settles_at: Option<Timestamp>,
    settled: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckEntry<'a> {
    queue: Option<QueueEntry<'a>>,
    code: Option<&'a str>,
    skill: SkillEntry<'a>,
    min_level: u8,
    held: Option<Held>,
    hris: Option<Hris>,
    eligible: bool,
    reasons: &'a [Reason],
    notes: &'a [String],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QueueEntry<'a> {
    id: &'a str,
    name: &'a str,
    production: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SkillEntry<'a> {
    id: Option<&'a str>,
    name: &'a str,
    locale: &'a str,
    active: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Held {
    level: u8,
    active: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Hris {
    level: u8,
    active: bool,
    file: String,
    line: u64,
}

fn document<'a>(
    facts: &'a Facts,
    queue: &'a Option<String>,
    code: &'a Option<String>,
    checks: &'a [Check],
    eligible: bool,
    exit_code: u8,
    last_write: Option<&WriteRecord>,
) -> WhyDocument<'a> {
    WhyDocument {
        schema_version: SCHEMA_VERSION,
        employee_id: facts.agent.employee_id.as_str(),
        user_id: facts.agent.user_id.as_str(),
        locale: facts.agent.locale.as_str(),
        asked: Asked {
            queue: queue.as_deref(),
            code: code.as_deref(),
        },
        eligible,
        exit_code,
        checked_at: facts.now,
        last_write: last_write.map(|w| LastWrite {
            run: w.run.0,
            at: w.at,
            status: w.status.as_str(),
            settles_at: w.settles_at,
            settled: w.settles_at.is_none_or(|at| at <= facts.now),
        }),
        checks: checks
            .iter()
            .map(|c| {
                let t = &c.target;
                CheckEntry {
                    queue: t.queue.map(|q| QueueEntry {
                        id: &q.id,
                        name: &q.name,
                        production: q.production,
                    }),
                    code: t.code.as_ref().map(|c| c.as_str()),
                    skill: SkillEntry {
                        id: t.skill.map(|s| s.id.as_str()),
                        name: &t.name,
                        locale: t.locale.as_str(),
                        active: t.skill.map(|s| s.active),
                    },
                    min_level: t.min_level,
                    held: c.held.as_ref().map(|a| Held {
                        level: a.level.get(),
                        active: a.active,
                    }),
                    hris: c.wanted.as_ref().map(|w| Hris {
                        level: w.level.get(),
                        active: w.active,
                        file: facts.assignments_file.to_string(),
                        line: w.line,
                    }),
                    eligible: c.eligible(),
                    reasons: &c.reasons,
                    notes: &c.notes,
                }
            })
            .collect(),
    }
}

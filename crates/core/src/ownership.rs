//! Who manages a tenant definition. Listing a definition in `catalog.csv` makes skillsync its
//! manager, and a manager removes the assignments the HRIS does not want. A definition that
//! already exists in the tenant may be another integration's: claiming it by name alone would
//! strip that integration's assignments without a word. So, as Kubernetes' server-side apply
//! reports a conflict when a second manager claims a field, a plan that would remove or change
//! assignments of a definition skillsync neither created nor adopted is refused, naming them,
//! until the user adopts it explicitly (`--adopt CODE`). Rewriting the definition itself
//! (reactivating it, changing its description or routing profile) is a takeover too. Adding
//! assignments takes nothing from anyone and needs no adoption, but adopts nothing either:
//! only creating a definition or `--adopt` makes it skillsync's.

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::{Code, Desired};
use crate::domain::{DefinitionId, Kind, Locale};
use crate::plan::{AssignmentChange, DefinitionRef, Plan};
use crate::problem::Problem;

/// The definitions this run may take over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Adopt {
    /// None: a takeover is a conflict.
    #[default]
    Nothing,
    /// Every definition the catalog names (`--adopt all`).
    All,
    /// The definitions of these codes.
    Codes(BTreeSet<Code>),
}

impl Adopt {
    /// From the command line's `--adopt` values (`all`, or codes).
    pub fn from_args(values: &[String]) -> Adopt {
        if values.iter().any(|v| v == "all") {
            Adopt::All
        } else if values.is_empty() {
            Adopt::Nothing
        } else {
            Adopt::Codes(values.iter().map(|v| Code(v.clone())).collect())
        }
    }

    /// Whether the definitions of `code` may be taken over.
    pub fn covers(&self, code: &Code) -> bool {
        match self {
            Adopt::Nothing => false,
            Adopt::All => true,
            Adopt::Codes(codes) => codes.contains(code),
        }
    }
}

/// What the journal knows skillsync manages, and what this run may take over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Definitions skillsync created or adopted in earlier runs.
    pub managed: BTreeSet<DefinitionId>,
    /// What this run may adopt.
    pub adopt: Adopt,
}

/// One definition the plan would take over, and what it would take.
struct Takeover<'a> {
    kind: Kind,
    code: &'a Code,
    name: &'a str,
    locale: &'a Locale,
    /// Who holds each: the agent's employee id, or `user <id>` for a user no longer in the
    /// HRIS (`absent_agents = "strip"`), which has none.
    changes: Vec<(String, &'a AssignmentChange)>,
    /// The definition's own fields the plan rewrites (`active`, `description`, …).
    fields: &'a [&'static str],
}

/// How many users a message names before "and N more".
const NAMED: usize = 5;

/// Checks `plan` against `ownership`: `Err` lists the definitions it would take over without
/// an adoption (errors at their catalog lines); `Ok` lists the adoptions allowed this run
/// (warnings that say what they take), to be shown with the plan. Taking over is removing or
/// changing an assignment of the definition, or rewriting the definition itself (reactivating
/// it, changing its description or routing profile).
pub fn check_takeovers(
    plan: &Plan,
    desired: &Desired,
    ownership: &Ownership,
) -> Result<Vec<Problem>, Vec<Problem>> {
    let mut takeovers: BTreeMap<&DefinitionId, Takeover<'_>> = BTreeMap::new();
    for action in &plan.definitions {
        let Some(existing) = &action.existing else {
            continue;
        };
        if ownership.managed.contains(&existing.id) {
            continue;
        }
        takeovers.insert(
            &existing.id,
            Takeover {
                kind: action.kind,
                code: &action.code,
                name: &action.name,
                locale: &action.locale,
                changes: Vec::new(),
                fields: &action.fields,
            },
        );
    }
    for user in &plan.users {
        for change in user.changes() {
            let DefinitionRef::Existing(id) = &change.definition else {
                continue;
            };
            // An addition takes nothing from anyone.
            if change.is_add() || ownership.managed.contains(id) {
                continue;
            }
            takeovers
                .entry(id)
                .or_insert_with(|| Takeover {
                    kind: change.kind,
                    code: &change.code,
                    name: &change.name,
                    locale: &change.locale,
                    changes: Vec::new(),
                    fields: &[],
                })
                .changes
                .push((
                    if user.absent_from_hris {
                        format!("user {}", user.user_id)
                    } else {
                        user.employee_id.to_string()
                    },
                    change,
                ));
        }
    }
    let mut conflicts = Vec::new();
    let mut adoptions = Vec::new();
    for (id, takeover) in takeovers {
        let what = format!(
            "{} `{}` ({} {}, id {id})",
            takeover.kind.noun(),
            takeover.name,
            takeover.code,
            takeover.locale,
        );
        let takes = takeover.takes();
        let line = desired
            .catalog
            .entry(takeover.code, takeover.locale)
            .map(|e| e.line);
        let at = |problem: Problem| match line {
            Some(line) => problem.at_line(line).at_field("code", 1),
            None => problem,
        };
        if ownership.adopt.covers(takeover.code) {
            adoptions.push(at(Problem::warning(
                &desired.files.catalog,
                format!("adopting {what}, which skillsync did not create: this run {takes}"),
            )));
        } else {
            conflicts.push(at(Problem::error(
                &desired.files.catalog,
                format!(
                    "{what} exists in the tenant and skillsync neither created nor adopted it; taking it over {takes}"
                ),
            )
            .hint(format!(
                "if it is another integration's, remove `{}` from the catalog; to take it over, review `skillsync plan --adopt {}` (or `--adopt all` on a first run against an existing tenant), then apply with the same flag",
                takeover.code, takeover.code
            ))));
        }
    }
    if conflicts.is_empty() {
        Ok(adoptions)
    } else {
        Err(conflicts)
    }
}

impl Takeover<'_> {
    /// What taking it over does, for messages: "removes 3 and changes 1 assignment(s) that
    /// skillsync did not make (agents …)", "rewrites its active, description".
    fn takes(&self) -> String {
        let mut takes = Vec::new();
        if !self.fields.is_empty() {
            takes.push(format!("rewrites its {}", self.fields.join(", ")));
        }
        if !self.changes.is_empty() {
            let removed = self.changes.iter().filter(|(_, c)| c.is_remove()).count();
            let changed = self.changes.len() - removed;
            let mut named: Vec<String> = self
                .changes
                .iter()
                .take(NAMED)
                .map(|(e, _)| e.to_string())
                .collect();
            if self.changes.len() > NAMED {
                named.push(format!("and {} more", self.changes.len() - NAMED));
            }
            takes.push(format!(
                "removes {removed} and changes {changed} assignment(s) that skillsync did not make (agents {})",
                named.join(", ")
            ));
        }
        takes.join(" and ")
    }
}

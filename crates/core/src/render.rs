//! Rendering plans and problems for people (text) and programs (JSON).
//!
//! Everything here returns a `String` or a typed document to serialize: whether to colour, and where
//! to print, is the caller's business. Coloured and plain text differ only by ANSI escape
//! codes, so `NO_COLOR` never loses information. The JSON forms are a stable schema
//! (`docs/plan-json.md`): fields are only ever added within a schema version.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anstyle::AnsiColor;
use serde::Serialize;
use serde_json::Value;

use crate::desired::Code;
use crate::domain::{Kind, Locale};
use crate::plan::{
    AssignmentChange, DefinitionAction, DefinitionActionKind, DefinitionRef, Plan, Slot, UserPlan,
    Why, WriteMode,
};
use crate::problem::{Problem, Severity};

/// The version of the JSON documents [`PlanDocument`] and [`ProblemsDocument`].
pub const SCHEMA_VERSION: u64 = 1;

/// How text is rendered: the caller decides (terminal, `NO_COLOR`, `--color`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Emit ANSI colours and emphasis.
    pub color: bool,
}

impl Style {
    /// Plain text, no escape codes.
    pub const PLAIN: Style = Style { color: false };
    /// Coloured text.
    pub const COLOR: Style = Style { color: true };

    fn paint(self, role: Role, text: &str) -> String {
        if !self.color || text.is_empty() {
            return text.to_string();
        }
        let style = role.style();
        format!("{}{text}{}", style.render(), style.render_reset())
    }
}

/// What a piece of text means, and so how it is coloured.
#[derive(Debug, Clone, Copy)]
enum Role {
    Add,
    Change,
    Remove,
    Headline,
    Heading,
    Location,
    Error,
    Warning,
}

impl Role {
    fn style(self) -> anstyle::Style {
        let fg = |c: AnsiColor| anstyle::Style::new().fg_color(Some(c.into()));
        match self {
            Role::Add => fg(AnsiColor::Green),
            Role::Change => fg(AnsiColor::Yellow),
            Role::Remove => fg(AnsiColor::Red),
            Role::Headline | Role::Heading => anstyle::Style::new().bold(),
            Role::Location => anstyle::Style::new().dimmed(),
            Role::Error => fg(AnsiColor::Red).bold(),
            Role::Warning => fg(AnsiColor::Yellow).bold(),
        }
    }
}

/// `1234567` → `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|group| std::str::from_utf8(group).expect("ASCII digits"))
        .collect();
    groups.join(",")
}

/// `1 agent`, `2 agents`, `1,200 agents`.
fn count(n: usize, singular: &str, plural: &str) -> String {
    format!(
        "{} {}",
        thousands(n),
        if n == 1 { singular } else { plural }
    )
}

/// Changes per definition, for the "By definition" section and `byDefinition`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct DefinitionTally {
    kind: Kind,
    code: Code,
    name: String,
    locale: Locale,
    definition: DefinitionRef,
    added: usize,
    changed: usize,
    removed: usize,
}

/// One tally per definition any assignment change touches, sorted by kind, name, locale and
/// definition (duplicates of one name are separate definitions).
fn by_definition(plan: &Plan) -> Vec<DefinitionTally> {
    let mut tallies: BTreeMap<(Kind, &str, &Locale, &DefinitionRef), DefinitionTally> =
        BTreeMap::new();
    for change in plan.users.iter().flat_map(UserPlan::changes) {
        let key = (
            change.kind,
            change.name.as_str(),
            &change.locale,
            &change.definition,
        );
        let tally = tallies.entry(key).or_insert_with(|| DefinitionTally {
            kind: change.kind,
            code: change.code.clone(),
            name: change.name.clone(),
            locale: change.locale.clone(),
            definition: change.definition.clone(),
            added: 0,
            changed: 0,
            removed: 0,
        });
        if change.is_add() {
            tally.added += 1;
        } else if change.is_remove() {
            tally.removed += 1;
        } else {
            tally.changed += 1;
        }
    }
    tallies.into_values().collect()
}

/// The definition actions, sorted by kind, name and locale.
fn sorted_definitions(plan: &Plan) -> Vec<&DefinitionAction> {
    let mut actions: Vec<&DefinitionAction> = plan.definitions.iter().collect();
    actions.sort_by(|a, b| {
        (a.kind, &a.name, &a.locale, a.catalog_line).cmp(&(
            b.kind,
            &b.name,
            &b.locale,
            b.catalog_line,
        ))
    });
    actions
}

/// The first line of the human plan.
fn headline(plan: &Plan) -> String {
    let t = &plan.totals;
    if plan.is_empty() {
        return "No changes: the tenant matches the HRIS.".to_string();
    }
    let mut clauses = Vec::new();

    let mut definitions = Vec::new();
    for (n, verb) in [
        (t.definitions_to_create, "create"),
        (t.definitions_to_reactivate, "reactivate"),
        (t.definitions_to_update, "update"),
    ] {
        if n == 0 {
            continue;
        }
        if definitions.is_empty() {
            definitions.push(format!(
                "{} to {verb}",
                count(n, "definition", "definitions")
            ));
        } else {
            definitions.push(format!("{} to {verb}", thousands(n)));
        }
    }
    if !definitions.is_empty() {
        clauses.push(definitions.join(", "));
    }

    if t.users_changed == 0 {
        clauses.push("no agent changes".to_string());
    } else {
        let mut parts = Vec::new();
        for (n, singular, plural) in [
            (t.assignments_added, "added", "added"),
            (t.levels_changed, "level change", "level changes"),
            (t.activated, "activated", "activated"),
            (t.deactivated, "deactivated", "deactivated"),
            (t.assignments_removed, "removed", "removed"),
        ] {
            if n > 0 {
                parts.push(count(n, singular, plural));
            }
        }
        clauses.push(format!(
            "{} of {} {} ({})",
            thousands(t.users_changed),
            count(t.agents, "agent", "agents"),
            if t.users_changed == 1 {
                "changes"
            } else {
                "change"
            },
            parts.join(", ")
        ));
    }
    if t.absent_users > 0 {
        clauses.push(format!(
            "{} no longer in the HRIS {} {}",
            count(t.absent_users, "user", "users"),
            if t.absent_users == 1 { "loses" } else { "lose" },
            count(
                t.absent_assignments_removed,
                "owned assignment",
                "owned assignments"
            )
        ));
    }
    if t.users_unchanged > 0 {
        clauses.push(format!("{} unchanged", thousands(t.users_unchanged)));
    }
    if t.users_skipped > 0 {
        clauses.push(format!("{} skipped", thousands(t.users_skipped)));
    }
    format!("Plan: {}.", clauses.join("; "))
}

/// `skill Payment_Processing (de-de)`.
fn definition_label(kind: Kind, name: &str, locale: &Locale) -> String {
    format!("{kind} {name} ({locale})")
}

fn definition_line(action: &DefinitionAction, catalog_file: &str, style: Style) -> String {
    let label = definition_label(action.kind, &action.name, &action.locale);
    let (sigil, verb, role) = match action.action {
        DefinitionActionKind::Create => ("+", "create", Role::Add),
        DefinitionActionKind::Reactivate => ("~", "reactivate", Role::Change),
        DefinitionActionKind::Update => ("~", "update", Role::Change),
    };
    let fields: Vec<&str> = action
        .fields
        .iter()
        .copied()
        .filter(|f| *f != "active")
        .collect();
    let fields = if action.action == DefinitionActionKind::Create || fields.is_empty() {
        String::new()
    } else {
        format!(" ({})", fields.join(", "))
    };
    let location = format!("{catalog_file}:{}", action.catalog_line);
    format!(
        "  {} {label}{fields}  {}\n",
        style.paint(role, &format!("{sigil} {verb}")),
        style.paint(Role::Location, &location)
    )
}

fn why_text(change: &AssignmentChange) -> String {
    match change.why {
        Why::Desired => String::new(),
        Why::NotDesired => "  (not in the HRIS)".to_string(),
        Why::WrongLocale => "  (wrong locale)".to_string(),
        Why::Duplicate => match &change.definition {
            DefinitionRef::Existing(id) => format!("  (duplicate definition {id})"),
            DefinitionRef::New { .. } => "  (duplicate definition)".to_string(),
        },
    }
}

/// A level as the plan shows it: a tenant value no HRIS level maps to is shown as that value,
/// never as the level it is carried at.
fn level_text(slot: &Slot) -> String {
    match slot.tenant_value {
        Some(value) => format!("tenant value {value} (no HRIS level)"),
        None => format!("level {}", slot.level),
    }
}

fn assignment_line(change: &AssignmentChange, style: Style) -> String {
    let label = definition_label(change.kind, &change.name, &change.locale);
    let (sigil, role, detail) = match (change.before, change.after) {
        (None, Some(after)) => {
            let inactive = if after.active { "" } else { ", inactive" };
            ("+", Role::Add, format!("level {}{inactive}", after.level))
        }
        (Some(before), None) => {
            let inactive = if before.active { "" } else { ", inactive" };
            (
                "-",
                Role::Remove,
                format!("{}{inactive}", level_text(&before)),
            )
        }
        (Some(before), Some(after)) => {
            let mut parts = Vec::new();
            if before.level != after.level || before.tenant_value.is_some() {
                parts.push(format!("{} → {}", level_text(&before), after.level));
            }
            if change.activates() {
                parts.push("activated".to_string());
            }
            if change.deactivates() {
                parts.push("deactivated".to_string());
            }
            ("~", Role::Change, parts.join(", "))
        }
        // Not produced by the planner; rendered rather than hidden.
        (None, None) => ("~", Role::Change, "no change".to_string()),
    };
    format!(
        "    {} {label} {detail}{}\n",
        style.paint(role, sigil),
        why_text(change)
    )
}

fn user_section(user: &UserPlan, style: Style, out: &mut String) {
    let _ = writeln!(
        out,
        "  {} · user {} · {}",
        style.paint(Role::Heading, user.employee_id.as_str()),
        user.user_id,
        user.locale
    );
    // Skills before proficiencies; within a kind by name and locale, keeping the planner's
    // order (removal of a duplicate before the add that replaces it) for ties.
    let mut changes: Vec<&AssignmentChange> = user.changes().collect();
    changes.sort_by(|a, b| (a.kind, &a.name, &a.locale).cmp(&(b.kind, &b.name, &b.locale)));
    for change in changes {
        out.push_str(&assignment_line(change, style));
    }
    if user.left_without_skills {
        let _ = writeln!(
            out,
            "    {} left with no skills: drops out of every queue",
            style.paint(Role::Error, "!")
        );
    }
}

/// One tenant user not in `agents.csv` whose owned assignments go (`absent_agents = "strip"`).
fn absent_user_section(user: &UserPlan, style: Style, out: &mut String) {
    let _ = writeln!(
        out,
        "  {} · version {}",
        style.paint(Role::Heading, &format!("user {}", user.user_id)),
        user.version
    );
    let mut changes: Vec<&AssignmentChange> = user.changes().collect();
    changes.sort_by(|a, b| (a.kind, &a.name, &a.locale).cmp(&(b.kind, &b.name, &b.locale)));
    for change in changes {
        out.push_str(&assignment_line(change, style));
    }
    if user.left_without_skills {
        let _ = writeln!(
            out,
            "    {} left with no skills: drops out of every queue",
            style.paint(Role::Error, "!")
        );
    }
}

fn tally_line(tally: &DefinitionTally, duplicate_name: bool, style: Style) -> String {
    let mut label = definition_label(tally.kind, &tally.name, &tally.locale);
    if duplicate_name {
        match &tally.definition {
            DefinitionRef::Existing(id) => {
                let _ = write!(label, " [{id}]");
            }
            DefinitionRef::New { .. } => label.push_str(" [new]"),
        }
    }
    let mut parts = Vec::new();
    if tally.added > 0 {
        parts.push(style.paint(Role::Add, &format!("+{} added", thousands(tally.added))));
    }
    if tally.changed > 0 {
        parts.push(style.paint(
            Role::Change,
            &format!("~{} changed", thousands(tally.changed)),
        ));
    }
    if tally.removed > 0 {
        parts.push(style.paint(
            Role::Remove,
            &format!("-{} removed", thousands(tally.removed)),
        ));
    }
    format!("  {label}: {}\n", parts.join(", "))
}

/// `0.4%`, or `<0.1%` for a share too small to show but not nothing.
fn percent(part: usize, whole: usize) -> String {
    if whole == 0 || part == 0 {
        return "0.0%".to_string();
    }
    let share = part as f64 * 100.0 / whole as f64;
    if share < 0.05 {
        "<0.1%".to_string()
    } else {
        format!("{share:.1}%")
    }
}

fn safety_lines(plan: &Plan, style: Style, out: &mut String) {
    let t = &plan.totals;
    // Removals from users no longer in the HRIS are removals all the same: the guard counts them.
    let removed = t.assignments_removed + t.absent_assignments_removed;
    let removals = count(removed, "removal", "removals");
    let removals = if removed > 0 {
        style.paint(Role::Remove, &removals)
    } else {
        removals
    };
    let left = count(t.users_left_without_skills, "agent", "agents");
    let left = if t.users_left_without_skills > 0 {
        style.paint(Role::Error, &left)
    } else {
        left
    };
    let _ = writeln!(
        out,
        "{} {removals} ({} of {}); {left} left with no skills",
        style.paint(Role::Heading, "Safety:"),
        percent(removed, t.owned_assignments_before),
        count(
            t.owned_assignments_before,
            "owned assignment",
            "owned assignments"
        ),
    );

    let definitions =
        t.definitions_to_create + t.definitions_to_reactivate + t.definitions_to_update;
    let users_written = t.users_changed + t.absent_users;
    let users = if users_written == 0 {
        "no user writes".to_string()
    } else {
        let who = count(users_written, "user", "users");
        match plan.write_mode {
            WriteMode::Bulk => format!(
                "{who} by bulk in {} (skills first, then proficiencies)",
                count(t.user_writes, "request", "requests")
            ),
            WriteMode::Single => format!(
                "{who} by single merge updates ({}, each with If-Match)",
                count(t.user_writes, "request", "requests")
            ),
        }
    };
    let writes = if definitions == 0 {
        users
    } else {
        format!(
            "{} first, then {users}",
            count(definitions, "definition", "definitions")
        )
    };
    let _ = writeln!(out, "{} {writes}", style.paint(Role::Heading, "Writes:"));
}

/// A problem as its `Display` shows it, with the severity coloured and the location dimmed.
fn problem_text(problem: &Problem, style: Style) -> String {
    let mut location = problem.file.clone();
    if let Some(line) = problem.line {
        let _ = write!(location, ":{line}");
        if let Some(column) = problem.column {
            let _ = write!(location, ":{column}");
        }
    }
    let severity = match problem.severity {
        Severity::Error => style.paint(Role::Error, "error"),
        Severity::Warning => style.paint(Role::Warning, "warning"),
    };
    let mut out = format!(
        "{}: {severity}: {}",
        style.paint(Role::Location, &location),
        problem.message
    );
    if let Some(field) = &problem.field {
        let _ = write!(out, " (field `{field}`)");
    }
    if let Some(hint) = &problem.hint {
        let _ = write!(out, "\n  hint: {hint}");
    }
    out
}

/// The plan as text, in the manner of `terraform plan`: a headline, the definition actions,
/// the changes by agent and by definition, the safety and write summary, then warnings.
/// Ends with a newline.
pub fn plan_human(plan: &Plan, style: Style) -> String {
    plan_human_with(plan, style, Detail::Full)
}

/// How much of the plan [`plan_human_with`] renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Every section.
    Full,
    /// The headline, the no-change count, and the safety and write lines: what `--summary`
    /// keeps, without rendering a line per definition and per agent first.
    Summary,
}

/// [`plan_human`], or only its summary sections.
pub fn plan_human_with(plan: &Plan, style: Style, detail: Detail) -> String {
    let t = &plan.totals;
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.paint(Role::Headline, &headline(plan)));

    if plan.is_empty() {
        let mut checked = format!(
            "{} in the HRIS: {} unchanged",
            count(t.agents, "agent", "agents"),
            thousands(t.users_unchanged)
        );
        if t.users_skipped > 0 {
            let _ = write!(
                checked,
                ", {} skipped (not in the tenant)",
                thousands(t.users_skipped)
            );
        }
        let _ = writeln!(out, "{checked}.");
    }

    if detail == Detail::Summary {
        if !plan.is_empty() {
            out.push('\n');
            safety_lines(plan, style, &mut out);
        }
        return out;
    }

    if !plan.definitions.is_empty() {
        let _ = writeln!(out, "\n{}", style.paint(Role::Heading, "Definitions"));
        for action in sorted_definitions(plan) {
            out.push_str(&definition_line(action, &plan.sources.catalog, style));
        }
    }

    let (absent, agents): (Vec<&UserPlan>, Vec<&UserPlan>) =
        plan.users.iter().partition(|u| u.absent_from_hris);
    if !agents.is_empty() {
        let _ = writeln!(out, "\n{}", style.paint(Role::Heading, "By agent"));
        for user in agents {
            user_section(user, style, &mut out);
        }
    }
    if !absent.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            style.paint(
                Role::Heading,
                &format!(
                    "Agents no longer in the HRIS: {}, {} removed ([sync] absent_agents = \"strip\")",
                    count(t.absent_users, "user", "users"),
                    count(
                        t.absent_assignments_removed,
                        "owned assignment",
                        "owned assignments"
                    )
                )
            )
        );
        for user in absent {
            absent_user_section(user, style, &mut out);
        }
    }
    if !plan.users.is_empty() {
        let tallies = by_definition(plan);
        let _ = writeln!(out, "\n{}", style.paint(Role::Heading, "By definition"));
        for (i, tally) in tallies.iter().enumerate() {
            let same = |other: &DefinitionTally| {
                other.kind == tally.kind && other.name == tally.name && other.locale == tally.locale
            };
            let duplicate_name =
                (i > 0 && same(&tallies[i - 1])) || tallies.get(i + 1).is_some_and(same);
            out.push_str(&tally_line(tally, duplicate_name, style));
        }
    }

    if !plan.is_empty() {
        out.push('\n');
        safety_lines(plan, style, &mut out);
    }

    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\n{}", style.paint(Role::Heading, "Warnings"));
        for warning in &plan.warnings {
            for line in problem_text(warning, style).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}

/// Whether applying the plan changes anything: `status` of the plan document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PlanStatus {
    /// Applying would change nothing.
    NoChanges,
    /// Applying would change something.
    Changes,
}

/// The plan as one JSON document (`plan --output json`), whose schema is `docs/plan-json.md`:
/// `schemaVersion` and `status`, then the plan's own fields and `byDefinition`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDocument<'a> {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u64,
    /// Whether applying changes anything.
    pub status: PlanStatus,
    /// Counts for the summary and the guards.
    pub totals: &'a crate::plan::Totals,
    /// Bulk or single.
    pub write_mode: WriteMode,
    /// Definition actions, done first.
    pub definitions: &'a [DefinitionAction],
    /// Agents whose users change.
    pub users: Vec<&'a UserPlan>,
    /// Tenant users not in `agents.csv` whose owned assignments are removed
    /// (`absent_agents = "strip"`), sorted by user id.
    pub absent_agents: Vec<AbsentUserDocument<'a>>,
    /// Changes per definition.
    by_definition: Vec<DefinitionTally>,
    /// Problems worth reading that do not block the run.
    pub warnings: &'a [Problem],
    /// The HRIS files the plan was made from.
    pub sources: &'a crate::desired::SourceFiles,
}

impl<'a> PlanDocument<'a> {
    /// The document of `plan`.
    pub fn new(plan: &'a Plan) -> Self {
        PlanDocument {
            schema_version: SCHEMA_VERSION,
            status: if plan.is_empty() {
                PlanStatus::NoChanges
            } else {
                PlanStatus::Changes
            },
            totals: &plan.totals,
            write_mode: plan.write_mode,
            definitions: &plan.definitions,
            users: plan.users.iter().filter(|u| !u.absent_from_hris).collect(),
            absent_agents: plan
                .users
                .iter()
                .filter(|u| u.absent_from_hris)
                .map(AbsentUserDocument::new)
                .collect(),
            by_definition: by_definition(plan),
            warnings: &plan.warnings,
            sources: &plan.sources,
        }
    }
}

/// A tenant user not in `agents.csv` in the plan document: a user plan without the agent's
/// fields, which such a user does not have.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AbsentUserDocument<'a> {
    /// Tenant id.
    pub user_id: &'a crate::domain::UserId,
    /// The version the plan was computed from; the write carries it.
    pub version: crate::domain::Version,
    /// Skill list change, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skills: Option<&'a crate::plan::ListChange>,
    /// Proficiency list change, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proficiencies: Option<&'a crate::plan::ListChange>,
    /// The user had skills and will have none.
    pub left_without_skills: bool,
}

impl<'a> AbsentUserDocument<'a> {
    fn new(user: &'a UserPlan) -> Self {
        AbsentUserDocument {
            user_id: &user.user_id,
            version: user.version,
            skills: user.skills.as_ref(),
            proficiencies: user.proficiencies.as_ref(),
            left_without_skills: user.left_without_skills,
        }
    }
}

/// [`PlanDocument`] as a JSON value, for callers that embed it in another document.
pub fn plan_json(plan: &Plan) -> Value {
    serde_json::to_value(PlanDocument::new(plan)).expect("a plan document serializes")
}

fn severity_counts(problems: &[Problem]) -> (usize, usize) {
    let errors = problems.iter().filter(|p| p.is_error()).count();
    (errors, problems.len() - errors)
}

/// Problems as text, in the order given: one per problem as its `Display` shows it
/// (`file:line:col: error: message (field `x`)`, then an indented `hint:` line), then a count
/// line such as `2 errors, 1 warning`. Ends with a newline.
pub fn problems_human(problems: &[Problem], style: Style) -> String {
    let mut out = String::new();
    for problem in problems {
        let _ = writeln!(out, "{}", problem_text(problem, style));
    }
    let (errors, warnings) = severity_counts(problems);
    let errors_text = count(errors, "error", "errors");
    let errors_text = if errors > 0 {
        style.paint(Role::Error, &errors_text)
    } else {
        errors_text
    };
    let warnings_text = count(warnings, "warning", "warnings");
    let warnings_text = if warnings > 0 {
        style.paint(Role::Warning, &warnings_text)
    } else {
        warnings_text
    };
    let _ = writeln!(out, "{errors_text}, {warnings_text}");
    out
}

/// Whether the inputs can be used: `status` of the problems document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Validity {
    /// No problem is an error.
    Valid,
    /// Some problem is an error.
    Invalid,
}

/// What valid HRIS files hold: `counts` of the problems document `validate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HrisCounts {
    /// Rows of `catalog.csv`: one per (code, locale).
    pub catalog_variants: usize,
    /// Agents in `agents.csv`.
    pub agents: usize,
    /// Assignments in `assignments.csv`.
    pub assignments: usize,
}

/// Problems as one JSON document (schema in `docs/plan-json.md`):
/// `{"schemaVersion":1,"status":"invalid"|"valid","errors":n,"warnings":n,"problems":[…]}`,
/// and `counts` from `validate` when the files are valid.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProblemsDocument<'a> {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u64,
    /// `invalid` when any problem is an error.
    pub status: Validity,
    /// Problems with severity error.
    pub errors: usize,
    /// Problems with severity warning.
    pub warnings: usize,
    /// Every problem, in the order given.
    pub problems: &'a [Problem],
    /// What the valid files hold (`validate` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<HrisCounts>,
}

impl<'a> ProblemsDocument<'a> {
    /// The document of `problems`, without counts.
    pub fn new(problems: &'a [Problem]) -> Self {
        let (errors, warnings) = severity_counts(problems);
        ProblemsDocument {
            schema_version: SCHEMA_VERSION,
            status: if errors > 0 {
                Validity::Invalid
            } else {
                Validity::Valid
            },
            errors,
            warnings,
            problems,
            counts: None,
        }
    }
}

/// [`ProblemsDocument`] as a JSON value.
pub fn problems_json(problems: &[Problem]) -> Value {
    serde_json::to_value(ProblemsDocument::new(problems)).expect("problems serialize")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::json;

    use super::*;
    use crate::desired::{Agent, Catalog, CatalogEntry, Desired, EmployeeId, Wanted};
    use crate::domain::{
        Assignment, Definition, DefinitionId, Level, UserAssignments, UserId, Version,
    };
    use crate::plan::{Live, PlanOptions, Totals, plan};

    fn locale(tag: &str) -> Locale {
        Locale::parse(tag).unwrap()
    }

    fn level(n: i64) -> Level {
        Level::new(n).unwrap()
    }

    /// Strips ANSI escape sequences (`ESC [ … final-byte`).
    fn strip_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn entry(code: &str, kind: Kind, tag: &str, name: &str, line: u64) -> CatalogEntry {
        CatalogEntry {
            code: Code::from(code),
            kind,
            locale: locale(tag),
            name: name.to_string(),
            description: format!("{name} work"),
            routing_profile_id: "rp-1".to_string(),
            line,
        }
    }

    fn definition(id: &str, kind: Kind, name: &str, tag: &str, active: bool) -> Definition {
        Definition {
            id: DefinitionId::from(id),
            kind,
            name: name.to_string(),
            locale: locale(tag),
            active,
            description: format!("{name} work"),
            routing_profile_id: "rp-1".to_string(),
            version: Version(1),
        }
    }

    fn held(id: &str, n: i64, active: bool) -> Assignment {
        Assignment {
            definition: DefinitionId::from(id),
            level: level(n),
            active,
        }
    }

    fn wanted(n: i64, active: bool) -> Wanted {
        Wanted {
            level: level(n),
            active,
            line: 2,
        }
    }

    /// A small tenant and HRIS exercising every line shape:
    /// - Payments (skill) in de-de and en-us; the de-de variant does not exist yet; the en-us
    ///   one exists twice (d-pay-en and its duplicate d-pay-en-2).
    /// - Billing (skill) en-us exists; Billing de-de exists but is inactive.
    /// - Quality (proficiency) en-us exists with another description (update).
    /// - E0001 (de-de) holds Payments en-us (wrong locale) and wants Payments de-de.
    /// - E0002 (en-us) holds Billing 3 inactive and wants 7 active; holds the duplicate of
    ///   Payments en-us and wants Payments en-us; wants Quality 4 inactive.
    /// - E0003 (en-us) holds Billing and wants nothing: left with no skills.
    /// - E0004 (en-us) already matches. E0005's user does not exist (skipped).
    fn fixture() -> (Desired, Live) {
        let mut catalog = Catalog::default();
        catalog.insert(entry("PAY", Kind::Skill, "de-de", "Payments", 2));
        catalog.insert(entry("PAY", Kind::Skill, "en-us", "Payments", 3));
        catalog.insert(entry("BIL", Kind::Skill, "en-us", "Billing", 4));
        catalog.insert(entry("BIL", Kind::Skill, "de-de", "Billing", 5));
        let mut quality = entry("QUA", Kind::Proficiency, "en-us", "Quality", 6);
        quality.description = "new text".to_string();
        catalog.insert(quality);

        let mut agents = BTreeMap::new();
        for (e, u, tag) in [
            ("E0001", "u-1", "de-de"),
            ("E0002", "u-2", "en-us"),
            ("E0003", "u-3", "en-us"),
            ("E0004", "u-4", "en-us"),
            ("E0005", "u-5", "en-us"),
        ] {
            agents.insert(
                EmployeeId::from(e),
                Agent {
                    employee_id: EmployeeId::from(e),
                    user_id: UserId::from(u),
                    locale: locale(tag),
                    line: 2,
                },
            );
        }
        let mut assignments = BTreeMap::new();
        assignments.insert(
            EmployeeId::from("E0001"),
            BTreeMap::from([(Code::from("PAY"), wanted(5, true))]),
        );
        assignments.insert(
            EmployeeId::from("E0002"),
            BTreeMap::from([
                (Code::from("BIL"), wanted(7, true)),
                (Code::from("PAY"), wanted(2, true)),
                (Code::from("QUA"), wanted(4, false)),
            ]),
        );
        assignments.insert(
            EmployeeId::from("E0004"),
            BTreeMap::from([(Code::from("BIL"), wanted(1, true))]),
        );
        let desired = Desired {
            files: Default::default(),
            catalog,
            agents,
            assignments,
            retired: Vec::new(),
        };

        let user = |id: &str, skills: Vec<Assignment>| UserAssignments {
            user_id: UserId::from(id),
            skills,
            proficiencies: Some(Vec::new()),
            version: Version(3),
            modified_at: None,
            unmapped: Default::default(),
        };
        let live = Live {
            definitions: vec![
                definition("d-pay-en", Kind::Skill, "Payments", "en-us", true),
                definition("d-pay-en-2", Kind::Skill, "Payments", "en-us", true),
                definition("d-bil-en", Kind::Skill, "Billing", "en-us", true),
                definition("d-bil-de", Kind::Skill, "Billing", "de-de", false),
                definition("d-qua-en", Kind::Proficiency, "Quality", "en-us", true),
                definition("d-other", Kind::Skill, "Someone_Elses", "en-us", true),
            ],
            users: vec![
                user(
                    "u-1",
                    vec![held("d-pay-en", 4, true), held("d-other", 9, true)],
                ),
                user(
                    "u-2",
                    vec![held("d-bil-en", 3, false), held("d-pay-en-2", 2, true)],
                ),
                user("u-3", vec![held("d-bil-en", 6, true)]),
                user("u-4", vec![held("d-bil-en", 1, true)]),
            ],
            profile_ids: BTreeSet::from(["rp-1".to_string()]),
            sees_proficiencies: true,
            without_profiles: false,
        };
        (desired, live)
    }

    fn fixture_plan() -> Plan {
        let (desired, live) = fixture();
        plan(&desired, &live, &PlanOptions::default()).expect("the fixture plans")
    }

    fn empty_plan() -> Plan {
        Plan {
            sources: Default::default(),
            resolution: Default::default(),
            definitions: Vec::new(),
            users: Vec::new(),
            write_mode: WriteMode::Single,
            totals: Totals {
                agents: 1_200,
                users_unchanged: 1_187,
                users_skipped: 13,
                owned_assignments_before: 2_400,
                ..Totals::default()
            },
            warnings: Vec::new(),
        }
    }

    /// `--summary` renders only the sections it shows: the same lines as the full text's,
    /// in the same order, with nothing of them missing.
    #[test]
    fn the_summary_is_the_full_texts_headline_and_safety_lines() {
        for plan in [fixture_plan(), empty_plan()] {
            let full = plan_human_with(&plan, Style::PLAIN, Detail::Full);
            let summary = plan_human_with(&plan, Style::PLAIN, Detail::Summary);
            let mut rest = full.lines();
            for line in summary.lines().filter(|l| !l.is_empty()) {
                assert!(
                    rest.any(|l| l == line),
                    "{line:?} is not in the full text, in order:\n{full}"
                );
            }
            for line in full.lines().filter(|l| {
                [
                    "Plan:",
                    "No changes",
                    "agents in the HRIS",
                    "Safety:",
                    "Writes:",
                ]
                .iter()
                .any(|k| l.contains(k))
            }) {
                assert!(
                    summary.lines().any(|l| l == line),
                    "{line:?} missing:\n{summary}"
                );
            }
        }
        assert!(
            plan_human(&fixture_plan(), Style::PLAIN).lines().count()
                > plan_human_with(&fixture_plan(), Style::PLAIN, Detail::Summary)
                    .lines()
                    .count()
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn an_empty_plan_says_no_changes() {
        let text = plan_human(&empty_plan(), Style::PLAIN);
        assert_eq!(
            text,
            "No changes: the tenant matches the HRIS.\n\
             1,200 agents in the HRIS: 1,187 unchanged, 13 skipped (not in the tenant).\n"
        );
    }

    #[test]
    fn the_headline_counts_with_separators_and_omits_zero_parts() {
        let mut plan = empty_plan();
        plan.users = fixture_plan().users; // non-empty; the headline reads only totals
        plan.totals = Totals {
            definitions_to_create: 2,
            definitions_to_reactivate: 1,
            agents: 1_200,
            users_changed: 37,
            users_unchanged: 1_150,
            users_skipped: 13,
            assignments_added: 12,
            levels_changed: 20,
            activated: 3,
            deactivated: 1,
            assignments_removed: 5,
            ..Totals::default()
        };
        assert_eq!(
            headline(&plan),
            "Plan: 2 definitions to create, 1 to reactivate; 37 of 1,200 agents change \
             (12 added, 20 level changes, 3 activated, 1 deactivated, 5 removed); \
             1,150 unchanged; 13 skipped."
        );

        plan.totals = Totals {
            definitions_to_update: 1,
            agents: 1,
            users_changed: 1,
            levels_changed: 1,
            ..Totals::default()
        };
        assert_eq!(
            headline(&plan),
            "Plan: 1 definition to update; 1 of 1 agent changes (1 level change)."
        );

        plan.users.clear();
        plan.definitions = fixture_plan().definitions;
        plan.totals = Totals {
            definitions_to_reactivate: 3,
            agents: 4,
            users_unchanged: 4,
            ..Totals::default()
        };
        assert_eq!(
            headline(&plan),
            "Plan: 3 definitions to reactivate; no agent changes; 4 unchanged."
        );
    }

    #[test]
    fn the_fixture_plan_headline() {
        let plan = fixture_plan();
        let text = plan_human(&plan, Style::PLAIN);
        assert_eq!(
            text.lines().next().unwrap(),
            "Plan: 1 definition to create, 1 to reactivate, 1 to update; 3 of 5 agents change \
             (3 added, 1 level change, 1 activated, 3 removed); 1 unchanged; 1 skipped."
        );
    }

    #[test]
    fn definition_lines_sorted_by_kind_name_locale_with_catalog_line() {
        let text = plan_human(&fixture_plan(), Style::PLAIN);
        let section: Vec<&str> = text
            .split("\nDefinitions\n")
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(
            section,
            [
                "  ~ reactivate skill Billing (de-de)  catalog.csv:5",
                "  + create skill Payments (de-de)  catalog.csv:2",
                "  ~ update proficiency Quality (en-us) (description)  catalog.csv:6",
            ]
        );
    }

    #[test]
    fn agent_lines_show_every_change_shape() {
        let text = plan_human(&fixture_plan(), Style::PLAIN);
        let section = text
            .split("\nBy agent\n")
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap();
        assert_eq!(
            section,
            "  E0001 · user u-1 · de-de\n\
             \x20   + skill Payments (de-de) level 5\n\
             \x20   - skill Payments (en-us) level 4  (wrong locale)\n\
             \x20 E0002 · user u-2 · en-us\n\
             \x20   ~ skill Billing (en-us) level 3 → 7, activated\n\
             \x20   - skill Payments (en-us) level 2  (duplicate definition d-pay-en-2)\n\
             \x20   + skill Payments (en-us) level 2\n\
             \x20   + proficiency Quality (en-us) level 4, inactive\n\
             \x20 E0003 · user u-3 · en-us\n\
             \x20   - skill Billing (en-us) level 6  (not in the HRIS)\n\
             \x20   ! left with no skills: drops out of every queue"
        );
    }

    #[test]
    fn a_level_only_and_a_deactivation_change() {
        let slot = |n, active| {
            Some(Slot {
                level: level(n),
                active,
                tenant_value: None,
            })
        };
        let change = AssignmentChange {
            kind: Kind::Skill,
            code: Code::from("X"),
            name: "X".to_string(),
            locale: locale("de-de"),
            definition: DefinitionRef::Existing(DefinitionId::from("d-x")),
            before: slot(3, true),
            after: slot(7, true),
            why: Why::Desired,
        };
        assert_eq!(
            assignment_line(&change, Style::PLAIN),
            "    ~ skill X (de-de) level 3 → 7\n"
        );
        let change = AssignmentChange {
            before: slot(3, true),
            after: slot(3, false),
            ..change
        };
        assert_eq!(
            assignment_line(&change, Style::PLAIN),
            "    ~ skill X (de-de) deactivated\n"
        );
    }

    #[test]
    fn by_definition_lines_count_per_definition() {
        let text = plan_human(&fixture_plan(), Style::PLAIN);
        let section: Vec<&str> = text
            .split("\nBy definition\n")
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(
            section,
            [
                "  skill Billing (en-us): ~1 changed, -1 removed",
                "  skill Payments (de-de): +1 added",
                "  skill Payments (en-us) [d-pay-en]: +1 added, -1 removed",
                "  skill Payments (en-us) [d-pay-en-2]: -1 removed",
                "  proficiency Quality (en-us): +1 added",
            ]
        );
    }

    #[test]
    fn safety_and_writes_lines() {
        let plan = fixture_plan();
        let text = plan_human(&plan, Style::PLAIN);
        // Owned before: u-1 1, u-2 2, u-3 1, u-4 1 = 5; 3 removed.
        assert_eq!(plan.totals.owned_assignments_before, 5);
        assert!(
            text.contains(
                "\nSafety: 3 removals (60.0% of 5 owned assignments); 1 agent left with no skills\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nWrites: 3 definitions first, then 3 users by single merge updates \
                 (3 requests, each with If-Match)\n"
            ),
            "{text}"
        );

        let mut bulk = plan.clone();
        bulk.write_mode = WriteMode::Bulk;
        bulk.totals.users_changed = 37;
        bulk.totals.user_writes = 1;
        bulk.totals.owned_assignments_before = 1_203;
        bulk.totals.assignments_removed = 5;
        bulk.totals.users_left_without_skills = 0;
        bulk.definitions.clear();
        bulk.totals.definitions_to_create = 0;
        bulk.totals.definitions_to_reactivate = 0;
        bulk.totals.definitions_to_update = 0;
        let text = plan_human(&bulk, Style::PLAIN);
        assert!(
            text.contains(
                "\nSafety: 5 removals (0.4% of 1,203 owned assignments); 0 agents left with no skills\n\
                 Writes: 37 users by bulk in 1 request (skills first, then proficiencies)\n"
            ),
            "{text}"
        );
        assert_eq!(percent(1, 100_000), "<0.1%");
        assert_eq!(percent(0, 0), "0.0%");
    }

    #[test]
    fn warnings_come_last_as_problems_display() {
        let plan = fixture_plan();
        let text = plan_human(&plan, Style::PLAIN);
        let warnings = text
            .split("\nWarnings\n")
            .nth(1)
            .expect("a warnings section");
        let mut expected = String::new();
        for w in &plan.warnings {
            for line in w.to_string().lines() {
                expected.push_str(&format!("  {line}\n"));
            }
        }
        assert_eq!(warnings, expected);
        assert!(warnings.contains("agents.csv:2:2: warning: user u-5 of employee E0005"));
        assert!(warnings.contains("tenant: warning: skill Payments (en-us) exists 2 times"));
    }

    #[test]
    fn colour_only_adds_escape_codes() {
        for plan in [fixture_plan(), empty_plan()] {
            let plain = plan_human(&plan, Style::PLAIN);
            let coloured = plan_human(&plan, Style::COLOR);
            assert!(!plain.contains('\u{1b}'));
            assert_eq!(strip_ansi(&coloured), plain);
        }
        let coloured = plan_human(&fixture_plan(), Style::COLOR);
        assert!(
            coloured.contains("\u{1b}[32m+\u{1b}[0m skill Payments (de-de)"),
            "{coloured}"
        );
        assert!(
            coloured.contains("\u{1b}[31m-\u{1b}[0m skill Billing"),
            "{coloured}"
        );
        assert!(
            coloured.contains("\u{1b}[33m~\u{1b}[0m skill Billing"),
            "{coloured}"
        );
        assert!(coloured.starts_with("\u{1b}[1mPlan:"), "{coloured}");
        assert!(
            coloured.contains("\u{1b}[2mcatalog.csv:2\u{1b}[0m"),
            "{coloured}"
        );

        let problems = sample_problems();
        let plain = problems_human(&problems, Style::PLAIN);
        let coloured = problems_human(&problems, Style::COLOR);
        assert_ne!(plain, coloured);
        assert_eq!(strip_ansi(&coloured), plain);
    }

    #[test]
    fn plan_json_has_schema_version_status_and_the_plans_totals() {
        let plan = fixture_plan();
        let value = plan_json(&plan);
        assert_eq!(value["schemaVersion"], 1);
        assert_eq!(value["status"], "changes");
        assert_eq!(value["totals"], serde_json::to_value(plan.totals).unwrap());
        assert_eq!(value["totals"]["usersChanged"], 3);
        assert_eq!(value["writeMode"], "single");
        assert_eq!(value["users"].as_array().unwrap().len(), 3);
        assert_eq!(value["definitions"].as_array().unwrap().len(), 3);
        assert_eq!(value["warnings"].as_array().unwrap().len(), 2);
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "schemaVersion",
                "status",
                "totals",
                "writeMode",
                "definitions",
                "users",
                "absentAgents",
                "byDefinition",
                "warnings",
                "sources"
            ]
        );
        // The document is typed, so a field the plan gains must be added to it by hand.
        let serialized = serde_json::to_value(&plan).unwrap();
        for (key, field) in serialized.as_object().unwrap() {
            assert_eq!(&value[key], field, "the plan document carries `{key}`");
        }
        let by_definition = value["byDefinition"].as_array().unwrap();
        assert_eq!(by_definition.len(), 5);
        assert_eq!(
            by_definition[2],
            json!({
                "kind": "skill",
                "code": "PAY",
                "name": "Payments",
                "locale": "en-us",
                "definition": {"existing": "d-pay-en"},
                "added": 1,
                "changed": 0,
                "removed": 1,
            })
        );
        assert_eq!(
            by_definition[1]["definition"],
            json!({"new": {"code": "PAY", "locale": "de-de"}})
        );

        let empty = plan_json(&empty_plan());
        assert_eq!(empty["schemaVersion"], 1);
        assert_eq!(empty["status"], "noChanges");
        assert_eq!(empty["byDefinition"], json!([]));
        assert_eq!(empty["totals"]["agents"], 1_200);
    }

    fn sample_problems() -> Vec<Problem> {
        vec![
            Problem::error("hris/agents.csv", "locale `de-DE` must be lowercase")
                .at_line(12)
                .at_field("locale", 3)
                .hint("write `de-de`"),
            Problem::error("hris/assignments.csv", "level 11 is outside 1–10")
                .at_line(4)
                .at_field("level", 3),
            Problem::warning("tenant", "skill X (en-us) exists 2 times"),
        ]
    }

    #[test]
    fn problems_render_with_location_hint_and_a_count_line() {
        let text = problems_human(&sample_problems(), Style::PLAIN);
        assert_eq!(
            text,
            "hris/agents.csv:12:3: error: locale `de-DE` must be lowercase (field `locale`)\n\
             \x20 hint: write `de-de`\n\
             hris/assignments.csv:4:3: error: level 11 is outside 1–10 (field `level`)\n\
             tenant: warning: skill X (en-us) exists 2 times\n\
             2 errors, 1 warning\n"
        );
        for p in sample_problems() {
            assert_eq!(problem_text(&p, Style::PLAIN), p.to_string());
        }
        assert_eq!(problems_human(&[], Style::PLAIN), "0 errors, 0 warnings\n");
    }

    #[test]
    fn problems_json_counts_and_status() {
        let value = problems_json(&sample_problems());
        assert_eq!(value["schemaVersion"], 1);
        assert_eq!(value["status"], "invalid");
        assert_eq!(value["errors"], 2);
        assert_eq!(value["warnings"], 1);
        assert_eq!(value["problems"][0]["line"], 12);
        assert_eq!(value["problems"][0]["column"], 3);
        assert_eq!(value["problems"][0]["field"], "locale");
        assert_eq!(value["problems"][0]["severity"], "error");

        let warnings_only = problems_json(&sample_problems()[2..]);
        assert_eq!(warnings_only["status"], "valid");
        assert_eq!(warnings_only["errors"], 0);
    }
}

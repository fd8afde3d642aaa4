//! Whether a parsed event can be laid over the desired state, by the rules the HRIS files
//! follow: a known agent, a catalog code with a variant in the agent's own locale (never
//! another locale's), nothing the tenant's dialect would silently drop.

use super::{Change, Event, Lane};
use crate::desired::{Agent, Code, Desired, EmployeeId};
use crate::dialect::{DialectCarries, uncarried_assignment};
use crate::domain::{Kind, Locale};
use crate::hris::suggestions::closest;

/// How many codes a refused locale change names before counting the rest.
const NAMED: usize = 5;

/// Checks one event against the desired state it will be laid over (the files plus the
/// events applied before it), returning its lane, or the reason it is rejected (one sentence
/// naming the event's values and the fix).
pub fn check_event(
    event: &Event,
    desired: &Desired,
    carries: &DialectCarries,
) -> Result<Lane, String> {
    let employee = &event.employee_id;
    match &event.change {
        Change::AssignmentSet { code, active, .. } => {
            let kind = assignable(desired, employee, code)?;
            if let Some(problem) = uncarried_assignment(carries, employee, code, kind, *active) {
                let dialect = carries.dialect;
                let fix = if kind == Kind::Proficiency && !carries.proficiencies {
                    format!(
                        "the {dialect} dialect carries skills only: stop sending proficiency \
                         events, or use dialect = \"routing\" in [tenant]"
                    )
                } else {
                    "send assignment.removed to take it away, or set active to true, or use \
                     dialect = \"routing\" in [tenant]"
                        .to_string()
                };
                return Err(format!("{}; {fix}", problem.message));
            }
            Ok(lane(kind))
        }
        Change::AssignmentRemoved { code } => assignable(desired, employee, code).map(lane),
        Change::AgentLocale { locale } => {
            known_agent(desired, employee)?;
            locale_in_catalog(desired, employee, locale)?;
            variants_in(desired, employee, locale)?;
            Ok(Lane::Skills)
        }
        Change::AgentAdded { user_id, locale } => {
            let existing = desired.agents.get(employee);
            if let Some(agent) = existing.filter(|a| &a.user_id != user_id) {
                return Err(format!(
                    "employee `{employee}` is already an agent, on user `{}`, not `{user_id}`; \
                     send agent.left first to move them to another user, or correct the userId",
                    agent.user_id
                ));
            }
            if let Some(owner) = desired
                .agents
                .values()
                .find(|a| &a.user_id == user_id && &a.employee_id != employee)
            {
                return Err(format!(
                    "user `{user_id}` already belongs to employee `{}`, and each tenant user \
                     belongs to one employee; send agent.left for `{}` first, or correct the userId",
                    owner.employee_id, owner.employee_id
                ));
            }
            locale_in_catalog(desired, employee, locale)?;
            // Adding an agent again in another locale moves their assignments like agent.locale.
            if existing.is_some_and(|a| &a.locale != locale) {
                variants_in(desired, employee, locale)?;
            }
            Ok(Lane::Skills)
        }
        Change::AgentLeft => {
            desired.agents.get(employee).ok_or_else(|| {
                format!(
                    "employee `{employee}` is not an agent, so there is nothing to remove: they are \
                     not in {} and no agent.added event named them; correct the employeeId",
                    desired.files.agents
                )
            })?;
            Ok(Lane::Skills)
        }
    }
}

/// The lane an assignment of `kind` takes.
fn lane(kind: Kind) -> Lane {
    match kind {
        Kind::Skill => Lane::Skills,
        Kind::Proficiency => Lane::Proficiencies,
    }
}

fn known_agent<'d>(desired: &'d Desired, employee: &EmployeeId) -> Result<&'d Agent, String> {
    desired.agents.get(employee).ok_or_else(|| {
        let agents = &desired.files.agents;
        format!(
            "employee `{employee}` is not an agent: they are not in {agents} and no agent.added \
             event named them; send agent.added first, or add them to {agents}"
        )
    })
}

/// The kind of `code`, when `employee` is an agent and the code can be assigned to them: in
/// the catalog, with a variant in their locale, and that variant not retired.
fn assignable(desired: &Desired, employee: &EmployeeId, code: &Code) -> Result<Kind, String> {
    let agent = known_agent(desired, employee)?;
    let catalog = &desired.files.catalog;
    let Some(kind) = desired.catalog.kind_of(code) else {
        let fix = match closest(
            code.as_str(),
            desired.catalog.kinds.keys().map(Code::as_str),
        ) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("add it to {catalog}, or correct the code"),
        };
        return Err(format!(
            "unknown code `{code}`: it is not in {catalog}; {fix}"
        ));
    };
    let locale = &agent.locale;
    if desired.catalog.entry(code, locale).is_none() {
        let has: Vec<&str> = desired
            .catalog
            .locales_of(code)
            .into_iter()
            .map(Locale::as_str)
            .collect();
        return Err(format!(
            "code `{code}` has no variant in {locale}, employee `{employee}`'s locale (it has {}), \
             and another locale's variant is never used instead; add a {locale} row for \
             `{code}` to {catalog}",
            has.join(", ")
        ));
    }
    if let Some(retired) = desired
        .retired
        .iter()
        .find(|r| &r.code == code && &r.locale == locale)
    {
        return Err(format!(
            "code `{code}` in {locale} was retired ({}, run {}), and skillsync no longer \
             assigns or removes a retired variant; stop sending events for `{code}` for \
             employees in {locale}",
            retired.mode.as_str(),
            retired.run
        ));
    }
    Ok(kind)
}

/// The catalog has variants in `locale` (as agents.csv requires of every agent's locale).
fn locale_in_catalog(
    desired: &Desired,
    employee: &EmployeeId,
    locale: &Locale,
) -> Result<(), String> {
    let locales = desired.catalog.locales();
    if locales.contains(locale) {
        return Ok(());
    }
    let has: Vec<&str> = locales.into_iter().map(Locale::as_str).collect();
    let has = if has.is_empty() {
        "none".to_string()
    } else {
        has.join(", ")
    };
    Err(format!(
        "unknown locale: employee `{employee}` would work in {locale}, but no row of {} is in \
         {locale} (it has {has}); add rows in {locale} to it, or correct the locale",
        desired.files.catalog
    ))
}

/// Every code `employee` wants has a variant in `locale`, so moving them there loses nothing.
fn variants_in(desired: &Desired, employee: &EmployeeId, locale: &Locale) -> Result<(), String> {
    let missing: Vec<&Code> = desired
        .assignments
        .get(employee)
        .into_iter()
        .flat_map(|wanted| wanted.keys())
        .filter(|code| desired.catalog.entry(code, locale).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut named: Vec<String> = missing
        .iter()
        .take(NAMED)
        .map(|c| format!("`{c}`"))
        .collect();
    if missing.len() > NAMED {
        named.push(format!("{} more", missing.len() - NAMED));
    }
    let (verb, them) = if missing.len() == 1 {
        ("has", "it")
    } else {
        ("have", "them")
    };
    Err(format!(
        "employee `{employee}` cannot move to {locale}: {} {verb} no variant in {locale}, and \
         another locale's variant is never used instead; add {locale} rows for {them} to {}, \
         or remove those assignments first",
        named.join(", "),
        desired.files.catalog
    ))
}

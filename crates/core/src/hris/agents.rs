//! `agents.csv`: one row per employee, with the tenant user and the locale they work in.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use super::catalog::CatalogRead;
use super::fx::FxMap;
use super::input::{Column, required};
use super::rules::{MAX_ID, MAX_LOCALE, Rule, check};
use super::table::{Shape, Table, list, locale_problem, parse_locale};
use super::{Names, Source};
use crate::desired::{Agent, EmployeeId};
use crate::domain::{Locale, UserId};
use crate::problem::Problems;

const AGENT_COLUMNS: &[Column] = &[
    required("employee_id"),
    required("user_id"),
    required("locale"),
];
const A_EMPLOYEE: usize = 0;
const A_USER: usize = 1;
const A_LOCALE: usize = 2;

/// The agents as far as they could be read.
pub(super) struct AgentsRead {
    /// `None` when the file could not be used at all: checks against it are skipped.
    pub(super) agents: Option<BTreeMap<EmployeeId, Agent>>,
    /// Employees with a row that was wrong: their assignments are not "unknown employee".
    pub(super) broken: HashSet<String>,
}

/// Reads `agents.csv`, checking locales against the catalog, pushing every problem found.
pub(super) fn read_agents<R: Read>(
    source: Source<R>,
    catalog: &CatalogRead,
    names: &Names,
    problems: &mut Problems,
) -> AgentsRead {
    let mut read = AgentsRead {
        agents: None,
        broken: HashSet::new(),
    };
    let Some(mut table) = Table::open(source, AGENT_COLUMNS, problems) else {
        return read;
    };
    let mut rows = Rows {
        catalog,
        catalog_locales: catalog
            .catalog
            .as_ref()
            .map(|c| c.entries.keys().map(|(_, l)| (l.as_str(), ())).collect()),
        names,
        agents: BTreeMap::new(),
        locales: FxMap::default(),
    };
    while let Some((line, shape)) = table.next(problems) {
        let ok = shape == Shape::Whole && rows.read(&table, line, problems);
        let employee = table.get(A_EMPLOYEE);
        // One too long matches no assignment's (those are refused too), so it is not kept.
        if !ok && !employee.is_empty() && employee.len() <= 4 * MAX_ID {
            read.broken.insert(employee.to_string());
        }
    }
    if !table.finish("one row per employee", problems) {
        return read;
    }
    shared_users(&table, &rows.agents, problems);
    read.agents = Some(rows.agents);
    read
}

/// The valid rows so far, and what rows are checked against.
struct Rows<'a> {
    catalog: &'a CatalogRead,
    /// The catalog's locales, when the catalog could be read.
    catalog_locales: Option<FxMap<&'a str, ()>>,
    names: &'a Names,
    agents: BTreeMap<EmployeeId, Agent>,
    locales: FxMap<String, Locale>,
}

impl Rows<'_> {
    /// Checks the current row and keeps it when it is valid. False when the row was wrong
    /// (a repeated employee is reported, but its first row stands).
    fn read<R: Read>(&mut self, table: &Table<R>, line: u64, problems: &mut Problems) -> bool {
        let Some(locale) = self.fields(table, line, problems) else {
            return false;
        };
        let employee = table.get(A_EMPLOYEE);
        let vacant = match self.agents.entry(EmployeeId::from(employee)) {
            Entry::Vacant(vacant) => vacant,
            Entry::Occupied(earlier) => {
                let first = earlier.get().line;
                let message =
                    format!("employee `{employee}` is listed twice, on lines {first} and {line}");
                let hint = format!("keep one row per employee: remove line {line} or line {first}");
                problems.push(
                    "employees listed twice",
                    table.error(line, A_EMPLOYEE, message).hint(hint),
                );
                return true;
            }
        };
        let unknown = self.catalog_locales.as_ref().filter(|known| {
            !known.contains_key(locale.as_str())
                && !self.catalog.broken_locales.contains(locale.as_str())
        });
        if let Some(known) = unknown {
            let mut have: Vec<&str> = known.keys().copied().collect();
            have.sort_unstable();
            problems.push("agents in a locale the catalog lacks", 
                table
                    .error(
                        line,
                        A_LOCALE,
                        format!(
                            "unknown locale: employee `{employee}` works in {locale}, but no catalog row is in {locale}"
                        ),
                    )
                    .hint(format!(
                        "the catalog has {}: add rows in {locale} to {}, or correct the employee's locale",
                        list(have),
                        self.names.catalog
                    )),
            );
        }
        let employee_id = vacant.key().clone();
        vacant.insert(Agent {
            employee_id,
            user_id: UserId::from(table.get(A_USER)),
            locale,
            line,
        });
        true
    }

    /// Every field of the row on its own: the locale when all are valid.
    fn fields<R: Read>(
        &mut self,
        table: &Table<R>,
        line: u64,
        problems: &mut Problems,
    ) -> Option<Locale> {
        let mut ok = check(table, line, A_EMPLOYEE, Rule::Text(MAX_ID), problems);
        ok &= check(table, line, A_USER, Rule::Id, problems);
        if table.get(A_EMPLOYEE).is_empty() {
            ok = false;
            problems.push(
                "empty employee ids",
                table
                    .error(line, A_EMPLOYEE, "employee_id is empty")
                    .hint("give the HRIS id of the employee"),
            );
        }
        if table.get(A_USER).is_empty() {
            ok = false;
            problems.push(
                "empty user ids",
                table
                    .error(line, A_USER, "user_id is empty")
                    .hint("give the tenant's user id of this employee"),
            );
        }
        if !check(table, line, A_LOCALE, Rule::Word(MAX_LOCALE), problems) {
            return None;
        }
        let tag = table.get(A_LOCALE);
        match parse_locale(&mut self.locales, tag) {
            Ok(locale) => ok.then_some(locale),
            Err(e) => {
                problems.push(
                    "invalid locales",
                    locale_problem(table, line, A_LOCALE, tag, &e),
                );
                None
            }
        }
    }
}

/// Two employees on one tenant user: reports every later one against the first.
fn shared_users<R: Read>(
    table: &Table<R>,
    agents: &BTreeMap<EmployeeId, Agent>,
    problems: &mut Problems,
) {
    let mut first: FxMap<&str, &Agent> = FxMap::default();
    first.reserve(agents.len());
    for agent in agents.values() {
        first
            .entry(agent.user_id.as_str())
            .and_modify(|f| {
                if agent.line < f.line {
                    *f = agent;
                }
            })
            .or_insert(agent);
    }
    for agent in agents.values() {
        let owner = first[agent.user_id.as_str()];
        if owner.line != agent.line {
            problems.push("shared user ids", 
                table
                    .error(
                        agent.line,
                        A_USER,
                        format!(
                            "employees `{}` (line {}) and `{}` (line {}) share user id `{}`",
                            owner.employee_id, owner.line, agent.employee_id, agent.line, agent.user_id
                        ),
                    )
                    .hint("each tenant user belongs to one employee: correct the user_id on one of the two lines"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn agents_empty_employee_or_user_id_is_an_error() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\n,u-1,en-us\nE2,,de-de\n",
            ASSIGNMENTS,
        );
        assert_eq!(
            at(find(&problems, "employee_id is empty")),
            ("hris/agents.csv", Some(2), Some(1), Some("employee_id"))
        );
        assert_eq!(
            at(find(&problems, "user_id is empty")),
            ("hris/agents.csv", Some(3), Some(2), Some("user_id"))
        );
        // E1 never made it into agents.csv, so its assignments are unknown; E2's row was
        // wrong, so its assignment is not reported again.
        let unknown: Vec<_> = problems
            .iter()
            .filter(|p| p.message == "employee `E1` is not in hris/agents.csv")
            .map(|p| p.line)
            .collect();
        assert_eq!(unknown, [Some(2), Some(3)]);
        assert_eq!(problems.len(), 4, "{}", show(&problems));
    }

    #[test]
    fn agents_malformed_locale_is_an_error() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE1,u-1,EN-US\nE2,u-2,de_de\n",
            ASSIGNMENTS,
        );
        let p = find(
            &problems,
            "locale `EN-US` must be lowercase (write `en-us`)",
        );
        assert_eq!(at(p), ("hris/agents.csv", Some(2), Some(3), Some("locale")));
        assert_eq!(find(&problems, "`de_de` is not a locale tag").line, Some(3));
        assert_eq!(problems.len(), 2, "{}", show(&problems));
    }

    #[test]
    fn agents_duplicate_employee_is_an_error() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE1,u-1,en-us\nE2,u-2,de-de\nE1,u-3,en-us\n",
            ASSIGNMENTS,
        );
        let p = find(&problems, "listed twice");
        assert_eq!(p.message, "employee `E1` is listed twice, on lines 2 and 4");
        assert_eq!(
            at(p),
            ("hris/agents.csv", Some(4), Some(1), Some("employee_id"))
        );
    }

    #[test]
    fn agents_shared_user_id_names_both_employees_and_lines() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE2,u-1,de-de\nE1,u-1,en-us\n",
            ASSIGNMENTS,
        );
        let p = find(&problems, "share user id");
        assert_eq!(
            p.message,
            "employees `E2` (line 2) and `E1` (line 3) share user id `u-1`"
        );
        assert_eq!(
            at(p),
            ("hris/agents.csv", Some(3), Some(2), Some("user_id"))
        );
    }

    #[test]
    fn agents_unknown_locale_lists_the_catalogs_locales() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE1,u-1,en-us\nE2,u-2,fr-fr\n",
            ASSIGNMENTS,
        );
        let p = find(&problems, "unknown locale");
        assert_eq!(at(p), ("hris/agents.csv", Some(3), Some(3), Some("locale")));
        assert!(p.message.contains("`E2` works in fr-fr"), "{p}");
        assert!(
            p.hint
                .as_deref()
                .unwrap()
                .starts_with("the catalog has de-de, en-us"),
            "{p}"
        );
        // E2's PAY assignment is not reported again as a missing fr-fr variant.
        assert_eq!(problems.len(), 1, "{}", show(&problems));
    }
}

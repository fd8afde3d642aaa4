//! `assignments.csv`: the levels and active flags each employee should hold, each row resolved
//! to the variant of its code in the employee's own locale (never another locale's).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::io::Read;

use super::agents::AgentsRead;
use super::catalog::CatalogRead;
use super::fx::FxMap;
use super::input::{Column, required};
use super::rules::{MAX_ID, MAX_WORD, Rule, check};
use super::suggestions::closest;
use super::table::{Shape, Table, list};
use super::{Columns, Names, Source};
use crate::desired::{Agent, Catalog, Code, EmployeeId, Wanted};
use crate::domain::{Kind, Level};
use crate::problem::{Problem, Problems};

const ASSIGNMENT_COLUMNS: &[Column] = &[
    required("employee_id"),
    required("code"),
    required("level"),
    Column {
        name: "active",
        required: false,
    },
];
const S_EMPLOYEE: usize = 0;
const S_CODE: usize = 1;
const S_LEVEL: usize = 2;
const S_ACTIVE: usize = 3;

/// What the rows are checked against: the other two files, as far as they could be read.
struct Context<'a> {
    catalog: &'a CatalogRead,
    agents: &'a AgentsRead,
    names: &'a Names,
}

/// Reads `assignments.csv` against the catalog and agents, pushing every problem found: the
/// assignments of every employee with at least one valid row, and where the columns were.
pub(super) fn read_assignments<R: Read>(
    source: Source<R>,
    catalog: &CatalogRead,
    agents: &AgentsRead,
    names: &Names,
    problems: &mut Problems,
) -> (BTreeMap<EmployeeId, BTreeMap<Code, Wanted>>, Columns) {
    let Some(mut table) = Table::open(source, ASSIGNMENT_COLUMNS, problems) else {
        return (BTreeMap::new(), Columns::default());
    };
    let context = Context {
        catalog,
        agents,
        names,
    };
    let empty = Catalog::default();
    let codes = Codes::new(catalog.catalog.as_ref(), &empty);
    let mut employees = Employees::new(agents, &codes);
    while let Some((line, shape)) = table.next(problems) {
        if shape == Shape::Broken {
            continue;
        }
        let Some(row) = check_row(&table, line, &context, &codes, &mut employees, problems) else {
            continue;
        };
        match row.code {
            RowCode::Known(index) => {
                employees.keep_known(row.slot, index, row.wanted, &codes, &table, problems)
            }
            RowCode::Given(code) => {
                employees.keep_given(row.slot, code, row.wanted, &table, problems)
            }
        }
    }
    employees.flush(&codes, &table, problems);
    table.finish("one row per employee and code", problems);
    (employees.into_assignments(), table.layout())
}

/// A row that passed every check.
struct Row<'t> {
    slot: usize,
    code: RowCode<'t>,
    wanted: Wanted,
}

/// A valid row's code.
enum RowCode<'t> {
    /// The catalog's code with this number.
    Known(usize),
    /// Taken as given: the catalog could not be read.
    Given(&'t str),
}

/// Checks every field of the current row, and the row against the other files. The row
/// when it is valid; every problem is pushed either way.
fn check_row<'t, R: Read>(
    table: &'t Table<R>,
    line: u64,
    context: &Context<'_>,
    codes: &Codes<'_>,
    employees: &mut Employees<'_>,
    problems: &mut Problems,
) -> Option<Row<'t>> {
    // A value that breaks its field's rule is reported as such and looked up nowhere, so it
    // is neither "unknown" too nor copied whole into another message.
    let employee_ok = check(table, line, S_EMPLOYEE, Rule::Text(MAX_ID), problems);
    let code_ok = check(table, line, S_CODE, Rule::Text(MAX_ID), problems);
    let employee = if employee_ok {
        table.get(S_EMPLOYEE)
    } else {
        ""
    };
    let code = if code_ok { table.get(S_CODE) } else { "" };
    let present = present(table, line, context.names, problems) && employee_ok && code_ok;
    let level = check(table, line, S_LEVEL, Rule::Word(MAX_WORD), problems)
        .then(|| parse_level(table, line, problems))
        .flatten();
    let active = check(table, line, S_ACTIVE, Rule::Word(MAX_WORD), problems)
        .then(|| check_active(table, line, problems))
        .flatten();
    let slot = employees.find(employee, context.agents.agents.is_none());
    if slot.is_none() && !employee.is_empty() && !context.agents.broken.contains(employee) {
        problems.push(
            "unknown employees",
            unknown_employee(table, line, employee, context.names),
        );
    }
    let lookup = codes.lookup(table, line, code, context, problems);
    let in_locale = match (&lookup, slot.and_then(|i| employees.agent_locale(i))) {
        (Lookup::Known(info), Some((agent, l))) if !info.in_locale[l] => {
            if !context.catalog.broken_codes.contains(code) {
                problems.push(
                    "codes without a variant in the agent's locale",
                    no_variant(table, line, codes.known, info, agent, context.names),
                );
            }
            false
        }
        _ => true,
    };
    let code = match lookup {
        Lookup::Known(info) => RowCode::Known(info.index),
        Lookup::Given => RowCode::Given(code),
        Lookup::Bad => return None,
    };
    if !(present && in_locale) {
        return None;
    }
    Some(Row {
        slot: slot?,
        code,
        wanted: Wanted {
            level: level?,
            active: active?,
            line,
        },
    })
}

/// Employee and code are there: false (reported) when either is empty.
fn present<R: Read>(table: &Table<R>, line: u64, names: &Names, problems: &mut Problems) -> bool {
    let mut ok = true;
    if table.get(S_EMPLOYEE).is_empty() {
        ok = false;
        problems.push(
            "empty employee ids",
            table
                .error(line, S_EMPLOYEE, "employee_id is empty")
                .hint(format!(
                    "give the HRIS id of an employee in {}",
                    names.agents
                )),
        );
    }
    if table.get(S_CODE).is_empty() {
        ok = false;
        problems.push(
            "empty codes",
            table
                .error(line, S_CODE, "code is empty")
                .hint(format!("give a code from {}", names.catalog)),
        );
    }
    ok
}

/// `level`: a whole number from 1 to 10.
fn parse_level<R: Read>(table: &Table<R>, line: u64, problems: &mut Problems) -> Option<Level> {
    let level_text = table.get(S_LEVEL);
    let message = match level_text.parse::<i64>() {
        Ok(n) => match Level::new(n) {
            Ok(level) => return Some(level),
            Err(e) => e.to_string(),
        },
        Err(_) if level_text.is_empty() => "level is empty".to_string(),
        Err(_) => format!("level `{level_text}` is not a whole number"),
    };
    problems.push(
        "invalid levels",
        table
            .error(line, S_LEVEL, message)
            .hint("use a whole number from 1 (lowest) to 10 (highest)"),
    );
    None
}

/// `active`, reported when it is not a word [`parse_active`] knows.
fn check_active<R: Read>(table: &Table<R>, line: u64, problems: &mut Problems) -> Option<bool> {
    let active_text = table.get(S_ACTIVE);
    let active = parse_active(active_text);
    if active.is_none() {
        problems.push(
            "invalid active values",
            table
                .error(
                    line,
                    S_ACTIVE,
                    format!("active `{active_text}` is not true or false"),
                )
                .hint("write true/false, yes/no or 1/0, or leave it empty for true"),
        );
    }
    active
}

/// `active`: empty is true; true/false, yes/no, 1/0 in any case.
fn parse_active(text: &str) -> Option<bool> {
    if text.is_empty() {
        return Some(true);
    }
    [
        ("true", true),
        ("yes", true),
        ("1", true),
        ("false", false),
        ("no", false),
        ("0", false),
    ]
    .into_iter()
    .find(|(word, _)| text.eq_ignore_ascii_case(word))
    .map(|(_, value)| value)
}

fn unknown_employee<R: Read>(
    table: &Table<R>,
    line: u64,
    employee: &str,
    names: &Names,
) -> Problem {
    table
        .error(
            line,
            S_EMPLOYEE,
            format!("employee `{employee}` is not in {}", names.agents),
        )
        .hint(format!(
            "add `{employee}` to {} or remove its assignments",
            names.agents
        ))
}

/// Edge case 3: the code has no variant in the agent's own locale. (An agent in a locale the
/// catalog lacks altogether was reported in agents.csv.)
fn no_variant<R: Read>(
    table: &Table<R>,
    line: u64,
    known: &Catalog,
    info: &CodeInfo<'_>,
    agent: &Agent,
    names: &Names,
) -> Problem {
    let (code, kind, locale, employee) = (info.code, info.kind, &agent.locale, &agent.employee_id);
    let has = known.locales_of(code);
    table
        .error(
            line,
            S_CODE,
            format!(
                "code `{code}` has no variant in {locale}, the locale of employee `{employee}` ({}:{}) (it has {})",
                names.agents,
                agent.line,
                list(has.iter().map(|l| l.as_str()))
            ),
        )
        .hint(format!(
            "add a row `{code},{kind},{locale},<name>,<description>,<routing_profile_id>` to {}; \
             skillsync never assigns another locale's variant",
            names.catalog
        ))
}

/// The catalog's codes as rows look them up, without allocating. Locales are numbered; each
/// code notes which of them it has a variant in.
struct Codes<'a> {
    /// The catalog, or an empty one when it could not be read.
    known: &'a Catalog,
    /// By code; `None` when the catalog could not be read and codes are taken as given.
    codes: Option<FxMap<&'a str, CodeInfo<'a>>>,
    /// The catalog's codes in order, by number.
    list: Vec<&'a Code>,
    /// Each locale's number.
    locale_index: FxMap<&'a str, usize>,
}

/// A catalog code as assignments look it up.
struct CodeInfo<'a> {
    code: &'a Code,
    /// Its position in the catalog's (sorted) codes.
    index: usize,
    kind: Kind,
    /// By locale number: whether the code has a variant there.
    in_locale: Vec<bool>,
}

/// How a row's code was found.
enum Lookup<'c, 'a> {
    /// In the catalog.
    Known(&'c CodeInfo<'a>),
    /// The catalog could not be read: taken as given.
    Given,
    /// Empty, or not in the catalog (reported).
    Bad,
}

impl<'a> Codes<'a> {
    fn new(catalog: Option<&'a Catalog>, empty: &'a Catalog) -> Self {
        let known = catalog.unwrap_or(empty);
        let locale_index: FxMap<&str, usize> = known
            .locales()
            .into_iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let mut codes: FxMap<&str, CodeInfo> = known
            .kinds
            .iter()
            .enumerate()
            .map(|(index, (code, &kind))| {
                let info = CodeInfo {
                    code,
                    index,
                    kind,
                    in_locale: vec![false; locale_index.len()],
                };
                (code.as_str(), info)
            })
            .collect();
        for (code, locale) in known.entries.keys() {
            if let Some(info) = codes.get_mut(code.as_str()) {
                info.in_locale[locale_index[locale.as_str()]] = true;
            }
        }
        Codes {
            known,
            codes: catalog.map(|_| codes),
            list: known.kinds.keys().collect(),
            locale_index,
        }
    }

    /// Finds the row's code, reporting one the catalog does not have (with the nearest as a
    /// hint), unless a broken catalog row already explains it.
    fn lookup<R: Read>(
        &self,
        table: &Table<R>,
        line: u64,
        code: &str,
        context: &Context<'_>,
        problems: &mut Problems,
    ) -> Lookup<'_, 'a> {
        if code.is_empty() {
            return Lookup::Bad;
        }
        let Some(codes) = &self.codes else {
            return Lookup::Given;
        };
        if let Some(info) = codes.get(code) {
            return Lookup::Known(info);
        }
        if !context.catalog.broken_codes.contains(code) {
            let catalog = &context.names.catalog;
            let hint = match closest(code, codes.keys().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("add `{code}` to {catalog} or correct the code"),
            };
            problems.push(
                "unknown codes",
                table
                    .error(
                        line,
                        S_CODE,
                        format!("unknown code `{code}`: it is not in {catalog}"),
                    )
                    .hint(hint),
            );
        }
        Lookup::Bad
    }
}

/// Every employee's assignments as they are read, one slot per employee.
struct Employees<'a> {
    slots: Vec<Slot<'a>>,
    slot_of: FxMap<Cow<'a, str>, usize>,
    /// Rows usually come grouped by employee, so the last one found is kept.
    last_employee: String,
    last_slot: Option<usize>,
    /// The current employee's valid rows with catalog codes, by code number, turned into a
    /// map in one go (sorted by code, which is the map's order) when the rows move on to
    /// another employee.
    pending: Vec<(usize, Wanted)>,
    /// The slot the pending rows are for.
    pending_slot: usize,
}

/// One employee's assignments as they are read.
struct Slot<'a> {
    employee: Cow<'a, str>,
    agent: Option<&'a Agent>,
    /// The agent's locale's number, if the catalog has the locale at all.
    locale: Option<usize>,
    wanted: BTreeMap<Code, Wanted>,
}

impl<'a> Employees<'a> {
    fn new(agents: &'a AgentsRead, codes: &Codes<'_>) -> Self {
        let mut employees = Employees {
            slots: Vec::new(),
            slot_of: FxMap::default(),
            last_employee: String::new(),
            last_slot: None,
            pending: Vec::new(),
            pending_slot: 0,
        };
        if let Some(agents) = &agents.agents {
            employees.slots.reserve(agents.len());
            employees.slot_of.reserve(agents.len());
            for (id, agent) in agents {
                employees
                    .slot_of
                    .insert(Cow::Borrowed(id.as_str()), employees.slots.len());
                employees.slots.push(Slot {
                    employee: Cow::Borrowed(id.as_str()),
                    agent: Some(agent),
                    locale: codes.locale_index.get(agent.locale.as_str()).copied(),
                    wanted: BTreeMap::new(),
                });
            }
        }
        employees
    }

    /// The slot of an employee: known from agents.csv, or (when that file is unusable, as
    /// `taken_as_given` says) taken as given. `None` for an empty or unknown employee.
    fn find(&mut self, employee: &str, taken_as_given: bool) -> Option<usize> {
        if employee.is_empty() {
            return None;
        }
        if self.last_slot.is_some() && employee == self.last_employee {
            return self.last_slot;
        }
        let mut slot = self.slot_of.get(employee).copied();
        if slot.is_none() && taken_as_given {
            self.slot_of
                .insert(Cow::Owned(employee.to_string()), self.slots.len());
            slot = Some(self.slots.len());
            self.slots.push(Slot {
                employee: Cow::Owned(employee.to_string()),
                agent: None,
                locale: None,
                wanted: BTreeMap::new(),
            });
        }
        if slot.is_some() {
            self.last_employee.clear();
            self.last_employee.push_str(employee);
            self.last_slot = slot;
        }
        slot
    }

    /// The agent of a slot and its locale's number, when both are known.
    fn agent_locale(&self, slot: usize) -> Option<(&'a Agent, usize)> {
        self.slots[slot].agent.zip(self.slots[slot].locale)
    }

    /// Keeps a row with a catalog code, first moving another employee's pending rows into
    /// their map.
    fn keep_known<R: Read>(
        &mut self,
        slot: usize,
        code: usize,
        wanted: Wanted,
        codes: &Codes<'_>,
        table: &Table<R>,
        problems: &mut Problems,
    ) {
        if self.pending_slot != slot {
            self.flush(codes, table, problems);
            self.pending_slot = slot;
        }
        self.pending.push((code, wanted));
    }

    /// Moves the pending rows into their employee's map.
    fn flush<R: Read>(&mut self, codes: &Codes<'_>, table: &Table<R>, problems: &mut Problems) {
        if let Some(slot) = self.slots.get_mut(self.pending_slot) {
            flush(&mut self.pending, slot, &codes.list, table, problems);
        }
    }

    /// Without a usable catalog, codes are taken as given, one row at a time: the first row
    /// of an employee and code wins.
    fn keep_given<R: Read>(
        &mut self,
        slot: usize,
        code: &str,
        wanted: Wanted,
        table: &Table<R>,
        problems: &mut Problems,
    ) {
        let slot = &mut self.slots[slot];
        match slot.wanted.entry(Code::from(code)) {
            Entry::Vacant(vacant) => {
                vacant.insert(wanted);
            }
            Entry::Occupied(earlier) => {
                problems.push(
                    "repeated assignments",
                    repeated(table, &slot.employee, code, earlier.get(), &wanted),
                );
            }
        }
    }

    /// The assignments of every employee with at least one.
    fn into_assignments(self) -> BTreeMap<EmployeeId, BTreeMap<Code, Wanted>> {
        self.slots
            .into_iter()
            .filter(|slot| !slot.wanted.is_empty())
            .map(|slot| (EmployeeId(slot.employee.into_owned()), slot.wanted))
            .collect()
    }
}

/// Moves one employee's pending rows (valid, with catalog codes) into its map, reporting
/// repeats: the first row of an employee and code wins.
fn flush<R: Read>(
    pending: &mut Vec<(usize, Wanted)>,
    slot: &mut Slot,
    codes: &[&Code],
    table: &Table<R>,
    problems: &mut Problems,
) {
    if pending.is_empty() {
        return;
    }
    pending.sort_by_key(|&(code, _)| code); // stable: rows of one code stay in line order
    pending.dedup_by(|later, earlier| {
        let repeat = later.0 == earlier.0;
        if repeat {
            let code = codes[later.0].as_str();
            problems.push(
                "repeated assignments",
                repeated(table, &slot.employee, code, &earlier.1, &later.1),
            );
        }
        repeat
    });
    if slot.wanted.is_empty() {
        // Sorted by code already, so the map is built without searching.
        slot.wanted = pending
            .drain(..)
            .map(|(code, wanted)| (codes[code].clone(), wanted))
            .collect();
        return;
    }
    // The employee's rows came in more than one run: merge, earlier rows winning.
    for (code, wanted) in pending.drain(..) {
        match slot.wanted.get(codes[code]) {
            Some(earlier) => {
                let earlier = *earlier;
                problems.push(
                    "repeated assignments",
                    repeated(
                        table,
                        &slot.employee,
                        codes[code].as_str(),
                        &earlier,
                        &wanted,
                    ),
                );
            }
            None => {
                slot.wanted.insert(codes[code].clone(), wanted);
            }
        }
    }
}

/// The problem for a second row of the same employee and code: an error if it says something
/// else, a warning if it repeats the first.
fn repeated<R: Read>(
    table: &Table<R>,
    employee: &str,
    code: &str,
    earlier: &Wanted,
    later: &Wanted,
) -> Problem {
    let line = later.line;
    let (level, active) = (later.level, later.active);
    if (earlier.level, earlier.active) == (level, active) {
        return table
            .warning(
                line,
                S_CODE,
                format!(
                    "employee `{employee}` is assigned `{code}` twice with the same values, on lines {} and {line}",
                    earlier.line
                ),
            )
            .hint(format!("remove the repeated row on line {line}"));
    }
    let (k, was, now) = if earlier.level != level {
        (
            S_LEVEL,
            format!("level {}", earlier.level),
            format!("level {level}"),
        )
    } else {
        (
            S_ACTIVE,
            format!("active {}", earlier.active),
            format!("active {active}"),
        )
    };
    let k = if table.column(k).is_some() { k } else { S_CODE };
    table
        .error(
            line,
            k,
            format!(
                "employee `{employee}` is assigned `{code}` twice with different values: {was} on line {}, {now} on line {line}",
                earlier.line
            ),
        )
        .hint(format!(
            "keep one row per employee and code: remove line {line} or line {}",
            earlier.line
        ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::parse_active;

    #[test]
    fn assignments_level_not_an_integer_or_outside_1_to_10_is_an_error() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level,active\nE1,PAY,high,true\nE1,QA,11,\nE2,PAY,0,\nE2,QA,,\n",
        );
        let p = find(&problems, "level `high` is not a whole number");
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(2), Some(3), Some("level"))
        );
        assert!(
            p.hint
                .as_deref()
                .unwrap()
                .contains("1 (lowest) to 10 (highest)")
        );
        assert_eq!(find(&problems, "level 11 is outside 1–10").line, Some(3));
        assert_eq!(find(&problems, "level 0 is outside 1–10").line, Some(4));
        assert_eq!(find(&problems, "level is empty").line, Some(5));
    }

    #[test]
    fn assignments_unknown_code_suggests_the_closest() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAYY,5\nE1,pay,5\nE2,BILLING,5\n",
        );
        let p = find(&problems, "unknown code `PAYY`");
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(2), Some(2), Some("code"))
        );
        assert_eq!(p.hint.as_deref(), Some("did you mean `PAY`?"));
        assert_eq!(
            find(&problems, "unknown code `pay`").hint.as_deref(),
            Some("did you mean `PAY`?")
        );
        let p = find(&problems, "unknown code `BILLING`");
        assert_eq!(
            p.hint.as_deref(),
            Some("add `BILLING` to hris/catalog.csv or correct the code")
        );
    }

    #[test]
    fn assignments_unknown_employee_is_an_error() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\nE9,PAY,5\n",
        );
        let p = find(&problems, "employee `E9` is not in hris/agents.csv");
        assert_eq!(
            at(p),
            (
                "hris/assignments.csv",
                Some(3),
                Some(1),
                Some("employee_id")
            )
        );
        assert!(
            p.hint
                .as_deref()
                .unwrap()
                .contains("add `E9` to hris/agents.csv")
        );
    }

    #[test]
    fn assignments_conflicting_repeat_is_an_error_and_identical_repeat_a_warning() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level,active\nE1,PAY,5,true\nE1,QA,3,yes\nE1,PAY,6,true\nE1,QA,3,no\nE2,PAY,7,\nE2,PAY,7,1\n",
        );
        let p = find(&problems, "`PAY` twice with different values");
        assert_eq!(
            p.message,
            "employee `E1` is assigned `PAY` twice with different values: level 5 on line 2, level 6 on line 4"
        );
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(4), Some(3), Some("level"))
        );
        let p = find(&problems, "`QA` twice with different values");
        assert!(
            p.message
                .contains("active true on line 3, active false on line 5"),
            "{p}"
        );
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(5), Some(4), Some("active"))
        );
        let p = find(&problems, "twice with the same values");
        assert_eq!(p.severity, Severity::Warning);
        assert_eq!(
            p.message,
            "employee `E2` is assigned `PAY` twice with the same values, on lines 6 and 7"
        );
        assert_eq!(p.line, Some(7));
        // Alone, an identical repeat is only a warning and the first row wins.
        let loaded = ok(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\nE1,PAY,5\n",
        );
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(wanted(&loaded, "E1", "PAY").line, 2);
    }

    #[test]
    fn assignments_repeats_are_found_when_an_employees_rows_are_not_together() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\nE2,PAY,7\nE1,QA,3\nE1,PAY,6\nE2,QA,2\nE1,QA,3\n",
        );
        let p = find(&problems, "`PAY` twice with different values");
        assert!(
            p.message.contains("level 5 on line 2, level 6 on line 5"),
            "{p}"
        );
        assert_eq!(p.line, Some(5));
        let p = find(&problems, "`QA` twice with the same values");
        assert_eq!((p.severity, p.line), (Severity::Warning, Some(7)));
        assert_eq!(problems.len(), 2, "{}", show(&problems));
        let loaded = ok(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,QA,5\nE2,PAY,7\nE1,PAY,6\nE2,QA,2\n",
        );
        assert_eq!(wanted(&loaded, "E1", "PAY").line, 4);
        assert_eq!(wanted(&loaded, "E1", "QA").line, 2);
        assert_eq!(loaded.desired.assignments[&EmployeeId::from("E2")].len(), 2);
    }

    #[test]
    fn assignments_missing_locale_variant_is_an_error_never_a_fallback() {
        // Edge case 3: XS exists in en-us only; E2 works in de-de.
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
PAY,skill,de-de,Zahlungen,,rp-1
XS,skill,en-us,Cross-sell,,rp-1
XS,skill,en-gb,Cross-sell,,rp-1
",
            AGENTS,
            b"employee_id,code,level\nE1,XS,5\nE2,PAY,5\nE2,XS,4\n",
        );
        assert_eq!(problems.len(), 1, "{}", show(&problems));
        let p = &problems[0];
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(4), Some(2), Some("code"))
        );
        assert_eq!(
            p.message,
            "code `XS` has no variant in de-de, the locale of employee `E2` (hris/agents.csv:3) (it has en-gb, en-us)"
        );
        let hint = p.hint.as_deref().unwrap();
        assert!(hint.starts_with("add a row `XS,skill,de-de,<name>,<description>,<routing_profile_id>` to hris/catalog.csv"), "{hint}");
        assert!(hint.contains("never assigns another locale's variant"));
    }

    #[test]
    fn assignments_bad_active_value_is_an_error() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level,active\nE1,PAY,5,maybe\n",
        );
        let p = find(&problems, "active `maybe` is not true or false");
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(2), Some(4), Some("active"))
        );
        assert!(p.hint.as_deref().unwrap().contains("yes/no"));
    }

    #[test]
    fn assignments_active_accepts_words_in_any_case_and_defaults_to_true() {
        for (text, value) in [
            ("", true),
            ("true", true),
            ("YES", true),
            ("1", true),
            ("False", false),
            ("no", false),
            ("0", false),
        ] {
            assert_eq!(parse_active(text), Some(value), "{text:?}");
        }
        assert_eq!(parse_active("y"), None);
        // Without the column, everything is active.
        let loaded = ok(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\nE2,QA,2\n",
        );
        assert!(wanted(&loaded, "E1", "PAY").active && wanted(&loaded, "E2", "QA").active);
    }
}

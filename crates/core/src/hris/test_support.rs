//! Fixtures and helpers shared by the readers' tests.

pub(super) use crate::desired::{Code, EmployeeId, Wanted};
pub(super) use crate::problem::{Problem, Severity};

pub(super) use super::{Loaded, Source, read_desired};

pub(super) const CATALOG: &[u8] = b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,Card payments,rp-1
PAY,skill,de-de,Zahlungen,Kartenzahlungen,rp-1
QA,proficiency,en-us,Quality,,rp-1
QA,proficiency,de-de,Qualitaet,,rp-1
";
pub(super) const AGENTS: &[u8] = b"employee_id,user_id,locale
E1,u-1,en-us
E2,u-2,de-de
";
pub(super) const ASSIGNMENTS: &[u8] = b"employee_id,code,level,active
E1,PAY,5,true
E1,QA,3,
E2,PAY,7,no
";

pub(super) fn src(name: &str, bytes: &'static [u8]) -> Source<&'static [u8]> {
    Source {
        name: name.to_string(),
        reader: bytes,
    }
}

pub(super) fn load(
    catalog: &'static [u8],
    agents: &'static [u8],
    assignments: &'static [u8],
) -> Result<Loaded, Vec<Problem>> {
    read_desired(
        src("hris/catalog.csv", catalog),
        src("hris/agents.csv", agents),
        src("hris/assignments.csv", assignments),
    )
}

pub(super) fn ok(
    catalog: &'static [u8],
    agents: &'static [u8],
    assignments: &'static [u8],
) -> Loaded {
    match load(catalog, agents, assignments) {
        Ok(loaded) => loaded,
        Err(problems) => panic!("unexpected problems:\n{}", show(&problems)),
    }
}

pub(super) fn errors(
    catalog: &'static [u8],
    agents: &'static [u8],
    assignments: &'static [u8],
) -> Vec<Problem> {
    match load(catalog, agents, assignments) {
        Ok(loaded) => panic!("expected errors, got {:?}", loaded.desired),
        Err(problems) => problems,
    }
}

pub(super) fn show(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{p}\n")).collect()
}

/// The one problem whose message contains `needle`.
pub(super) fn find<'a>(problems: &'a [Problem], needle: &str) -> &'a Problem {
    let found: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.message.contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "`{needle}` in:\n{}", show(problems));
    found[0]
}

/// file, line, column and field of a problem.
pub(super) fn at(p: &Problem) -> (&str, Option<u64>, Option<u64>, Option<&str>) {
    (p.file.as_str(), p.line, p.column, p.field.as_deref())
}

pub(super) fn wanted(loaded: &Loaded, employee: &str, code: &str) -> Wanted {
    loaded.desired.assignments[&EmployeeId::from(employee)][&Code::from(code)]
}

//! Reading the three HRIS files (SPEC section 3) into the [`Desired`] state.
//!
//! [`read_desired`] reads `catalog.csv`, then `agents.csv`, then `assignments.csv`, row by row,
//! and reports every problem it finds in one go, each with file, line, column, field and a hint.
//! Files that cannot be used at all (empty, or missing a required column) do not stop the
//! others from being checked: cross-file checks that need them are skipped, and rows that
//! refer to a row that was itself wrong are not reported a second time.
//!
//! The one rule that matters most (seed edge case 3): an assignment resolves to the variant of
//! its code in the *agent's* locale. When the catalog has no such variant, that is an error at
//! the assignment's line; another locale's variant is never used instead.
//!
//! The parts, by concern: `input` (BOM, line ends and line numbers, the header row), `table`
//! (a CSV file read row by row, values shared by the readers), one reader per file (`catalog`,
//! `agents`, `assignments`) and `suggestions` (did-you-mean hints).

mod agents;
mod assignments;
mod catalog;
mod fx;
mod input;
pub(crate) mod rules;
pub mod suggestions;
mod table;
#[cfg(test)]
mod test_support;

use std::io::Read;

use crate::desired::{Catalog, Desired, SourceFiles};
use crate::problem::{Problem, Problems};

/// One input file: its name as the user gave it and something to read it from.
#[derive(Debug, Clone)]
pub struct Source<R> {
    /// The path as the user named it; every [`Problem::file`] about this file carries it.
    pub name: String,
    /// The bytes (UTF-8, optionally with a BOM; LF or CRLF line ends).
    pub reader: R,
}

/// How the message of a file with a header and no rows ends.
pub(crate) const EMPTY_FILE: &str = "has a header but no rows";

/// The desired state read from the HRIS files, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated desired state.
    pub desired: Desired,
    /// Problems that do not block a run (unknown columns, identical repeated rows, …),
    /// sorted by file (catalog, agents, assignments) then line.
    pub warnings: Vec<Problem>,
    /// Where the columns of `assignments.csv` are, so a later check can point at a row's
    /// field as the readers do.
    pub assignment_columns: Columns,
}

/// Where a file's known columns are in its header (1-based), as it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns(Vec<(&'static str, u64)>);

impl Columns {
    /// The 1-based column of the field `name`, if the header has it.
    pub fn of(&self, name: &str) -> Option<u64> {
        self.0.iter().find(|(n, _)| *n == name).map(|&(_, c)| c)
    }
}

/// Reads `catalog.csv`, `agents.csv` and `assignments.csv` into the desired state.
///
/// On any error, returns every error *and* warning found in all three files, sorted by file
/// (in the order catalog, agents, assignments) then line and column.
pub fn read_desired<C: Read, A: Read, S: Read>(
    catalog: Source<C>,
    agents: Source<A>,
    assignments: Source<S>,
) -> Result<Loaded, Vec<Problem>> {
    read_catalog_first(catalog).read_rest(agents, assignments)
}

/// Reads `catalog.csv` alone: the first of [`read_desired`]'s steps, for a caller that can
/// start what needs only the catalog (reading the tenant) while the larger files are read by
/// [`CatalogFirst::read_rest`].
pub fn read_catalog_first<C: Read>(catalog: Source<C>) -> CatalogFirst {
    let name = catalog.name.clone();
    let mut problems = Problems::new();
    let read = catalog::read_catalog(catalog, &mut problems);
    CatalogFirst {
        name,
        read,
        problems,
    }
}

/// `catalog.csv` read, the agents and assignments not yet.
#[derive(Debug)]
pub struct CatalogFirst {
    name: String,
    read: catalog::CatalogRead,
    problems: Problems,
}

impl CatalogFirst {
    /// The catalog, when its file has no error (with an error the whole read fails, whatever
    /// the other files hold).
    pub fn catalog(&self) -> Option<&Catalog> {
        if self.problems.has_errors() {
            None
        } else {
            self.read.catalog.as_ref()
        }
    }

    /// Reads the agents and assignments against the catalog: what [`read_desired`] returns.
    pub fn read_rest<A: Read, S: Read>(
        self,
        agents: Source<A>,
        assignments: Source<S>,
    ) -> Result<Loaded, Vec<Problem>> {
        let CatalogFirst {
            name: catalog_name,
            read: catalog,
            problems: catalog_problems,
        } = self;
        let names = Names {
            catalog: catalog_name.clone(),
            agents: agents.name.clone(),
        };
        let files = SourceFiles {
            catalog: catalog_name,
            agents: agents.name.clone(),
            assignments: assignments.name.clone(),
        };
        let mut agent_problems = Problems::new();
        let mut assignment_problems = Problems::new();

        let agents = agents::read_agents(agents, &catalog, &names, &mut agent_problems);
        let (wanted, assignment_columns) = assignments::read_assignments(
            assignments,
            &catalog,
            &agents,
            &names,
            &mut assignment_problems,
        );

        let mut problems = by_file_then_line([
            catalog_problems.into_vec(),
            agent_problems.into_vec(),
            assignment_problems.into_vec(),
        ]);
        // Three files with headers and no rows are a start (as `skillsync init` writes them), not a
        // mistake: with no catalog nothing is skillsync's, so nothing can be stripped. One empty
        // file beside full ones is still an error (an empty assignments file would strip every
        // agent).
        let empty = |p: &Problem| p.is_error() && p.message.ends_with(EMPTY_FILE);
        let errors = problems.iter().filter(|p| p.is_error()).count();
        if errors == 3 && problems.iter().filter(|p| empty(p)).count() == 3 {
            problems.retain(|p| !empty(p));
            problems.insert(
                0,
                Problem::warning(
                    &files.catalog,
                    "the HRIS files have headers and no rows yet: there is nothing to sync",
                )
                .at_line(1)
                .hint(
                    "add the catalog's codes, the agents and their assignments below the headers",
                ),
            );
        }
        if problems.iter().any(Problem::is_error) {
            return Err(problems);
        }
        Ok(Loaded {
            desired: Desired {
                files,
                catalog: catalog.catalog.unwrap_or_default(),
                agents: agents.agents.unwrap_or_default(),
                assignments: wanted,
                retired: Vec::new(),
            },
            warnings: problems,
            assignment_columns,
        })
    }
}

/// The problems of each file sorted by line, column, severity and message, the files kept in
/// the order given.
fn by_file_then_line(files: [Vec<Problem>; 3]) -> Vec<Problem> {
    let mut problems = Vec::with_capacity(files.iter().map(Vec::len).sum());
    for mut file_problems in files {
        sort_in_file(&mut file_problems);
        problems.append(&mut file_problems);
    }
    problems
}

/// Sorts one file's problems by line, column, severity and message.
pub(crate) fn sort_in_file(problems: &mut [Problem]) {
    problems.sort_by(|a, b| {
        (a.line, a.column, a.severity, &a.message).cmp(&(b.line, b.column, b.severity, &b.message))
    });
}

/// File names other files' messages refer to.
struct Names {
    catalog: String,
    agents: String,
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::desired::Code;
    use crate::desired::{Catalog, EmployeeId};
    use crate::domain::{Kind, Locale, UserId};

    #[test]
    fn a_valid_set_is_read_into_desired() {
        let loaded = ok(CATALOG, AGENTS, ASSIGNMENTS);
        assert!(loaded.warnings.is_empty());
        let d = &loaded.desired;
        assert_eq!(d.catalog.entries.len(), 4);
        assert_eq!(
            d.catalog.kind_of(&Code::from("QA")),
            Some(Kind::Proficiency)
        );
        let pay_de = d
            .catalog
            .entry(&Code::from("PAY"), &Locale::parse("de-de").unwrap())
            .unwrap();
        assert_eq!((pay_de.name.as_str(), pay_de.line), ("Zahlungen", 3));
        assert_eq!(d.agents.len(), 2);
        assert_eq!(
            d.agents[&EmployeeId::from("E2")].user_id,
            UserId::from("u-2")
        );
        assert_eq!(d.agents[&EmployeeId::from("E2")].line, 3);
        let e1_qa = wanted(&loaded, "E1", "QA");
        assert_eq!((e1_qa.level.get(), e1_qa.active, e1_qa.line), (3, true, 3));
        let e2_pay = wanted(&loaded, "E2", "PAY");
        assert_eq!(
            (e2_pay.level.get(), e2_pay.active, e2_pay.line),
            (7, false, 4)
        );
        assert_eq!(d.assignments.len(), 2);
    }

    #[test]
    fn every_problem_in_three_bad_files_is_reported_at_once() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
PAY,skill,de-de,Zahlungen,,rp-1
QA,proficiency,en-us,Quality,,rp-1
QA,skill,de-de,Qualitaet,,rp-1
XS,skill,en-US,Cross-sell,,rp-1
PAY,skill,en-us,Payments,,rp-1
ONLY,skill,en-us,Only here,,rp-1
",
            b"employee_id,user_id,locale
E1,u-1,en-us
E2,u-2,de-de
E3,u-1,en-us
E1,u-4,en-us
E5,u-5,fr-fr
",
            b"employee_id,code,level,active
E1,PAY,5,true
E1,PYA,5,
E9,PAY,5,
E2,PAY,12,
E2,ONLY,3,perhaps
E1,PAY,6,
",
        );
        let expected: &[(&str, u64, u64, &str)] = &[
            ("hris/catalog.csv", 5, 2, "kind mismatch"),
            ("hris/catalog.csv", 6, 3, "locale `en-US` must be lowercase"),
            ("hris/catalog.csv", 7, 3, "listed twice, on lines 2 and 7"),
            ("hris/agents.csv", 4, 2, "share user id `u-1`"),
            ("hris/agents.csv", 5, 1, "employee `E1` is listed twice"),
            ("hris/agents.csv", 6, 3, "unknown locale"),
            ("hris/assignments.csv", 3, 2, "unknown code `PYA`"),
            ("hris/assignments.csv", 4, 1, "employee `E9` is not in"),
            ("hris/assignments.csv", 5, 3, "level 12 is outside 1–10"),
            (
                "hris/assignments.csv",
                6,
                2,
                "code `ONLY` has no variant in de-de",
            ),
            ("hris/assignments.csv", 6, 4, "active `perhaps`"),
            ("hris/assignments.csv", 7, 3, "twice with different values"),
        ];
        for &(file, line, column, needle) in expected {
            let p = find(&problems, needle);
            assert_eq!(
                (p.file.as_str(), p.line, p.column),
                (file, Some(line), Some(column)),
                "{p}"
            );
            assert!(p.is_error() && p.hint.is_some(), "{p}");
        }
        assert_eq!(problems.len(), expected.len(), "{}", show(&problems));
        // Sorted by file (catalog, agents, assignments), then line, then column.
        let order: Vec<_> = problems
            .iter()
            .map(|p| (p.file.clone(), p.line, p.column))
            .collect();
        let want: Vec<_> = expected
            .iter()
            .map(|&(f, l, c, _)| (f.to_string(), Some(l), Some(c)))
            .collect();
        assert_eq!(order, want);
    }

    #[test]
    fn a_broken_catalog_still_lets_agents_and_assignments_be_checked() {
        let problems = errors(
            b"code,kind,name\nPAY,skill,Payments\n",
            b"employee_id,user_id,locale\nE1,u-1,en-us\nE1,u-2,de-de\n",
            b"employee_id,code,level\nE1,PAY,5\nE1,PAY,6\nE1,QA,99\n",
        );
        assert_eq!(
            find(&problems, "no `locale` column").file,
            "hris/catalog.csv"
        );
        find(&problems, "employee `E1` is listed twice");
        find(&problems, "twice with different values");
        find(&problems, "level 99");
        assert!(
            !problems.iter().any(|p| p.message.contains("unknown")),
            "{}",
            show(&problems)
        );
    }

    /// The desired state with every `line` set to 0, to compare contents across row orders.
    fn without_lines(mut d: Desired) -> Desired {
        let mut catalog = Catalog::default();
        for mut entry in std::mem::take(&mut d.catalog.entries).into_values() {
            entry.line = 0;
            catalog.insert(entry);
        }
        d.catalog = catalog;
        d.agents.values_mut().for_each(|a| a.line = 0);
        d.assignments
            .values_mut()
            .flat_map(|m| m.values_mut())
            .for_each(|w| w.line = 0);
        d
    }

    #[test]
    fn row_order_does_not_change_the_result() {
        let forward = ok(CATALOG, AGENTS, ASSIGNMENTS);
        let backward = ok(
            b"description,routing_profile_id,code,kind,locale,name
,rp-1,QA,proficiency,de-de,Qualitaet
,rp-1,QA,proficiency,en-us,Quality
Kartenzahlungen,rp-1,PAY,skill,de-de,Zahlungen
Card payments,rp-1,PAY,skill,en-us,Payments
",
            b"employee_id,user_id,locale\nE2,u-2,de-de\nE1,u-1,en-us\n",
            b"employee_id,code,level,active\nE2,PAY,7,no\nE1,QA,3,\nE1,PAY,5,true\n",
        );
        assert_ne!(forward.desired, backward.desired, "lines differ");
        assert_eq!(
            without_lines(forward.desired),
            without_lines(backward.desired)
        );
    }
}

//! What a tenant dialect can carry in a user's assignments, and the desired assignments it
//! cannot, found before anything is sent.
//!
//! The routing dialect (SPEC 1.3) writes skills and proficiencies, each with a level and an
//! active flag. The users dialect (SPEC 1.5) writes one list of skills with levels: an
//! inactive assignment or a proficiency sent through it would be dropped without an error,
//! and a run would report as applied what the tenant never took. So such rows are refused
//! like any other problem in the files: each at its file, line and field, with a way out.

use crate::desired::{Code, EmployeeId, Wanted};
use crate::domain::Kind;
use crate::hris::{Loaded, sort_in_file};
use crate::problem::Problem;

/// What a dialect can carry in a user's assignments. The client crate states it for each of
/// its dialects; this crate checks the desired state against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialectCarries {
    /// The dialect's name as `skillsync.toml` spells it (`routing`, `users`), for messages.
    pub dialect: &'static str,
    /// Proficiency assignments can be written.
    pub proficiencies: bool,
    /// An assignment can be kept but inactive (an `active` flag is written).
    pub inactive_assignments: bool,
}

/// Why an assignment cannot go through a dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uncarried {
    /// It assigns a proficiency, and the dialect has none.
    Proficiency,
    /// It is inactive, and the dialect has no active flag.
    Inactive,
}

impl DialectCarries {
    /// Why an assignment of a `kind` with this `active` flag cannot go through, if it cannot.
    /// A proficiency is the first reason: removing its row answers both.
    fn refuses(&self, kind: Kind, active: bool) -> Option<Uncarried> {
        if kind == Kind::Proficiency && !self.proficiencies {
            Some(Uncarried::Proficiency)
        } else if !active && !self.inactive_assignments {
            Some(Uncarried::Inactive)
        } else {
            None
        }
    }

    /// The message and hint for one refused assignment, asked for in a file's row or on the
    /// command line.
    fn explain(&self, why: Uncarried, employee: &str, code: &Code, row: bool) -> (String, String) {
        let dialect = self.dialect;
        let (message, lacks, fix) = match why {
            Uncarried::Proficiency => (
                format!(
                    "employee `{employee}` is assigned proficiency `{code}`, but the {dialect} dialect cannot write proficiencies"
                ),
                "carries skills only",
                if row {
                    "remove the row"
                } else {
                    "assign a skill"
                },
            ),
            Uncarried::Inactive => (
                format!(
                    "employee `{employee}` is assigned `{code}` inactive, but the {dialect} dialect has no active flag"
                ),
                "has no active flag",
                if row {
                    "remove the row to take the skill away"
                } else {
                    "leave out --inactive"
                },
            ),
        };
        let hint = format!(
            "the {dialect} dialect {lacks}: {fix}, or use dialect = \"routing\" in [tenant]"
        );
        (message, hint)
    }
}

/// Every row of `assignments.csv` the dialect cannot carry: rows assigning a proficiency when
/// it has none, and `active = false` rows when it has no active flag. Each problem is an
/// error at the row's line and field (`code` or `active`), sorted by line.
pub fn uncarried(loaded: &Loaded, carries: &DialectCarries) -> Vec<Problem> {
    let desired = &loaded.desired;
    let file = &desired.files.assignments;
    let mut problems: Vec<Problem> = desired
        .assignments
        .iter()
        .flat_map(|(employee, wanted)| wanted.iter().map(move |(code, w)| (employee, code, w)))
        .filter_map(|(employee, code, w): (&EmployeeId, &Code, &Wanted)| {
            let kind = desired.catalog.kind_of(code)?;
            let why = carries.refuses(kind, w.active)?;
            let (message, hint) = carries.explain(why, employee.as_str(), code, true);
            let field = match why {
                Uncarried::Proficiency => "code",
                Uncarried::Inactive => "active",
            };
            let problem = Problem::error(file, message).at_line(w.line).hint(hint);
            Some(match loaded.assignment_columns.of(field) {
                Some(column) => problem.at_field(field, column),
                None => problem,
            })
        })
        .collect();
    sort_in_file(&mut problems);
    problems
}

/// The loaded state when the dialect carries every row; otherwise every problem
/// [`uncarried`] finds together with the files' warnings, sorted by file then line as
/// [`crate::hris::read_desired`] sorts them.
pub fn refuse_uncarried(loaded: Loaded, carries: &DialectCarries) -> Result<Loaded, Vec<Problem>> {
    let refused = uncarried(&loaded, carries);
    if refused.is_empty() {
        return Ok(loaded);
    }
    let assignments = &loaded.desired.files.assignments;
    let (mut in_assignments, mut problems): (Vec<Problem>, Vec<Problem>) = loaded
        .warnings
        .into_iter()
        .partition(|p| &p.file == assignments);
    in_assignments.extend(refused);
    sort_in_file(&mut in_assignments);
    problems.append(&mut in_assignments);
    Err(problems)
}

/// The one assignment `skillsync assign` was asked for on its command line (`code` of `kind`,
/// with this `active` flag), checked the same way: `None` when the dialect carries it, else
/// an error about the command line naming the argument at fault (`CODE` or `--inactive`).
pub fn uncarried_assignment(
    carries: &DialectCarries,
    employee: &EmployeeId,
    code: &Code,
    kind: Kind,
    active: bool,
) -> Option<Problem> {
    let why = carries.refuses(kind, active)?;
    let (message, hint) = carries.explain(why, employee.as_str(), code, false);
    let argument = match why {
        Uncarried::Proficiency => "CODE",
        Uncarried::Inactive => "--inactive",
    };
    let mut problem = Problem::error("command line", message).hint(hint);
    problem.field = Some(argument.to_string());
    Some(problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hris::{Source, read_desired};
    use crate::problem::Severity;

    const USERS: DialectCarries = DialectCarries {
        dialect: "users",
        proficiencies: false,
        inactive_assignments: false,
    };
    const ROUTING: DialectCarries = DialectCarries {
        dialect: "routing",
        proficiencies: true,
        inactive_assignments: true,
    };

    const CATALOG: &str = "code,kind,locale,name,description,routing_profile_id
Sales_Upgrades,skill,en-us,Sales_Upgrades,,rp-1
Billing,skill,en-us,Billing,,rp-1
QA_Coaching,proficiency,en-us,QA_Coaching,,rp-1
";
    const AGENTS: &str = "employee_id,user_id,locale\nE0001,u-1,en-us\nE0002,u-2,en-us\n";

    fn load(agents: &str, assignments: &str) -> Loaded {
        let source = |name: &str, text: &str| Source {
            name: name.to_string(),
            reader: std::io::Cursor::new(text.as_bytes().to_vec()),
        };
        read_desired(
            source("hris/catalog.csv", CATALOG),
            source("hris/agents.csv", agents),
            source("hris/assignments.csv", assignments),
        )
        .unwrap_or_else(|p| panic!("{p:?}"))
    }

    /// file, line, column and field of a problem.
    fn at(p: &Problem) -> (&str, Option<u64>, Option<u64>, Option<&str>) {
        (p.file.as_str(), p.line, p.column, p.field.as_deref())
    }

    #[test]
    fn an_inactive_row_is_an_error_at_its_active_field_when_the_dialect_has_no_flag() {
        // `active` is the second column here: the problem points where the header put it.
        let loaded = load(
            AGENTS,
            "employee_id,active,code,level\nE0001,true,Billing,5\nE0001,false,Sales_Upgrades,10\nE0002,,Sales_Upgrades,3\n",
        );
        let problems = uncarried(&loaded, &USERS);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(3), Some(2), Some("active"))
        );
        assert!(p.is_error());
        assert!(p.message.contains("`E0001`") && p.message.contains("`Sales_Upgrades`"));
        assert!(
            p.message.contains("the users dialect has no active flag"),
            "{p}"
        );
        assert_eq!(
            p.hint.as_deref(),
            Some(
                "the users dialect has no active flag: remove the row to take the skill away, \
                 or use dialect = \"routing\" in [tenant]"
            )
        );
        assert!(uncarried(&loaded, &ROUTING).is_empty());
    }

    #[test]
    fn a_proficiency_row_is_an_error_at_its_code_field_when_the_dialect_has_none() {
        let loaded = load(
            AGENTS,
            "employee_id,code,level,active\nE0001,Sales_Upgrades,10,true\nE0001,QA_Coaching,3,\nE0002,QA_Coaching,4,false\nE0002,Billing,2,no\n",
        );
        let problems = uncarried(&loaded, &USERS);
        let found: Vec<_> = problems.iter().map(at).collect();
        // Sorted by line; the inactive proficiency is one problem, about the proficiency.
        assert_eq!(
            found,
            [
                ("hris/assignments.csv", Some(3), Some(2), Some("code")),
                ("hris/assignments.csv", Some(4), Some(2), Some("code")),
                ("hris/assignments.csv", Some(5), Some(4), Some("active")),
            ]
        );
        assert!(
            problems[0].message.contains(
                "proficiency `QA_Coaching`, but the users dialect cannot write proficiencies"
            ),
            "{}",
            problems[0]
        );
        assert!(
            problems[0]
                .hint
                .as_deref()
                .unwrap()
                .starts_with("the users dialect carries skills only: remove the row")
        );
        assert!(uncarried(&loaded, &ROUTING).is_empty());
    }

    #[test]
    fn a_dialect_that_carries_every_row_refuses_nothing() {
        let text =
            "employee_id,code,level,active\nE0001,Sales_Upgrades,10,true\nE0002,Billing,2,\n";
        let loaded = load(AGENTS, text);
        assert!(uncarried(&loaded, &USERS).is_empty());
        let kept = refuse_uncarried(loaded.clone(), &USERS).expect("carried");
        assert_eq!(kept.desired, loaded.desired);
        // Without an `active` column every row is active.
        let loaded = load(AGENTS, "employee_id,code,level\nE0001,Billing,10\n");
        assert!(uncarried(&loaded, &USERS).is_empty());
    }

    #[test]
    fn refused_rows_come_back_with_the_files_warnings_in_file_then_line_order() {
        let loaded = load(
            "employee_id,user_id,locale,team\nE0001,u-1,en-us,blue\nE0002,u-2,en-us,red\n",
            "employee_id,code,level,active,note\nE0001,Billing,5,false,x\nE0001,Billing,5,false,x\nE0002,Sales_Upgrades,2,,y\n",
        );
        assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
        let problems = refuse_uncarried(loaded, &USERS).unwrap_err();
        let order: Vec<_> = problems
            .iter()
            .map(|p| (p.file.as_str(), p.line, p.severity))
            .collect();
        assert_eq!(
            order,
            [
                ("hris/agents.csv", Some(1), Severity::Warning),
                ("hris/assignments.csv", Some(1), Severity::Warning),
                ("hris/assignments.csv", Some(2), Severity::Error),
                ("hris/assignments.csv", Some(3), Severity::Warning),
            ]
        );
    }

    #[test]
    fn one_assignment_from_the_command_line_is_checked_the_same_way() {
        let (employee, code) = (EmployeeId::from("E0001"), Code::from("Sales_Upgrades"));
        let p = uncarried_assignment(&USERS, &employee, &code, Kind::Skill, false).unwrap();
        assert_eq!(at(&p), ("command line", None, None, Some("--inactive")));
        assert!(
            p.message.contains("the users dialect has no active flag"),
            "{p}"
        );
        assert!(p.hint.as_deref().unwrap().contains("leave out --inactive"));
        let qa = Code::from("QA_Coaching");
        let p = uncarried_assignment(&USERS, &employee, &qa, Kind::Proficiency, true).unwrap();
        assert_eq!(p.field.as_deref(), Some("CODE"));
        assert!(p.message.contains("cannot write proficiencies"), "{p}");
        assert_eq!(
            uncarried_assignment(&USERS, &employee, &code, Kind::Skill, true),
            None
        );
        for (kind, active) in [(Kind::Skill, false), (Kind::Proficiency, false)] {
            assert_eq!(
                uncarried_assignment(&ROUTING, &employee, &code, kind, active),
                None
            );
        }
    }
}

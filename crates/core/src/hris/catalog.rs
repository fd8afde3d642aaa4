//! `catalog.csv`: one row per locale variant of a code, every definition skillsync owns.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use super::Source;
use super::fx::FxMap;
use super::input::{Column, required};
use super::rules::{MAX_ID, MAX_LOCALE, MAX_NAME, MAX_WORD, Rule, check};
use super::table::{Shape, Table, locale_problem, parse_locale};
use crate::desired::{Catalog, CatalogEntry, Code};
use crate::domain::{Kind, Locale};
use crate::problem::Problems;

const CATALOG_COLUMNS: &[Column] = &[
    required("code"),
    required("kind"),
    required("locale"),
    required("name"),
    required("description"),
    required("routing_profile_id"),
];
const C_CODE: usize = 0;
const C_KIND: usize = 1;
const C_LOCALE: usize = 2;
const C_NAME: usize = 3;
const C_DESCRIPTION: usize = 4;
const C_PROFILE: usize = 5;

/// The catalog as far as it could be read.
#[derive(Debug)]
pub(super) struct CatalogRead {
    /// `None` when the file could not be used at all: checks against it are skipped.
    pub(super) catalog: Option<Catalog>,
    /// Codes with a row that was wrong: a missing variant of them is not reported again.
    pub(super) broken_codes: HashSet<String>,
    /// Locales (lowercased) of rows that were wrong: agents in them are not "unknown locale".
    pub(super) broken_locales: HashSet<String>,
}

/// Reads `catalog.csv`, pushing every problem found.
pub(super) fn read_catalog<R: Read>(source: Source<R>, problems: &mut Problems) -> CatalogRead {
    let mut read = CatalogRead {
        catalog: None,
        broken_codes: HashSet::new(),
        broken_locales: HashSet::new(),
    };
    let Some(mut table) = Table::open(source, CATALOG_COLUMNS, problems) else {
        return read;
    };
    let mut rows = Rows::default();
    while let Some((line, shape)) = table.next(problems) {
        let ok = shape == Shape::Whole && rows.read(&table, line, problems);
        if !ok {
            let (code, locale_tag) = (table.get(C_CODE), table.get(C_LOCALE));
            // Too long to match any valid row, so not worth keeping.
            if !code.is_empty() && code.len() <= 4 * MAX_ID {
                read.broken_codes.insert(code.to_string());
            }
            if !locale_tag.is_empty() && locale_tag.len() <= MAX_LOCALE {
                read.broken_locales.insert(locale_tag.to_ascii_lowercase());
            }
        }
    }
    if table.finish("one row per code and locale", problems) {
        read.catalog = Some(rows.catalog);
    }
    read
}

/// The valid rows so far, and what later rows are checked against.
#[derive(Default)]
struct Rows {
    catalog: Catalog,
    /// Each code's kind, and the line that first said it.
    first_kind: HashMap<String, (Kind, u64)>,
    /// One tenant definition (kind, name, locale) can belong to one code only: two codes
    /// claiming it would each remove the other's assignments on every run.
    definition_owner: HashMap<(Kind, String, Locale), (String, u64)>,
    locales: FxMap<String, Locale>,
}

impl Rows {
    /// Checks the current row and keeps it when it is valid. False when it was wrong.
    fn read<R: Read>(&mut self, table: &Table<R>, line: u64, problems: &mut Problems) -> bool {
        let Some((kind, locale)) = self.fields(table, line, problems) else {
            return false;
        };
        let code = table.get(C_CODE);
        self.kind_agrees(table, line, code, kind, problems)
            && self.claim(table, line, code, kind, &locale, problems)
            && self.insert(table, line, code, kind, locale, problems)
    }

    /// Every field of the row on its own: the kind and locale when all are valid.
    fn fields<R: Read>(
        &mut self,
        table: &Table<R>,
        line: u64,
        problems: &mut Problems,
    ) -> Option<(Kind, Locale)> {
        let mut ok = true;
        for (k, rule) in [
            (C_CODE, Rule::Text(MAX_ID)),
            (C_NAME, Rule::Text(MAX_NAME)),
            (C_DESCRIPTION, Rule::Description),
            (C_PROFILE, Rule::Id),
        ] {
            ok &= check(table, line, k, rule, problems);
        }
        if table.get(C_CODE).is_empty() {
            ok = false;
            problems.push(
                "empty codes",
                table
                    .error(line, C_CODE, "code is empty")
                    .hint("give the HRIS code this row is a locale variant of"),
            );
        }
        let kind = if check(table, line, C_KIND, Rule::Word(MAX_WORD), problems) {
            parse_kind(table, line, problems)
        } else {
            None
        };
        let locale_tag = table.get(C_LOCALE);
        let locale = if !check(table, line, C_LOCALE, Rule::Word(MAX_LOCALE), problems) {
            None
        } else {
            match parse_locale(&mut self.locales, locale_tag) {
                Ok(locale) => Some(locale),
                Err(e) => {
                    problems.push(
                        "invalid locales",
                        locale_problem(table, line, C_LOCALE, locale_tag, &e),
                    );
                    None
                }
            }
        };
        for (k, what) in [
            (C_NAME, "the definition's name in the tenant"),
            (
                C_PROFILE,
                "the id of the routing profile the definition belongs to",
            ),
        ] {
            if table.get(k).is_empty() {
                ok = false;
                problems.push(
                    "empty values",
                    table
                        .error(line, k, format!("{} is empty", table.columns[k].name))
                        .hint(format!("give {what}")),
                );
            }
        }
        if ok { kind.zip(locale) } else { None }
    }

    /// A code has one kind in every locale: false (reported) when an earlier row disagrees.
    fn kind_agrees<R: Read>(
        &mut self,
        table: &Table<R>,
        line: u64,
        code: &str,
        kind: Kind,
        problems: &mut Problems,
    ) -> bool {
        match self.first_kind.get(code) {
            Some(&(earlier, earlier_line)) if earlier != kind => {
                problems.push("kind mismatches", 
                    table
                        .error(
                            line,
                            C_KIND,
                            format!(
                                "kind mismatch: code `{code}` is a {kind} here but a {earlier} on line {earlier_line}"
                            ),
                        )
                        .hint(format!(
                            "a code has one kind in every locale: make line {line} and line {earlier_line} agree"
                        )),
                );
                false
            }
            Some(_) => true,
            None => {
                self.first_kind.insert(code.to_string(), (kind, line));
                true
            }
        }
    }

    /// Claims the row's tenant definition for its code: false (reported) when another code
    /// claimed it first.
    fn claim<R: Read>(
        &mut self,
        table: &Table<R>,
        line: u64,
        code: &str,
        kind: Kind,
        locale: &Locale,
        problems: &mut Problems,
    ) -> bool {
        let name = table.get(C_NAME);
        let claim = (kind, name.to_string(), locale.clone());
        match self.definition_owner.get(&claim) {
            Some((other, other_line)) if other != code => {
                problems.push("definitions claimed by two codes", 
                    table
                        .error(
                            line,
                            C_NAME,
                            format!(
                                "{kind} `{name}` ({locale}) is already the definition of code `{other}` on line {other_line}"
                            ),
                        )
                        .hint(format!(
                            "one tenant definition belongs to one code: give line {line} its own name, or merge code `{code}` into `{other}`"
                        )),
                );
                false
            }
            Some(_) => true,
            None => {
                self.definition_owner
                    .insert(claim, (code.to_string(), line));
                true
            }
        }
    }

    /// Adds the row to the catalog: false (reported) when its code and locale are listed
    /// already.
    fn insert<R: Read>(
        &mut self,
        table: &Table<R>,
        line: u64,
        code: &str,
        kind: Kind,
        locale: Locale,
        problems: &mut Problems,
    ) -> bool {
        let key = (Code::from(code), locale);
        if let Some(earlier) = self.catalog.entries.get(&key) {
            problems.push(
                "codes listed twice in a locale",
                table
                    .error(
                        line,
                        C_LOCALE,
                        format!(
                            "code `{code}` in locale {} is listed twice, on lines {} and {line}",
                            key.1, earlier.line
                        ),
                    )
                    .hint(format!(
                        "keep one row per code and locale: remove line {line} or line {}",
                        earlier.line
                    )),
            );
            return false;
        }
        let (code, locale) = key;
        self.catalog.insert(CatalogEntry {
            code,
            kind,
            locale,
            name: table.get(C_NAME).to_string(),
            description: table.get(C_DESCRIPTION).to_string(),
            routing_profile_id: table.get(C_PROFILE).to_string(),
            line,
        });
        true
    }
}

/// `kind`: `skill` or `proficiency`, exactly.
fn parse_kind<R: Read>(table: &Table<R>, line: u64, problems: &mut Problems) -> Option<Kind> {
    let kind_text = table.get(C_KIND);
    match kind_text {
        "skill" => return Some(Kind::Skill),
        "proficiency" => return Some(Kind::Proficiency),
        _ => {}
    }
    let message = if kind_text.is_empty() {
        "kind is empty".to_string()
    } else {
        format!("kind `{kind_text}` is not `skill` or `proficiency`")
    };
    let lower = kind_text.to_ascii_lowercase();
    let hint = if lower == "skill" || lower == "proficiency" {
        format!("write `{lower}`, in lower case")
    } else {
        "write `skill` for a definition that routes, `proficiency` for one that does not"
            .to_string()
    };
    problems.push(
        "invalid kinds",
        table.error(line, C_KIND, message).hint(hint),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn catalog_empty_code_name_or_routing_profile_is_an_error() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
,skill,en-us,Payments,,rp-1
PAY,skill,en-us,,,rp-1
PAY,skill,de-de,Zahlungen,,
",
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        assert_eq!(
            at(find(&problems, "code is empty")),
            ("hris/catalog.csv", Some(2), Some(1), Some("code"))
        );
        assert_eq!(
            at(find(&problems, "name is empty")),
            ("hris/catalog.csv", Some(3), Some(4), Some("name"))
        );
        let p = find(&problems, "routing_profile_id is empty");
        assert_eq!(
            at(p),
            (
                "hris/catalog.csv",
                Some(4),
                Some(6),
                Some("routing_profile_id")
            )
        );
        assert!(p.hint.is_some());
        // PAY's rows were wrong, so the assignment is not reported as an unknown code too.
        assert_eq!(problems.len(), 3, "{}", show(&problems));
    }

    #[test]
    fn catalog_kind_other_than_skill_or_proficiency_is_an_error() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,Skill,en-us,Payments,,rp-1
QA,queue,en-us,Quality,,rp-1
",
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(&problems, "kind `Skill` is not `skill` or `proficiency`");
        assert_eq!(at(p), ("hris/catalog.csv", Some(2), Some(2), Some("kind")));
        assert_eq!(p.hint.as_deref(), Some("write `skill`, in lower case"));
        assert_eq!(find(&problems, "kind `queue`").line, Some(3));
    }

    #[test]
    fn catalog_malformed_or_uppercase_locale_is_an_error() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-US,Payments,,rp-1
QA,skill,english,Quality,,rp-1
XS,skill,,Cross-sell,,rp-1
",
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(
            &problems,
            "locale `en-US` must be lowercase (write `en-us`)",
        );
        assert_eq!(
            at(p),
            ("hris/catalog.csv", Some(2), Some(3), Some("locale"))
        );
        assert!(p.hint.as_deref().unwrap().starts_with("write `en-us`"));
        assert_eq!(
            find(&problems, "`english` is not a locale tag").line,
            Some(3)
        );
        assert_eq!(find(&problems, "locale is empty").line, Some(4));
        // E1 (en-us) is not an "unknown locale": the en-US row was meant for it.
        assert_eq!(problems.len(), 3, "{}", show(&problems));
    }

    #[test]
    fn catalog_kind_mismatch_is_reported_at_the_later_line() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
QA,proficiency,en-us,Quality,,rp-1
PAY,proficiency,de-de,Zahlungen,,rp-1
",
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(&problems, "kind mismatch");
        assert_eq!(at(p), ("hris/catalog.csv", Some(4), Some(2), Some("kind")));
        assert!(
            p.message.contains("proficiency here but a skill on line 2"),
            "{p}"
        );
        assert!(p.hint.as_deref().unwrap().contains("line 4 and line 2"));
        assert_eq!(problems.len(), 1, "{}", show(&problems));
    }

    #[test]
    fn catalog_two_codes_naming_the_same_definition_is_an_error() {
        let catalog = "code,kind,locale,name,description,routing_profile_id\nBILLING,skill,en-us,Billing_Dispute_Resolution,,p1\nBILL_DISPUTE,skill,en-us,Billing_Dispute_Resolution,,p1\n";
        let problems = read_desired(
            Source {
                name: "catalog.csv".into(),
                reader: catalog.as_bytes(),
            },
            Source {
                name: "agents.csv".into(),
                reader: &b"employee_id,user_id,locale\nE1,u1,en-us\n"[..],
            },
            Source {
                name: "assignments.csv".into(),
                reader: &b"employee_id,code,level\nE1,BILLING,5\n"[..],
            },
        )
        .unwrap_err();
        let p = problems
            .iter()
            .find(|p| {
                p.message
                    .contains("already the definition of code `BILLING`")
            })
            .expect("reported");
        assert_eq!(
            (p.file.as_str(), p.line, p.field.as_deref()),
            ("catalog.csv", Some(3), Some("name"))
        );
    }

    #[test]
    fn catalog_duplicate_code_and_locale_names_both_lines() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
QA,proficiency,en-us,Quality,,rp-1
PAY,skill,en-us,Payments again,,rp-1
",
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(&problems, "listed twice");
        assert_eq!(
            p.message,
            "code `PAY` in locale en-us is listed twice, on lines 2 and 4"
        );
        assert_eq!(
            at(p),
            ("hris/catalog.csv", Some(4), Some(3), Some("locale"))
        );
    }
}

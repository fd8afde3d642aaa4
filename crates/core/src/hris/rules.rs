//! The rules every value of the HRIS files must follow beyond its own meaning: a length limit
//! per field, ids shaped as ids, and no text a spreadsheet would run as a formula. The limits
//! are documented in `docs/hris-files.md`; keep the two together.

use std::io::Read;

use super::table::Table;
use crate::domain::{Locale, LocaleError};
use crate::problem::Problems;

/// Longest code, employee id, user id or routing profile id, in characters.
pub(crate) const MAX_ID: usize = 128;
/// Longest definition name, in characters.
pub(super) const MAX_NAME: usize = 200;
/// Longest definition description, in characters.
pub(super) const MAX_DESCRIPTION: usize = 1000;
/// Longest locale tag: BCP 47 tags in practical use are at most 35 characters.
pub(crate) const MAX_LOCALE: usize = 35;
/// Longest `kind`, `level` or `active` value worth reading: anything longer is wrong anyway,
/// and is refused before it is echoed in a message.
pub(crate) const MAX_WORD: usize = 32;

/// What a field holds, and so which rules it follows.
#[derive(Clone, Copy)]
pub(crate) enum Rule {
    /// A tenant id (`user_id`, `routing_profile_id`): ASCII letters, digits, `.`, `_`, `:` and
    /// `-`, starting with a letter or digit, at most [`MAX_ID`] characters. UUIDs and the
    /// ids people use in tests (`u-1`) fit; a path (`../x`) or a URL does not.
    Id,
    /// Text people type (codes, employee ids, names) of at most this many characters, on one
    /// line, not starting like a formula.
    Text(usize),
    /// A description: like [`Rule::Text`], but it may hold tabs and line breaks.
    Description,
    /// A value read as a word or number (`kind`, `level`, `active`, `locale`): only its length
    /// is checked here, so a huge value is refused without being copied into a message.
    Word(usize),
}

/// The characters a spreadsheet takes as the start of a formula (OWASP's CSV injection list).
/// A value starting with one would run when a report or export of it is opened.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Why a value breaks its field's rule: the kind of problem (for the per-kind summary), what
/// is wrong and what to do. Shared by the CSV readers and the HRIS event parser, so a value is
/// judged and explained the same way wherever it comes from.
pub(crate) struct Refusal {
    /// The problem kind, as [`Problems::push`] counts it.
    pub(crate) kind: &'static str,
    /// What is wrong.
    pub(crate) message: String,
    /// What to do about it.
    pub(crate) hint: String,
}

/// Checks column `k` of the current row against `rule`, pushing a problem at the field when it
/// breaks it. True when the value is fine (an empty value is: emptiness is the reader's call).
pub(super) fn check<R: Read>(
    table: &Table<R>,
    line: u64,
    k: usize,
    rule: Rule,
    problems: &mut Problems,
) -> bool {
    let value = table.get(k);
    if value.is_empty() {
        return true;
    }
    match refusal(table.columns[k].name, value, rule) {
        None => true,
        Some(r) => {
            problems.push(r.kind, table.error(line, k, r.message).hint(r.hint));
            false
        }
    }
}

/// Why a non-empty `value` of the field named `field` breaks `rule`, if it does.
pub(crate) fn refusal(field: &str, value: &str, rule: Rule) -> Option<Refusal> {
    let max = match rule {
        Rule::Id => MAX_ID,
        Rule::Text(max) | Rule::Word(max) => max,
        Rule::Description => MAX_DESCRIPTION,
    };
    // No more characters than bytes: most values are decided by their length alone, without
    // decoding them. Counting stops one past the limit: a megabyte value costs no more than a
    // short one.
    if value.len() > max && value.chars().nth(max).is_some() {
        let long = value.chars().count();
        return Some(Refusal {
            kind: "values too long",
            message: format!("{field} is {long} characters long, more than the {max} allowed"),
            hint: format!(
                "shorten it to at most {max} characters (it starts `{}`)",
                excerpt(value)
            ),
        });
    }
    match rule {
        Rule::Word(_) => None,
        Rule::Id => id_refusal(field, value),
        Rule::Text(_) | Rule::Description => {
            text_refusal(field, value, matches!(rule, Rule::Description))
        }
    }
}

fn id_refusal(field: &str, value: &str) -> Option<Refusal> {
    if is_id(value) {
        return None;
    }
    Some(Refusal {
        kind: "values that are not ids",
        message: format!("{field} `{}` is not an id", excerpt(value)),
        hint: format!(
            "give the tenant's id (such as a UUID): letters, digits, `.`, `_`, `:` or `-`, \
             starting with a letter or digit, at most {MAX_ID} characters"
        ),
    })
}

/// `[A-Za-z0-9][A-Za-z0-9._:-]*` (the length is checked before).
pub(super) fn is_id(value: &str) -> bool {
    let mut bytes = value.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn text_refusal(field: &str, value: &str, multiline: bool) -> Option<Refusal> {
    if let Some(first) = value.chars().next().filter(|c| FORMULA_START.contains(c)) {
        return Some(Refusal {
            kind: "values that start like a formula",
            message: format!(
                "{field} `{}` starts with {}, which a spreadsheet runs as a formula",
                excerpt(value),
                shown(first)
            ),
            hint: format!(
                "remove the leading {}: values starting with =, +, -, @, a tab or a carriage \
                 return are refused so that reports and exports cannot carry formulas",
                // Only event values can start with these: the CSV readers trim them.
                match first {
                    '\t' => "tab".to_string(),
                    '\r' => "carriage return".to_string(),
                    c => shown(c),
                }
            ),
        });
    }
    let allowed = |c: char| multiline && matches!(c, '\t' | '\n' | '\r');
    let c = value.chars().find(|&c| c.is_control() && !allowed(c))?;
    let hint = if multiline {
        "remove it; tabs and line breaks are the only control characters a description may hold"
    } else {
        "remove it: this field is one line of text"
    };
    Some(Refusal {
        kind: "values with control characters",
        message: format!(
            "{field} contains the control character U+{:04X}",
            u32::from(c)
        ),
        hint: hint.to_string(),
    })
}

/// What is wrong with a locale tag `Locale::parse` refused, and what to write instead (the
/// message and the hint).
pub(crate) fn locale_refusal(tag: &str, e: &LocaleError) -> (String, String) {
    let suggestion = locale_suggestion(tag);
    let hint = match (e, &suggestion) {
        (LocaleError::NotLowercase(_), Some(fixed)) => {
            format!("write `{fixed}`: locales are compared exactly, in lower case")
        }
        (_, Some(fixed)) => {
            format!("write `{fixed}`: a lowercase language-region tag joined by `-`")
        }
        (LocaleError::Malformed(_), None) if tag.is_empty() => {
            "give a lowercase locale tag such as en-us or de-de".to_string()
        }
        _ => "use a lowercase language-region tag such as en-us, en-gb or de-de".to_string(),
    };
    let message = match (e, &suggestion) {
        _ if tag.is_empty() => "locale is empty".to_string(),
        // Lowercasing alone would not make it a tag (`en_US`): the domain's "write `en_us`"
        // would send the user to another invalid value.
        (LocaleError::NotLowercase(_), None) => {
            format!(
                "`{}` is not a locale tag such as en-us or de-de",
                excerpt(tag)
            )
        }
        (LocaleError::NotLowercase(_), Some(fixed)) => format!(
            "locale `{}` must be lowercase (write `{fixed}`)",
            excerpt(tag)
        ),
        (LocaleError::Malformed(_), _) => {
            format!(
                "`{}` is not a locale tag such as en-us or de-de",
                excerpt(tag)
            )
        }
    };
    (message, hint)
}

/// The locale tag someone most likely meant: lower case, `_` written `-` (`en_US` → `en-us`),
/// if that is a valid tag.
fn locale_suggestion(tag: &str) -> Option<String> {
    let fixed = tag.to_ascii_lowercase().replace('_', "-");
    (fixed != tag && Locale::parse(&fixed).is_ok()).then_some(fixed)
}

/// A character as a message shows it: printable ones in backticks, the rest by name.
fn shown(c: char) -> String {
    match c {
        '\t' => "a tab".to_string(),
        '\r' => "a carriage return".to_string(),
        c => format!("`{c}`"),
    }
}

/// The start of a value, for messages: a hostile value is never copied whole into one.
pub(crate) fn excerpt(value: &str) -> String {
    const SHOWN: usize = 40;
    let mut chars = value.char_indices();
    match chars.nth(SHOWN) {
        None => value.chars().map(visible).collect(),
        Some((end, _)) => {
            let mut shown: String = value[..end].chars().map(visible).collect();
            shown.push('…');
            shown
        }
    }
}

/// Control characters would garble a terminal: shown as the replacement character.
fn visible(c: char) -> char {
    if c.is_control() { '\u{FFFD}' } else { c }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn leak(text: String) -> &'static [u8] {
        Box::leak(text.into_bytes().into_boxed_slice())
    }

    #[test]
    fn a_huge_description_or_employee_id_is_refused_without_being_echoed() {
        let catalog = leak(format!(
            "code,kind,locale,name,description,routing_profile_id\n\
             PAY,skill,en-us,Payments,{},rp-1\nPAY,skill,de-de,Zahlungen,,rp-1\n\
             QA,proficiency,en-us,Quality,,rp-1\nQA,proficiency,de-de,Qualitaet,,rp-1\n",
            "d".repeat(1 << 20)
        ));
        let agents = leak(format!(
            "employee_id,user_id,locale\nE1,u-1,en-us\n{},u-2,de-de\n",
            "E".repeat(100_000)
        ));
        let problems = errors(catalog, agents, ASSIGNMENTS);
        let p = find(&problems, "description is 1048576 characters long");
        assert_eq!(
            at(p),
            ("hris/catalog.csv", Some(2), Some(5), Some("description"))
        );
        let p = find(&problems, "employee_id is 100000 characters long");
        assert_eq!(
            at(p),
            ("hris/agents.csv", Some(3), Some(1), Some("employee_id"))
        );
        assert!(
            problems.iter().all(|p| format!("{p}").len() < 1000),
            "{}",
            show(&problems)
        );
        // The limits themselves are allowed.
        let catalog = leak(format!(
            "code,kind,locale,name,description,routing_profile_id\n{},skill,en-us,{},{},{}\n",
            "C".repeat(MAX_ID),
            "n".repeat(MAX_NAME),
            "é".repeat(MAX_DESCRIPTION),
            "r".repeat(MAX_ID)
        ));
        ok(
            catalog,
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            leak(format!(
                "employee_id,code,level\nE1,{},5\n",
                "C".repeat(MAX_ID)
            )),
        );
    }

    /// Lengths are counted in characters, whatever their bytes: a value is measured by its
    /// byte length only when that alone shows it is within the limit.
    #[test]
    fn a_limit_counts_characters_not_bytes() {
        let max = MAX_DESCRIPTION;
        for (value, refused) in [
            ("é".repeat(max), false),
            ("é".repeat(max + 1), true),
            ("d".repeat(max), false),
            ("d".repeat(max + 1), true),
            (format!("{}é", "d".repeat(max - 1)), false),
        ] {
            let refusal = refusal("description", &value, Rule::Description);
            assert_eq!(
                refusal.is_some(),
                refused,
                "{} characters, {} bytes",
                value.chars().count(),
                value.len()
            );
            if let Some(refusal) = refusal {
                assert_eq!(
                    refusal.message,
                    format!(
                        "description is {} characters long, more than the {max} allowed",
                        max + 1
                    )
                );
            }
        }
    }

    #[test]
    fn values_starting_like_a_formula_are_refused_in_typed_text() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,=HYPERLINK(\"x\"),Card payments,rp-1
+QA,proficiency,en-us,Quality,,rp-1
XS,skill,en-us,Cross-sell,@SUM(A1),rp-1
",
            b"employee_id,user_id,locale\n-E1,u-1,en-us\n\t=E2,u-2,en-us\n",
            b"employee_id,code,level\n-E1,PAY,5\nE3,=PAY,5\n",
        );
        for (needle, file, line, field) in [
            ("name `=HYPERLINK", "hris/catalog.csv", 2, "name"),
            ("code `+QA`", "hris/catalog.csv", 3, "code"),
            ("description `@SUM", "hris/catalog.csv", 4, "description"),
            ("employee_id `-E1`", "hris/agents.csv", 2, "employee_id"),
            ("employee_id `=E2`", "hris/agents.csv", 3, "employee_id"),
            (
                "employee_id `-E1`",
                "hris/assignments.csv",
                2,
                "employee_id",
            ),
            ("code `=PAY`", "hris/assignments.csv", 3, "code"),
        ] {
            let p = problems
                .iter()
                .find(|p| p.file == file && p.message.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in {file}:\n{}", show(&problems)));
            assert_eq!(p.line, Some(line), "{p}");
            assert_eq!(p.field.as_deref(), Some(field), "{p}");
            assert!(
                p.hint.as_deref().unwrap().starts_with("remove the leading"),
                "{p}"
            );
        }
    }

    #[test]
    fn a_user_or_routing_profile_id_that_is_not_an_id_is_refused() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp 1
",
            b"employee_id,user_id,locale\nE1,../../etc/passwd,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(&problems, "user_id `../../etc/passwd` is not an id");
        assert_eq!(
            at(p),
            ("hris/agents.csv", Some(2), Some(2), Some("user_id"))
        );
        let p = find(&problems, "routing_profile_id `rp 1` is not an id");
        assert_eq!(p.line, Some(2));
        assert_eq!(problems.len(), 2, "{}", show(&problems));
    }

    #[test]
    fn an_underscored_locale_is_told_its_dashed_form() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE1,u-1,en_US\nE2,u-2,de_de\n",
            ASSIGNMENTS,
        );
        let p = find(
            &problems,
            "locale `en_US` must be lowercase (write `en-us`)",
        );
        assert!(
            p.hint.as_deref().unwrap().starts_with("write `en-us`"),
            "{p}"
        );
        assert!(!format!("{p}").contains("en_us"), "{p}");
        let p = find(&problems, "`de_de` is not a locale tag");
        assert!(
            p.hint.as_deref().unwrap().starts_with("write `de-de`"),
            "{p}"
        );
    }

    #[test]
    fn repeated_rows_are_summarised_after_the_first_twenty_of_each_kind() {
        let mut assignments = String::from("employee_id,code,level\nE1,PAY,5\n");
        for _ in 0..1000 {
            assignments.push_str("E1,PAY,5\nE2,PAY,7\n");
        }
        let loaded = ok(CATALOG, AGENTS, leak(assignments));
        let warnings = &loaded.warnings;
        assert_eq!(warnings.len(), 21, "{}", show(warnings));
        let summary = find(warnings, "more like this");
        assert_eq!(
            summary.message,
            "… and 1979 more like this (repeated assignments)"
        );
        assert_eq!(summary.severity, Severity::Warning);
        assert_eq!(summary.file, "hris/assignments.csv");
        // Errors are summarised the same way, and still block.
        let mut assignments = String::from("employee_id,code,level\n");
        for _ in 0..50 {
            assignments.push_str("E1,PAY,11\n");
        }
        let problems = errors(CATALOG, AGENTS, leak(assignments));
        assert_eq!(problems.len(), 21, "{}", show(&problems));
        let summary = find(&problems, "more like this");
        assert_eq!(summary.message, "… and 30 more like this (invalid levels)");
        assert_eq!(
            (summary.line, summary.severity),
            (Some(22), Severity::Error)
        );
    }

    #[test]
    fn ids_are_letters_digits_and_a_few_separators() {
        for ok in [
            "u-1",
            "be466c2f-c8c7-4a76-b637-03c41f8e6cf6",
            "user.name_1:x",
            "7",
        ] {
            assert!(is_id(ok), "{ok}");
        }
        for bad in ["", "../../etc/passwd", "-1", "a b", "u/1", "é", "a@b"] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt("abc"), "abc");
        assert_eq!(excerpt("a\u{0}b"), "a\u{FFFD}b");
        let long = "é".repeat(100);
        assert_eq!(excerpt(&long), format!("{}…", "é".repeat(40)));
    }
}

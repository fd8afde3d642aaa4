//! Problems found in the inputs, each naming file, line, column and field, with a hint.

use std::fmt;

use serde::Serialize;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks the run: nothing is written.
    Error,
    /// Reported; the run goes on.
    Warning,
}

/// One problem with the inputs or with how they meet the tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file as the user named it (`hris/agents.csv`), or `tenant` for live-state problems.
    pub file: String,
    /// 1-based line, where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 1-based column (the field's position in the row), where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// The column name, where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Problem {
    /// An error about a whole file.
    pub fn error(file: &str, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Error,
            file: file.to_string(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning about a whole file.
    pub fn warning(file: &str, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(file, message)
        }
    }

    /// At a line.
    pub fn at_line(mut self, line: u64) -> Problem {
        self.line = Some(line);
        self
    }

    /// At a field: its name and 1-based column.
    pub fn at_field(mut self, field: &str, column: u64) -> Problem {
        self.field = Some(field.to_string());
        self.column = Some(column);
        self
    }

    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    /// `agents.csv:12:3: error: locale `de-DE` must be lowercase (field locale)` and the hint
    /// on the next line, the shape compilers use so editors can jump to it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {severity}: {}", self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field `{field}`)")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// How many problems of one kind, in one file and of one severity, are kept; the rest are
/// counted into one summary. A million repeated rows would otherwise be a million messages
/// held in memory and printed, burying the few that differ.
pub const KEPT_PER_KIND: u64 = 20;

/// Problems as they are found, keeping the first [`KEPT_PER_KIND`] of each kind and counting
/// the rest, so memory stays bounded however many rows repeat a mistake.
#[derive(Debug, Default)]
pub struct Problems {
    kept: Vec<Problem>,
    kinds: Vec<KindCount>,
}

/// One kind of problem in one file: how many were seen, and where the first not kept was.
#[derive(Debug)]
struct KindCount {
    kind: &'static str,
    file: String,
    severity: Severity,
    seen: u64,
    first_dropped_line: Option<u64>,
}

impl Problems {
    /// An empty collection.
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Adds a problem of `kind`: a short description shared by every problem of the same
    /// mistake (`"repeated assignments"`), used in the summary of those not kept.
    pub fn push(&mut self, kind: &'static str, problem: Problem) {
        // A linear scan: a file has a few dozen kinds at most, and the key is allocated only
        // the first time a kind is seen.
        let i = match self.kinds.iter().position(|k| {
            k.kind == kind && k.severity == problem.severity && k.file == problem.file
        }) {
            Some(i) => i,
            None => {
                self.kinds.push(KindCount {
                    kind,
                    file: problem.file.clone(),
                    severity: problem.severity,
                    seen: 0,
                    first_dropped_line: None,
                });
                self.kinds.len() - 1
            }
        };
        let count = &mut self.kinds[i];
        count.seen += 1;
        if count.seen <= KEPT_PER_KIND {
            self.kept.push(problem);
        } else if count.seen == KEPT_PER_KIND + 1 {
            count.first_dropped_line = problem.line;
        }
    }

    /// True when any problem seen, kept or not, is an error.
    pub fn has_errors(&self) -> bool {
        self.kinds.iter().any(|k| k.severity == Severity::Error)
    }

    /// The problems kept, then one summary per kind that had more than were kept, of that
    /// kind's severity (so a summary of errors still blocks), at the line of the first not kept.
    pub fn into_vec(self) -> Vec<Problem> {
        let mut problems = self.kept;
        for k in self.kinds.into_iter().filter(|k| k.seen > KEPT_PER_KIND) {
            let more = k.seen - KEPT_PER_KIND;
            let mut summary = Problem {
                severity: k.severity,
                ..Problem::error(&k.file, format!("… and {more} more like this ({})", k.kind))
            }
            .hint(format!(
                "only the first {KEPT_PER_KIND} of each kind are listed: fix those and check again"
            ));
            summary.line = k.first_dropped_line;
            problems.push(summary);
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_past_twenty_of_a_kind_are_counted_into_one_summary() {
        let mut problems = Problems::new();
        for line in 1..=25 {
            problems.push("a", Problem::warning("f.csv", "a").at_line(line));
            problems.push("a", Problem::warning("g.csv", "a").at_line(line));
        }
        problems.push("a", Problem::error("f.csv", "a error").at_line(30));
        problems.push("b", Problem::warning("f.csv", "b").at_line(31));
        assert!(problems.has_errors());
        let list = problems.into_vec();
        assert_eq!(list.len(), 20 + 20 + 1 + 1 + 2, "{list:#?}");
        let summaries: Vec<_> = list
            .iter()
            .filter(|p| p.message.contains("more like this"))
            .map(|p| (p.file.as_str(), p.line, p.severity, p.message.as_str()))
            .collect();
        assert_eq!(
            summaries,
            [
                (
                    "f.csv",
                    Some(21),
                    Severity::Warning,
                    "… and 5 more like this (a)"
                ),
                (
                    "g.csv",
                    Some(21),
                    Severity::Warning,
                    "… and 5 more like this (a)"
                ),
            ]
        );
    }
}

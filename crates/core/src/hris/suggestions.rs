//! Did-you-mean hints: the catalog code nearest to one that is not in it.

use std::collections::BTreeSet;

/// The catalog code nearest to `code` within edit distance 2 (case-insensitive), if any.
/// Runs only for an unknown code, so a scan of the catalog is fine.
pub fn closest<'a>(code: &str, codes: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let sorted: BTreeSet<&str> = codes.collect();
    let mut best: Option<(usize, &str)> = None;
    for candidate in sorted {
        if candidate.chars().count().abs_diff(code.chars().count()) > 2 {
            continue;
        }
        let d = levenshtein(code, candidate);
        if d <= 2 && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance (insertions, deletions, substitutions), ignoring ASCII case.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().map(|c| c.to_ascii_lowercase()).enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("PAY", "pay"), 0);
        assert_eq!(closest("QAX", ["PAY", "QA"].into_iter()), Some("QA"));
        assert_eq!(closest("ZZZZZ", ["PAY", "QA"].into_iter()), None);
    }
}

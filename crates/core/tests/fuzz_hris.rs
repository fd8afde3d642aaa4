//! Property-based fuzzing of the three HRIS readers: arbitrary bytes, and valid files with
//! structured damage (quotes, byte order marks, CRLF, huge fields, missing and extra fields,
//! invalid UTF-8, formula characters, line breaks). Whatever the input:
//!
//! - reading never panics;
//! - every problem names one of the three files and a line within it (every problem of these
//!   readers is about a row or the header: nothing is read from anywhere else);
//! - a problem at a field has that field's column and name;
//! - no problem copies a hostile value whole (each stays a few kilobytes at most), and each
//!   kind is summarised after the first twenty, so their number stays bounded;
//! - files that are accepted hold only values within the documented limits
//!   (`docs/hris-files.md`).
//!
//! The number of cases comes from `PROPTEST_CASES` (proptest reads it; 256 when unset, a few
//! seconds), so the same target can run for an hour:
//! `PROPTEST_CASES=2000000 cargo test -p skillsync-core --release --test fuzz_hris`.

use proptest::prelude::*;
use skillsync_core::hris::Loaded;
use skillsync_core::{Problem, Source, read_desired};

const NAMES: [&str; 3] = [
    "hris/catalog.csv",
    "hris/agents.csv",
    "hris/assignments.csv",
];

fn read(files: &[Vec<u8>; 3]) -> Result<Loaded, Vec<Problem>> {
    let source = |i: usize| Source {
        name: NAMES[i].to_string(),
        reader: files[i].as_slice(),
    };
    read_desired(source(0), source(1), source(2))
}

/// Reads three files and checks every invariant that holds whatever they contain.
fn check(files: &[Vec<u8>; 3]) -> Result<(), TestCaseError> {
    let result = read(files);
    let problems: Vec<Problem> = match &result {
        Ok(loaded) => loaded.warnings.clone(),
        Err(problems) => problems.clone(),
    };
    if result.is_err() {
        prop_assert!(problems.iter().any(Problem::is_error));
    }
    for p in &problems {
        let Some(i) = NAMES.iter().position(|n| *n == p.file) else {
            return Err(TestCaseError::fail(format!("no file named: {p}")));
        };
        let lines = files[i].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line = p
            .line
            .ok_or_else(|| TestCaseError::fail(format!("no line: {p}")))?;
        prop_assert!((1..=lines).contains(&line), "line {line} of {lines}: {p}");
        prop_assert_eq!(p.column.is_some(), p.field.is_some(), "{}", p);
        prop_assert!(!p.message.is_empty() && p.hint.is_some(), "{}", p);
        let shown = p.to_string();
        prop_assert!(
            shown.len() < 4096,
            "{} bytes: {}…",
            shown.len(),
            &shown[..200]
        );
    }
    // Twenty of each kind, and a handful of kinds: a bound that no input can push past.
    prop_assert!(problems.len() <= 21 * 40, "{} problems", problems.len());
    if let Ok(loaded) = &result {
        prop_assert!(loaded.warnings.iter().all(|p| !p.is_error()));
        let d = &loaded.desired;
        for e in d.catalog.entries.values() {
            for (text, max) in [
                (e.code.as_str(), 128),
                (e.name.as_str(), 200),
                (e.description.as_str(), 1000),
                (e.routing_profile_id.as_str(), 128),
            ] {
                prop_assert!(text.chars().count() <= max, "{text:?}");
                prop_assert!(
                    !text.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{text:?}"
                );
            }
        }
        for a in d.agents.values() {
            prop_assert!(a.employee_id.as_str().chars().count() <= 128);
            let id = a.user_id.as_str();
            prop_assert!(id.len() <= 128 && id.starts_with(|c: char| c.is_ascii_alphanumeric()));
            prop_assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b)),
                "{id:?}"
            );
        }
    }
    Ok(())
}

/// A valid set of files, small enough to damage in interesting places.
fn valid_files() -> impl Strategy<Value = [Vec<u8>; 3]> {
    let locales = prop::sample::subsequence(vec!["en-us", "de-de", "fr-fr"], 1..=3);
    (locales, 1usize..4, 1usize..5).prop_flat_map(|(locales, codes, agents)| {
        let levels = prop::collection::vec((0..codes, 1u8..=10, any::<bool>()), 1..8);
        let homes = prop::collection::vec(0..locales.len(), agents);
        (Just(locales), Just(codes), homes, levels).prop_map(|(locales, codes, homes, rows)| {
            let mut catalog =
                String::from("code,kind,locale,name,description,routing_profile_id\n");
            for c in 0..codes {
                let kind = if c % 2 == 0 { "skill" } else { "proficiency" };
                for l in &locales {
                    catalog.push_str(&format!("C{c},{kind},{l},Name {c},\"Desc, {c}\",rp-{c}\n"));
                }
            }
            let mut agents = String::from("employee_id,user_id,locale\n");
            for (i, home) in homes.iter().enumerate() {
                agents.push_str(&format!("E{i},u-{i},{}\n", locales[*home]));
            }
            let mut assignments = String::from("employee_id,code,level,active\n");
            let mut seen = std::collections::HashSet::new();
            for (n, (code, level, active)) in rows.iter().enumerate() {
                let agent = n % homes.len();
                if !seen.insert((agent, *code)) {
                    continue;
                }
                assignments.push_str(&format!("E{agent},C{code},{level},{active}\n"));
            }
            [
                catalog.into_bytes(),
                agents.into_bytes(),
                assignments.into_bytes(),
            ]
        })
    })
}

/// One way of damaging a file at a position (a fraction of its length).
#[derive(Debug, Clone)]
enum Damage {
    Quote,
    Bom,
    Crlf,
    Huge(usize),
    DropComma,
    ExtraComma,
    InvalidUtf8(u8),
    Formula(char),
    LineBreak,
    Truncate,
    Bytes(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::Quote),
        Just(Damage::Bom),
        Just(Damage::Crlf),
        (0usize..70_000).prop_map(Damage::Huge),
        Just(Damage::DropComma),
        Just(Damage::ExtraComma),
        (0x80u8..=0xFF).prop_map(Damage::InvalidUtf8),
        prop::sample::select(vec!['=', '+', '-', '@', '\t', '\r', '\0']).prop_map(Damage::Formula),
        Just(Damage::LineBreak),
        Just(Damage::Truncate),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Damage::Bytes),
    ]
}

fn apply(file: &mut Vec<u8>, damage: &Damage, at: f64) {
    let at = ((file.len() as f64) * at) as usize;
    let at = at.min(file.len());
    let comma = |file: &[u8]| file[at..].iter().position(|&b| b == b',').map(|i| at + i);
    match damage {
        Damage::Quote => file.insert(at, b'"'),
        Damage::Bom => {
            file.splice(at..at, [0xEF, 0xBB, 0xBF]);
        }
        Damage::Crlf => {
            let mut out = Vec::with_capacity(file.len() + 16);
            for &b in file.iter() {
                if b == b'\n' {
                    out.push(b'\r');
                }
                out.push(b);
            }
            *file = out;
        }
        Damage::Huge(n) => {
            file.splice(at..at, std::iter::repeat_n(b'x', *n));
        }
        Damage::DropComma => {
            if let Some(i) = comma(file) {
                file.remove(i);
            }
        }
        Damage::ExtraComma => file.insert(at, b','),
        Damage::InvalidUtf8(b) => file.insert(at, *b),
        Damage::Formula(c) => {
            // Right after a comma, so it starts a value.
            let i = comma(file).map_or(at, |i| i + 1);
            let mut buf = [0; 4];
            file.splice(i..i, c.encode_utf8(&mut buf).bytes());
        }
        Damage::LineBreak => file.insert(at, b'\n'),
        Damage::Truncate => file.truncate(at),
        Damage::Bytes(bytes) => {
            file.splice(at..at, bytes.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Failures are reproduced from the seed proptest prints; no regression file is kept
        // for inputs this large.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The generator itself: undamaged files are read without an error.
    #[test]
    fn valid_files_are_accepted(files in valid_files()) {
        let result = read(&files);
        prop_assert!(result.is_ok(), "{:?}", result.err());
        check(&files)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_every_problem_has_a_file_and_line(
        catalog in prop::collection::vec(any::<u8>(), 0..400),
        agents in prop::collection::vec(any::<u8>(), 0..400),
        assignments in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        check(&[catalog, agents, assignments])?;
    }

    #[test]
    fn arbitrary_rows_under_valid_headers_never_panic(
        rows in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![
                    "[a-zA-Z0-9 _.:/@=+\\-\"é\t]{0,12}",
                    Just(String::new()),
                    Just("en-us".to_string()),
                    Just("skill".to_string()),
                    Just("5".to_string()),
                ],
                0..8,
            ),
            0..12,
        ),
        file in 0usize..3,
    ) {
        let headers = [
            "code,kind,locale,name,description,routing_profile_id",
            "employee_id,user_id,locale",
            "employee_id,code,level,active",
        ];
        let mut files = [
            b"code,kind,locale,name,description,routing_profile_id\nC0,skill,en-us,N,,rp-1\n".to_vec(),
            b"employee_id,user_id,locale\nE0,u-0,en-us\n".to_vec(),
            b"employee_id,code,level,active\nE0,C0,5,\n".to_vec(),
        ];
        let mut text = format!("{}\n", headers[file]);
        for row in &rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        files[file] = text.into_bytes();
        check(&files)?;
    }

    #[test]
    fn damaged_valid_files_never_panic_and_every_problem_has_a_file_and_line(
        mut files in valid_files(),
        damages in prop::collection::vec((0usize..3, damage(), 0.0f64..=1.0), 1..5),
    ) {
        for (file, damage, at) in &damages {
            apply(&mut files[*file], damage, *at);
        }
        check(&files)?;
    }
}

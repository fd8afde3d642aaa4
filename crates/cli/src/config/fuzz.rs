//! Property-based fuzzing of the config loader: arbitrary bytes, and a valid `skillsync.toml`
//! mutated the ways people and tools get it wrong (a value of the wrong type, a table or key
//! missing or repeated, unicode, numbers past every limit). Whatever the input, the loader does
//! not panic, and every refusal is a problem naming the file and, where one applies, the key or
//! the line.
//!
//! Cases: `PROPTEST_CASES` (default 64, so CI stays fast); e.g.
//! `PROPTEST_CASES=200000 cargo test -p skillsync config::fuzz` for a long run.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

use super::Config;

const VALID: &str = r#"[tenant]
api_base = "https://tenant.example.com/api/v2"
token_url = "https://tenant.example.com/api/v2/oauth/token"
client_id = "skillsync"
client_secret = { env = "SKILLSYNC_FUZZ_SECRET" }
ca_file = "ca.pem"
dialect = "routing"
timezone = "Europe/Berlin"
scopes = ["RoutingApi", "AdminApi"]

[limits]
requests_per_second = 10.0
burst = 20
max_in_flight = 10

[sync]
bulk_threshold = 50
bulk_batch_size = 100
propagation_window = "30s"
window = "02:00-04:00"
max_removals = "10%"

[source]
catalog = "hris/catalog.csv"
agents = "hris/agents.csv"
assignments = "hris/assignments.csv"

[store]
url = "postgres://app@db.example.com/skillsync"
password = { file = "store-password.txt" }
lease_ttl = "60s"
"#;

/// Values of every TOML type and none of them right for most keys.
const ODD_VALUES: &[&str] = &[
    "true",
    "0",
    "-3",
    "1.5",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "0x7fffffffffffffff",
    "\"\"",
    "\" \"",
    "\"150%\"",
    "\"-5%\"",
    "\"NaN%\"",
    "\"1e999%\"",
    "\"99999999999999999999999\"",
    "\"Ünïcödé 🚀 ß\"",
    "\"\\u0000\"",
    "\"\\r\\n\"",
    "\"26:99-02:00\"",
    "\"mysql://u:p@h/db\"",
    "\"sqlite://\"",
    "\"http://example.com/api\"",
    "\"ftp://example.com\"",
    "\"not a url\"",
    "\"99999999999999999999h\"",
    "[]",
    "[1, \"two\", 3.0]",
    "{}",
    "{ env = \"\" }",
    "{ file = \"\" }",
    "{ env = 3 }",
    "{ env = \"A\", file = \"b\" }",
    "{ nope = \"x\" }",
    "1979-05-27T07:32:00Z",
    "07:32:00",
];

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Regressions go to the system's temporary folder, not the source tree.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(leak(
            std::env::temp_dir()
                .join("skillsync-config-fuzz.regressions")
                .display()
                .to_string(),
        )))),
        ..ProptestConfig::default()
    }
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// A folder of one's own per test thread, holding the file under test.
fn file_with(bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "skillsync-config-fuzz-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("skillsync.toml");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Loads `bytes` as a config file; on refusal, checks every problem is one a person can act on.
fn check(bytes: &[u8], located: bool) -> Result<(), TestCaseError> {
    let path = file_with(bytes);
    let name = path.display().to_string();
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let loaded = Config::read(&path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    let problems = match loaded {
        Ok(config) => {
            for warning in &config.warnings {
                prop_assert_eq!(&warning.file, &name);
                prop_assert!(warning.field.is_some(), "{}", warning);
            }
            return Ok(());
        }
        Err(problems) => problems,
    };
    prop_assert!(!problems.is_empty());
    for problem in &problems {
        let shown = problem.to_string();
        prop_assert_eq!(&problem.file, &name, "{}", shown);
        prop_assert!(!problem.message.trim().is_empty(), "{}", shown);
        prop_assert!(
            problem.line.is_none_or(|line| (1..=lines).contains(&line)),
            "{} (the file has {} lines)",
            shown,
            lines
        );
        // Serde's words for its own machinery help nobody.
        prop_assert!(!problem.message.contains("untagged"), "{}", shown);
        if located {
            prop_assert!(
                problem.line.is_some() || problem.field.is_some(),
                "neither key nor line: {}",
                shown
            );
        }
    }
    Ok(())
}

/// One edit of the valid file.
#[derive(Debug, Clone)]
enum Mutation {
    /// The value of the `index`-th key replaced.
    Value { index: usize, value: String },
    /// A line removed (a key, or a table's header).
    DropLine { index: usize },
    /// A whole table removed.
    DropTable { index: usize },
    /// A line repeated.
    Repeat { index: usize },
    /// A key nobody knows.
    Unknown { index: usize, key: String },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let odd = proptest::sample::select(ODD_VALUES).prop_map(str::to_string);
    // Any string at all, as a TOML basic string.
    let text = any::<String>().prop_map(|s| format!("{s:?}").replace("\\'", "'"));
    let number = any::<i64>().prop_map(|n| n.to_string());
    let float = any::<f64>().prop_map(|x| format!("{x:?}"));
    let value = prop_oneof![4 => odd, 2 => text, 1 => number, 1 => float];
    prop_oneof![
        6 => (any::<usize>(), value).prop_map(|(index, value)| Mutation::Value { index, value }),
        2 => any::<usize>().prop_map(|index| Mutation::DropLine { index }),
        1 => any::<usize>().prop_map(|index| Mutation::DropTable { index }),
        1 => any::<usize>().prop_map(|index| Mutation::Repeat { index }),
        1 => (any::<usize>(), "[a-z_]{1,12}").prop_map(|(index, key)| Mutation::Unknown { index, key }),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let keys: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(" = "))
        .collect();
    let tables: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with('['))
        .collect();
    match mutation {
        Mutation::Value { index, value } => {
            let i = keys[index % keys.len()];
            let key = lines[i].split(" = ").next().unwrap_or_default().to_string();
            lines[i] = format!("{key} = {value}");
        }
        Mutation::DropLine { index } => {
            lines.remove(index % lines.len());
        }
        Mutation::DropTable { index } => {
            let start = tables[index % tables.len()];
            let end = tables
                .iter()
                .find(|&&t| t > start)
                .copied()
                .unwrap_or(lines.len());
            lines.drain(start..end);
        }
        Mutation::Repeat { index } => {
            let i = index % lines.len();
            lines.insert(i, lines[i].clone());
        }
        Mutation::Unknown { index, key } => {
            let i = keys[index % keys.len()];
            lines.insert(i, format!("{key} = 1"));
        }
    }
    lines.join("\n") + "\n"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_and_every_refusal_names_the_file(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        check(&bytes, false)?;
    }

    #[test]
    fn mutated_configs_never_panic_and_every_refusal_names_file_and_key_or_line(
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let text = mutations.iter().fold(VALID.to_string(), |text, m| apply(&text, m));
        check(text.as_bytes(), true)?;
    }
}

#[test]
fn the_unmutated_config_loads() {
    let path = file_with(VALID.as_bytes());
    let config = Config::read(&path).unwrap();
    assert!(config.warnings.is_empty());
    assert_eq!(config.tenant.scopes.len(), 2);
    let _ = std::fs::remove_dir_all(path.parent().unwrap_or(Path::new("/nonexistent")));
}

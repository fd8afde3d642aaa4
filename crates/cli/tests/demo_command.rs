//! `skillsync demo`, the README's first command, as a new user runs it.

use std::process::Command;

#[test]
fn the_demo_plans_applies_and_converges_with_nothing_lost_or_duplicated() {
    let cache = std::env::temp_dir().join(format!("skillsync-demo-cache-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(["demo", "--agents", "400", "--color", "never"])
        // Tokens cached in a throwaway folder, not the home directory of whoever runs tests.
        .env("SKILLSYNC_CACHE_DIR", &cache)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "3 definitions to create",
        "No changes: the tenant matches the HRIS.",
        "0 duplicate definitions were created",
        "0 of its assignments were lost",
        "Done: the tenant matches the HRIS.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
}

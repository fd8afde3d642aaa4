//! `skillsync demo`, the README's first command, as a new user runs it.

use std::process::Command;

#[test]
fn the_demo_plans_applies_and_converges_with_nothing_lost_or_duplicated() {
    let output = Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(["demo", "--agents", "400", "--color", "never"])
        .output()
        .unwrap();
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

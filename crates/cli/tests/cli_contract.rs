//! The outside contract every command shares (SPEC section 3): usage errors exit 1 (2 means
//! "changes pending" to scripts), `--help` and `--version` print to stdout and exit 0, a closed
//! stdout pipe ends a command quietly, and `history --output json` is the document
//! `docs/history-json.md` describes.

mod common;

use std::process::Output;

use common::*;

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A folder with a `skillsync.toml` whose tenant is never contacted: these commands read only
/// the config and the journal.
fn offline_workspace(tag: &str) -> Workspace {
    let ws = workspace(tag);
    write_config(&ws.0, "http://127.0.0.1:9");
    ws
}

#[test]
fn usage_errors_exit_1_with_the_message_on_stderr_and_nothing_on_stdout() {
    let ws = offline_workspace("usage");
    let cases: [(&[&str], &str); 5] = [
        (
            &["plan", "-c", "skillsync.toml", "--dry-run"],
            "unexpected argument '--dry-run'",
        ),
        (&["plan", "--config"], "a value is required for '--config"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["history", "--limit", "many"], "invalid value 'many'"),
        // No command at all: clap shows the help, but on stderr and as a usage error.
        (&[], "Usage:"),
    ];
    for (args, message) in cases {
        let output = skillsync(&ws.0, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", text(&output));
        assert!(stderr.contains(message), "{args:?}: {}", text(&output));
        assert!(output.stdout.is_empty(), "{args:?}: {}", text(&output));
    }
}

#[test]
fn help_and_version_print_to_stdout_and_exit_0() {
    let ws = offline_workspace("help");
    for (args, expected) in [
        (&["--help"][..], "Usage: skillsync"),
        (&["help"][..], "Usage: skillsync"),
        (&["plan", "--help"][..], "Usage: skillsync plan"),
        (&["--version"][..], env!("CARGO_PKG_VERSION")),
    ] {
        let output = skillsync(&ws.0, args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", text(&output));
        assert!(stdout.contains(expected), "{args:?}: {}", text(&output));
        assert!(output.stderr.is_empty(), "{args:?}: {}", text(&output));
    }
}

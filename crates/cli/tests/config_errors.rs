//! `skillsync.toml` mistakes and connection failures, as a user meets them through the real
//! binary: each refusal names the file, the key and (where the file has one) the line, says what
//! is wrong and what to do; secrets never show; nothing is retried that cannot get better.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const CONFIG: &str = r#"[tenant]
api_base = "http://127.0.0.1:9/api/v2"
client_id = "skillsync-demo"
client_secret = { env = "SKILLSYNC_TEST_SECRET" }

[source]
catalog = "hris/catalog.csv"
agents = "hris/agents.csv"
assignments = "hris/assignments.csv"
"#;

/// A workspace with valid HRIS files and `config` as its `skillsync.toml`.
fn with_config(tag: &str, config: &str) -> Workspace {
    let ws = workspace(&format!("config-errors-{tag}"));
    std::fs::write(
        ws.0.join("hris/catalog.csv"),
        "code,kind,locale,name,description,routing_profile_id\nBilling,skill,en-us,Billing,Billing,rp-1\n",
    )
    .unwrap();
    std::fs::write(
        ws.0.join("hris/agents.csv"),
        "employee_id,user_id,locale\nE1,u-1,en-us\n",
    )
    .unwrap();
    std::fs::write(
        ws.0.join("hris/assignments.csv"),
        "employee_id,code,level,active\nE1,Billing,3,true\n",
    )
    .unwrap();
    std::fs::write(ws.0.join("skillsync.toml"), config).unwrap();
    ws
}

/// Runs `validate` and expects a refusal whose text holds every one of `expected`.
fn refused(dir: &Path, expected: &[&str]) -> String {
    let output = skillsync(dir, &["validate"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    for needle in expected {
        assert!(
            err.contains(needle),
            "missing `{needle}`:\n{}",
            text(&output)
        );
    }
    err
}

#[test]
fn a_ca_file_that_is_not_a_certificate_is_refused_by_validate_naming_file_key_and_line() {
    let config = CONFIG.replace("client_id", "ca_file = \"hris/agents.csv\"\nclient_id");
    let ws = with_config("ca-csv", &config);
    let err = refused(
        &ws.0,
        &[
            "skillsync.toml:3:",
            "tenant.ca_file",
            "agents.csv",
            "no PEM certificate",
            "-----BEGIN CERTIFICATE-----",
        ],
    );
    assert!(!err.contains("valid:"), "{err}");
}

#[test]
fn a_store_url_of_an_unknown_scheme_is_refused_naming_the_schemes_accepted() {
    for url in ["mysql://app:hunter2@db/skills", "foo", "sqlite://"] {
        let config = format!("{CONFIG}\n[store]\nurl = \"{url}\"\n");
        let ws = with_config("store-scheme", &config);
        let err = refused(
            &ws.0,
            &[
                "skillsync.toml:12:",
                "store.url",
                "sqlite://",
                "postgres://",
            ],
        );
        assert!(!err.contains("hunter2"), "a password is never shown: {err}");
    }
}

#[test]
fn a_secret_file_that_is_missing_or_empty_is_refused_with_a_real_hint() {
    let config = CONFIG.replace(
        "{ env = \"SKILLSYNC_TEST_SECRET\" }",
        "{ file = \"secret.txt\" }",
    );
    let ws = with_config("secret-file", &config);
    let err = refused(
        &ws.0,
        &["skillsync.toml:4:", "tenant.client_secret", "secret.txt"],
    );
    let hint = err
        .lines()
        .find_map(|line| line.trim().strip_prefix("hint:"))
        .map(str::trim)
        .unwrap_or_default();
    assert!(
        hint.contains("secret.txt") && hint.contains("{ env = "),
        "the hint says what to do: {err}"
    );

    std::fs::write(ws.0.join("secret.txt"), "\n").unwrap();
    let err = refused(&ws.0, &["tenant.client_secret", "secret.txt", "is empty"]);
    assert!(
        err.lines()
            .any(|l| l.trim().starts_with("hint:") && l.len() > 12),
        "{err}"
    );

    std::fs::write(ws.0.join("secret.txt"), "s3cret-in-a-file\n").unwrap();
    let output = skillsync(&ws.0, &["validate"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn a_plain_text_client_secret_is_warned_about_once_without_showing_it() {
    let config = CONFIG.replace("{ env = \"SKILLSYNC_TEST_SECRET\" }", "\"hunter2-plain\"");
    let ws = with_config("plain-secret", &config);
    let output = skillsync(&ws.0, &["validate"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        !all.contains("hunter2-plain"),
        "the secret is never shown: {all}"
    );
    let err = stderr(&output);
    assert!(
        err.contains("skillsync.toml:4:")
            && err.contains("tenant.client_secret")
            && err.contains("warning")
            && err.contains("{ env = ")
            && err.contains("{ file = "),
        "{all}"
    );

    // Every command that loads the config says it, once.
    let output = skillsync(&ws.0, &["plan"]);
    let all = text(&output);
    assert!(!all.contains("hunter2-plain"), "{all}");
    assert_eq!(stderr(&output).matches("in plain text").count(), 1, "{all}");
}

#[test]
fn max_removals_says_what_is_wrong_with_the_value_at_its_line() {
    for (value, expected) in [
        ("\"150%\"", "above 100%"),
        ("-3", "must be a count ≥ 0 or a percentage like 5%"),
        ("2.5", "must be a count ≥ 0 or a percentage like 5%"),
        ("\"lots\"", "must be a count ≥ 0 or a percentage like 5%"),
    ] {
        let config = format!("{CONFIG}\n[sync]\nmax_removals = {value}\n");
        let ws = with_config("max-removals", &config);
        let err = refused(
            &ws.0,
            &["skillsync.toml:12:", "sync.max_removals", expected],
        );
        assert!(!err.contains("untagged enum"), "{err}");
        assert!(!err.contains("neither"), "{err}");
    }
}

#[test]
fn absent_agents_says_what_is_wrong_with_the_value_at_its_line() {
    for value in ["\"purge\"", "true", "\"Strip\""] {
        let config = format!("{CONFIG}\n[sync]\nabsent_agents = {value}\n");
        let ws = with_config("absent-agents", &config);
        refused(
            &ws.0,
            &[
                "skillsync.toml:12:",
                "sync.absent_agents",
                "must be \"keep\" or \"strip\"",
            ],
        );
    }
    // From the environment, the problem names the variable instead of a line.
    let ws = with_config("absent-agents-env", CONFIG);
    let accepted = skillsync_with_env(
        &ws.0,
        &["validate"],
        &[("SKILLSYNC_SYNC__ABSENT_AGENTS", "strip")],
    );
    assert_eq!(accepted.status.code(), Some(0), "{}", text(&accepted));
    let output = skillsync_with_env(
        &ws.0,
        &["validate"],
        &[("SKILLSYNC_SYNC__ABSENT_AGENTS", "purge")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let err = stderr(&output);
    for needle in [
        "SKILLSYNC_SYNC__ABSENT_AGENTS",
        "sync.absent_agents",
        "got `purge`",
    ] {
        assert!(err.contains(needle), "missing `{needle}`:\n{err}");
    }
}

#[test]
fn plain_http_in_token_url_is_blamed_on_token_url() {
    let config = CONFIG.replace(
        "client_id",
        "token_url = \"http://login.example.com/oauth/token\"\nclient_id",
    );
    let ws = with_config("token-url", &config);
    let err = refused(
        &ws.0,
        &["skillsync.toml:3:", "tenant.token_url", "use https"],
    );
    assert!(!err.contains("tenant.api_base"), "{err}");
    assert!(!err.contains("not usable"), "{err}");
}

#[test]
fn a_semantic_error_after_parsing_names_the_key_and_line() {
    let config = format!("{CONFIG}\n[limits]\nburst = 0\nrequests_per_second = -1.0\n");
    let ws = with_config("semantic", &config);
    refused(
        &ws.0,
        &[
            "skillsync.toml:12:",
            "limits.burst",
            "skillsync.toml:13:",
            "limits.requests_per_second",
        ],
    );
}

#[tokio::test]
async fn an_untrusted_tls_certificate_is_refused_at_once_with_the_reason_and_ca_file() {
    let ws = with_config("tls", CONFIG);
    let ca_file = ws.0.join("sim-ca.pem");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = skillsync_sim::SimConfig {
        tls: Some(skillsync_sim::TlsOptions {
            ca_file: ca_file.clone(),
        }),
        ..skillsync_sim::SimConfig::quiet(skillsync_sim::TenantSource::Generated(
            skillsync_sim::GenerateOptions {
                agents: 2,
                skills: 2,
                proficiencies: 1,
                locales: vec!["en-us".into()],
                profiles: 1,
                seed: 3,
            },
        ))
    };
    let simulator = skillsync_sim::Simulator::new(listener, config).unwrap();
    let base = simulator.endpoint().base_url.clone();
    tokio::spawn(simulator.serve(std::future::pending()));
    let config = CONFIG.replace("http://127.0.0.1:9", &base);
    std::fs::write(ws.0.join("skillsync.toml"), &config).unwrap();

    let output = run(&ws.0, &["plan"]).await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        err.contains("unknown issuer") && err.contains("[tenant] ca_file"),
        "{}",
        text(&output)
    );
    assert!(
        !err.contains("attempt(s)"),
        "never retried: {}",
        text(&output)
    );

    // The simulator's CA passes validate and lets plan through.
    let trusting = config.replace("client_id", "ca_file = \"sim-ca.pem\"\nclient_id");
    std::fs::write(ws.0.join("skillsync.toml"), trusting).unwrap();
    let output = run(&ws.0, &["validate"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = run(&ws.0, &["plan"]).await;
    assert!(
        !stderr(&output).contains("not trusted"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn a_refused_connection_names_the_address_and_the_refusal() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = CONFIG.replace("127.0.0.1:9", &format!("127.0.0.1:{port}"));
    let ws = with_config("refused", &config);
    let output = run(&ws.0, &["plan"]).await;
    let err = stderr(&output).to_lowercase();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        err.contains(&format!("could not connect to 127.0.0.1:{port}"))
            && err.contains("connection refused"),
        "{}",
        text(&output)
    );
}

#[cfg(unix)]
#[test]
fn the_demo_keeps_its_client_secret_file_private() {
    use std::os::unix::fs::PermissionsExt;
    let cache =
        std::env::temp_dir().join(format!("skillsync-demo-mode-cache-{}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(["demo", "--agents", "12", "--color", "never"])
        .env("SKILLSYNC_CACHE_DIR", &cache)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("skillsync-demo-{}", child.id()));
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    let mode =
        std::fs::metadata(dir.join("client-secret.txt")).map(|m| m.permissions().mode() & 0o777);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(mode.unwrap(), 0o600, "readable by its owner only");
}

#[test]
fn the_cxone_keys_are_checked_at_their_line_and_refused_outside_that_dialect() {
    let cxone = CONFIG.replace(
        "client_id",
        "dialect = \"cxone\"\nname_pattern = \"{code}{locale}\"\nclient_id",
    );
    let ws = with_config("cxone-pattern", &cxone);
    refused(
        &ws.0,
        &["skillsync.toml:4:", "tenant.name_pattern", "{code}{locale}"],
    );

    // Two levels on one tenant value: the table must be one-to-one.
    let mut table = String::from("\n[tenant.proficiency_scale]\n");
    for level in 1..=10 {
        let value = if level == 8 { 7 } else { 21 - 2 * level };
        table.push_str(&format!("{level} = {value}\n"));
    }
    let config = cxone.replace("{code}{locale}", "{code}_{locale}") + &table;
    let ws = with_config("cxone-scale", &config);
    refused(
        &ws.0,
        &[
            "tenant.proficiency_scale",
            "level 7 and level 8",
            "tenant value 7",
            "one-to-one",
        ],
    );

    let routing = CONFIG.replace("client_id", "name_pattern = \"{code}_{locale}\"\nclient_id");
    let ws = with_config("cxone-key-routing", &routing);
    refused(
        &ws.0,
        &["skillsync.toml:3:", "tenant.name_pattern", "cxone dialect"],
    );
}

#[test]
fn a_cxone_catalog_whose_names_would_be_one_skill_is_refused_at_its_line() {
    let config = CONFIG.replace("client_id", "dialect = \"cxone\"\nclient_id");
    let ws = with_config("cxone-names", &config);
    std::fs::write(
        ws.0.join("hris/catalog.csv"),
        "code,kind,locale,name,description,routing_profile_id\n\
         Billing,skill,en-us,Billing_EN,Billing,none\n\
         Billing,skill,de-de,billing_en,Billing,none\n",
    )
    .unwrap();
    refused(&ws.0, &["catalog.csv:3", "ignoring case"]);
}

#[test]
fn a_key_set_from_the_environment_is_checked_and_its_problems_name_the_variable() {
    let config = format!("{CONFIG}\n[sync]\nmax_removals = \"10%\"\n");
    let ws = with_config("env-keys", &config);
    let accepted = skillsync_with_env(
        &ws.0,
        &["validate"],
        &[
            ("SKILLSYNC_SYNC__MAX_REMOVALS", "5%"),
            ("SKILLSYNC_LIMITS__BURST", "40"),
        ],
    );
    assert_eq!(accepted.status.code(), Some(0), "{}", text(&accepted));

    for (vars, expected) in [
        (
            vec![("SKILLSYNC_SYNC__MAX_REMOVALS", "150%")],
            vec![
                "SKILLSYNC_SYNC__MAX_REMOVALS",
                "sync.max_removals",
                "above 100%",
            ],
        ),
        (
            vec![("SKILLSYNC_LIMITS__BURST", "lots")],
            vec!["SKILLSYNC_LIMITS__BURST", "limits.burst", "invalid type"],
        ),
        (
            vec![("SKILLSYNC_SYNC__NO_SUCH_KEY", "1")],
            vec!["SKILLSYNC_SYNC__NO_SUCH_KEY", "no_such_key"],
        ),
    ] {
        let output = skillsync_with_env(&ws.0, &["validate"], &vars);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{vars:?}: {}", text(&output));
        for needle in expected {
            assert!(err.contains(needle), "{vars:?}: missing `{needle}`:\n{err}");
        }
        // The file's own line is not blamed for the variable's value.
        assert!(!err.contains("skillsync.toml:"), "{vars:?}: {err}");
    }
    // A mistake in the file keeps its line beside variables that set other keys.
    let ws = with_config(
        "env-keys-file",
        &format!("{CONFIG}\n[limits]\nburst = \"x\"\n"),
    );
    let output = skillsync_with_env(
        &ws.0,
        &["validate"],
        &[("SKILLSYNC_SYNC__MAX_REMOVALS", "5%")],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("skillsync.toml:12:"), "{err}");
}

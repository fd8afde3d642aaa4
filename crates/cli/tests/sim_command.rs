//! `skillsync sim` as a user runs it: a real process, its first line, curl-like calls, Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

fn skillsync() -> Command {
    Command::new(env!("CARGO_BIN_EXE_skillsync"))
}

/// Kills the child if a test fails half-way, so no simulator outlives its test.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "skillsync sim did not stop within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn first_line_gives_base_url_and_demo_credentials_and_ctrl_c_stops_cleanly() {
    let child = skillsync()
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--agents",
            "5",
            "--latency",
            "0ms",
            "--lose-write-rate",
            "0.25",
            "--reject-write-rate",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let mut stdout = BufReader::new(running.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("client_id=skillsync-demo"), "{first}");
    assert!(
        first.contains("client_secret=demo-secret-not-for-production"),
        "{first}"
    );
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no base URL in {first:?}"))
        .to_string();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let token: serde_json::Value = http
            .post(format!("{base}/api/v2/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "skillsync-demo"),
                ("client_secret", "demo-secret-not-for-production"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().unwrap();
        let users = common::api_get(&base, token, "/routing/users").await;
        assert_eq!(users["total"], 5, "--agents 5 should give five users");
        let knobs: serde_json::Value = http
            .get(format!("{base}/sim/config"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            knobs["loseWriteRate"], 0.25,
            "--lose-write-rate reaches the knobs"
        );
        assert_eq!(
            knobs["rejectWriteRate"], 1.0,
            "--reject-write-rate reaches the knobs"
        );

        // --reject-write-rate 1: the tenant refuses a user write with a 400 and reads go on.
        let user = &users["entities"][0];
        let path = format!(
            "{base}/api/v2/routing/users/{}",
            user["userId"].as_str().unwrap()
        );
        let refused = http
            .put(&path)
            .bearer_auth(token)
            .json(&serde_json::json!({ "skills": [] }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "VALIDATION_ERROR", "{body}");
        let read: serde_json::Value = http
            .get(&path)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(read, *user, "the refused write changed nothing");
        let stats: serde_json::Value = http
            .get(format!("{base}/sim/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["writesRejected"], 1, "{stats}");
    });

    let pid = running.0.id().to_string();
    let signalled = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(signalled.success());
    let status = wait_for_exit(&mut running.0, Duration::from_secs(10));
    assert!(
        status.success(),
        "Ctrl-C should stop the simulator cleanly, got {status}"
    );
}

#[test]
fn an_impossible_knob_is_refused_before_listening() {
    for flag in ["fault-rate", "lose-write-rate", "reject-write-rate"] {
        let output = skillsync()
            .args([
                "sim",
                "--listen",
                "127.0.0.1:0",
                &format!("--{flag}"),
                "1.5",
            ])
            .output()
            .unwrap();
        assert!(!output.status.success(), "--{flag} 1.5 was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(flag),
            "error should name the flag: {stderr}"
        );
        assert!(
            output.stdout.is_empty(),
            "nothing may be served: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn a_malformed_rate_names_the_flag_and_the_expected_shape() {
    let output = skillsync()
        .args(["sim", "--rate-limit", "ten/s"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--rate-limit"), "{stderr}");
    assert!(
        stderr.contains("10/s"),
        "the hint should show a valid spelling: {stderr}"
    );
}

#[test]
fn help_teaches_how_to_explore_with_curl() {
    let output = skillsync().args(["sim", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("curl"), "{help}");
    assert!(help.contains("--fault-after-commit-rate"), "{help}");
}

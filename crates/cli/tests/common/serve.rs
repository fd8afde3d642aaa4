//! Running `skillsync serve` as a real process and talking to it as an HRIS would: signed
//! requests over HTTP.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub const WEBHOOK_SECRET: &str = "whsec-test-not-for-production";

/// A running `serve`.
pub struct Served {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    /// What it logged so far (stderr).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config that leaves `[serve] full_sync_at` out gets one twelve hours from now (the config's
/// time zone is UTC): the default, 02:00, would start the nightly full sync, and take the lease,
/// under a test that happens to run across it. A test that sets its own, a time zone or a
/// window keeps its config as written.
fn nightly_sync_away_from_now(dir: &Path) {
    let path = dir.join("skillsync.toml");
    let Ok(config) = std::fs::read_to_string(&path) else {
        return;
    };
    if ["full_sync_at", "timezone", "\nwindow"]
        .iter()
        .any(|set| config.contains(set))
    {
        return;
    }
    let at = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(12))
        .strftime("%H:%M")
        .to_string();
    let line = format!("full_sync_at = \"{at}\"");
    let config = if config.contains("\n[serve]\n") {
        config.replacen("\n[serve]\n", &format!("\n[serve]\n{line}\n"), 1)
    } else {
        format!("{config}\n[serve]\n{line}\n")
    };
    std::fs::write(&path, config).unwrap();
}

/// Starts `skillsync serve` in `dir` on a free port, with `env` added.
pub fn start_serve(dir: &Path, env: &[(&str, &str)]) -> Served {
    start_serve_with(dir, env, &[])
}

/// Starts `skillsync serve` in `dir` on a free port, with `env` and `args` added.
pub fn start_serve_with(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Served {
    nightly_sync_away_from_now(dir);
    let mut command = Command::new(env!("CARGO_BIN_EXE_skillsync"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env("SKILLSYNC_TEST_SECRET", skillsync_sim::DEMO_CLIENT_SECRET)
        .env("SKILLSYNC_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("SKILLSYNC_ADOPT", "all")
        .env("SKILLSYNC_CACHE_DIR", dir.join(".token-cache"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .rsplit(' ')
        .next()
        .filter(|url| url.starts_with("http://"))
        .unwrap_or_else(|| {
            panic!(
                "serve did not say where it listens: {first:?} {}",
                log.lock().unwrap()
            )
        })
        .to_string();
    Served { child, base, log }
}

/// The signature header for `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// POSTs `body` to /v1/events signed now with the test secret: (status, JSON answer).
pub async fn post_events(base: &str, body: &str) -> (u16, Value) {
    let t = now_seconds();
    post_signed(base, body, t, &sign(WEBHOOK_SECRET, t, body)).await
}

/// POSTs `body` with these signature headers.
pub async fn post_signed(base: &str, body: &str, timestamp: i64, signature: &str) -> (u16, Value) {
    let response = client()
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/json")
        .header("x-skillsync-timestamp", timestamp.to_string())
        .header("x-skillsync-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// One client for every request of a test: connections are kept, not opened per request.
fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    })
}

/// GET a path of the service: (status, body text).
pub async fn get_text(base: &str, path: &str) -> (u16, String) {
    let response = client().get(format!("{base}{path}")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The state of an event (`GET /v1/events/{id}`).
pub async fn event_state(base: &str, id: &str) -> Value {
    let (_, text) = get_text(base, &format!("/v1/events/{id}")).await;
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Waits (bounded) until every event in `ids` has left `queued`; returns their states.
pub async fn wait_settled(served: &Served, ids: &[String]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states =
            futures::future::join_all(ids.iter().map(|id| event_state(&served.base, id))).await;
        if states
            .iter()
            .all(|s| s["state"] != "queued" && !s.is_null())
        {
            return states;
        }
        assert!(
            Instant::now() < deadline,
            "events still queued after 60 s: {states:?}\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An `assignment.set` event body.
pub fn assignment_set(id: &str, employee: &str, code: &str, level: u8) -> Value {
    serde_json::json!({
        "id": id,
        "type": "assignment.set",
        "occurredAt": jiff::Timestamp::now().to_string(),
        "employeeId": employee,
        "code": code,
        "level": level,
    })
}

//! Helpers for CLI tests: a workspace folder, the real simulator, HRIS files derived from a
//! generated tenant, and running the real binary.
#![allow(dead_code)]

pub mod cxone;
pub mod json_doc;
pub mod serve;
pub mod store;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use skillsync_sim::{SimConfig, TenantDoc, TenantSource};

pub struct Workspace(pub PathBuf);
impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn workspace(tag: &str) -> Workspace {
    let dir = std::env::temp_dir().join(format!("skillsync-plan-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("hris")).unwrap();
    Workspace(dir)
}

pub fn skillsync(dir: &Path, args: &[&str]) -> Output {
    skillsync_with_env(dir, args, &[])
}

/// [`skillsync`] with more environment variables (a config key set from the environment).
pub fn skillsync_with_env(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(args)
        .envs(vars.iter().copied())
        .current_dir(dir)
        .env("SKILLSYNC_TEST_SECRET", skillsync_sim::DEMO_CLIENT_SECRET)
        // The generated tenants' definitions were made before skillsync: every test but the
        // ownership ones runs as a first run that takes them over.
        .env("SKILLSYNC_ADOPT", "all")
        // Tokens cached in the workspace, never in the home directory of whoever runs tests.
        .env("SKILLSYNC_CACHE_DIR", dir.join(".token-cache"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

pub fn write_config(dir: &Path, base: &str) {
    let config = format!(
        r#"[tenant]
api_base = "{base}/api/v2"
client_id = "{id}"
client_secret = {{ env = "SKILLSYNC_TEST_SECRET" }}

[limits]
requests_per_second = 1000
burst = 100
max_in_flight = 8

[source]
catalog = "hris/catalog.csv"
agents = "hris/agents.csv"
assignments = "hris/assignments.csv"
"#,
        id = skillsync_sim::DEMO_CLIENT_ID
    );
    std::fs::write(dir.join("skillsync.toml"), config).unwrap();
}

pub async fn start_sim(doc: TenantDoc) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator =
        skillsync_sim::Simulator::new(listener, SimConfig::quiet(TenantSource::Doc(Box::new(doc))))
            .unwrap();
    let base = simulator.endpoint().base_url.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    (base, stop)
}

pub async fn sim_stats(base: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("{base}/sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What the test expects the plan to count, computed while it writes the files.
#[derive(Debug, Default, PartialEq)]
pub struct Expected {
    pub added: u64,
    pub removed: u64,
    pub levels_changed: u64,
    pub users_changed: u64,
}

/// Writes HRIS files describing `doc` with deliberate differences, counting them as it goes:
/// every 3rd agent has one level changed, every 5th gains a skill, every 7th loses one.
pub fn write_hris(dir: &Path, doc: &TenantDoc) -> Expected {
    write_hris_with(dir, doc, true)
}

/// The same, without proficiency assignments (the users dialect cannot see them).
pub fn write_hris_skills_only(dir: &Path, doc: &TenantDoc) -> Expected {
    write_hris_with(dir, doc, false)
}

fn write_hris_with(dir: &Path, doc: &TenantDoc, proficiencies: bool) -> Expected {
    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    let mut kinds: BTreeMap<String, (&str, String)> = BTreeMap::new();
    for (kind, defs) in [("skill", &doc.skills), ("proficiency", &doc.proficiencies)] {
        for d in defs
            .iter()
            .filter(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        {
            writeln!(
                catalog,
                "{},{kind},{},{},{},{}",
                d.name, d.locale, d.name, d.description, d.routing_profile_id
            )
            .unwrap();
            kinds.insert(d.id.clone(), (kind, d.name.clone()));
        }
    }
    let skills_by_locale = |locale: &str| -> Vec<String> {
        doc.skills
            .iter()
            .filter(|d| d.locale == locale && !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
            .map(|d| d.name.clone())
            .collect()
    };
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    let mut expected = Expected::default();
    for (i, user) in doc.users.iter().enumerate() {
        let employee = format!("E{i:05}");
        writeln!(agents, "{employee},{},{}", user.id, user.locale).unwrap();
        let held_proficiencies: &[skillsync_sim::Assignment] = if proficiencies {
            &user.proficiencies
        } else {
            &[]
        };
        let mut rows: Vec<(String, u8)> = user
            .skills
            .iter()
            .chain(held_proficiencies)
            .filter_map(|a| kinds.get(&a.id).map(|(_, name)| (name.clone(), a.level)))
            .collect();
        let held: Vec<String> = rows.iter().map(|(code, _)| code.clone()).collect();
        let mut changed = false;
        if i % 3 == 0 && !rows.is_empty() {
            rows[0].1 = rows[0].1 % 10 + 1;
            expected.levels_changed += 1;
            changed = true;
        }
        if i % 7 == 0 && rows.len() > 1 {
            rows.pop();
            expected.removed += 1;
            changed = true;
        }
        if i % 5 == 0
            && let Some(extra) = skills_by_locale(&user.locale)
                .into_iter()
                .find(|n| !held.contains(n))
        {
            rows.push((extra, 4));
            expected.added += 1;
            changed = true;
        }
        expected.users_changed += u64::from(changed);
        for (code, level) in rows {
            writeln!(assignments, "{employee},{code},{level},true").unwrap();
        }
    }
    std::fs::write(dir.join("hris/catalog.csv"), catalog).unwrap();
    std::fs::write(dir.join("hris/agents.csv"), agents).unwrap();
    std::fs::write(dir.join("hris/assignments.csv"), assignments).unwrap();
    expected
}

/// HRIS files that say exactly what the tenant holds.
pub fn write_hris_exact(dir: &Path, doc: &TenantDoc) {
    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    let mut names = BTreeMap::new();
    for (kind, defs) in [("skill", &doc.skills), ("proficiency", &doc.proficiencies)] {
        for d in defs
            .iter()
            .filter(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        {
            writeln!(
                catalog,
                "{},{kind},{},{},{},{}",
                d.name, d.locale, d.name, d.description, d.routing_profile_id
            )
            .unwrap();
            names.insert(d.id.clone(), d.name.clone());
        }
    }
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    for (i, user) in doc.users.iter().enumerate() {
        writeln!(agents, "E{i:05},{},{}", user.id, user.locale).unwrap();
        for a in user.skills.iter().chain(&user.proficiencies) {
            if let Some(name) = names.get(&a.id) {
                writeln!(assignments, "E{i:05},{name},{},{}", a.level, a.active).unwrap();
            }
        }
    }
    std::fs::write(dir.join("hris/catalog.csv"), catalog).unwrap();
    std::fs::write(dir.join("hris/agents.csv"), agents).unwrap();
    std::fs::write(dir.join("hris/assignments.csv"), assignments).unwrap();
}

/// Starts the simulator with these knobs.
pub async fn start_sim_with(
    doc: TenantDoc,
    knobs: skillsync_sim::Knobs,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        knobs,
        ..SimConfig::quiet(TenantSource::Doc(Box::new(doc)))
    };
    let simulator = skillsync_sim::Simulator::new(listener, config).unwrap();
    let base = simulator.endpoint().base_url.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    (base, stop)
}

/// GET a `/sim/*` route.
pub async fn sim_get(base: &str, path: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `GET {base}/api/v2{path}` as a client of the tenant with `token` (a test acting as
/// another writer reads what it will change).
pub async fn api_get(base: &str, token: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/v2{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// An access token of the simulator's demo client, for a test's own calls to the API.
pub async fn demo_token(base: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token: Value = reqwest::Client::new()
        .post(format!("{base}/api/v2/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", skillsync_sim::DEMO_CLIENT_ID),
            ("client_secret", skillsync_sim::DEMO_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_string()
}

/// PATCH `/sim/config`.
pub async fn set_knobs(base: &str, knobs: Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .patch(format!("{base}/sim/config"))
        .json(&knobs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Requests that were not reads (the token endpoint aside).
pub fn writes_in(stats: &Value) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] != "GET" && r["route"] != "/api/v2/oauth/token")
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// The one JSON document a command printed on stdout (the output shown when it is not one).
pub fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "one JSON document ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Runs the binary off the async runtime.
pub async fn run(dir: &Path, args: &'static [&'static str]) -> Output {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || skillsync(&dir, args))
        .await
        .unwrap()
}

/// Runs the binary off the async runtime, with arguments built at run time.
pub async fn run_with(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        skillsync(&dir, &args)
    })
    .await
    .unwrap()
}

/// A tenant throttled to 60 requests a second, and a config that writes one user at a time
/// within that limit: a run of a few hundred users takes seconds, long enough to stop mid-run.
pub fn slow_single_writes() -> skillsync_sim::Knobs {
    skillsync_sim::Knobs {
        rate_limit: skillsync_sim::Rate::PerSecond(60.0),
        burst: 10,
        ..skillsync_sim::Knobs::quiet()
    }
}

/// Rewrites the workspace's config (from [`write_config`]) to match [`slow_single_writes`].
pub fn write_slow_single_writes_config(dir: &Path, base: &str) {
    write_config(dir, base);
    let config = std::fs::read_to_string(dir.join("skillsync.toml")).unwrap();
    let config = config
        .replace("requests_per_second = 1000", "requests_per_second = 60")
        .replace("burst = 100", "burst = 10")
        + "\n[sync]\nbulk_threshold = 100000\n";
    std::fs::write(dir.join("skillsync.toml"), config).unwrap();
}

/// Spawns the binary with both outputs captured. Nobody reads them while it runs: a command that
/// prints more than a pipe holds (a plan) stalls until they are read.
pub fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_skillsync"))
        .args(args)
        .current_dir(dir)
        .env("SKILLSYNC_TEST_SECRET", skillsync_sim::DEMO_CLIENT_SECRET)
        // The generated tenants' definitions were made before skillsync: every test but the
        // ownership ones runs as a first run that takes them over.
        .env("SKILLSYNC_ADOPT", "all")
        // Tokens cached in the workspace, never in the home directory of whoever runs tests.
        .env("SKILLSYNC_CACHE_DIR", dir.join(".token-cache"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until the simulator has taken `writes` writes from the running `child`.
pub async fn wait_until_writing(base: &str, writes: u64, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while writes_in(&sim_get(base, "/sim/stats").await) < writes {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the command ended before it could be stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Sends `signal` (e.g. `-INT`, `-KILL`) to the child.
pub fn signal(child: &std::process::Child, signal: &str) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
}

//! Tokens kept between commands: the real binary against the real simulator, each test with its
//! own cache directory (`SKILLSYNC_CACHE_DIR`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use skillsync_sim::{ClientSpec, GenerateOptions, Knobs, Rate, SimConfig, TenantDoc, TenantSource};

const SECOND_ID: &str = "skillsync-second";
const SECOND_SECRET: &str = "second-secret-not-for-production";
/// The demo client's second secret, as during a rotation (both are accepted).
const ROTATED_SECRET: &str = "rotated-demo-secret-not-for-production";

fn tenant() -> TenantDoc {
    skillsync_sim::generate(&GenerateOptions {
        agents: 20,
        ..GenerateOptions::default()
    })
}

/// The simulator with the tenant's real token limit (5 a minute, unless `token_rate_limit`
/// says otherwise) and two clients: the demo client (with its usual secret and a rotated one)
/// and a second one.
async fn start(
    doc: TenantDoc,
    token_rate_limit: Rate,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut second = ClientSpec::demo();
    second.id = SECOND_ID.into();
    second.secret = SECOND_SECRET.into();
    let mut rotated = ClientSpec::demo();
    rotated.secret = ROTATED_SECRET.into();
    let config = SimConfig {
        knobs: Knobs {
            token_rate_limit,
            ..Knobs::quiet()
        },
        clients: vec![ClientSpec::demo(), rotated, second],
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

/// A workspace whose HRIS files say what the tenant holds (so `plan` exits 0), with a config
/// for `client_id` (its secret read from SKILLSYNC_TEST_SECRET) and `extra` lines under
/// `[tenant]`.
fn setup(tag: &str, doc: &TenantDoc, base: &str, client_id: &str, extra: &str) -> Workspace {
    let ws = workspace(&format!("token-cache-{tag}"));
    write_hris_exact(&ws.0, doc);
    write_config(&ws.0, base);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    let config = config.replace(
        &format!("client_id = \"{}\"", skillsync_sim::DEMO_CLIENT_ID),
        &format!("client_id = \"{client_id}\"\n{extra}"),
    );
    std::fs::write(ws.0.join("skillsync.toml"), config).unwrap();
    ws
}

/// Runs the binary with a cache directory and a client secret.
async fn run_cached(dir: &Path, cache: &Path, secret: &str, args: &[&str]) -> Output {
    run_cached_env(dir, cache, secret, args, &[]).await
}

async fn run_cached_env(
    dir: &Path,
    cache: &Path,
    secret: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skillsync"));
    command
        .args(args)
        .current_dir(dir)
        .env("SKILLSYNC_TEST_SECRET", secret)
        .env("SKILLSYNC_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn assert_ok(output: &Output, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{what}: stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn tokens_issued(base: &str) -> u64 {
    sim_stats(base).await["tokensIssued"].as_u64().unwrap()
}

/// The token files in a cache directory.
fn token_files(cache: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn cached_token(file: &Path) -> String {
    let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    entry["accessToken"].as_str().unwrap().to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_plans_in_a_row_fetch_one_token_kept_in_a_private_file_without_the_secret() {
    let doc = tenant();
    let (base, _stop) = start(doc.clone(), Rate::per_minute(5.0)).await;
    let ws = setup("five", &doc, &base, skillsync_sim::DEMO_CLIENT_ID, "");
    let cache = ws.0.join("cache");
    let secret = skillsync_sim::DEMO_CLIENT_SECRET;

    let started = std::time::Instant::now();
    let mut outputs = Vec::new();
    for run in 1..=5 {
        let output = run_cached(&ws.0, &cache, secret, &["plan"]).await;
        assert_ok(&output, &format!("plan #{run}"));
        outputs.push(output);
    }
    assert_eq!(tokens_issued(&base).await, 1, "{}", sim_stats(&base).await);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "no run waited on the token endpoint: {:?}",
        started.elapsed()
    );

    assert_eq!(
        mode(&cache),
        0o700,
        "the cache directory is the user's only"
    );
    let files = token_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600, "the token file is the user's only");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains(secret), "the client secret is never cached");
    let token = cached_token(&files[0]);
    assert!(token.starts_with("sim."), "the file holds the issued token");

    // The token is never printed, and never reaches the journal.
    let applied = run_cached(&ws.0, &cache, secret, &["apply", "--yes"]).await;
    assert_ok(&applied, "apply with nothing to do");
    outputs.push(applied);
    for output in &outputs {
        for stream in [&output.stdout, &output.stderr] {
            assert!(!String::from_utf8_lossy(stream).contains(&token));
        }
    }
    for entry in std::fs::read_dir(&ws.0).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.extension().is_none_or(|e| e != "csv") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&token),
                "{} holds the token",
                path.display()
            );
        }
    }
    assert_eq!(tokens_issued(&base).await, 1, "apply reused it too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_or_scope_set_never_uses_the_cached_token() {
    let doc = tenant();
    let (base, _stop) = start(doc.clone(), Rate::Off).await;
    let demo = setup("demo", &doc, &base, skillsync_sim::DEMO_CLIENT_ID, "");
    let second = setup("second", &doc, &base, SECOND_ID, "");
    let scoped = setup(
        "scoped",
        &doc,
        &base,
        skillsync_sim::DEMO_CLIENT_ID,
        "scopes = [\"routing:skills:read\", \"routing:proficiencies:read\", \"routing:profiles:read\"]",
    );
    // One cache directory for all three, as for one user running three configs.
    let cache = demo.0.join("cache");
    let demo_secret = skillsync_sim::DEMO_CLIENT_SECRET;

    assert_ok(
        &run_cached(&demo.0, &cache, demo_secret, &["plan"]).await,
        "plan as the demo client",
    );
    assert_eq!(tokens_issued(&base).await, 1);

    assert_ok(
        &run_cached(&second.0, &cache, SECOND_SECRET, &["plan"]).await,
        "plan as the second client",
    );
    assert_eq!(
        tokens_issued(&base).await,
        2,
        "another client id fetches its own"
    );

    // Scope-limited runs may fail for want of a scope; what matters is which token they use.
    let _ = run_cached(&scoped.0, &cache, demo_secret, &["plan"]).await;
    assert_eq!(
        tokens_issued(&base).await,
        3,
        "another scope set fetches its own"
    );
    assert_eq!(token_files(&cache).len(), 3);

    // Each is reused by its own.
    assert_ok(
        &run_cached(&demo.0, &cache, demo_secret, &["plan"]).await,
        "plan as the demo client again",
    );
    assert_ok(
        &run_cached(&second.0, &cache, SECOND_SECRET, &["plan"]).await,
        "plan as the second client again",
    );
    assert_eq!(tokens_issued(&base).await, 3);

    // No file holds either client's secret.
    for file in token_files(&cache) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(demo_secret) && !text.contains(SECOND_SECRET));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_cache_file_is_ignored_and_replaced() {
    let doc = tenant();
    let (base, _stop) = start(doc.clone(), Rate::Off).await;
    let ws = setup("corrupt", &doc, &base, skillsync_sim::DEMO_CLIENT_ID, "");
    let cache = ws.0.join("cache");
    let secret = skillsync_sim::DEMO_CLIENT_SECRET;

    assert_ok(&run_cached(&ws.0, &cache, secret, &["plan"]).await, "plan");
    let file = token_files(&cache).remove(0);
    let token = cached_token(&file);
    std::fs::write(&file, b"{\"format\":1,\"accessToken\":\"sim.half-writ").unwrap();

    let output = run_cached_env(
        &ws.0,
        &cache,
        secret,
        &["plan"],
        &[("RUST_LOG", "skillsync_cxone::token_cache=debug")],
    )
    .await;
    assert_ok(&output, "plan over a corrupt cache");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cached token ignored"),
        "said at debug level: {stderr}"
    );
    assert!(!stderr.contains(&token) && !stderr.contains("half-writ"));
    assert_eq!(tokens_issued(&base).await, 2, "a fresh token was fetched");
    let fresh = cached_token(&file);
    assert_ne!(fresh, token, "and replaced the corrupt file");
    assert_eq!(mode(&file), 0o600);

    // Another process's garbage in the directory (not a token file) is left alone and harmless.
    std::fs::write(cache.join("notes.txt"), "hello").unwrap();
    assert_ok(&run_cached(&ws.0, &cache, secret, &["plan"]).await, "plan");
    assert_eq!(tokens_issued(&base).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_tenant_rejects_is_replaced_in_the_cache() {
    let doc = tenant();
    let (base, _stop) = start(doc.clone(), Rate::Off).await;
    let ws = setup("rejected", &doc, &base, skillsync_sim::DEMO_CLIENT_ID, "");
    let cache = ws.0.join("cache");
    let secret = skillsync_sim::DEMO_CLIENT_SECRET;

    assert_ok(&run_cached(&ws.0, &cache, secret, &["plan"]).await, "plan");
    let file = token_files(&cache).remove(0);
    let first = cached_token(&file);

    // Two hours pass on the tenant's clock: the cached token has expired there, not here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(format!("{base}/sim/clock/advance"))
        .json(&serde_json::json!({ "by": "2h" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    assert_ok(
        &run_cached(&ws.0, &cache, secret, &["plan"]).await,
        "plan after a 401",
    );
    assert_eq!(tokens_issued(&base).await, 2, "one refresh after the 401");
    let second = cached_token(&file);
    assert_ne!(second, first, "the rejected token was replaced");

    assert_ok(&run_cached(&ws.0, &cache, secret, &["plan"]).await, "plan");
    assert_eq!(tokens_issued(&base).await, 2, "the replacement is reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_waiting_on_the_token_endpoint_says_so_once() {
    let doc = tenant();
    // 20 a minute: a bucket of 20, one more every 3 s.
    let (base, _stop) = start(doc.clone(), Rate::per_minute(20.0)).await;
    let ws = setup("waiting", &doc, &base, skillsync_sim::DEMO_CLIENT_ID, "");
    let cache = ws.0.join("cache");

    // Another program of the same tenant spends the endpoint's allowance.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let mut spent = false;
    for _ in 0..100 {
        let status = http
            .post(format!("{base}/api/v2/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SECOND_ID),
                ("client_secret", SECOND_SECRET),
            ])
            .send()
            .await
            .unwrap()
            .status();
        if status == 429 {
            spent = true;
            break;
        }
    }
    assert!(spent, "the token endpoint never refused");
    let before = tokens_issued(&base).await;

    let output = run_cached(&ws.0, &cache, skillsync_sim::DEMO_CLIENT_SECRET, &["plan"]).await;
    assert_ok(&output, "plan behind the token endpoint's limit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = stderr
        .matches("s for the tenant's token endpoint (5 tokens a minute)")
        .count();
    assert_eq!(said, 1, "said once: {stderr}");
    assert!(stderr.contains("waiting "), "{stderr}");
    assert_eq!(tokens_issued(&base).await, before + 1);

    // The next command has the token and waits for nothing.
    let output = run_cached(&ws.0, &cache, skillsync_sim::DEMO_CLIENT_SECRET, &["plan"]).await;
    assert_ok(&output, "plan with a cached token");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("token endpoint"));
}

/// How often the simulator answered a method and route, by status.
async fn answered(base: &str, method: &str, route: &str) -> Vec<(u64, u64)> {
    let mut answers: Vec<(u64, u64)> = sim_stats(base).await["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["route"] == route)
        .map(|r| (r["status"].as_u64().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    answers.sort();
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_plans_started_together_on_an_empty_cache_fetch_one_token() {
    let doc = tenant();
    let (base, _stop) = start(doc.clone(), Rate::per_minute(5.0)).await;
    let ws = setup("together", &doc, &base, skillsync_sim::DEMO_CLIENT_ID, "");
    let cache = ws.0.join("cache");
    let secret = skillsync_sim::DEMO_CLIENT_SECRET;

    let plan = || run_cached(&ws.0, &cache, secret, &["plan"]);
    let (a, b, c, d) = tokio::join!(plan(), plan(), plan(), plan());
    let outputs = [a, b, c, d];
    for (run, output) in outputs.iter().enumerate() {
        assert_ok(output, &format!("plan #{}", run + 1));
    }
    assert_eq!(
        answered(&base, "POST", "/api/v2/oauth/token").await,
        vec![(200, 1)],
        "one token request for the four processes: {}",
        sim_stats(&base).await
    );
    assert_eq!(tokens_issued(&base).await, 1);
    assert_eq!(token_files(&cache).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cached_with_one_client_secret_is_not_used_with_another() {
    let doc = tenant();
    let (base, _stop) = start(doc.clone(), Rate::Off).await;
    let ws = setup("rotation", &doc, &base, skillsync_sim::DEMO_CLIENT_ID, "");
    let cache = ws.0.join("cache");
    let old = skillsync_sim::DEMO_CLIENT_SECRET;

    assert_ok(&run_cached(&ws.0, &cache, old, &["plan"]).await, "plan");
    assert_eq!(tokens_issued(&base).await, 1);

    // The secret is rotated: the token obtained with the old one is not reused.
    assert_ok(
        &run_cached(&ws.0, &cache, ROTATED_SECRET, &["plan"]).await,
        "plan with the rotated secret",
    );
    assert_eq!(
        tokens_issued(&base).await,
        2,
        "the new secret fetched its own"
    );
    assert_ok(
        &run_cached(&ws.0, &cache, ROTATED_SECRET, &["plan"]).await,
        "plan with the rotated secret again",
    );
    assert_eq!(tokens_issued(&base).await, 2, "and reuses it");

    // A wrong secret is refused by the token endpoint instead of riding on a cached token.
    let wrong = "wrong-secret-typed-by-hand";
    let output = run_cached(&ws.0, &cache, wrong, &["plan"]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "a wrong secret fails: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert!(!stderr.contains(wrong), "{stderr}");
    assert_eq!(tokens_issued(&base).await, 2);
    assert_eq!(
        answered(&base, "POST", "/api/v2/oauth/token").await,
        vec![(200, 2), (401, 1)]
    );

    // No cache file names or holds any of the secrets.
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for secret in [old, ROTATED_SECRET, wrong] {
            assert!(!name.contains(secret) && !text.contains(secret), "{name}");
        }
    }
}

//! Test harness: starts the real simulator on 127.0.0.1:0 and talks to it over real HTTP with
//! plain `reqwest` and `serde_json::Value` — never with the client crate's types.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use skillsync_sim::{GenerateOptions, Knobs, SimConfig, TenantSource};
use tokio::sync::oneshot;

/// A running simulator; dropping it stops the server.
pub struct TestSim {
    pub base: String,
    pub http: reqwest::Client,
    pub ca_file: Option<std::path::PathBuf>,
    stop: Option<oneshot::Sender<()>>,
    // Keeps the CA file's directory alive for TLS tests.
    _dir: Option<TempDir>,
}

impl Drop for TestSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("skillsync-test-{tag}-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A small generated tenant: 20 agents, 4 skills and 2 proficiencies in en-us and de-de.
pub fn small_tenant() -> TenantSource {
    TenantSource::Generated(GenerateOptions {
        agents: 20,
        skills: 4,
        proficiencies: 2,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 2,
        seed: 7,
    })
}

/// Starts a simulator with quiet knobs (no limits, latency, faults or propagation delay).
pub async fn start() -> TestSim {
    start_with(SimConfig::quiet(small_tenant())).await
}

/// Starts a simulator with these knobs over a small tenant.
pub async fn start_knobs(knobs: Knobs) -> TestSim {
    start_with(SimConfig {
        knobs,
        ..SimConfig::quiet(small_tenant())
    })
    .await
}

/// Starts a simulator with a full configuration.
pub async fn start_with(config: SimConfig) -> TestSim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = skillsync_sim::Simulator::new(listener, config).unwrap();
    let endpoint = simulator.endpoint().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = &endpoint.ca_file {
        let pem = std::fs::read(ca).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    TestSim {
        base: endpoint.base_url.clone(),
        http: builder.build().unwrap(),
        ca_file: endpoint.ca_file.clone(),
        stop: Some(stop),
        _dir: None,
    }
}

/// Starts a TLS simulator whose CA is written into a temporary directory.
pub async fn start_tls() -> TestSim {
    let dir = TempDir::new("tls");
    let config = SimConfig {
        tls: Some(skillsync_sim::TlsOptions {
            ca_file: dir.0.join("ca.pem"),
        }),
        ..SimConfig::quiet(small_tenant())
    };
    let mut sim = start_with(config).await;
    sim._dir = Some(dir);
    sim
}

/// A decoded answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

impl TestSim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A token with every scope of the demo client.
    pub async fn token(&self) -> String {
        self.token_with_scope(None).await
    }

    /// A token limited to `scope` (space separated), or all scopes.
    pub async fn token_with_scope(&self, scope: Option<&str>) -> String {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", skillsync_sim::DEMO_CLIENT_ID),
            ("client_secret", skillsync_sim::DEMO_CLIENT_SECRET),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(self.url("/api/v2/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "token request failed");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Sends a request with an optional bearer token, JSON body and extra headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(token), Some(body), &[])
            .await
    }

    /// `GET /sim/state`.
    pub async fn state(&self) -> Value {
        self.http
            .get(self.url("/sim/state"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /sim/stats`.
    pub async fn stats(&self) -> Value {
        self.http
            .get(self.url("/sim/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `PATCH /sim/config`.
    pub async fn set_knobs(&self, changes: Value) {
        let response = self
            .http
            .patch(self.url("/sim/config"))
            .json(&changes)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// `POST /sim/clock/advance`.
    pub async fn advance_clock(&self, by: &str) {
        let response = self
            .http
            .post(self.url("/sim/clock/advance"))
            .json(&json!({ "by": by }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Count of requests in `/sim/stats` for a method and route template (any status).
    pub async fn requests_to(&self, method: &str, route: &str) -> u64 {
        let stats = self.stats().await;
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == method && r["route"] == route)
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    }
}

/// An error and every cause under it, `a: b: c`, as `anyhow`'s `{:#}` shows it to users.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(&format!(": {next}"));
        cause = next.source();
    }
    text
}

/// The `field`s of an error body's `details`.
pub fn detail_fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The users of a `/sim/state` document.
pub fn users(state: &Value) -> &Vec<Value> {
    state["users"].as_array().unwrap()
}

/// One user of a `/sim/state` document.
pub fn user_in<'a>(state: &'a Value, id: &str) -> &'a Value {
    users(state)
        .iter()
        .find(|u| u["id"] == id)
        .expect("user in state")
}

/// An object's `id`.
pub fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap().to_string()
}

/// A skill in the user's locale that the user does not hold.
pub fn a_skill_not_held(state: &Value, user: &Value) -> String {
    state["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["locale"] == user["locale"])
        .map(id_of)
        .find(|id| {
            !user["skills"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["id"] == *id)
        })
        .expect("a skill the user does not hold")
}

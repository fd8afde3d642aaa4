//! Test harness: starts the real simulator on 127.0.0.1:0 and talks to it over real HTTP with
//! plain `reqwest` and `serde_json::Value` — never with the client crate's types.
#![allow(dead_code)]

use std::collections::BTreeSet;
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

    /// `GET` of a simulator control endpoint (no token), decoded.
    async fn control(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /sim/state`.
    pub async fn state(&self) -> Value {
        self.control("/sim/state").await
    }

    /// `GET /sim/stats`.
    pub async fn stats(&self) -> Value {
        self.control("/sim/stats").await
    }

    /// `PATCH /sim/config`, answered.
    async fn patch_config(&self, changes: &Value) -> reqwest::Response {
        self.http
            .patch(self.url("/sim/config"))
            .json(changes)
            .send()
            .await
            .unwrap()
    }

    /// `PATCH /sim/config`.
    pub async fn set_knobs(&self, changes: Value) {
        let response = self.patch_config(&changes).await;
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

// ----- user writes the tenant loses or refuses (`lost_writes.rs`, `rejected_writes.rs`) -----

/// `POST` here writes many users' routing skills at once.
pub const BULK: &str = "/api/v2/routing/users/bulk";

/// A user in the routing dialect.
pub fn routing_user(id: &str) -> String {
    format!("/api/v2/routing/users/{id}")
}

/// A user in the users dialect.
pub fn dialect_user(id: &str) -> String {
    format!("/api/v2/users/{id}")
}

/// An object's `version`.
pub fn version_of(value: &Value) -> u64 {
    value["version"].as_u64().unwrap()
}

/// The ETag a write answers for `version`, and an `If-Match` sends back.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The users holding at least one skill, as `/sim/state` shows them.
pub fn skilled_users(state: &Value) -> Vec<Value> {
    users(state)
        .iter()
        .filter(|u| !u["skills"].as_array().unwrap().is_empty())
        .cloned()
        .collect()
}

/// A list of leveled assignments with the first one's level moved by one: a change the API
/// must keep.
pub fn first_level_moved(assignments: &Value) -> Value {
    let mut moved = assignments.clone();
    let level = moved[0]["level"].as_u64().unwrap();
    moved[0]["level"] = json!(level % 10 + 1);
    moved
}

/// The user's skills (as `/sim/state` or the routing dialect shows them) changed.
pub fn skills_changed(user: &Value) -> Value {
    first_level_moved(&user["skills"])
}

/// The proficiencies of a user as the users dialect shows it, changed.
pub fn proficiencies_changed(dialect_user: &Value) -> Value {
    first_level_moved(&dialect_user["skills"]["proficiencies"])
}

/// Bulk entries changing each user's skills; the first entry carries the user's version, the
/// others none, so that a test covers versioned and unversioned entries alike.
pub fn bulk_entries_changing(users: &[Value]) -> Vec<Value> {
    users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut entry = json!({ "userId": u["id"], "skills": skills_changed(u) });
            if i == 0 {
                entry["version"] = u["version"].clone();
            }
            entry
        })
        .collect()
}

/// A bulk write answered as a whole (200) with these counts of entries that succeeded and
/// failed.
pub fn assert_bulk_answered(answer: &Answer, succeeded: u64, failed: u64) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["succeeded"], succeeded, "{}", answer.body);
    assert_eq!(answer.body["failed"], failed, "{}", answer.body);
}

/// A fault the simulator can put on user writes.
#[derive(Clone, Copy, Debug)]
pub enum WriteFault {
    /// `--lose-write-rate`: answered as a success, not kept.
    Lose,
    /// `--reject-write-rate`: refused with a 400.
    Reject,
}

impl WriteFault {
    /// The knob's name in `/sim/config`.
    pub fn knob(self) -> &'static str {
        match self {
            WriteFault::Lose => "loseWriteRate",
            WriteFault::Reject => "rejectWriteRate",
        }
    }

    /// The knob's command-line name, as errors name it.
    pub fn flag(self) -> &'static str {
        match self {
            WriteFault::Lose => "lose-write-rate",
            WriteFault::Reject => "reject-write-rate",
        }
    }

    /// The `/sim/stats` counter of writes that met the fault.
    pub fn counter(self) -> &'static str {
        match self {
            WriteFault::Lose => "writesLost",
            WriteFault::Reject => "writesRejected",
        }
    }

    /// What happens to a write that meets the fault, and to one that does not.
    fn outcomes(self) -> (&'static str, &'static str) {
        match self {
            WriteFault::Lose => ("lost", "kept"),
            WriteFault::Reject => ("refused", "taken"),
        }
    }

    /// Quiet knobs but for this fault at `rate`.
    pub fn knobs(self, rate: f64) -> Knobs {
        match self {
            WriteFault::Lose => Knobs {
                lose_write_rate: rate,
                ..Knobs::quiet()
            },
            WriteFault::Reject => Knobs {
                reject_write_rate: rate,
                ..Knobs::quiet()
            },
        }
    }

    /// Starts a simulator over the small tenant with this fault at `rate`.
    pub async fn start(self, rate: f64) -> TestSim {
        start_knobs(self.knobs(rate)).await
    }
}

/// A simulator where every write meets a fault, with a token, the tenant as it started and the
/// first skilled user in it.
pub struct FaultScene {
    pub fault: WriteFault,
    pub sim: TestSim,
    pub token: String,
    pub before: Value,
    pub user: Value,
}

/// The users-dialect write the scene's user is sent: renamed, and its first proficiency moved.
pub struct DialectWrite {
    pub path: String,
    /// The user as the users dialect showed it before the write.
    pub shown: Answer,
    pub proficiencies: Value,
    pub answer: Answer,
}

impl WriteFault {
    /// A simulator with this fault at rate 1, so that every write meets it.
    pub async fn on_every_write(self) -> FaultScene {
        let sim = self.start(1.0).await;
        let token = sim.token().await;
        let before = sim.state().await;
        let user = skilled_users(&before)[0].clone();
        FaultScene {
            fault: self,
            sim,
            token,
            before,
            user,
        }
    }
}

impl FaultScene {
    /// The scene's user's id.
    pub fn id(&self) -> String {
        id_of(&self.user)
    }

    /// Renames the scene's user and moves its first proficiency, in the users dialect.
    pub async fn rename_and_change_proficiencies(&self) -> DialectWrite {
        let path = dialect_user(&self.id());
        let shown = self.sim.get(&path, &self.token).await;
        assert_eq!(shown.status, 200, "{}", shown.body);
        let proficiencies = proficiencies_changed(&shown.body);
        let answer = self
            .sim
            .put(
                &path,
                &self.token,
                json!({ "firstName": "Renamed", "skills": { "proficiencies": proficiencies } }),
            )
            .await;
        DialectWrite {
            path,
            shown,
            proficiencies,
            answer,
        }
    }

    /// Changes the skills of the first three skilled users in one bulk write, the first entry
    /// versioned and the others not; returns the users as they were and the answer.
    pub async fn change_three_in_bulk(&self) -> (Vec<Value>, Answer) {
        let users: Vec<Value> = skilled_users(&self.before).into_iter().take(3).collect();
        let answer = self
            .sim
            .put_skills_in_bulk(&self.token, bulk_entries_changing(&users))
            .await;
        (users, answer)
    }

    /// The routing dialect still shows each of `users` as it was, and nothing changed but the
    /// fault's counter, which counts one write a user (see [`FaultScene::assert_nothing_changed`]).
    pub async fn assert_users_unchanged(&self, users: &[Value]) {
        for user in users {
            self.sim
                .assert_reads_back_unchanged(&self.token, user)
                .await;
        }
        self.assert_nothing_changed(users.len() as u64).await;
    }

    /// The users dialect still shows the user as it was before `write`.
    pub async fn assert_dialect_reads_back_unchanged(&self, write: &DialectWrite) {
        let read = self.sim.get(&write.path, &self.token).await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(
            read.body, write.shown.body,
            "the read-back shows the old user"
        );
    }

    /// The tenant is as it started, the fault's counter says `faulted` writes met it, and
    /// nothing reached the routing cache.
    pub async fn assert_nothing_changed(&self, faulted: u64) {
        assert_eq!(
            self.sim.state().await,
            self.before,
            "a write that meets the fault changes nothing"
        );
        let stats = self.sim.stats().await;
        assert_eq!(stats[self.fault.counter()], faulted, "{stats}");
        assert_eq!(
            stats["cacheRebuilds"], 0,
            "nothing reached the routing cache: {stats}"
        );
    }
}

/// One write of a round: whose, at which version before, and what was answered.
pub struct UserWrite {
    pub id: String,
    pub before: u64,
    pub answer: Answer,
}

/// How the writes of a round arrive.
#[derive(Clone, Copy, Debug)]
pub enum Arrival {
    OneByOne,
    AllAtOnce,
}

impl TestSim {
    /// `POST /sim/reset`, which must succeed.
    pub async fn reset(&self) {
        let response = self.http.post(self.url("/sim/reset")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    /// `GET /sim/config`.
    pub async fn config(&self) -> Value {
        self.control("/sim/config").await
    }

    /// `PATCH /sim/config` that must be refused as a validation error.
    pub async fn refuse_knobs(&self, changes: Value) {
        let response = self.patch_config(&changes).await;
        assert_eq!(response.status(), 400, "{changes} was accepted");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "VALIDATION_ERROR", "{body}");
    }

    /// One counter of `/sim/stats`.
    pub async fn stat(&self, counter: &str) -> u64 {
        self.stats().await[counter].as_u64().unwrap()
    }

    /// A `PUT` with `If-Match` naming `version`.
    pub async fn put_if_match(&self, path: &str, token: &str, body: Value, version: u64) -> Answer {
        let etag = etag(version);
        self.call(
            Method::PUT,
            path,
            Some(token),
            Some(body),
            &[("If-Match", etag.as_str())],
        )
        .await
    }

    /// `PUT /api/v2/routing/users/{id}` of a skill list.
    pub async fn put_skills(&self, token: &str, id: &str, skills: Value) -> Answer {
        self.put(&routing_user(id), token, json!({ "skills": skills }))
            .await
    }

    /// `POST /api/v2/routing/users/bulk` of these entries.
    pub async fn put_skills_in_bulk(&self, token: &str, entries: Vec<Value>) -> Answer {
        self.post(BULK, token, json!({ "users": entries })).await
    }

    /// `GET /api/v2/routing/users/{id}`.
    pub async fn routing_user(&self, token: &str, id: &str) -> Answer {
        self.get(&routing_user(id), token).await
    }

    /// Reads the user back in the routing dialect and checks it still shows the skills and the
    /// version it had in `user` (a `/sim/state` user): no write was kept.
    pub async fn assert_reads_back_unchanged(&self, token: &str, user: &Value) {
        let read = self.routing_user(token, &id_of(user)).await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.body["skills"], user["skills"]);
        assert_eq!(version_of(&read.body), version_of(user));
    }

    /// Writes a change to the skills of every skilled user, one after another or all at once,
    /// and returns the writes in the order of `/sim/state`.
    pub async fn change_every_skilled_user(&self, token: &str, arrival: Arrival) -> Vec<UserWrite> {
        let users = skilled_users(&self.state().await);
        let write = |user: Value| async move {
            let id = id_of(&user);
            let answer = self.put_skills(token, &id, skills_changed(&user)).await;
            UserWrite {
                id,
                before: version_of(&user),
                answer,
            }
        };
        match arrival {
            Arrival::AllAtOnce => futures::future::join_all(users.into_iter().map(write)).await,
            Arrival::OneByOne => {
                let mut written = Vec::new();
                for user in users {
                    written.push(write(user).await);
                }
                written
            }
        }
    }
}

/// Writes `rounds` changes to every skilled user, a round at a time, reads each user back, and
/// returns which (user, round) writes met `fault`. A write the read-back shows kept moved the
/// version by exactly one; `met(answer, kept)` checks the answer and says whether the write met
/// the fault. The fault's counter in `/sim/stats` must count exactly those.
pub async fn fault_pattern(
    sim: &TestSim,
    fault: WriteFault,
    rounds: usize,
    arrival: Arrival,
    met: &impl Fn(&Answer, bool) -> bool,
) -> BTreeSet<(String, usize)> {
    let token = sim.token().await;
    let mut pattern = BTreeSet::new();
    for round in 0..rounds {
        for write in sim.change_every_skilled_user(&token, arrival).await {
            let read = sim.routing_user(&token, &write.id).await;
            let kept = version_of(&read.body) != write.before;
            if kept {
                assert_eq!(version_of(&read.body), write.before + 1);
            }
            if met(&write.answer, kept) {
                pattern.insert((write.id, round));
            }
        }
    }
    assert_eq!(sim.stat(fault.counter()).await, pattern.len() as u64);
    pattern
}

/// At rate 0.5 some but not all writes meet `fault`, and which ones is the same when the same
/// writes arrive one by one, all at once on another simulator, or again after a reset. Returns
/// that pattern (see [`fault_pattern`]).
pub async fn assert_fault_pattern_is_reproducible(
    fault: WriteFault,
    met: &impl Fn(&Answer, bool) -> bool,
) -> BTreeSet<(String, usize)> {
    let (met_fault, passed) = fault.outcomes();
    let sequential = fault.start(0.5).await;
    let first = fault_pattern(&sequential, fault, 3, Arrival::OneByOne, met).await;
    let writes = 3 * skilled_users(&sequential.state().await).len();
    assert!(
        !first.is_empty() && first.len() < writes,
        "at rate 0.5 some of {writes} writes are {met_fault} and some {passed}: {first:?}"
    );

    // Another simulator over the same tenant, the same writes sent concurrently: the same ones
    // meet the fault.
    let concurrent = fault.start(0.5).await;
    assert_eq!(
        fault_pattern(&concurrent, fault, 3, Arrival::AllAtOnce, met).await,
        first
    );

    // A reset starts the decisions over, too.
    sequential.reset().await;
    assert_eq!(sequential.stat(fault.counter()).await, 0);
    assert_eq!(
        fault_pattern(&sequential, fault, 3, Arrival::OneByOne, met).await,
        first
    );
    first
}

/// The fault's rate knob takes 0 and 1 at runtime and refuses, as a validation error, a rate
/// outside 0..=1 or one that is not a number; at start, a rate over 1 is refused naming the
/// knob's flag.
pub async fn assert_rate_outside_zero_to_one_is_refused(fault: WriteFault) {
    let sim = start().await;
    let knob = fault.knob();
    for bad in [json!(1.5), json!(-0.1), json!("often")] {
        sim.refuse_knobs(json!({ knob: bad })).await;
    }
    sim.set_knobs(json!({ knob: 1 })).await;
    sim.set_knobs(json!({ knob: 0 })).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        knobs: fault.knobs(1.01),
        ..SimConfig::quiet(small_tenant())
    };
    let error = skillsync_sim::Simulator::new(listener, config)
        .err()
        .expect("a rate over 1 is refused at start");
    assert!(
        matches!(
            error,
            skillsync_sim::SimError::NotAProbability { knob: flag, .. } if flag == fault.flag()
        ),
        "{error:?}"
    );
}

/// At rate 0 a write through each of the routing `PUT`, the bulk `POST` and the users-dialect
/// `PUT` (each to its own skilled user) is kept, as its read-back shows, and the fault's counter
/// stays at 0. Returns the users-dialect user's path, whose `lastName` is now `Kept`.
pub async fn assert_every_kind_of_write_is_kept(sim: &TestSim, fault: WriteFault) -> String {
    let token = sim.token().await;
    let state = sim.state().await;
    let users = skilled_users(&state);
    let (single, bulk, dialect) = (&users[0], &users[1], &users[2]);

    let wanted = skills_changed(single);
    let id = id_of(single);
    let kept = sim.put_skills(&token, &id, wanted.clone()).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    let read = sim.routing_user(&token, &id).await;
    assert_eq!(read.body["skills"], wanted);
    assert_eq!(version_of(&read.body), version_of(single) + 1);

    let wanted = skills_changed(bulk);
    let answer = sim
        .put_skills_in_bulk(
            &token,
            vec![json!({ "userId": bulk["id"], "skills": wanted })],
        )
        .await;
    assert_eq!(answer.body["succeeded"], 1, "{}", answer.body);
    let read = sim.routing_user(&token, &id_of(bulk)).await;
    assert_eq!(read.body["skills"], wanted);

    let path = dialect_user(&id_of(dialect));
    let kept = sim.put(&path, &token, json!({ "lastName": "Kept" })).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(sim.get(&path, &token).await.body["lastName"], "Kept");

    assert_eq!(sim.stat(fault.counter()).await, 0);
    path
}

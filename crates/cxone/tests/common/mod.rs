//! Starts the real simulator on 127.0.0.1:0 for client tests, and reads its inspection routes
//! with plain HTTP (never through the client under test).
#![allow(dead_code)]

use serde_json::Value;
use skillsync_cxone::{Secret, Settings};
use skillsync_sim::{GenerateOptions, Knobs, SimConfig, TenantSource};
use tokio::sync::oneshot;

pub struct Sim {
    pub base: String,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

pub fn tenant(agents: usize) -> TenantSource {
    TenantSource::Generated(GenerateOptions {
        agents,
        skills: 6,
        proficiencies: 3,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 2,
        seed: 11,
    })
}

pub async fn start(knobs: Knobs, agents: usize) -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        knobs,
        ..SimConfig::quiet(tenant(agents))
    };
    let simulator = skillsync_sim::Simulator::new(listener, config).unwrap();
    let base = simulator.endpoint().base_url.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    let _ = rustls::crypto::ring::default_provider().install_default();
    Sim {
        base,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

impl Sim {
    /// Client settings for the demo client, with generous limits unless a test narrows them.
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::new(
            &format!("{}/api/v2", self.base),
            &format!("{}/api/v2/oauth/token", self.base),
            skillsync_sim::DEMO_CLIENT_ID,
            Secret::new(skillsync_sim::DEMO_CLIENT_SECRET),
        );
        settings.requests_per_second = 10_000.0;
        settings.burst = 1_000;
        settings.max_in_flight = 32;
        settings
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/sim/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn state(&self) -> Value {
        self.http
            .get(format!("{}/sim/state", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn set_knobs(&self, changes: Value) {
        let response = self
            .http
            .patch(format!("{}/sim/config", self.base))
            .json(&changes)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    pub async fn advance_clock(&self, by: &str) {
        let response = self
            .http
            .post(format!("{}/sim/clock/advance", self.base))
            .json(&serde_json::json!({ "by": by }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Requests the simulator answered for a method and route template, by status.
    pub async fn answered(&self, method: &str, route: &str) -> Vec<(u64, u64)> {
        let stats = self.stats().await;
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == method && r["route"] == route)
            .map(|r| (r["status"].as_u64().unwrap(), r["count"].as_u64().unwrap()))
            .collect()
    }

    /// Some user ids of the generated tenant.
    pub async fn user_ids(&self, n: usize) -> Vec<String> {
        let state = self.state().await;
        state["users"]
            .as_array()
            .unwrap()
            .iter()
            .take(n)
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect()
    }
}

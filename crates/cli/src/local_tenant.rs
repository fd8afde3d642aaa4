//! A simulated tenant inside this process, for the commands that need one without any setup
//! (`demo`, `bench`): start it, point a config file at it, read its inspection routes, stop it.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use skillsync_sim::{Knobs, SimConfig, TenantDoc, TenantSource};

/// The name of the simulator's threads, so that a benchmark can tell its CPU time from the
/// client's.
pub const SIM_THREAD: &str = "skillsync-sim";

/// A running in-process simulator, on threads of its own: the client's runtime is not shared
/// with the tenant it measures.
pub struct LocalTenant {
    /// Its root URL (`http://127.0.0.1:PORT`).
    pub base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), skillsync_sim::SimError>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl LocalTenant {
    /// Serves `doc` on a free loopback port with `knobs`.
    pub async fn start(doc: &TenantDoc, knobs: &Knobs) -> anyhow::Result<LocalTenant> {
        // reqwest is built without a default TLS provider; this is the one the client uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SIM_THREAD)
            .enable_all()
            .build()
            .context("cannot start the simulator's threads")?;
        let listener = {
            let _entered = runtime.enter();
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            std_listener.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let simulator = skillsync_sim::Simulator::new(
            listener,
            SimConfig {
                knobs: knobs.clone(),
                ..SimConfig::new(TenantSource::Doc(Box::new(doc.clone())))
            },
        )?;
        let base = simulator.endpoint().base_url.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(simulator.serve(async {
            let _ = stopped.await;
        }));
        Ok(LocalTenant {
            base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server,
            runtime: Some(runtime),
        })
    }

    /// GETs one of the simulator's inspection routes (`/sim/stats`, `/sim/state`, …).
    pub async fn inspect(&self, path: &str) -> anyhow::Result<Value> {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
            .with_context(|| format!("the simulator's {path} is not JSON"))
    }

    /// Puts the tenant back as it was loaded (`POST /sim/reset`): its users and definitions,
    /// its counters and its token bucket.
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/sim/reset", self.base))
            .send()
            .await?
            .error_for_status()
            .context("cannot reset the simulated tenant")?;
        Ok(())
    }

    /// What the simulated other integration wrote, and how many of the assignments it last
    /// wrote the tenant no longer holds (lost to a writer that did not merge). Pauses it first:
    /// a write landing between reading its log and the tenant would count as a loss.
    pub async fn other_writer_losses(&self) -> anyhow::Result<OtherWriterLosses> {
        // The simulator answers once no write cycle is in progress, so none follows.
        self.http
            .patch(format!("{}/sim/config", self.base))
            .json(&serde_json::json!({ "otherWriter": 0.0 }))
            .send()
            .await?
            .error_for_status()
            .context("cannot pause the simulated other integration")?;
        let log = self.inspect("/sim/other-writer").await?;
        let state = self.inspect("/sim/state").await?;
        let users: std::collections::BTreeMap<&str, &Value> = state["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| Some((u["id"].as_str()?, u)))
            .collect();
        let mut lost = 0;
        for (user_id, written) in log["users"].as_object().into_iter().flatten() {
            let now = users.get(user_id.as_str());
            for list in ["skills", "proficiencies"] {
                let held = now.and_then(|u| u[list].as_array());
                for assignment in written[list].as_array().into_iter().flatten() {
                    if !held.is_some_and(|h| h.contains(assignment)) {
                        lost += 1;
                    }
                }
            }
        }
        Ok(OtherWriterLosses {
            writes: log["writes"].as_u64().unwrap_or(0),
            lost,
        })
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
    }
}

impl Drop for LocalTenant {
    fn drop(&mut self) {
        // A runtime cannot be dropped inside another: it shuts down in the background.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What [`LocalTenant::other_writer_losses`] found.
pub struct OtherWriterLosses {
    /// Writes the other integration made.
    pub writes: u64,
    /// Its assignments the tenant no longer holds.
    pub lost: usize,
}

/// Writes `skillsync.toml` (and the demo client's secret in a file beside it, never in the
/// config) for a tenant at `base`, with the client's limits following the tenant's and the HRIS
/// files under `hris/`.
pub fn write_config(
    dir: &Path,
    base: &str,
    written_by: &str,
    requests_per_second: f64,
    burst: u32,
) -> anyhow::Result<()> {
    write_private(
        &dir.join("client-secret.txt"),
        &format!("{}\n", skillsync_sim::DEMO_CLIENT_SECRET),
    )?;
    let config = format!(
        r#"# Written by `{written_by}`. Secrets come from a file (or {{ env = "NAME" }}), never argv.
[tenant]
api_base = "{base}/api/v2"
client_id = "{id}"
client_secret = {{ file = "client-secret.txt" }}

[limits]
requests_per_second = {requests_per_second}
burst = {burst}
max_in_flight = 10

[sync]
bulk_threshold = 50
bulk_batch_size = 100
propagation_window = "30s"
max_removals = "10%"

[source]
catalog = "hris/catalog.csv"
agents = "hris/agents.csv"
assignments = "hris/assignments.csv"
"#,
        id = skillsync_sim::DEMO_CLIENT_ID
    );
    let path = dir.join("skillsync.toml");
    std::fs::write(&path, config).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Points the config [`write_config`] wrote at the simulator's CXone dialect
/// (`docs/sim-cxone.md`), with the catalog's variants named `{code}_{locale}` as that tenant
/// names them.
pub fn speak_cxone(dir: &Path, base: &str) -> anyhow::Result<()> {
    let path = dir.join("skillsync.toml");
    let config = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let cxone = format!(
        "api_base = \"{base}/incontactapi/services/v31.0\"\ntoken_url = \"{base}/api/v2/oauth/token\"\ndialect = \"cxone\"\nname_pattern = \"{{code}}_{{locale}}\""
    );
    let config = config.replace(&format!("api_base = \"{base}/api/v2\""), &cxone);
    std::fs::write(&path, config).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes a secret readable by its owner only, from the moment the file exists (a file written
/// first and narrowed after would be readable by anyone in between).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // A file left by an earlier run keeps its mode when opened: narrow it too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

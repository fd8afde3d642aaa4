//! A simulator of the CXone Admin API v2 for skills and proficiencies: faithful to the rules
//! that trip real clients (duplicates accepted, the empty-list trap, 412 and 409 conflicts,
//! referential-integrity 409s, 429 throttling, a routing cache that lags the database) and
//! hostile on demand (faults before and after commit, dropped connections, another integration
//! writing concurrently).
//!
//! Start one with [`run`] on any listener; tests bind `127.0.0.1:0`:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use skillsync_sim::{SimConfig, TenantSource, GenerateOptions};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = SimConfig::new(TenantSource::Generated(GenerateOptions::default()));
//! skillsync_sim::run(listener, config, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! Besides the Admin API v2 and its users dialect, it serves the CXone dialect
//! (`/incontactapi/services/v31.0`, `docs/sim-cxone.md`) over a tenant of its own,
//! [`cxone::CxoneTenant`], built from the same tenant document.
//!
//! This crate shares no types with the client crate on purpose: a misreading of the API
//! cannot then hide on both sides of a test.
#![deny(missing_docs)]
// Handlers return the API's error body by value; it is built once per refused request, never in
// a hot loop, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod api;
mod app;
mod auth;
mod cache;
mod clock;
mod config;
pub mod cxone;
mod error;
mod gateway;
mod generate;
mod holders;
mod model;
mod other_writer;
mod server;
mod stats;
mod tls;

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::TcpListener;

pub use auth::ALL_SCOPES;
pub use config::{
    ClientSpec, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DurationRange, Knobs, Rate, SimConfig,
    TenantSource, TlsOptions,
};
pub use error::SimError;
pub use generate::{
    Extras, GenerateOptions, generate, generate_with, proficiency_name, skill_name,
};
pub use model::{Assignment, Definition, Profile, Queue, Strategy, TenantDoc, User};
pub use other_writer::OWNED_PREFIX;
pub use server::Endpoint;

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// A simulator bound to its listener, with its tenant loaded and (under TLS) its CA written,
/// ready to serve.
pub struct Simulator {
    listener: TcpListener,
    app: Arc<app::App>,
    tls: Option<Arc<rustls::ServerConfig>>,
    endpoint: Endpoint,
}

impl Simulator {
    /// Loads the tenant, mints TLS material if asked, and checks the knobs. Nothing is served
    /// until [`Simulator::serve`].
    pub fn new(listener: TcpListener, config: SimConfig) -> Result<Simulator, SimError> {
        config.knobs.validate()?;
        let doc = match config.tenant {
            TenantSource::Generated(options) => generate(&options),
            TenantSource::Fixture(path) => {
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(source) => return Err(SimError::ReadFixture { path, source }),
                };
                match serde_json::from_str(&text) {
                    Ok(doc) => doc,
                    Err(source) => return Err(SimError::ParseFixture { path, source }),
                }
            }
            TenantSource::Doc(doc) => *doc,
        };
        let mut clients = config.clients;
        clients.extend(doc.clients.iter().cloned());
        let cxone = cxone::CxoneTenant::from_doc(&doc);
        let tenant = model::Tenant::from_doc(doc)
            .map_err(|problem| SimError::InvalidTenant(Box::new(problem)))?;
        let tls = match &config.tls {
            Some(options) => Some(tls::server_config(&options.ca_file)?),
            None => None,
        };
        let addr = listener.local_addr().map_err(SimError::ListenerAddress)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = Endpoint {
            base_url: format!("{scheme}://{addr}"),
            ca_file: config.tls.map(|t| t.ca_file),
        };
        let (knobs, _) = tokio::sync::watch::channel(config.knobs);
        let app = Arc::new(app::App {
            tenant: Mutex::new(tenant.clone()),
            initial: tenant,
            knobs,
            clock: clock::Clock::default(),
            auth: auth::Auth::new(clients),
            stats: Mutex::new(stats::Stats::default()),
            limits: gateway::Limits::default(),
            other_writer: Mutex::new(other_writer::OtherWriterLog::default()),
            other_writer_cycle: tokio::sync::Mutex::new(()),
            cxone: Mutex::new(cxone.clone()),
            cxone_initial: cxone,
        });
        Ok(Simulator {
            listener,
            app,
            tls,
            endpoint,
        })
    }

    /// Where clients reach it.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Serves until `shutdown` resolves, then lets open requests finish.
    ///
    /// Serving itself does not fail today (a failed accept is logged and serving goes on); the
    /// `Result` keeps room for a failure that must end it without changing every caller.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), SimError> {
        let writer = tokio::spawn(other_writer::run(self.app.clone()));
        let router = api::router(self.app);
        server::serve(self.listener, router, self.tls, shutdown).await;
        writer.abort();
        Ok(())
    }
}

/// Serves a simulator on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    Simulator::new(listener, config)?.serve(shutdown).await
}

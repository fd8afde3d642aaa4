//! The CXone Admin API client, where every way a naive client fails is solved once:
//!
//! - **tokens** are cached, refreshed ahead of expiry and fetched single-flight; a 401 causes
//!   one refresh and one retry; a 403 names the missing scope and is not retried, except once
//!   with a new token when the refused one came from the cache between processes (it may have
//!   been revoked); with [`Settings::token_cache`] set tokens are kept between processes, in a
//!   file only the user can read (see [`default_cache_dir`]), keyed by token URL, client id,
//!   scope and a hash of the secret, fetched by one process at a time;
//! - **throttling**: a client-side limiter and in-flight cap keep 429s rare; a 429 pauses every
//!   task for `Retry-After` (with jitter) and slows the limiter for a while;
//! - **retries**: 5xx, timeouts and dropped connections, with exponential backoff and full
//!   jitter, bounded by attempts and total time; other 4xx are never retried;
//! - **idempotent creates**: [`TenantApi::ensure_definition`] looks a definition up by name and
//!   locale, creates it only if absent, and looks again after any POST whose outcome is unknown;
//! - **optimistic concurrency**: reads carry versions, writes send them, and a stale version
//!   comes back as [`Error::Conflict`] (412, 409 or a per-entry 412) for the engine to re-merge.
//!
//! The three API dialects sit behind [`TenantApi`]; [`connect`] picks one from the settings.
//! This crate owns its wire types and shares none with the simulator.
#![deny(missing_docs)]

mod admin;
mod api;
mod auth;
mod error;
mod http;
mod metrics;
mod routing;
mod settings;
mod throttle;
mod token_cache;
mod users;
mod wire;

use std::sync::Arc;

pub use admin::CxoneApi;
pub use api::{
    AgentAssignment, AssignmentOp, Capabilities, DefinitionQuery, DefinitionWrite, Ensured,
    EntryOutcome, LookedUp, NewDefinition, Profile, Queue, Routed, Strategy, TenantApi,
    UserProfile, UserQuery, UserWrite,
};
pub use error::{
    AnswerProblem, CaProblem, Error, FieldProblem, LastAttempt, Result, SettingsProblem,
    referenced_by,
};
pub use metrics::CounterSnapshot;
pub use routing::{MAX_BULK_ENTRIES, PAGE_SIZE, RoutingApi};
pub use settings::{Dialect, RetryPolicy, Secret, Settings};
pub use token_cache::{CACHE_DIR_VAR, default_cache_dir};
pub use users::UsersApi;

/// A client for the dialect the settings name.
pub fn connect(settings: &Settings) -> Result<Arc<dyn TenantApi>> {
    let routing = routing(settings)?;
    Ok(match settings.dialect {
        Dialect::Routing => Arc::new(routing),
        Dialect::Users => Arc::new(UsersApi { routing }),
        Dialect::Cxone => Arc::new(CxoneApi {
            http: routing.http,
            scale: settings.proficiency_scale.clone(),
        }),
    })
}

/// A routing-dialect client.
pub fn routing(settings: &Settings) -> Result<RoutingApi> {
    let http = http::Http::new(settings)?;
    Ok(RoutingApi {
        http: Arc::new(http),
    })
}

impl RoutingApi {
    /// The request rate the client currently allows itself (lowered after 429s).
    pub fn current_rate(&self) -> f64 {
        self.http.throttle.current_rate()
    }
}

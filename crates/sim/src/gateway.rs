//! The API gateway in front of every API route, `/api/v2` and the CXone dialect's (SPEC 1.6):
//! the tenant's token bucket, the token endpoint's own bucket, the per-client in-flight cap,
//! latency, and injected faults.
//!
//! Faults come in three kinds because clients must survive each differently: a 5xx before
//! commit (retrying is safe), a 502 after commit (the write happened: a blind retry of a POST
//! duplicates), and a dropped connection (the client cannot tell which of the two happened;
//! for writes we drop after committing half of the time).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use rand::Rng;

use crate::app::App;
use crate::clock::SimInstant;
use crate::config::Rate;
use crate::error::ApiError;

/// The token endpoint's route; it has its own limiter and takes no faults.
pub const TOKEN_ROUTE: &str = "/api/v2/oauth/token";

/// Marks a response whose connection the server must close without answering.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Option<SimInstant>,
}

impl Bucket {
    const FULL: Bucket = Bucket {
        tokens: f64::INFINITY,
        last: None,
    };

    /// Takes one token, or says how long until one is available.
    fn take(&mut self, now: SimInstant, per_second: f64, capacity: f64) -> Result<(), Duration> {
        let elapsed = self.last.map_or(0.0, |last| now.since(last).as_secs_f64());
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

/// The gateway's books: two token buckets and the in-flight count per client.
#[derive(Debug)]
pub struct Limits {
    tenant: Mutex<Bucket>,
    token_endpoint: Mutex<Bucket>,
    in_flight: Mutex<HashMap<String, u32>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tenant: Mutex::new(Bucket::FULL),
            token_endpoint: Mutex::new(Bucket::FULL),
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl Limits {
    /// Refills both buckets (in-flight counts belong to live requests and stay).
    pub fn reset(&self) {
        *self.tenant.lock() = Bucket::FULL;
        *self.token_endpoint.lock() = Bucket::FULL;
    }
}

/// Releases one in-flight slot when the request finishes, however it finishes.
struct InFlight {
    app: Arc<App>,
    client: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = self.app.limits.in_flight.lock();
        if let Some(n) = counts.get_mut(&self.client) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The middleware: counts every request by route template and status, then applies the knobs.
pub async fn gateway(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // A shared pointer to the template, not a copy of it: this runs on every request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("(no route)", MatchedPath::as_str);
    let response = apply_knobs(&app, &method, route, request, next).await;
    let status = if response.extensions().get::<DropConnection>().is_some() {
        0
    } else {
        response.status().as_u16()
    };
    app.stats.lock().record(method.as_str(), route, status);
    response
}

enum Fate {
    Answer,
    DropBefore,
    FaultBefore(StatusCode),
    DropAfterCommit,
    FaultAfterCommit,
}

async fn apply_knobs(
    app: &Arc<App>,
    method: &Method,
    route: &str,
    request: Request,
    next: Next,
) -> Response {
    let knobs = app.knobs();
    let now = app.clock.now();
    let is_token_endpoint = route == TOKEN_ROUTE;

    let throttled = if is_token_endpoint {
        take(
            &app.limits.token_endpoint,
            now,
            knobs.token_rate_limit,
            None,
        )
    } else {
        take(&app.limits.tenant, now, knobs.rate_limit, Some(knobs.burst))
    };
    if let Err(wait) = throttled {
        let which = if is_token_endpoint {
            format!("the token endpoint's limit of {}", knobs.token_rate_limit)
        } else {
            format!(
                "the tenant's limit of {} (burst {})",
                knobs.rate_limit, knobs.burst
            )
        };
        return too_many("RATE_LIMITED", format!("{which} is exceeded"), wait);
    }

    let _slot = if knobs.max_in_flight > 0 && !is_token_endpoint {
        let client = app
            .auth
            .client_of(request.headers())
            .unwrap_or_else(|| "(anonymous)".to_string());
        let mut counts = app.limits.in_flight.lock();
        let n = counts.entry(client.clone()).or_default();
        if *n >= knobs.max_in_flight {
            return too_many(
                "TOO_MANY_IN_FLIGHT",
                format!(
                    "client {client} already has {} requests in flight (cap {})",
                    n, knobs.max_in_flight
                ),
                Duration::from_secs(1),
            );
        }
        *n += 1;
        Some(InFlight {
            app: app.clone(),
            client,
        })
    } else {
        None
    };

    let delay = knobs.latency.sample(&mut rand::rng());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let is_write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let fate = if is_token_endpoint {
        Fate::Answer
    } else {
        let mut rng = rand::rng();
        if rng.random_bool(knobs.drop_rate) {
            if is_write && rng.random_bool(0.5) {
                Fate::DropAfterCommit
            } else {
                Fate::DropBefore
            }
        } else if rng.random_bool(knobs.fault_rate) {
            let statuses = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ];
            Fate::FaultBefore(statuses[rng.random_range(0..statuses.len())])
        } else if is_write && rng.random_bool(knobs.fault_after_commit_rate) {
            Fate::FaultAfterCommit
        } else {
            Fate::Answer
        }
    };

    match fate {
        Fate::DropBefore => {
            app.stats.lock().dropped_connections += 1;
            return dropped();
        }
        Fate::FaultBefore(status) => {
            app.stats.lock().faults_before_commit += 1;
            return ApiError::new(
                status,
                "INJECTED_FAULT",
                "the gateway failed before handling the request; nothing was applied",
            )
            .into_response();
        }
        _ => {}
    }

    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    match fate {
        Fate::DropAfterCommit => {
            app.stats.lock().dropped_connections += 1;
            dropped()
        }
        Fate::FaultAfterCommit => {
            app.stats.lock().faults_after_commit += 1;
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "UPSTREAM_TIMEOUT",
                "the gateway timed out waiting for the backend (the change may have been applied)",
            )
            .into_response()
        }
        _ => response,
    }
}

fn take(
    bucket: &Mutex<Bucket>,
    now: SimInstant,
    rate: Rate,
    burst: Option<u32>,
) -> Result<(), Duration> {
    let Rate::PerSecond(per_second) = rate else {
        return Ok(());
    };
    // The token endpoint's bucket holds one minute's worth of requests.
    let capacity = burst.map_or((per_second * 60.0).max(1.0), f64::from);
    bucket.lock().take(now, per_second, capacity)
}

fn too_many(code: &'static str, message: String, wait: Duration) -> Response {
    // Retry-After is whole seconds (RFC 9110), rounded up so that obeying it always succeeds.
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        code,
        format!("{message}; retry after {seconds} s"),
    )
    .with("retryAfterSeconds", seconds.into())
    .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
    .into_response()
}

fn dropped() -> Response {
    let mut response = StatusCode::SERVICE_UNAVAILABLE.into_response();
    response.extensions_mut().insert(DropConnection);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_says_how_long_to_wait() {
        let mut bucket = Bucket::FULL;
        let t0 = SimInstant::default();
        for _ in 0..20 {
            assert!(bucket.take(t0, 10.0, 20.0).is_ok());
        }
        let wait = bucket.take(t0, 10.0, 20.0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6);
        assert!(
            bucket
                .take(t0 + Duration::from_millis(100), 10.0, 20.0)
                .is_ok()
        );
    }
}

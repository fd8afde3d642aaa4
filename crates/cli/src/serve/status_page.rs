//! The status page: `GET /` (the state in one line, the last runs, the event queue, what is
//! still settling in the routing cache, the API budget, drift) and `GET /runs/{id}` (a run's
//! writes, 100 a page). Server-rendered HTML with no script at all: it works with scripting
//! off and refreshes itself every 15 s with a `<meta>` tag.
//!
//! Opening it makes no call to the tenant: it reads the journal, the event queue and what this
//! process holds in memory (`Status`, the client's counters and their samples), so a page left
//! open on a wall screen costs the tenant's API budget nothing.
//!
//! - `status/gather.rs`: everything the page shows, read now, each part on its own (a store
//!   that fails shows as a note in its section, not a failed page).
//! - `status/budget.rs`: the client's counters sampled over time, for calls per hour and per
//!   window.
//! - `status/view.rs` and `status/run_view.rs`: the two pages' markup (maud).
//! - `status/format.rs`: times in the tenant's zone and the server's, durations, counts, and
//!   a journaled write's before → after.

#[path = "status/budget.rs"]
mod budget;
#[path = "status/format.rs"]
mod format;
#[path = "status/gather.rs"]
mod gather;
#[path = "status/run_view.rs"]
mod run_view;
#[path = "status/view.rs"]
mod view;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use skillsync_core::plan::Plan;
use skillsync_store::RunId;

pub use budget::{ApiHistory, sample_api};

use super::Service;

/// Drifted agents kept for the page (the count covers them all).
pub const DRIFTED_SHOWN: usize = 20;

/// Writes listed on one page of a run.
const WRITES_PER_PAGE: usize = 100;

/// Why the last full sync did not complete, and when that was learnt.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub at: Timestamp,
    pub why: Stop,
}

/// What stopped a full sync.
#[derive(Debug, Clone)]
pub enum Stop {
    /// A guard or a check refused the plan before its first write (removals, empty skill
    /// lists, the ownership check, invalid files): nothing was written.
    Guard(String),
    /// Another process holds the tenant's lease (who, and until when).
    LeaseElsewhere(String),
    /// The window's end stopped the writes; the rest waits for the next window.
    CutOff,
    /// An error, or a run that ended with failures.
    Failed(String),
}

/// One agent the last full read found different from the HRIS.
#[derive(Debug, Clone)]
pub struct DriftedAgent {
    pub employee_id: String,
    pub user_id: String,
    pub locale: String,
    /// What differs, one line per assignment, as `skillsync drift` says it.
    pub changes: Vec<String>,
}

/// The first `limit` agents of a full sync's plan (the plan is the drift: what the tenant held
/// that the HRIS did not say).
pub fn drifted_agents(plan: &Plan, limit: usize) -> Vec<DriftedAgent> {
    plan.users
        .iter()
        .take(limit)
        .map(|user| DriftedAgent {
            employee_id: user.employee_id.to_string(),
            user_id: user.user_id.to_string(),
            locale: user.locale.to_string(),
            changes: user.changes().map(format::plan_change).collect(),
        })
        .collect()
}

/// `GET /`.
pub async fn index(State(service): State<Arc<Service>>) -> Response {
    let overview = gather::overview(&service).await;
    html(view::page(&overview).into_string())
}

/// `?page=N` of a run page.
#[derive(Debug, serde::Deserialize)]
pub struct PageQuery {
    page: Option<usize>,
}

/// `GET /runs/{id}`.
pub async fn run_page(
    State(service): State<Arc<Service>>,
    Path(id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> Response {
    let page = query.page.unwrap_or(1).max(1);
    match gather::run(&service, RunId(id), page, WRITES_PER_PAGE).await {
        Ok(Some(run)) => html(run_view::page(&run).into_string()),
        Ok(None) => {
            let mut response = html(run_view::not_found(id).into_string());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
        Err(why) => {
            let mut response = html(run_view::unavailable(id, &why).into_string());
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    }
}

/// An HTML answer that no browser caches, frames or runs a script in: the content security
/// policy allows the inline style and nothing else.
fn html(body: String) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether an `Authorization` header carries `expected`: `Bearer <token>`, or basic auth
/// whose password is the token (any user name, so a browser's prompt works). Both sides are
/// hashed first and the hashes compared in constant time, so neither the token's bytes nor
/// its length can be learnt from how long a refusal takes.
pub fn token_matches(expected: &str, authorization: Option<&str>) -> bool {
    use base64::Engine as _;
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;

    let Some((scheme, value)) = authorization.and_then(|h| h.trim().split_once(' ')) else {
        return false;
    };
    let given: Vec<u8> = if scheme.eq_ignore_ascii_case("bearer") {
        value.trim().as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
            return false;
        };
        match decoded.iter().position(|&b| b == b':') {
            Some(colon) => decoded[colon + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    let given = sha2::Sha256::digest(&given);
    let expected = sha2::Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn a_bearer_token_or_a_basic_password_opens_the_page() {
        let basic = |credentials: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        };
        assert!(token_matches("s3cret", Some("Bearer s3cret")));
        assert!(token_matches("s3cret", Some("bearer  s3cret ")));
        assert!(token_matches("s3cret", Some(&basic("ops:s3cret"))));
        assert!(token_matches("s3cret", Some(&basic(":s3cret"))));
        assert!(token_matches("pass:word", Some(&basic("ops:pass:word"))));

        assert!(!token_matches("s3cret", None));
        assert!(!token_matches("s3cret", Some("")));
        assert!(!token_matches("s3cret", Some("Bearer s3cre")));
        assert!(!token_matches("s3cret", Some("Bearer s3cret2")));
        assert!(!token_matches("s3cret", Some("s3cret")));
        assert!(!token_matches("s3cret", Some("Token s3cret")));
        assert!(!token_matches("s3cret", Some(&basic("s3cret"))));
        assert!(!token_matches("s3cret", Some(&basic("s3cret:"))));
        assert!(!token_matches("s3cret", Some("Basic !!!")));
    }
}

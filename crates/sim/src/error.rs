//! The crate's error, [`SimError`], for everything that can fail outside a request; and the
//! API's error body, `{"status","code","message","details"}`, and the response it becomes.

use std::num::ParseFloatError;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// What went wrong in the simulator library: starting a simulator (`Simulator::new`, `run`),
/// checking knobs (`Knobs::validate`), reading their spellings (`Rate` and `DurationRange`
/// from text), loading a tenant document, or checking a locale tag.
///
/// Every message says what failed at its own level; the cause, where there is one, is the
/// error's `source()`, so `{:#}` with `anyhow` (or walking the chain) shows the whole story.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    // ----- knobs -----
    /// A probability knob (`fault-rate`, `fault-after-commit-rate`, `drop-rate`,
    /// `lose-write-rate`, `reject-write-rate`) is outside 0..=1.
    #[error("{knob} must be a probability between 0 and 1, got {value}")]
    NotAProbability {
        /// The knob's command-line name.
        knob: &'static str,
        /// What it was set to.
        value: f64,
    },
    /// `other-writer` is negative or not finite.
    #[error("other-writer must be a non-negative number of writes per second, got {0}")]
    OtherWriterRate(f64),
    /// `burst` is 0 while a rate limit is set: nothing could ever pass.
    #[error("burst must be at least 1 while a rate limit is set")]
    ZeroBurst,
    /// `token-ttl` is under one second.
    #[error("token-ttl must be at least 1s, got {}", humantime::format_duration(*.0))]
    TokenTtlTooShort(Duration),

    // ----- knob spellings -----
    /// A rate that is not `N/unit` or `off`.
    #[error("rate `{text}` should look like 10/s, 300/m or off")]
    RateShape {
        /// What was written.
        text: String,
    },
    /// A rate whose count is not a number.
    #[error("rate `{text}`: `{count}` is not a number (write e.g. 10/s, 300/m or off)")]
    RateCount {
        /// What was written.
        text: String,
        /// The part before the `/`.
        count: String,
        /// Why it is not a number.
        #[source]
        source: ParseFloatError,
    },
    /// A rate of zero, a negative one, or an infinite one.
    #[error("rate `{text}` must be positive (or `off`)")]
    RateNotPositive {
        /// What was written.
        text: String,
    },
    /// A rate per something other than s, m or h.
    #[error("rate `{text}`: unknown unit `{unit}` (use s, m or h)")]
    RateUnit {
        /// What was written.
        text: String,
        /// The part after the `/`.
        unit: String,
    },
    /// Text that is not a duration.
    #[error("`{text}` is not a duration (write e.g. 50ms, 15s, 2m)")]
    Duration {
        /// What was written.
        text: String,
        /// Why humantime refused it.
        #[source]
        source: humantime::DurationError,
    },
    /// A range `a..b` with `a` after `b`.
    #[error("range `{text}` runs backwards")]
    BackwardsRange {
        /// What was written.
        text: String,
    },

    // ----- tenant documents -----
    /// Two objects of one class share an id.
    #[error("{class} id {id} appears twice")]
    DuplicateId {
        /// `profile`, `definition` or `user`.
        class: &'static str,
        /// The id.
        id: String,
    },
    /// A definition or user names a routing profile the document does not hold.
    #[error("{owner} names routing profile {profile}, which does not exist")]
    UnknownProfile {
        /// Who names it, such as `user 42`.
        owner: String,
        /// The missing profile's id.
        profile: String,
    },
    /// A profile, user or queue references a skill or proficiency the document does not hold
    /// (or holds as the other class).
    #[error("{owner} references {class} {id}, which does not exist")]
    UnknownDefinition {
        /// Who references it, such as `queue 7`.
        owner: String,
        /// `skill` or `proficiency`.
        class: &'static str,
        /// The missing id.
        id: String,
    },

    // ----- locale tags -----
    /// A locale tag with capitals.
    #[error("`{tag}` must be lowercase (write `{}`)", .tag.to_ascii_lowercase())]
    LocaleNotLowercase {
        /// What was written.
        tag: String,
    },
    /// A locale tag that is not BCP-47.
    #[error("`{tag}` is not a BCP-47 tag such as en-us or de-de")]
    LocaleNotBcp47 {
        /// What was written.
        tag: String,
    },

    // ----- starting a simulator -----
    /// The fixture file could not be read.
    #[error("cannot read the tenant fixture {}", .path.display())]
    ReadFixture {
        /// The fixture.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The fixture file is not a tenant document (the shape of `GET /sim/state`).
    #[error("the tenant fixture {} is not a tenant document", .path.display())]
    ParseFixture {
        /// The fixture.
        path: PathBuf,
        /// Where the JSON went wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The tenant document (generated, fixture or given) is inconsistent.
    #[error("invalid tenant")]
    InvalidTenant(#[source] Box<SimError>),
    /// The CA or server certificate could not be minted.
    #[error("cannot mint the simulator's TLS certificates")]
    MintCertificate(#[source] rcgen::Error),
    /// The directory for the CA certificate could not be created.
    #[error("cannot create {} for the CA certificate", .path.display())]
    CreateCaDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA certificate could not be written.
    #[error("cannot write the CA certificate to {}", .path.display())]
    WriteCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// rustls refused the server configuration.
    #[error("cannot build the TLS server configuration")]
    TlsConfig(#[source] rustls::Error),
    /// The listener's own address could not be read.
    #[error("cannot read the listener's local address")]
    ListenerAddress(#[source] std::io::Error),
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// JSON path of the field, such as `skills[2].level`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answer of the Admin API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Per-field problems (validation errors).
    pub details: Vec<FieldError>,
    /// Extra top-level members of the body, such as `references` on a 409.
    pub extra: Map<String, Value>,
    /// Headers to add, such as `Retry-After`.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            extra: Map::new(),
            headers: Vec::new(),
        }
    }

    /// 400 with the per-field problems.
    pub fn validation(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError {
            details,
            ..ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
        }
    }

    /// 400 for one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldError::new(field, message)])
    }

    /// 404 for a missing resource.
    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} {id} does not exist"),
        )
    }

    /// 412: the `If-Match` version is no longer current.
    pub fn stale(what: &str, id: &str, expected: u64, current: u64) -> Self {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
            format!("{what} {id} is at version {current}, not {expected}; re-read it and retry"),
        )
        .with("currentVersion", current.into())
    }

    /// Adds a top-level member to the body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("code".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        if !self.details.is_empty() {
            body.insert(
                "details".into(),
                serde_json::to_value(&self.details).unwrap_or_default(),
            );
        }
        body.extend(self.extra);
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

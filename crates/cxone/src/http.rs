//! One request, done right: throttled, authenticated, retried when that is safe, traced,
//! counted, and its failure classified into an [`Error`] the engine can act on.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, IF_MATCH, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use skillsync_core::Version;

use crate::auth::{Tokens, backoff};
use crate::error::{
    AnswerProblem, CaProblem, Error, FieldProblem, LastAttempt, Result, SettingsProblem,
};
use crate::metrics::Counters;
use crate::settings::{RetryPolicy, Settings};
use crate::throttle::Throttle;

/// Whether a failed attempt may simply be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, and writes that are idempotent or guarded by a version.
    Safe,
    /// Creates: after a 5xx or a dropped connection the object may exist, so the caller must
    /// look before sending again. (A 429 is still retried: it is answered before anything
    /// is applied.)
    Never,
}

/// A request to make.
#[derive(Debug)]
pub(crate) struct Call {
    pub method: Method,
    /// Route template for logs and counters, e.g. `/routing/users/{userId}`.
    pub route: &'static str,
    /// Path under the API base, e.g. `/routing/users/42`.
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    /// The JSON body, serialized once: every retry sends the same bytes.
    pub body: Option<Bytes>,
    pub if_match: Option<Version>,
    pub retry: Retry,
    /// What the path names, for errors: ("user", "42").
    pub subject: (&'static str, String),
}

impl Call {
    pub(crate) fn new(method: Method, route: &'static str, path: String) -> Call {
        Call {
            method,
            route,
            path,
            query: Vec::new(),
            body: None,
            if_match: None,
            retry: Retry::Safe,
            subject: ("resource", String::new()),
        }
    }

    pub(crate) fn query(mut self, name: &'static str, value: impl ToString) -> Call {
        self.query.push((name, value.to_string()));
        self
    }

    pub(crate) fn json(mut self, body: impl serde::Serialize) -> Call {
        let bytes =
            serde_json::to_vec(&body).expect("request bodies serialize: no map has non-text keys");
        self.body = Some(Bytes::from(bytes));
        self
    }

    pub(crate) fn if_match(mut self, version: Version) -> Call {
        self.if_match = Some(version);
        self
    }

    pub(crate) fn no_blind_retry(mut self) -> Call {
        self.retry = Retry::Never;
        self
    }

    pub(crate) fn about(mut self, what: &'static str, id: impl ToString) -> Call {
        self.subject = (what, id.to_string());
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub etag: Option<Version>,
    pub body: Bytes,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    references: Option<References>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    field: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct References {
    #[serde(default)]
    users: u64,
    #[serde(default)]
    profiles: u64,
    #[serde(default)]
    strategies: u64,
}

/// The shared transport of one client.
#[derive(Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: Url,
    tokens: Tokens,
    pub(crate) throttle: Throttle,
    pub(crate) counters: Counters,
    retry: RetryPolicy,
}

impl Http {
    /// A token, from the cache or fetched now.
    pub(crate) async fn token_ready(&self) -> Result<()> {
        self.tokens
            .current(&self.client, &self.counters)
            .await
            .map(|_| ())
    }

    pub(crate) fn new(settings: &Settings) -> Result<Http> {
        let (base, token_url) = settings.validate()?;
        // Rustls needs a process-wide crypto provider; ring is the one this workspace builds.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_max_idle_per_host(settings.max_in_flight)
            .user_agent(concat!("skillsync/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            for certificate in ca_certificates(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|e| Error::Settings(SettingsProblem::Client(e)))?;
        Ok(Http {
            client,
            base,
            tokens: Tokens::new(
                token_url,
                settings.client_id.clone(),
                settings.client_secret.clone(),
                settings.scopes.clone(),
                settings.retry.clone(),
                settings.token_cache.clone(),
            ),
            throttle: Throttle::new(
                settings.requests_per_second,
                settings.burst,
                settings.max_in_flight,
            ),
            counters: Counters::default(),
            retry: settings.retry.clone(),
        })
    }

    fn url(&self, call: &Call) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}{}", self.base.path().trim_end_matches('/'), call.path);
        url.set_path(&path);
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Sends a call until it succeeds, fails for good, or the retry policy is spent.
    pub(crate) async fn send(&self, call: &Call) -> Result<Reply> {
        let started = Instant::now();
        let url = self.url(call);
        let method = call.method.as_str();
        let mut attempt: u32 = 0;
        let mut refreshed_token = false;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.counters.retry();
            }
            // The token first: its endpoint has its own limit, and a permit taken while the
            // token is fetched would hold a cell of the tenant's bucket for the whole fetch.
            self.tokens.current(&self.client, &self.counters).await?;
            let permit = self.throttle.acquire().await;
            // Asked again once the permit is held: at a slow limit a request can wait longer
            // than its token had left, and one that came due for refresh meanwhile is renewed
            // now (rarely: once per token) rather than refused by the tenant after sending.
            let token = self.tokens.current(&self.client, &self.counters).await?;
            let mut request = self
                .client
                .request(call.method.clone(), url.clone())
                .bearer_auth(token.expose());
            if let Some(version) = call.if_match {
                request = request.header(IF_MATCH, format!("\"{version}\""));
            }
            if let Some(body) = &call.body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            self.counters.request(method, call.route);
            let sent_at = Instant::now();
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            drop(permit);
            let latency_ms = sent_at.elapsed().as_millis() as u64;
            let answered = outcome.as_ref().map_or(0, |(status, _, _)| status.as_u16());
            self.counters.response(method, call.route, answered);

            let (status, headers, body) = match outcome {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::debug!(method, route = call.route, attempt, latency_ms, error = %error, "transport failure");
                    let last = LastAttempt::transport(error)?;
                    self.pause_before_retry(call, attempt, started, last)
                        .await?;
                    continue;
                }
            };
            tracing::debug!(
                method,
                route = call.route,
                status = status.as_u16(),
                attempt,
                latency_ms,
                "answered"
            );

            if status.is_success() {
                self.throttle.on_success();
                return Ok(Reply {
                    etag: etag(&headers),
                    body,
                });
            }
            match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    if !refreshed_token && self.tokens.refused(&token, status).await =>
                {
                    // The token expired or was revoked early (401), or came from the cache
                    // between processes and may predate a change of its permissions (403):
                    // one new token, one retry.
                    refreshed_token = true;
                    continue;
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    self.counters.throttled();
                    let wait = retry_after(&headers).unwrap_or(Duration::from_secs(1));
                    self.throttle.on_throttled(wait);
                    if started.elapsed() + wait > self.retry.max_elapsed {
                        let last = LastAttempt::Status {
                            status: status.as_u16(),
                            message: error_body(&body).message,
                        };
                        return Err(self.unavailable(call, attempt, started, last));
                    }
                    // The throttle's pause makes this task (and every other) wait.
                    continue;
                }
                s if s.is_server_error() => {
                    let last = LastAttempt::Status {
                        status: s.as_u16(),
                        message: error_body(&body).message,
                    };
                    self.pause_before_retry(call, attempt, started, last)
                        .await?;
                    continue;
                }
                _ => return Err(self.classify(call, status, &headers, &body)),
            }
        }
    }

    /// Sleeps a backoff step, or gives up when the call may not be blindly retried or the
    /// policy is spent.
    async fn pause_before_retry(
        &self,
        call: &Call,
        attempt: u32,
        started: Instant,
        last: LastAttempt,
    ) -> Result<()> {
        let wait = backoff(&self.retry, attempt);
        let spent =
            attempt >= self.retry.max_attempts || started.elapsed() + wait > self.retry.max_elapsed;
        if call.retry == Retry::Never || spent {
            return Err(self.unavailable(call, attempt, started, last));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn unavailable(
        &self,
        call: &Call,
        attempts: u32,
        started: Instant,
        last: LastAttempt,
    ) -> Error {
        Error::Unavailable {
            method: call.method.to_string(),
            route: call.route,
            attempts,
            elapsed: started.elapsed(),
            last,
        }
    }

    fn classify(&self, call: &Call, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
        let parsed = error_body(body);
        let (what, id) = (call.subject.0, call.subject.1.clone());
        match status {
            StatusCode::UNAUTHORIZED => Error::Auth {
                code: "invalid_token".into(),
                message: format!("a freshly issued token was refused: {}", parsed.message),
            },
            StatusCode::FORBIDDEN => Error::MissingScope {
                method: call.method.to_string(),
                route: call.route,
                scope: parsed
                    .scope
                    .clone()
                    .or_else(|| scope_from_challenge(headers))
                    .unwrap_or_else(|| "(not named by the tenant)".into()),
            },
            StatusCode::NOT_FOUND => Error::NotFound { what, id },
            StatusCode::CONFLICT if parsed.code == "REFERENCED" => {
                let refs = parsed.references.unwrap_or(References {
                    users: 0,
                    profiles: 0,
                    strategies: 0,
                });
                Error::Referenced {
                    what,
                    id,
                    users: refs.users,
                    profiles: refs.profiles,
                    strategies: refs.strategies,
                }
            }
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => {
                self.counters.conflict();
                Error::Conflict {
                    what,
                    id,
                    expected: call.if_match,
                }
            }
            _ => Error::Rejected {
                method: call.method.to_string(),
                route: call.route,
                status: status.as_u16(),
                code: parsed.code,
                message: parsed.message,
                details: parsed
                    .details
                    .into_iter()
                    .map(|d| FieldProblem {
                        field: d.field,
                        message: d.message,
                    })
                    .collect(),
            },
        }
    }
}

impl Reply {
    /// Decodes the body.
    pub(crate) fn json<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| call.protocol_error(AnswerProblem::Json(e)))
    }
}

impl Call {
    /// The error for an answer to this call that cannot be read.
    pub(crate) fn protocol_error(&self, problem: AnswerProblem) -> Error {
        Error::Protocol {
            method: self.method.to_string(),
            route: self.route,
            problem,
        }
    }
}

/// The certificates of a PEM CA file, each checked to be usable as a trust anchor, so that a
/// bad file is reported with its path and the TLS library's reason rather than as a failure to
/// build the HTTP client.
fn ca_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let ca_error = |problem| Error::CaFile {
        path: path.to_path_buf(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(CaProblem::Read(e)))?;
    let mut store = rustls::RootCertStore::empty();
    let mut certificates = Vec::new();
    for (index, der) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let der = der.map_err(|e| ca_error(CaProblem::Pem(e)))?;
        let certificate =
            reqwest::Certificate::from_der(&der).map_err(|e| ca_error(CaProblem::Refused(e)))?;
        store.add(der).map_err(|source| {
            ca_error(CaProblem::Certificate {
                number: index + 1,
                source,
            })
        })?;
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(ca_error(CaProblem::NoCertificate));
    }
    Ok(certificates)
}

fn error_body(body: &[u8]) -> ErrorBody {
    serde_json::from_slice(body).unwrap_or_default()
}

fn etag(headers: &HeaderMap) -> Option<Version> {
    let text = headers.get(reqwest::header::ETAG)?.to_str().ok()?;
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
        .map(Version)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the tenant).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
}

fn scope_from_challenge(headers: &HeaderMap) -> Option<String> {
    let challenge = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let start = challenge.find("scope=\"")? + "scope=\"".len();
    let end = challenge[start..].find('"')?;
    Some(challenge[start..start + end].to_string())
}

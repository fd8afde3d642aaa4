//! Access tokens: fetched with client credentials, cached, refreshed ahead of expiry, and
//! single-flight, so that many concurrent callers cause one token request (the token
//! endpoint's own limit is a few requests per minute). With a cache directory set, tokens are
//! also kept between processes (see [`crate::token_cache`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::error::{AnswerProblem, Error, LastAttempt, Result};
use crate::metrics::Counters;
use crate::settings::{RetryPolicy, Secret};
use crate::token_cache::{Key, Stored, TokenFile};

/// Refresh this long before expiry (or at half the lifetime, for short-lived tokens).
const REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// Token endpoint attempts before giving up.
const TOKEN_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    refresh_at: Instant,
    /// When it was issued and for how long, for other processes to reuse it.
    issued_at: SystemTime,
    lifetime: Duration,
}

impl Token {
    fn new(value: Secret, issued_at: SystemTime, issued: Instant, lifetime: Duration) -> Token {
        Token {
            value,
            refresh_at: issued + lifetime - refresh_ahead(lifetime),
            issued_at,
            lifetime,
        }
    }

    /// A token another process cached, if it is not yet due for a refresh.
    fn from_stored(stored: Stored) -> Option<Token> {
        let lifetime = stored.expires_at.duration_since(stored.issued_at).ok()?;
        let refresh_at = stored.expires_at - refresh_ahead(lifetime);
        // Err: already due (or the wall clock went back past its issue: trust it no further
        // than its lifetime).
        let left = refresh_at
            .duration_since(SystemTime::now())
            .ok()?
            .min(lifetime);
        Some(Token {
            value: stored.value,
            refresh_at: Instant::now() + left,
            issued_at: stored.issued_at,
            lifetime,
        })
    }
}

/// How long before expiry a token is refreshed.
fn refresh_ahead(lifetime: Duration) -> Duration {
    REFRESH_AHEAD.min(lifetime / 2)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    message: String,
}

/// Says once per process that a command waits on the token endpoint.
static SAID_WAITING: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Default)]
struct Cached {
    token: Option<Token>,
    /// The tenant refused the last token: fetch a new one rather than read the disk cache.
    rejected: bool,
}

/// The token cache.
#[derive(Debug)]
pub(crate) struct Tokens {
    url: Url,
    client_id: String,
    client_secret: Secret,
    scopes: Vec<String>,
    retry: RetryPolicy,
    /// Where tokens are kept between processes, if anywhere.
    disk: Option<TokenFile>,
    cached: tokio::sync::Mutex<Cached>,
}

impl Tokens {
    pub(crate) fn new(
        url: Url,
        client_id: String,
        client_secret: Secret,
        scopes: Vec<String>,
        retry: RetryPolicy,
        cache_dir: Option<PathBuf>,
    ) -> Self {
        let disk = cache_dir.map(|dir| TokenFile::new(dir, Key::new(&url, &client_id, &scopes)));
        Tokens {
            url,
            client_id,
            client_secret,
            scopes,
            retry,
            disk,
            cached: tokio::sync::Mutex::new(Cached::default()),
        }
    }

    /// A valid token. Holding the lock while fetching makes concurrent callers wait for the one
    /// fetch in progress instead of starting their own.
    pub(crate) async fn current(
        &self,
        http: &reqwest::Client,
        counters: &Counters,
    ) -> Result<Secret> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.token.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        // Another process may have fetched one since (or before) this one started.
        if !std::mem::take(&mut cached.rejected)
            && let Some(token) = self
                .disk
                .as_ref()
                .and_then(TokenFile::load)
                .and_then(Token::from_stored)
        {
            tracing::debug!("token reused from the cache");
            let value = token.value.clone();
            cached.token = Some(token);
            return Ok(value);
        }
        let token = self.fetch(http, counters).await?;
        if let Some(disk) = &self.disk {
            disk.store(&token.value, token.issued_at, token.lifetime);
        }
        let value = token.value.clone();
        cached.token = Some(token);
        Ok(value)
    }

    /// Forgets `rejected` after a 401, unless another caller already replaced it, here and in
    /// the cache between processes, so that the next caller fetches a new one.
    pub(crate) async fn invalidate(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.token.as_ref().is_some_and(|t| &t.value == rejected) {
            cached.token = None;
            cached.rejected = true;
            if let Some(disk) = &self.disk {
                disk.forget(rejected);
            }
        }
    }

    async fn fetch(&self, http: &reqwest::Client, counters: &Counters) -> Result<Token> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        let scope = self.scopes.join(" ");
        if !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let last = loop {
            attempt += 1;
            let mut throttled = false;
            counters.token_fetch();
            counters.request("POST", "/oauth/token");
            let sent = http.post(self.url.clone()).form(&form).send().await;
            let (wait, last) = match sent {
                Ok(response) if response.status().is_success() => {
                    let issued = Instant::now();
                    let issued_at = SystemTime::now();
                    match response.bytes().await {
                        Ok(body) => {
                            let answer: TokenAnswer =
                                serde_json::from_slice(&body).map_err(|e| Error::Protocol {
                                    method: "POST".into(),
                                    route: "/oauth/token",
                                    problem: AnswerProblem::Json(e),
                                })?;
                            tracing::debug!(
                                attempt,
                                expires_in = answer.expires_in,
                                "token issued"
                            );
                            return Ok(Token::new(
                                Secret::new(answer.access_token),
                                issued_at,
                                issued,
                                Duration::from_secs(answer.expires_in),
                            ));
                        }
                        // The answer broke off: like any dropped connection, try again.
                        Err(e) => (backoff(&self.retry, attempt), LastAttempt::transport(e)),
                    }
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = crate::http::retry_after(response.headers());
                    let body: OAuthError = response.json().await.unwrap_or_default();
                    let message = if body.error_description.is_empty() {
                        body.message
                    } else {
                        body.error_description
                    };
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        counters.throttled();
                        throttled = true;
                        let wait = retry_after.unwrap_or(Duration::from_secs(1));
                        let last = LastAttempt::Status {
                            status: status.as_u16(),
                            message,
                        };
                        (wait, last)
                    } else if status.is_server_error() {
                        let last = LastAttempt::Status {
                            status: status.as_u16(),
                            message,
                        };
                        (backoff(&self.retry, attempt), last)
                    } else {
                        return Err(Error::Auth {
                            code: body.error,
                            message,
                        });
                    }
                }
                Err(e) => (backoff(&self.retry, attempt), LastAttempt::transport(e)),
            };
            if attempt == TOKEN_ATTEMPTS || started.elapsed() + wait > self.retry.max_elapsed {
                break last;
            }
            counters.retry();
            if throttled && !SAID_WAITING.swap(true, Ordering::Relaxed) {
                // Once per process: a command that seems stuck says why.
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                tracing::warn!(
                    "waiting {seconds} s for the tenant's token endpoint (5 tokens a minute)"
                );
            }
            tokio::time::sleep(wait).await;
        };
        Err(Error::Unavailable {
            method: "POST".into(),
            route: "/oauth/token",
            attempts: attempt,
            elapsed: started.elapsed(),
            last,
        })
    }
}

/// Exponential backoff with full jitter: uniform in [0, min(cap, base × 2^(attempt−1))].
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << (attempt - 1).min(16));
    let ceiling = exp.min(policy.max_delay);
    Duration::from_secs_f64(rand::rng().random_range(0.0..=ceiling.as_secs_f64()))
}

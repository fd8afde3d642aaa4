//! Access tokens: fetched with client credentials, cached, refreshed ahead of expiry, and
//! single-flight, so that many concurrent callers cause one token request (the token
//! endpoint's own limit is a few requests per minute). With a cache directory set, tokens are
//! also kept between processes (see [`crate::token_cache`]), and fetched single-flight across
//! them too: a process that finds no token fetches one holding the key's lock file, so that
//! processes started together make one request.
//!
//! A token the tenant refuses is dropped (here and from the cache between processes) and
//! replaced once: after a 401 always (it expired or was revoked early), after a 403 only if it
//! came from that cache (another process obtained it, maybe before a permission changed); a
//! 403 to a token this process fetched is the tenant's final word.

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
/// How long a process waits for another one fetching the same key's token before fetching
/// one itself: long enough for a fetch that waits its turn at the token endpoint (one token
/// every 12 s at 5 a minute), short enough that a stuck process does not hang the others.
const LOCK_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    refresh_at: Instant,
    /// When it was issued and for how long, for other processes to reuse it.
    issued_at: SystemTime,
    lifetime: Duration,
    /// Read from the cache between processes rather than fetched by this one: a 403 to it
    /// may be stale (its permissions may have changed since it was issued).
    from_cache: bool,
}

impl Token {
    fn new(value: Secret, issued_at: SystemTime, issued: Instant, lifetime: Duration) -> Token {
        Token {
            value,
            refresh_at: issued + lifetime - refresh_ahead(lifetime),
            issued_at,
            lifetime,
            from_cache: false,
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
            from_cache: true,
        })
    }
}

/// Makes `token` the current one and returns its value.
fn keep(cached: &mut Cached, token: Token) -> Secret {
    let value = token.value.clone();
    cached.token = Some(token);
    value
}

/// The cached token, unless it is due for a refresh or is the one the tenant refused.
fn reusable(disk: &TokenFile, rejected: Option<&Secret>) -> Option<Token> {
    disk.load()
        .and_then(Token::from_stored)
        .filter(|token| Some(&token.value) != rejected)
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
    /// The token the tenant refused last: never to be taken from the disk cache again, and
    /// to be dropped from it by the next fetch.
    rejected: Option<Secret>,
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
        let disk = cache_dir
            .map(|dir| TokenFile::new(dir, Key::new(&url, &client_id, &client_secret, &scopes)));
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
    /// fetch in progress instead of starting their own; with a disk cache, the key's lock file
    /// does the same for other processes.
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
        let rejected = cached.rejected.take();
        let Some(disk) = &self.disk else {
            let token = self.fetch(http, counters).await?;
            return Ok(keep(&mut cached, token));
        };
        // Another process may have fetched one since (or before) this one started.
        if let Some(token) = reusable(disk, rejected.as_ref()) {
            tracing::debug!("token reused from the cache");
            return Ok(keep(&mut cached, token));
        }
        // None: look again and fetch holding the lock, while other processes wait for the
        // token this one writes (or, if this one waited, use the token another just wrote).
        let lock = disk.lock(LOCK_WAIT).await;
        if let Some(rejected) = &rejected {
            disk.forget(rejected);
        }
        if let Some(token) = reusable(disk, rejected.as_ref()) {
            tracing::debug!("token reused from the cache, fetched by another process");
            return Ok(keep(&mut cached, token));
        }
        let token = match self.fetch(http, counters).await {
            Ok(token) => token,
            Err(error) => {
                cached.rejected = rejected;
                return Err(error);
            }
        };
        disk.store(&token.value, token.issued_at, token.lifetime);
        drop(lock);
        Ok(keep(&mut cached, token))
    }

    /// Called when the tenant refused `token` with `status` (401 or 403): whether the call is
    /// worth one more try with another token. If so and `token` is still the current one, it is
    /// forgotten, here and (by the next fetch) in the cache between processes, unless another
    /// process already replaced it there. A 403 to a token this process fetched is final.
    pub(crate) async fn refused(&self, token: &Secret, status: StatusCode) -> bool {
        let mut cached = self.cached.lock().await;
        match &cached.token {
            Some(current) if &current.value == token => {
                if status == StatusCode::FORBIDDEN && !current.from_cache {
                    return false;
                }
                tracing::debug!(
                    status = status.as_u16(),
                    from_cache = current.from_cache,
                    "the tenant refused the token: fetching another"
                );
                cached.token = None;
                cached.rejected = Some(token.clone());
                true
            }
            // Another caller already dropped or replaced it: try the current one.
            _ => true,
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
            let answered = sent.as_ref().map_or(0, |r| r.status().as_u16());
            counters.response("POST", "/oauth/token", answered);
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
                        Err(e) => (backoff(&self.retry, attempt), LastAttempt::transport(e)?),
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
                Err(e) => (backoff(&self.retry, attempt), LastAttempt::transport(e)?),
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

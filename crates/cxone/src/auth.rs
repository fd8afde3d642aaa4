//! Access tokens: fetched with client credentials, cached, refreshed ahead of expiry, and
//! single-flight, so that many concurrent callers cause one token request (the token
//! endpoint's own limit is a few requests per minute).

use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::error::{AnswerProblem, Error, LastAttempt, Result};
use crate::metrics::Counters;
use crate::settings::{RetryPolicy, Secret};

/// Refresh this long before expiry (or at half the lifetime, for short-lived tokens).
const REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// Token endpoint attempts before giving up.
const TOKEN_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    refresh_at: Instant,
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

/// The token cache.
#[derive(Debug)]
pub(crate) struct Tokens {
    url: Url,
    client_id: String,
    client_secret: Secret,
    scopes: Vec<String>,
    retry: RetryPolicy,
    cached: tokio::sync::Mutex<Option<Token>>,
}

impl Tokens {
    pub(crate) fn new(
        url: Url,
        client_id: String,
        client_secret: Secret,
        scopes: Vec<String>,
        retry: RetryPolicy,
    ) -> Self {
        Tokens {
            url,
            client_id,
            client_secret,
            scopes,
            retry,
            cached: tokio::sync::Mutex::new(None),
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
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let token = self.fetch(http, counters).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Forgets `rejected` after a 401, unless another caller already replaced it.
    pub(crate) async fn invalidate(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == rejected) {
            *cached = None;
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
            counters.token_fetch();
            counters.request("POST", "/oauth/token");
            let sent = http.post(self.url.clone()).form(&form).send().await;
            let (wait, last) = match sent {
                Ok(response) if response.status().is_success() => {
                    let issued_at = Instant::now();
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
                            let lifetime = Duration::from_secs(answer.expires_in);
                            let ahead = REFRESH_AHEAD.min(lifetime / 2);
                            return Ok(Token {
                                value: Secret::new(answer.access_token),
                                refresh_at: issued_at + lifetime - ahead,
                            });
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

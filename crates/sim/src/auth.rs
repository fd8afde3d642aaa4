//! OAuth 2.0 client credentials (SPEC 1.1): clients, scopes, token issue, expiry and checks.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use parking_lot::Mutex;
use rand::Rng;

use crate::clock::SimInstant;
use crate::config::ClientSpec;
use crate::error::{ApiError, FieldError};

/// Every scope the tenant knows.
pub const ALL_SCOPES: &[&str] = &[
    "routing:skills:read",
    "routing:skills:write",
    "routing:proficiencies:read",
    "routing:proficiencies:write",
    "routing:profiles:read",
    "routing:profiles:write",
    "routing:strategies:read",
    "routing:strategies:write",
    "users:read",
    "users:write",
    "interactions:write",
    "admin:users:read",
    "admin:users:write",
    "cxone:agents:read",
    "cxone:skills:read",
    "cxone:skills:write",
];

/// Who a valid token belongs to and what it may do.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    expires_at: SimInstant,
}

/// A successful token response body.
#[derive(Debug, serde::Serialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Granted scopes, space separated.
    pub scope: String,
}

/// The tenant's OAuth clients and the tokens issued to them.
#[derive(Debug)]
pub struct Auth {
    clients: Vec<ClientSpec>,
    tokens: Mutex<HashMap<String, Grant>>,
}

impl Auth {
    /// Accepts these clients.
    pub fn new(clients: Vec<ClientSpec>) -> Self {
        Auth {
            clients,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Handles the form fields of `POST /oauth/token`.
    pub fn issue(
        &self,
        form: &HashMap<String, String>,
        now: SimInstant,
        ttl: Duration,
    ) -> Result<TokenResponse, ApiError> {
        let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
        if grant_type != "client_credentials" {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type `{grant_type}` is not supported; use client_credentials"),
            ));
        }
        let id = form.get("client_id").map(String::as_str).unwrap_or("");
        let secret = form.get("client_secret").map(String::as_str).unwrap_or("");
        let Some(client) = self
            .clients
            .iter()
            .find(|c| c.id == id && constant_time_eq(c.secret.as_bytes(), secret.as_bytes()))
        else {
            return Err(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret".to_string(),
            ));
        };
        let scopes: Vec<String> = match form.get("scope").map(|s| s.trim()) {
            None | Some("") => client.scopes.clone(),
            Some(requested) => {
                let mut scopes = Vec::new();
                for scope in requested.split_whitespace() {
                    if !client.scopes.iter().any(|s| s == scope) {
                        return Err(oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_scope",
                            format!("scope `{scope}` is not granted to client {id}"),
                        ));
                    }
                    scopes.push(scope.to_string());
                }
                scopes
            }
        };
        let token: String = {
            let mut rng = rand::rng();
            (0..32)
                .map(|_| char::from_digit(rng.random_range(0..36), 36).unwrap_or('0'))
                .collect()
        };
        let token = format!("sim.{token}");
        self.tokens.lock().insert(
            token.clone(),
            Grant {
                client_id: client.id.clone(),
                scopes: scopes.clone(),
                expires_at: now + ttl,
            },
        );
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer",
            expires_in: ttl.as_secs(),
            scope: scopes.join(" "),
        })
    }

    /// Whether a request's bearer token is valid and grants `scope`, checked where the grant is
    /// stored (every request asks: nothing is copied): 401 without a valid token, 403 without
    /// the scope.
    pub fn require(
        &self,
        headers: &HeaderMap,
        now: SimInstant,
        scope: &str,
    ) -> Result<(), ApiError> {
        let Some(token) = bearer(headers) else {
            return Err(unauthorized(
                "missing bearer token: send Authorization: Bearer <token>",
            ));
        };
        let granted = {
            let mut tokens = self.tokens.lock();
            match tokens.get(token) {
                None => return Err(unauthorized("unknown access token")),
                Some(grant) if grant.expires_at <= now => {
                    tokens.remove(token);
                    return Err(unauthorized("access token expired; request a new one"));
                }
                Some(grant) => grant.scopes.iter().any(|s| s == scope),
            }
        };
        if granted {
            return Ok(());
        }
        let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
        Err(ApiError {
            details: vec![FieldError::new("scope", scope)],
            ..ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this call needs scope {scope}, which the token was not granted"),
            )
        }
        .with("scope", scope.into())
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer")),
        ))
    }

    /// The client a token was issued to (valid or not yet checked), for the in-flight cap.
    pub fn client_of(&self, headers: &HeaderMap) -> Option<String> {
        let token = bearer(headers)?;
        self.tokens.lock().get(token).map(|g| g.client_id.clone())
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// OAuth errors carry `error` and `error_description` (RFC 6749) beside our usual fields.
fn oauth_error(status: StatusCode, code: &'static str, description: String) -> ApiError {
    ApiError::new(status, code, description.clone())
        .with("error", code.into())
        .with("error_description", description.into())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

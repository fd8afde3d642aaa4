//! Client settings: where the tenant is, who we are, and how hard we may push it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use crate::error::{Error, SettingsProblem};

/// A secret (client secret, access token). Its `Debug` and `Display` never show it, so it
/// cannot leak through a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which API dialect to speak (SPEC 1.3 routing users, or SPEC 1.5 users).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// `/routing/users`: bulk, proficiencies, `If-Match` → 412.
    #[default]
    Routing,
    /// `/users`: per-user merge updates only, skills only, stale → 409.
    Users,
    /// The CXone Admin API (`docs/sim-cxone.md`): integer ids, assignments per skill with
    /// result sets, proficiency 1–20 (1 best), no ETags, the locale in the skill's name.
    Cxone,
}

impl Dialect {
    /// The name `skillsync.toml` spells it with.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Routing => "routing",
            Dialect::Users => "users",
            Dialect::Cxone => "cxone",
        }
    }
}

/// How failed requests are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Give up once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
    /// First backoff step; doubles per attempt, with full jitter.
    pub base_delay: Duration,
    /// Largest backoff step.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(120),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// Everything the client needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// API base, including `/api/v2`, e.g. `https://tenant.example.com/api/v2`.
    pub api_base: String,
    /// Token endpoint URL.
    pub token_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// Scopes to ask for; empty asks for everything the client is granted.
    pub scopes: Vec<String>,
    /// An extra certificate authority to trust (PEM), e.g. the simulator's.
    pub ca_file: Option<PathBuf>,
    /// TCP+TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Client-side rate limit; set it to the tenant's.
    pub requests_per_second: f64,
    /// Client-side burst; set it to the tenant's.
    pub burst: u32,
    /// Requests in flight at once; set it to at most the tenant's cap.
    pub max_in_flight: usize,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// API dialect.
    pub dialect: Dialect,
    /// A directory to keep access tokens in between processes (see [`crate::default_cache_dir`]);
    /// `None` keeps them in memory only.
    pub token_cache: Option<PathBuf>,
    /// HRIS level → the tenant's proficiency value, for a dialect with its own scale (cxone).
    pub proficiency_scale: skillsync_core::ProficiencyScale,
}

impl Settings {
    /// Settings with the defaults of SPEC section 3 for everything but the tenant and the client.
    pub fn new(
        api_base: &str,
        token_url: &str,
        client_id: &str,
        client_secret: Secret,
    ) -> Settings {
        Settings {
            api_base: api_base.trim_end_matches('/').to_string(),
            token_url: token_url.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            scopes: Vec::new(),
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            requests_per_second: 10.0,
            burst: 20,
            max_in_flight: 10,
            retry: RetryPolicy::default(),
            dialect: Dialect::Routing,
            token_cache: None,
            proficiency_scale: skillsync_core::ProficiencyScale::cxone_default(),
        }
    }

    /// Checks the settings and parses both URLs. Plain `http://` is refused except to a
    /// loopback host, where a local simulator runs: credentials must never cross a network
    /// in clear text.
    pub fn validate(&self) -> Result<(Url, Url), Error> {
        let api = parse_url("api_base", &self.api_base)?;
        let token = parse_url("token_url", &self.token_url)?;
        let invalid = |problem| Err(Error::Settings(problem));
        if self.client_id.trim().is_empty() {
            return invalid(SettingsProblem::Empty { field: "client_id" });
        }
        if self.client_secret.expose().is_empty() {
            return invalid(SettingsProblem::Empty {
                field: "client_secret",
            });
        }
        if !(self.requests_per_second > 0.0 && self.requests_per_second.is_finite()) {
            return invalid(SettingsProblem::Rate {
                value: self.requests_per_second,
            });
        }
        if self.burst == 0 {
            return invalid(SettingsProblem::Zero { field: "burst" });
        }
        if self.max_in_flight == 0 {
            return invalid(SettingsProblem::Zero {
                field: "max_in_flight",
            });
        }
        Ok((api, token))
    }
}

fn parse_url(field: &'static str, text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|source| {
        Error::Settings(SettingsProblem::NotAUrl {
            field,
            text: text.to_string(),
            source,
        })
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(Error::Settings(SettingsProblem::PlainHttp {
            field,
            text: text.to_string(),
        })),
        other => Err(Error::Settings(SettingsProblem::Scheme {
            field,
            text: text.to_string(),
            scheme: other.to_string(),
        })),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(api: &str) -> Settings {
        Settings::new(
            api,
            &format!("{api}/oauth/token"),
            "id",
            Secret::new("s3cret"),
        )
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused() {
        let err = settings("http://tenant.example.com/api/v2")
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Settings(SettingsProblem::PlainHttp { field: "api_base", text })
                    if text == "http://tenant.example.com/api/v2"
            ),
            "{err:?}"
        );
        let cause = std::error::Error::source(&err).expect("the rule is the source");
        assert!(cause.to_string().contains("use https"), "{cause}");
    }

    #[test]
    fn a_url_that_does_not_parse_carries_the_parsers_error() {
        let err = settings("not a url").validate().unwrap_err();
        let Error::Settings(SettingsProblem::NotAUrl { field, source, .. }) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*field, "api_base");
        assert_eq!(*source, url::ParseError::RelativeUrlWithoutBase);
    }

    #[test]
    fn each_zero_count_is_named() {
        let mut s = settings("https://tenant.example.com/api/v2");
        s.max_in_flight = 0;
        assert!(matches!(
            s.validate(),
            Err(Error::Settings(SettingsProblem::Zero {
                field: "max_in_flight"
            }))
        ));
    }

    #[test]
    fn plain_http_to_loopback_is_allowed() {
        for api in [
            "http://127.0.0.1:8089/api/v2",
            "http://localhost:8089/api/v2",
            "http://[::1]:8089/api/v2",
        ] {
            settings(api).validate().unwrap();
        }
        settings("https://tenant.example.com/api/v2")
            .validate()
            .unwrap();
    }

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let s = settings("https://tenant.example.com/api/v2");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert_eq!(s.client_secret.to_string(), "***");
    }
}

//! The client's one error type. Each variant names the call and what to do next; a wrapped
//! cause (the transport's error, the JSON parser's, the file system's, the TLS library's, the
//! domain's refusal of a value) is its [`source`](std::error::Error::source), of its real type,
//! and is not repeated in the message: print the chain (e.g. `{:#}` with anyhow) to see it.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use skillsync_core::{LevelError, LocaleError, Version};

/// One field the tenant rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// JSON path, e.g. `skills[2].level`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Errors from the tenant client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings are unusable (bad URL, plain http to a remote host, empty secret).
    #[error("the client settings are not usable")]
    Settings(#[source] SettingsProblem),

    /// The CA file could not be read or parsed.
    #[error("cannot use the CA file {}", .path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        problem: CaProblem,
    },

    /// The token endpoint refused the client (wrong id or secret, scope not granted).
    #[error("the tenant refused the OAuth client ({code}): {message}")]
    Auth {
        /// OAuth error code, e.g. `invalid_client`.
        code: String,
        /// The tenant's explanation.
        message: String,
    },

    /// The token lacks a scope the call needs. Never retried: only an administrator can fix it.
    #[error(
        "{method} {route} needs scope `{scope}`, which the token was not granted; \
         grant it to the OAuth client in the tenant (Security > OAuth > Clients) or add it to `scopes`"
    )]
    MissingScope {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// The missing scope.
        scope: String,
    },

    /// Someone else changed the object since we read it (412 in the routing dialect, 409 in
    /// the users dialect, a per-entry 412 in bulk). Re-read, re-merge, retry.
    #[error(
        "{what} {id} changed since it was read (we had version {expected:?}); re-read and merge"
    )]
    Conflict {
        /// Kind of object.
        what: &'static str,
        /// Its id.
        id: String,
        /// The version we wrote against.
        expected: Option<Version>,
    },

    /// The object does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// Kind of object.
        what: &'static str,
        /// Its id.
        id: String,
    },

    /// A delete refused because users, profiles or routing strategies still reference the
    /// definition.
    #[error("{what} {id} is still referenced by {}", referenced_by(*.users, *.profiles, *.strategies))]
    Referenced {
        /// Kind of definition.
        what: &'static str,
        /// Its id.
        id: String,
        /// Users referencing it.
        users: u64,
        /// Profiles referencing it.
        profiles: u64,
        /// Routing strategies referencing it (a proficiency only).
        strategies: u64,
    },

    /// The tenant rejected the request as invalid (4xx). Not retried.
    #[error("{method} {route} was rejected with {status} {code}: {message}")]
    Rejected {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// HTTP status.
        status: u16,
        /// The tenant's error code.
        code: String,
        /// The tenant's message.
        message: String,
        /// Per-field problems.
        details: Vec<FieldProblem>,
    },

    /// The tenant stayed unavailable (5xx, timeouts, dropped connections, throttling) through
    /// every retry the policy allows. The outcome of a write is unknown.
    #[error("{method} {route} failed after {attempts} attempt(s) over {elapsed:?}")]
    Unavailable {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// How the last attempt failed.
        #[source]
        last: LastAttempt,
    },

    /// The tenant answered something this client cannot read.
    #[error("unexpected answer from {method} {route}")]
    Protocol {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// What was wrong with the answer.
        #[source]
        problem: AnswerProblem,
    },

    /// The dialect cannot do this (e.g. bulk in the users dialect).
    #[error("the {dialect} dialect does not support {operation}")]
    Unsupported {
        /// Dialect name.
        dialect: &'static str,
        /// Operation.
        operation: &'static str,
    },
}

/// What references a definition, for messages: `3 user(s) and 1 routing profile(s)`, with
/// `, 2 routing strategy(ies)` only when strategies do (tenants without them read as before).
pub fn referenced_by(users: u64, profiles: u64, strategies: u64) -> String {
    if strategies == 0 {
        format!("{users} user(s) and {profiles} routing profile(s)")
    } else {
        format!(
            "{users} user(s), {profiles} routing profile(s) and {strategies} routing strategy(ies)"
        )
    }
}

impl Error {
    /// True when the outcome is unknown and a retry (after looking again) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

/// What is wrong with the [`Settings`](crate::Settings): the source of [`Error::Settings`].
#[derive(Debug, thiserror::Error)]
pub enum SettingsProblem {
    /// A URL setting does not parse.
    #[error("{field} `{text}` is not a URL")]
    NotAUrl {
        /// The setting, e.g. `api_base`.
        field: &'static str,
        /// Its value.
        text: String,
        /// The parser's complaint.
        #[source]
        source: url::ParseError,
    },
    /// A URL setting uses plain http to a host that is not loopback: credentials would cross a
    /// network in clear text.
    #[error(
        "{field} `{text}` uses plain http to a host that is not loopback; use https \
         (plain http is allowed only for 127.0.0.1, ::1 and localhost)"
    )]
    PlainHttp {
        /// The setting, e.g. `api_base`.
        field: &'static str,
        /// Its value.
        text: String,
    },
    /// A URL setting has a scheme other than https (or http to loopback).
    #[error("{field} `{text}` has scheme `{scheme}`; use https")]
    Scheme {
        /// The setting, e.g. `token_url`.
        field: &'static str,
        /// Its value.
        text: String,
        /// The scheme found.
        scheme: String,
    },
    /// A setting that must be given is empty.
    #[error("{field} is empty")]
    Empty {
        /// The setting, e.g. `client_secret`.
        field: &'static str,
    },
    /// `requests_per_second` is zero, negative or not finite.
    #[error("requests_per_second must be positive, got {value}")]
    Rate {
        /// The value found.
        value: f64,
    },
    /// A count that must be at least 1 is 0.
    #[error("{field} must be at least 1")]
    Zero {
        /// The setting, `burst` or `max_in_flight`.
        field: &'static str,
    },
    /// The HTTP client cannot be built from the settings.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The tenant's TLS certificate was refused. Never retried: every attempt would meet the
    /// same certificate, and only a setting (or the tenant's administrator) can change that.
    #[error("the TLS certificate of {address} is not trusted: {reason}; {hint}")]
    Certificate {
        /// `host:port` that presented it.
        address: String,
        /// What is wrong with it, in words.
        reason: String,
        /// What to do about it.
        hint: &'static str,
        /// The transport's error, whose chain reaches the TLS library's verdict.
        #[source]
        source: reqwest::Error,
    },
}

/// Why the CA file cannot be used: the source of [`Error::CaFile`].
#[derive(Debug, thiserror::Error)]
pub enum CaProblem {
    /// The file cannot be read.
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    /// The file is not well-formed PEM.
    #[error("it is not valid PEM")]
    Pem(#[source] rustls::pki_types::pem::Error),
    /// The file holds no `CERTIFICATE` section.
    #[error("it holds no PEM certificate")]
    NoCertificate,
    /// A certificate in the file cannot be a trust anchor.
    #[error("certificate {number} in it cannot be trusted as a CA")]
    Certificate {
        /// Its place in the file, from 1.
        number: usize,
        /// What the TLS library said.
        #[source]
        source: rustls::Error,
    },
    /// The HTTP client refused a certificate from the file.
    #[error("the HTTP client refused a certificate in it")]
    Refused(#[source] reqwest::Error),
}

/// How the last attempt of a call failed: the source of [`Error::Unavailable`].
#[derive(Debug, thiserror::Error)]
pub enum LastAttempt {
    /// The tenant answered with this status: a 5xx, or a 429 whose wait would outlast the
    /// retry policy.
    #[error(
        "the tenant answered {}{}",
        status_text(*.status),
        if .message.is_empty() { String::new() } else { format!(": {}", .message) }
    )]
    Status {
        /// HTTP status.
        status: u16,
        /// The tenant's message, if it gave one.
        message: String,
    },
    /// No answer: the connection dropped or timed out, or the body did not arrive.
    /// The error carries no URL (query values stay out of messages).
    #[error("the request did not complete")]
    Transport(#[source] reqwest::Error),
    /// No connection: refused, timed out, or the host name did not resolve. The cause is in
    /// the source's chain (e.g. `Connection refused`); the address is named here because the
    /// error itself carries no URL.
    #[error("could not connect to {address}")]
    Connect {
        /// `host:port`.
        address: String,
        /// The transport's error, stripped of its URL.
        #[source]
        source: reqwest::Error,
    },
}

impl LastAttempt {
    /// A transport failure, stripped of its URL (only `host:port` is kept, in the message), or
    /// the error that ends the call at once when sending again cannot help: a refused TLS
    /// certificate.
    pub(crate) fn transport(error: reqwest::Error) -> Result<LastAttempt, Error> {
        let address = error
            .url()
            .map(address)
            .unwrap_or_else(|| "the tenant".into());
        if let Some(certificate) = certificate_error(&error) {
            let (reason, hint) = certificate_reason(certificate);
            return Err(Error::Settings(SettingsProblem::Certificate {
                address,
                reason,
                hint,
                source: error.without_url(),
            }));
        }
        Ok(if error.is_connect() {
            LastAttempt::Connect {
                address,
                source: error.without_url(),
            }
        } else {
            LastAttempt::Transport(error.without_url())
        })
    }
}

/// `host:port` of a URL: enough to say where, without a path or query that may hold values.
fn address(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The TLS library's verdict on the peer's certificate, if that is what failed. Walked by hand
/// because an `io::Error` wrapping it reports the wrapped error's source, not the error itself.
fn certificate_error(error: &reqwest::Error) -> Option<rustls::CertificateError> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(rustls::Error::InvalidCertificate(certificate)) =
            current.downcast_ref::<rustls::Error>()
        {
            return Some(certificate.clone());
        }
        // An `io::Error` reports its wrapped error's source, skipping the wrapped error
        // itself (the TLS library's verdict sits inside two of them).
        next = match current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

/// What a refused certificate means to whoever runs the command, and what to do.
fn certificate_reason(error: rustls::CertificateError) -> (String, &'static str) {
    use rustls::CertificateError as C;
    const CA_FILE: &str = "if the tenant's certificate comes from a private certificate authority \
                           (the simulator's `sim --tls` mints one), set [tenant] ca_file to that \
                           CA's PEM certificate";
    const CLOCK: &str =
        "the tenant must renew its certificate, unless this machine's clock is wrong";
    match error {
        C::UnknownIssuer => (
            "it is signed by an unknown certificate authority (unknown issuer)".into(),
            CA_FILE,
        ),
        C::BadSignature => ("its signature does not verify".into(), CA_FILE),
        C::Expired | C::ExpiredContext { .. } => ("it has expired".into(), CLOCK),
        C::NotValidYet | C::NotValidYetContext { .. } => ("it is not valid yet".into(), CLOCK),
        C::NotValidForName | C::NotValidForNameContext { .. } => (
            "it is not valid for this host name".into(),
            "check the host in [tenant] api_base and token_url",
        ),
        C::Revoked => ("it has been revoked".into(), CLOCK),
        other => (format!("{other:?}"), CA_FILE),
    }
}

fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// What was wrong with an answer: the source of [`Error::Protocol`].
#[derive(Debug, thiserror::Error)]
pub enum AnswerProblem {
    /// The body is not the JSON the API documents.
    #[error("the body does not match the API")]
    Json(#[source] serde_json::Error),
    /// A definition carries a locale the domain refuses.
    #[error("definition {definition} has an invalid locale")]
    Locale {
        /// The definition's id.
        definition: String,
        /// Why the locale is refused.
        #[source]
        source: LocaleError,
    },
    /// A user's assignment carries a level the domain refuses.
    #[error("user {user} holds {definition} at an invalid level")]
    Level {
        /// The user's id.
        user: String,
        /// The assigned definition's id.
        definition: String,
        /// Why the level is refused.
        #[source]
        source: LevelError,
    },
    /// A bulk answer does not hold one result per entry sent.
    #[error("{results} results for {entries} entries")]
    BulkResults {
        /// Results in the answer.
        results: usize,
        /// Entries sent.
        entries: usize,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// Every message in the chain, outermost first.
    fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
        std::iter::successors(Some(error), |e| (*e).source())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_protocol_errors_chain_reaches_the_json_error() {
        let json = serde_json::from_str::<Vec<u8>>("{").unwrap_err();
        let json_text = json.to_string();
        let error = Error::Protocol {
            method: "GET".into(),
            route: "/routing/users",
            problem: AnswerProblem::Json(json),
        };
        let cause = error
            .source()
            .and_then(|problem| problem.source())
            .and_then(|e| e.downcast_ref::<serde_json::Error>())
            .expect("the chain reaches the JSON error");
        assert!(cause.is_data(), "{cause}");
        assert_eq!(
            chain(&error),
            [
                "unexpected answer from GET /routing/users".to_string(),
                "the body does not match the API".to_string(),
                json_text,
            ]
        );
    }

    #[test]
    fn a_protocol_errors_chain_reaches_the_domains_refusal() {
        let error = Error::Protocol {
            method: "GET".into(),
            route: "/users",
            problem: AnswerProblem::Level {
                user: "42".into(),
                definition: "s-7".into(),
                source: skillsync_core::Level::new(12).unwrap_err(),
            },
        };
        let cause = error
            .source()
            .and_then(|problem| problem.source())
            .and_then(|e| e.downcast_ref::<LevelError>())
            .expect("the chain reaches the level error");
        assert_eq!(cause, &LevelError(12));
        assert_eq!(chain(&error)[1], "user 42 holds s-7 at an invalid level");
    }

    #[test]
    fn an_unavailable_errors_chain_reaches_the_transport_error() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let transport = reqwest::Client::new()
            .get("not a url")
            .build()
            .expect_err("a request without a URL cannot be built");
        let error = Error::Unavailable {
            method: "GET".into(),
            route: "/routing/users",
            attempts: 3,
            elapsed: Duration::from_millis(1500),
            last: LastAttempt::transport(transport).expect("not a certificate failure"),
        };
        assert!(error.is_transient());
        let last = error.source().expect("the last attempt is the source");
        assert_eq!(last.to_string(), "the request did not complete");
        let cause = last
            .source()
            .and_then(|e| e.downcast_ref::<reqwest::Error>())
            .expect("the chain reaches the transport error");
        assert!(cause.is_builder());
        assert_eq!(
            error.to_string(),
            "GET /routing/users failed after 3 attempt(s) over 1.5s"
        );
    }

    #[test]
    fn an_unavailable_error_after_a_status_names_it_and_the_tenants_words() {
        let error = Error::Unavailable {
            method: "PUT".into(),
            route: "/routing/users/{userId}",
            attempts: 6,
            elapsed: Duration::from_secs(2),
            last: LastAttempt::Status {
                status: 503,
                message: "maintenance".into(),
            },
        };
        assert_eq!(
            chain(&error)[1..],
            ["the tenant answered 503 Service Unavailable: maintenance"]
        );
        let quiet = LastAttempt::Status {
            status: 429,
            message: String::new(),
        };
        assert_eq!(
            quiet.to_string(),
            "the tenant answered 429 Too Many Requests"
        );
        assert!(quiet.source().is_none());
    }

    #[test]
    fn a_ca_file_error_names_the_path_and_carries_the_io_error() {
        let error = Error::CaFile {
            path: PathBuf::from("/etc/skillsync/ca.pem"),
            problem: CaProblem::Read(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        assert_eq!(
            error.to_string(),
            "cannot use the CA file /etc/skillsync/ca.pem"
        );
        let io = error
            .source()
            .and_then(|problem| problem.source())
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .expect("the chain reaches the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}

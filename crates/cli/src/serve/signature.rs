//! The webhook's signature (SPEC §4): `X-Skillsync-Timestamp: <unix seconds>` and
//! `X-Skillsync-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<raw body>")>`, the
//! scheme Stripe and Slack use. Signing the timestamp with the body lets the service refuse a
//! captured request replayed later; the comparison is constant-time (`Mac::verify_slice`), so
//! the time an answer takes says nothing about how much of a forged signature was right.

use std::time::Duration;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::Sha256;

/// The header carrying the signed timestamp.
pub const TIMESTAMP_HEADER: &str = "x-skillsync-timestamp";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-skillsync-signature";

/// Why a request's signature is refused (every one answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A header is missing.
    #[error("missing header {0}")]
    Missing(&'static str),
    /// A header is not in its format.
    #[error("{0}")]
    Malformed(&'static str),
    /// The timestamp is too far from the service's clock.
    #[error(
        "the timestamp is {skew_secs} s from the service's clock, more than the {window_secs} s allowed (a replay, or a clock to set right)"
    )]
    Stale {
        /// Seconds between the request's timestamp and now.
        skew_secs: i64,
        /// The replay window.
        window_secs: u64,
    },
    /// The signature does not match the body.
    #[error("the signature does not match the body and timestamp")]
    Mismatch,
}

/// Checks a request's signature headers against its raw body.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: Timestamp,
    window: Duration,
) -> Result<(), Refused> {
    let timestamp = timestamp.ok_or(Refused::Missing("X-Skillsync-Timestamp"))?;
    let signature = signature.ok_or(Refused::Missing("X-Skillsync-Signature"))?;
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refused::Malformed("X-Skillsync-Timestamp is not unix seconds"))?;
    let skew_secs = now.as_second().saturating_sub(seconds).saturating_abs();
    if skew_secs.unsigned_abs() > window.as_secs() {
        return Err(Refused::Stale {
            skew_secs,
            window_secs: window.as_secs(),
        });
    }
    let hex_part = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Refused::Malformed(
            "X-Skillsync-Signature is not sha256=<hex>",
        ))?;
    let given = hex::decode(hex_part)
        .map_err(|_| Refused::Malformed("X-Skillsync-Signature is not sha256=<hex>"))?;
    let mut mac = keyed(secret);
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| Refused::Mismatch)
}

/// The signature header's value for `body` sent at `timestamp` (unix seconds).
#[cfg(test)]
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn keyed(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-test";
    const WINDOW: Duration = Duration::from_secs(300);

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let body = br#"{"id":"e1"}"#;
        let t = now().as_second();
        let signature = sign(SECRET, t, body);
        let ts = t.to_string();
        assert_eq!(
            verify(SECRET, Some(&ts), Some(&signature), body, now(), WINDOW),
            Ok(())
        );
        assert_eq!(
            verify(
                SECRET,
                Some(&ts),
                Some(&signature),
                br#"{"id":"e2"}"#,
                now(),
                WINDOW
            ),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&ts), Some(&signature), body, now(), WINDOW),
            Err(Refused::Mismatch)
        );
        // The timestamp is signed too: moving it breaks the signature.
        let moved = (t + 1).to_string();
        assert_eq!(
            verify(SECRET, Some(&moved), Some(&signature), body, now(), WINDOW),
            Err(Refused::Mismatch)
        );
    }

    #[test]
    fn stale_missing_and_malformed_headers_are_refused() {
        let body = b"{}";
        let old = now().as_second() - 301;
        let signature = sign(SECRET, old, body);
        assert!(matches!(
            verify(
                SECRET,
                Some(&old.to_string()),
                Some(&signature),
                body,
                now(),
                WINDOW
            ),
            Err(Refused::Stale { skew_secs: 301, .. })
        ));
        let future = now().as_second() + 301;
        assert!(matches!(
            verify(
                SECRET,
                Some(&future.to_string()),
                Some(&sign(SECRET, future, body)),
                body,
                now(),
                WINDOW
            ),
            Err(Refused::Stale { .. })
        ));
        assert!(matches!(
            verify(SECRET, None, Some("sha256=00"), body, now(), WINDOW),
            Err(Refused::Missing(_))
        ));
        assert!(matches!(
            verify(SECRET, Some("1800000000"), None, body, now(), WINDOW),
            Err(Refused::Missing(_))
        ));
        assert!(matches!(
            verify(
                SECRET,
                Some("yesterday"),
                Some("sha256=00"),
                body,
                now(),
                WINDOW
            ),
            Err(Refused::Malformed(_))
        ));
        assert!(matches!(
            verify(
                SECRET,
                Some("1800000000"),
                Some("md5=00"),
                body,
                now(),
                WINDOW
            ),
            Err(Refused::Malformed(_))
        ));
        assert!(matches!(
            verify(
                SECRET,
                Some("1800000000"),
                Some("sha256=zz"),
                body,
                now(),
                WINDOW
            ),
            Err(Refused::Malformed(_))
        ));
    }
}

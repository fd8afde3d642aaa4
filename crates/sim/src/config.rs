//! The simulator's knobs (SPEC 1.6) and the small value types they are written in.
//!
//! Every knob has a command-line spelling (`10/s`, `20ms..80ms`, `off`) that is also its JSON
//! spelling, so `GET /sim/config` shows exactly what a user would type and `PATCH /sim/config`
//! accepts it back.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::generate::GenerateOptions;
use crate::model::{TenantDoc, WriteFaults};

/// Everything `skillsync_sim::run` needs to serve one tenant.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where the tenant's initial contents come from.
    pub tenant: TenantSource,
    /// Gateway behaviour; can be changed while running through `PATCH /sim/config`.
    pub knobs: Knobs,
    /// OAuth clients the token endpoint accepts.
    pub clients: Vec<ClientSpec>,
    /// Serve HTTPS with a freshly minted certificate authority written to this file.
    pub tls: Option<TlsOptions>,
}

impl SimConfig {
    /// A simulator with the SPEC's default knobs and a small generated tenant.
    pub fn new(tenant: TenantSource) -> Self {
        SimConfig {
            tenant,
            knobs: Knobs::default(),
            clients: vec![ClientSpec::demo()],
            tls: None,
        }
    }

    /// Knobs for tests that are not about the gateway: no rate limit, no latency, no faults,
    /// and no propagation delay.
    pub fn quiet(tenant: TenantSource) -> Self {
        SimConfig {
            knobs: Knobs::quiet(),
            ..SimConfig::new(tenant)
        }
    }
}

/// The initial contents of the tenant.
#[derive(Debug, Clone)]
pub enum TenantSource {
    /// Generated deterministically from options and a seed.
    Generated(GenerateOptions),
    /// Read from a JSON fixture file in the shape of `GET /sim/state`.
    Fixture(PathBuf),
    /// Given directly (tests, the demo).
    Doc(Box<TenantDoc>),
}

/// TLS settings: the simulator mints a CA and a certificate for 127.0.0.1, ::1 and localhost.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// Where the CA certificate (PEM) is written for clients to trust.
    pub ca_file: PathBuf,
}

/// An OAuth client of the simulated tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSpec {
    /// The `client_id`.
    pub id: String,
    /// The `client_secret`.
    pub secret: String,
    /// Scopes this client may be granted; a token request without `scope` gets all of them.
    pub scopes: Vec<String>,
}

impl ClientSpec {
    /// The demo client every simulator accepts unless told otherwise; it holds every scope.
    pub fn demo() -> Self {
        ClientSpec {
            id: DEMO_CLIENT_ID.to_string(),
            secret: DEMO_CLIENT_SECRET.to_string(),
            scopes: crate::auth::ALL_SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// The demo client's id.
pub const DEMO_CLIENT_ID: &str = "skillsync-demo";
/// The demo client's secret. It guards nothing but a local simulator, so it is printed on start.
pub const DEMO_CLIENT_SECRET: &str = "demo-secret-not-for-production";

/// Gateway and engine behaviour that tests and benchmarks turn up and down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Knobs {
    /// Tenant-wide token bucket refill rate; `off` disables throttling.
    pub rate_limit: Rate,
    /// Token bucket capacity.
    pub burst: u32,
    /// The token endpoint's own, much lower limit (its bucket holds one minute's worth).
    pub token_rate_limit: Rate,
    /// Requests one client may have in flight at once; 0 means no cap.
    pub max_in_flight: u32,
    /// Added to every API request before it is handled.
    pub latency: DurationRange,
    /// How long a committed change to a user's skills takes to reach the routing cache.
    pub propagation: DurationRange,
    /// Lifetime of issued access tokens.
    #[serde(with = "humantime_serde_compat")]
    pub token_ttl: Duration,
    /// Probability of answering 500/502/503 before applying anything.
    pub fault_rate: f64,
    /// Probability of applying a write and then answering 502.
    pub fault_after_commit_rate: f64,
    /// Probability of closing the connection instead of answering (half before, half after a write commits).
    pub drop_rate: f64,
    /// Probability that a user assignment write (a routing-dialect PUT, each bulk entry, a
    /// users-dialect PUT) is answered exactly as a success but not kept.
    pub lose_write_rate: f64,
    /// Probability that a user assignment write (a routing-dialect PUT, each bulk entry, a
    /// users-dialect PUT) that passed every check is refused with 400 and not applied; in the
    /// CXone dialect, that an assignment entry is answered `REJECTED` and not applied.
    pub reject_write_rate: f64,
    /// Writes per second by the concurrent "other integration"; 0 turns it off.
    pub other_writer: f64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            rate_limit: Rate::per_second(10.0),
            burst: 20,
            token_rate_limit: Rate::per_minute(5.0),
            max_in_flight: 10,
            latency: DurationRange::between_millis(20, 80),
            propagation: DurationRange::between_millis(15_000, 30_000),
            token_ttl: Duration::from_secs(3600),
            fault_rate: 0.0,
            fault_after_commit_rate: 0.0,
            drop_rate: 0.0,
            lose_write_rate: 0.0,
            reject_write_rate: 0.0,
            other_writer: 0.0,
        }
    }
}

impl Knobs {
    /// No throttling, latency, faults or propagation delay.
    pub fn quiet() -> Self {
        Knobs {
            rate_limit: Rate::Off,
            token_rate_limit: Rate::Off,
            max_in_flight: 0,
            latency: DurationRange::ZERO,
            propagation: DurationRange::ZERO,
            ..Knobs::default()
        }
    }

    /// The write faults a client's user write meets under these knobs.
    pub fn write_faults(&self) -> WriteFaults {
        WriteFaults {
            lose_rate: self.lose_write_rate,
            reject_rate: self.reject_write_rate,
        }
    }

    /// Checks the values a user typed, so that a bad knob is refused rather than half-applied.
    pub fn validate(&self) -> Result<(), SimError> {
        for (name, p) in [
            ("fault-rate", self.fault_rate),
            ("fault-after-commit-rate", self.fault_after_commit_rate),
            ("drop-rate", self.drop_rate),
            ("lose-write-rate", self.lose_write_rate),
            ("reject-write-rate", self.reject_write_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(SimError::NotAProbability {
                    knob: name,
                    value: p,
                });
            }
        }
        if !(self.other_writer >= 0.0 && self.other_writer.is_finite()) {
            return Err(SimError::OtherWriterRate(self.other_writer));
        }
        if self.burst == 0 && self.rate_limit != Rate::Off {
            return Err(SimError::ZeroBurst);
        }
        if self.token_ttl < Duration::from_secs(1) {
            return Err(SimError::TokenTtlTooShort(self.token_ttl));
        }
        Ok(())
    }
}

/// A request rate such as `10/s` or `5/m`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// No limit.
    Off,
    /// This many requests per second (fractions allowed).
    PerSecond(f64),
}

impl Rate {
    /// `n` requests per second.
    pub fn per_second(n: f64) -> Rate {
        Rate::PerSecond(n)
    }
    /// `n` requests per minute.
    pub fn per_minute(n: f64) -> Rate {
        Rate::PerSecond(n / 60.0)
    }
}

impl FromStr for Rate {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        let s = s.trim();
        if matches!(s, "off" | "none" | "0" | "unlimited") {
            return Ok(Rate::Off);
        }
        let text = || s.to_string();
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| SimError::RateShape { text: text() })?;
        let count: f64 = count.trim().parse().map_err(|source| SimError::RateCount {
            text: text(),
            count: count.to_string(),
            source,
        })?;
        if !(count > 0.0 && count.is_finite()) {
            return Err(SimError::RateNotPositive { text: text() });
        }
        match unit.trim() {
            "s" | "sec" | "second" => Ok(Rate::per_second(count)),
            "m" | "min" | "minute" => Ok(Rate::per_minute(count)),
            "h" | "hour" => Ok(Rate::PerSecond(count / 3600.0)),
            other => Err(SimError::RateUnit {
                text: text(),
                unit: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Off => f.write_str("off"),
            Rate::PerSecond(n) if (n * 60.0).fract().abs() < 1e-9 && n.fract() != 0.0 => {
                write!(f, "{}/m", n * 60.0)
            }
            Rate::PerSecond(n) => write!(f, "{n}/s"),
        }
    }
}

/// A duration or a uniform range of durations, written `50ms` or `20ms..80ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationRange {
    /// Shortest.
    pub min: Duration,
    /// Longest.
    pub max: Duration,
}

impl DurationRange {
    /// Always zero.
    pub const ZERO: DurationRange = DurationRange {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// A uniform range in milliseconds.
    pub fn between_millis(min: u64, max: u64) -> Self {
        DurationRange {
            min: Duration::from_millis(min),
            max: Duration::from_millis(max),
        }
    }

    /// A fixed duration.
    pub fn fixed(d: Duration) -> Self {
        DurationRange { min: d, max: d }
    }

    /// Draws one duration uniformly from the range.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        rng.random_range(self.min..=self.max)
    }
}

impl FromStr for DurationRange {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        let parse = |part: &str| {
            let part = part.trim();
            if part == "0" {
                return Ok(Duration::ZERO);
            }
            humantime::parse_duration(part).map_err(|source| SimError::Duration {
                text: part.to_string(),
                source,
            })
        };
        let range = match s.split_once("..") {
            Some((lo, hi)) => DurationRange {
                min: parse(lo)?,
                max: parse(hi)?,
            },
            None => DurationRange::fixed(parse(s)?),
        };
        if range.min > range.max {
            return Err(SimError::BackwardsRange {
                text: s.to_string(),
            });
        }
        Ok(range)
    }
}

impl fmt::Display for DurationRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if self.min == self.max {
            f.write_str(&show(self.min))
        } else {
            write!(f, "{}..{}", show(self.min), show(self.max))
        }
    }
}

macro_rules! serde_via_string {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_string!(Rate);
serde_via_string!(DurationRange);

/// Serialises a `Duration` as `humantime` text (`3600s`, `1h`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_the_spellings_users_type() {
        assert_eq!("10/s".parse::<Rate>().unwrap(), Rate::PerSecond(10.0));
        assert_eq!("off".parse::<Rate>().unwrap(), Rate::Off);
        let per_minute: Rate = "5/m".parse().unwrap();
        assert_eq!(per_minute.to_string(), "5/m");
        assert!(matches!(
            "ten/s".parse::<Rate>(),
            Err(SimError::RateCount { count, .. }) if count == "ten"
        ));
        assert!(matches!(
            "10/fortnight".parse::<Rate>(),
            Err(SimError::RateUnit { unit, .. }) if unit == "fortnight"
        ));
        assert!(matches!(
            "-1/s".parse::<Rate>(),
            Err(SimError::RateNotPositive { .. })
        ));
    }

    #[test]
    fn duration_ranges_parse_fixed_and_uniform() {
        let r: DurationRange = "20ms..80ms".parse().unwrap();
        assert_eq!(r, DurationRange::between_millis(20, 80));
        assert_eq!(r.to_string(), "20ms..80ms");
        assert_eq!("0".parse::<DurationRange>().unwrap(), DurationRange::ZERO);
        assert!(matches!(
            "80ms..20ms".parse::<DurationRange>(),
            Err(SimError::BackwardsRange { .. })
        ));
        let soon = "soon".parse::<DurationRange>().unwrap_err();
        assert!(matches!(&soon, SimError::Duration { text, .. } if text == "soon"));
        assert!(
            std::error::Error::source(&soon).is_some(),
            "humantime's reason is kept as the source"
        );
    }
}

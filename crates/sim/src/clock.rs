//! The simulator's clock: real time plus an offset that tests move forward.
//!
//! Token expiry, the rate limiter's refill and the routing cache's propagation delay all read
//! this clock, so a test can say "31 seconds later" with `POST /sim/clock/advance` instead of
//! sleeping and hoping.

use std::ops::Add;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// A point on the simulator's clock, measured from the moment it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct SimInstant(pub Duration);

impl Add<Duration> for SimInstant {
    type Output = SimInstant;
    fn add(self, rhs: Duration) -> SimInstant {
        SimInstant(self.0 + rhs)
    }
}

impl SimInstant {
    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn since(self, earlier: SimInstant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// Real monotonic time plus a test-controlled offset.
#[derive(Debug)]
pub struct Clock {
    started: Instant,
    started_wall: Timestamp,
    offset_micros: AtomicU64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            started: Instant::now(),
            started_wall: Timestamp::now(),
            offset_micros: AtomicU64::new(0),
        }
    }
}

impl Clock {
    /// Now, on the simulator's clock.
    pub fn now(&self) -> SimInstant {
        SimInstant(self.started.elapsed() + self.offset())
    }

    /// Now as a wall-clock timestamp (for `dateModified`).
    pub fn wall(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.started.elapsed() + self.offset())
            .unwrap_or(SignedDuration::ZERO);
        self.started_wall
            .checked_add(elapsed)
            .unwrap_or(self.started_wall)
    }

    /// How far tests have moved the clock ahead of real time.
    pub fn offset(&self) -> Duration {
        Duration::from_micros(self.offset_micros.load(Ordering::Relaxed))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

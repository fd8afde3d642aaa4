//! Client-side throttling: a rate limiter (governor) and an in-flight cap, so that 429s stay
//! rare, and adaptation when they happen anyway.
//!
//! A 429 means the tenant's bucket is shared with someone else or our settings are too
//! generous. Either way, every task pauses until `Retry-After` (plus jitter, so tasks do not
//! resume as a herd), and the rate drops: to half, with a ceiling at three quarters of the
//! rate that was throttled, so that a client set far too fast converges in a few pauses
//! (each pause costs at least a second: `Retry-After` is whole seconds). The rate climbs back towards the ceiling while no 429 arrives, and the
//! ceiling itself creeps back up after a quiet minute, in case the other consumer went away.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often the rate may step back up after a 429.
const RECOVERY_STEP: Duration = Duration::from_secs(3);
/// Quiet time after which the ceiling starts creeping back up.
const CEILING_QUIET: Duration = Duration::from_secs(60);
/// Never throttle ourselves below this share of the configured rate.
const FLOOR_SHARE: f64 = 0.05;

#[derive(Debug)]
struct Adaptive {
    configured: f64,
    current: f64,
    /// Burst allowed now: halved with the rate, because after a pause our limiter refills to
    /// its burst while the tenant's refills only to its own, which may be smaller.
    burst: u32,
    ceiling: f64,
    last_change: Instant,
    last_throttled: Option<Instant>,
    paused_until: Option<Instant>,
}

/// The limiter, the in-flight cap and the adaptive state.
#[derive(Debug)]
pub(crate) struct Throttle {
    slots: Arc<Semaphore>,
    configured_burst: u32,
    limiter: Mutex<Arc<DefaultDirectRateLimiter>>,
    state: Mutex<Adaptive>,
}

fn limiter(per_second: f64, burst: u32, start_full: bool) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / per_second);
    let burst = NonZeroU32::new(burst.max(1)).expect("at least one");
    let quota = Quota::with_period(period)
        .expect("positive period")
        .allow_burst(burst);
    let limiter = RateLimiter::direct(quota);
    if !start_full {
        // After a pause the tenant's bucket has refilled only for the pause, not to its
        // burst: start nearly empty so that resuming is not itself a burst.
        while limiter.check().is_ok() {}
    }
    Arc::new(limiter)
}

impl Throttle {
    pub(crate) fn new(per_second: f64, burst: u32, max_in_flight: usize) -> Throttle {
        let now = Instant::now();
        // One cell of the tenant's bucket stays in reserve: the tenant charges a request when
        // it arrives and we when it leaves, and a few milliseconds of skew at the edge of a
        // burst would otherwise cost a 429 (at least a second's pause and a halved rate).
        let burst = burst.saturating_sub(1).max(1);
        Throttle {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            configured_burst: burst,
            limiter: Mutex::new(limiter(per_second, burst, true)),
            state: Mutex::new(Adaptive {
                configured: per_second,
                current: per_second,
                burst,
                ceiling: per_second,
                last_change: now,
                last_throttled: None,
                paused_until: None,
            }),
        }
    }

    /// Waits for a slot, then for the limiter, honouring any pause a 429 imposed. The permit
    /// is held until the response has been read.
    pub(crate) async fn acquire(&self) -> OwnedSemaphorePermit {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closes");
        loop {
            let pause = self.state.lock().paused_until;
            match pause {
                Some(until) if until > Instant::now() => {
                    tokio::time::sleep_until(until.into()).await
                }
                _ => break,
            }
        }
        let limiter = self.limiter.lock().clone();
        limiter.until_ready().await;
        permit
    }

    /// A request succeeded: step the rate back up if it was lowered.
    pub(crate) fn on_success(&self) {
        let now = Instant::now();
        let mut state = self.state.lock();
        if state
            .last_throttled
            .is_some_and(|t| now.duration_since(t) > CEILING_QUIET)
            && state.ceiling < state.configured
        {
            state.ceiling = (state.ceiling * 1.1).min(state.configured);
            state.last_throttled = Some(now);
        }
        if state.current < state.ceiling && now.duration_since(state.last_change) >= RECOVERY_STEP {
            state.current = (state.current * 1.25).min(state.ceiling);
            state.burst = (state.burst + state.burst.div_ceil(4)).min(self.configured_burst);
            state.last_change = now;
            *self.limiter.lock() = limiter(state.current, state.burst, false);
        }
    }

    /// A 429 arrived: pause everyone until `retry_after` (with jitter) and slow down, once per
    /// pause however many in-flight requests come back throttled.
    pub(crate) fn on_throttled(&self, retry_after: Duration) {
        let now = Instant::now();
        let jitter = Duration::from_millis(rand::rng().random_range(0..=250));
        let until = now + retry_after + jitter;
        let mut state = self.state.lock();
        let already_paused = state.paused_until.is_some_and(|p| p > now);
        state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        if already_paused {
            return;
        }
        let floor = state.configured * FLOOR_SHARE;
        state.ceiling = (state.current * 0.75).max(floor);
        state.current = (state.current * 0.5).max(floor);
        state.burst = (state.burst / 2).max(1);
        state.last_change = now;
        state.last_throttled = Some(now);
        *self.limiter.lock() = limiter(state.current, state.burst, false);
    }

    /// The rate currently allowed, for tests and progress output.
    pub(crate) fn current_rate(&self) -> f64 {
        self.state.lock().current
    }
}

//! Client-side throttling: a rate limiter (governor) and an in-flight cap, so that 429s stay
//! rare, and adaptation when they happen anyway.
//!
//! A 429 means the tenant's bucket is shared with someone else or our settings are too
//! generous. Either way, every task pauses until `Retry-After` (plus jitter, so tasks do not
//! resume as a herd), and the rate drops: to half, with a ceiling at three quarters of the
//! rate that was throttled, so that a client set far too fast converges in a few pauses
//! (each pause costs at least a second: `Retry-After` is whole seconds). While no 429 arrives
//! the rate climbs back to the ceiling, then the ceiling rises by a tenth of the configured
//! rate per step (additive increase, as TCP probes for bandwidth): once the other consumer has
//! gone, the configured rate is back within half a minute; while it is still there, the probe
//! meets a 429 and halves again.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
// Tokio's clock for the adaptation's state (pauses, steps), so that tests can run its minutes
// in paused time; governor's limiter keeps its own clock.
use tokio::time::Instant;

/// How often the rate may step back up after a 429.
const RECOVERY_STEP: Duration = Duration::from_secs(3);
/// Quiet time after the last 429 before the ceiling is raised: longer than one pause, so that
/// a bucket still shared shows itself first.
const PROBE_QUIET: Duration = Duration::from_secs(5);
/// The share of the configured rate the ceiling rises by at each step.
const ADDITIVE_SHARE: f64 = 0.1;
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
            if let Some(until) = self.pause() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            let limiter = self.limiter.lock().clone();
            limiter.until_ready().await;
            // A 429 may have paused everyone while this task waited for its cell of the old
            // limiter: sending now would meet the tenant's empty bucket (another 429).
            if self.pause().is_none() {
                return permit;
            }
        }
    }

    /// When the pause a 429 imposed ends, if it has not yet.
    fn pause(&self) -> Option<Instant> {
        self.state
            .lock()
            .paused_until
            .filter(|until| *until > Instant::now())
    }

    /// A request succeeded: step the rate back up if it was lowered.
    pub(crate) fn on_success(&self) {
        let now = Instant::now();
        let mut state = self.state.lock();
        if state.current >= state.configured
            || now.duration_since(state.last_change) < RECOVERY_STEP
        {
            return;
        }
        let quiet = state
            .last_throttled
            .is_none_or(|t| now.duration_since(t) >= PROBE_QUIET);
        if state.current < state.ceiling {
            state.current = (state.current * 1.25).min(state.ceiling);
        } else if quiet {
            state.ceiling =
                (state.ceiling + state.configured * ADDITIVE_SHARE).min(state.configured);
            state.current = state.ceiling;
        } else {
            return;
        }
        let share = state.current / state.configured;
        state.burst = ((f64::from(self.configured_burst) * share).ceil() as u32)
            .clamp(1, self.configured_burst)
            .max(state.burst);
        state.last_change = now;
        *self.limiter.lock() = limiter(state.current, state.burst, false);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Another client shared the tenant's bucket for a while (429s), then went away: the rate
    /// climbs back to the configured one within a minute of the last 429. It stayed near its
    /// lowered ceiling (a fifth of the configured rate here) for the rest of a run.
    #[tokio::test(start_paused = true)]
    async fn the_rate_climbs_back_to_the_configured_one_after_429s_stop() {
        let throttle = Throttle::new(5.0, 5, 8);
        for _ in 0..4 {
            throttle.on_throttled(Duration::from_secs(1));
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        let lowered = throttle.current_rate();
        assert!(lowered < 1.0, "four 429s in a row slow down: {lowered}");
        let mut waited = Duration::ZERO;
        while throttle.current_rate() < 5.0 && waited < Duration::from_secs(60) {
            throttle.on_success();
            tokio::time::advance(Duration::from_millis(250)).await;
            waited += Duration::from_millis(250);
        }
        assert_eq!(
            throttle.current_rate(),
            5.0,
            "still at {} after {waited:?} without a 429",
            throttle.current_rate()
        );
    }

    /// A task already waiting for its limiter cell when a 429 pauses everyone waits for the
    /// pause too. It used to send as soon as the old limiter let it, into the tenant's empty
    /// bucket. Real time: governor's limiter does not follow tokio's paused clock.
    #[tokio::test]
    async fn a_task_waiting_on_the_limiter_when_a_429_arrives_waits_for_the_pause() {
        let throttle = Arc::new(Throttle::new(2.0, 2, 8));
        drop(throttle.acquire().await);
        let waiting = tokio::spawn({
            let throttle = throttle.clone();
            async move {
                drop(throttle.acquire().await);
                Instant::now()
            }
        });
        // The single-threaded test runtime runs the task until it waits on the limiter.
        tokio::task::yield_now().await;
        throttle.on_throttled(Duration::from_secs(1));
        let paused_until = throttle.state.lock().paused_until.unwrap();
        let sent_at = waiting.await.unwrap();
        assert!(
            sent_at >= paused_until,
            "sent {:?} before the pause ended",
            paused_until - sent_at
        );
    }

    /// While the other client is still there, a 429 during the climb lowers the rate again.
    #[tokio::test(start_paused = true)]
    async fn a_429_during_the_climb_lowers_the_rate_again() {
        let throttle = Throttle::new(10.0, 10, 8);
        throttle.on_throttled(Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..200 {
            throttle.on_success();
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        let climbed = throttle.current_rate();
        throttle.on_throttled(Duration::from_secs(1));
        assert!(throttle.current_rate() <= climbed / 2.0 + f64::EPSILON);
    }
}

//! Client-side throttling: a model of the tenant's token bucket and an in-flight cap, so that
//! 429s do not happen while nobody else shares the bucket, and adaptation when they happen
//! anyway.
//!
//! The tenant charges a request when it arrives, and when that is the client cannot know: only
//! that it is after the request left and before its answer came back. So the model charges
//! each request when its answer has been read (no earlier than the tenant did) and, while it is
//! in flight, holds a cell of the bucket for it (as if it arrived right now). A request leaves
//! only when the cells left cover it and every request in flight. Whatever the transit times,
//! the tenant then has a token for every arrival: of the requests it has counted by then, take
//! the last to leave; when it left, the model had charged each of them no earlier than the
//! tenant (the answered ones at their answers, the rest at once) and still found a cell for
//! each, and a charge made later only leaves fewer cells (a full bucket wastes its refill). No
//! cell is kept in reserve: a bucket filled by idleness is spent whole (the first `burst`
//! requests leave at once); under load the model trails the tenant by about one round trip,
//! and never lets more requests be in flight than the burst (more could all arrive together).
//! It assumes what the limiter always has: the tenant's bucket was full when the client began
//! and nobody else spends it; an attempt given up without an answer is counted as charged then.
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

use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
// Tokio's clock throughout, so that tests can run the model's seconds and the adaptation's
// minutes in paused time.
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

/// The model of the tenant's bucket (GCRA form), charged when answers arrive.
#[derive(Debug)]
struct Bucket {
    /// When the bucket is full again, counting every answered request: it holds
    /// `burst - (full_at - now) / period` cells at `now`.
    full_at: Instant,
    /// Requests sent (or about to be) whose answer has not been read: each holds a cell.
    in_flight: u32,
}

impl Bucket {
    /// When a request may leave: once the answered charges have drained enough that the
    /// cells left cover it and every request in flight. `None` while the requests in flight
    /// fill the bucket on their own (one must be answered first).
    fn ready_at(&self, now: Instant, period: Duration, burst: u32) -> Option<Instant> {
        let spare = burst.checked_sub(self.in_flight + 1)?;
        let slack = period * spare;
        Some(if self.full_at <= now + slack {
            now
        } else {
            self.full_at - slack
        })
    }

    /// One answer read at `now`: its cell is charged now, no earlier than the tenant did.
    fn answered(&mut self, now: Instant, period: Duration) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.full_at = self.full_at.max(now) + period;
    }

    /// Emptied at `now`: after a pause the tenant's bucket has refilled only for the pause,
    /// not to its burst, so resuming must not itself be a burst.
    fn drain(&mut self, now: Instant, period: Duration, burst: u32) {
        self.full_at = now + period * burst;
    }
}

/// One cell's time at `per_second`, rounded up so the model never refills faster than the
/// tenant.
fn period(per_second: f64) -> Duration {
    Duration::from_nanos((1e9 / per_second).ceil() as u64)
}

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
    bucket: Bucket,
}

/// The bucket model, the in-flight cap and the adaptive state.
#[derive(Debug)]
pub(crate) struct Throttle {
    slots: Semaphore,
    configured_burst: u32,
    /// Tasks holding a slot wait for the bucket one at a time, in order.
    turn: tokio::sync::Mutex<()>,
    /// Signalled when an answer is read (a cell is charged, one in flight fewer).
    answered: Notify,
    state: Mutex<Adaptive>,
}

/// Leave to send one request; dropped once its answer has been read (or the attempt given
/// up), which charges its cell.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    throttle: &'a Throttle,
    _slot: SemaphorePermit<'a>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        {
            let mut state = self.throttle.state.lock();
            let period = period(state.current);
            state.bucket.answered(Instant::now(), period);
        }
        self.throttle.answered.notify_waiters();
    }
}

impl Throttle {
    pub(crate) fn new(per_second: f64, burst: u32, max_in_flight: usize) -> Throttle {
        let now = Instant::now();
        // The whole of the tenant's burst: the model charges no earlier than the tenant, so
        // no cell need be kept in reserve against the skew between the two.
        let burst = burst.max(1);
        Throttle {
            slots: Semaphore::new(max_in_flight),
            configured_burst: burst,
            turn: tokio::sync::Mutex::new(()),
            answered: Notify::new(),
            state: Mutex::new(Adaptive {
                configured: per_second,
                current: per_second,
                burst,
                ceiling: per_second,
                last_change: now,
                last_throttled: None,
                paused_until: None,
                bucket: Bucket {
                    full_at: now,
                    in_flight: 0,
                },
            }),
        }
    }

    /// Waits for a slot, then for the bucket, honouring any pause a 429 imposed. The permit
    /// is held until the response has been read.
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        let slot = self.slots.acquire().await.expect("semaphore never closes");
        let _turn = self.turn.lock().await;
        loop {
            // Registered before the state is read, so an answer read in between still wakes
            // this task.
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let wake_at = {
                let mut state = self.state.lock();
                let now = Instant::now();
                match state.paused_until.filter(|until| *until > now) {
                    // A 429 paused everyone: sending now would meet the tenant's empty bucket.
                    Some(until) => Some(until),
                    None => {
                        let period = period(state.current);
                        match state.bucket.ready_at(now, period, state.burst) {
                            Some(at) if at <= now => {
                                state.bucket.in_flight += 1;
                                return Permit {
                                    throttle: self,
                                    _slot: slot,
                                };
                            }
                            other => other,
                        }
                    }
                }
            };
            // Whatever woke it (the time, an answer), the loop looks again: a 429 may have
            // paused everyone or lowered the rate meanwhile.
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut answered => {}
                    }
                }
                None => answered.await,
            }
        }
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
        let (period, burst) = (period(state.current), state.burst);
        state.bucket.drain(now, period, burst);
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
        let (period, burst) = (period(state.current), state.burst);
        state.bucket.drain(now, period, burst);
    }

    /// The rate currently allowed, for tests and progress output.
    pub(crate) fn current_rate(&self) -> f64 {
        self.state.lock().current
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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

    /// A task already waiting for the bucket when a 429 pauses everyone waits for the pause
    /// too. It used to send as soon as the old limiter let it, into the tenant's empty bucket.
    #[tokio::test(start_paused = true)]
    async fn a_task_waiting_on_the_limiter_when_a_429_arrives_waits_for_the_pause() {
        let throttle = Arc::new(Throttle::new(2.0, 2, 8));
        drop(throttle.acquire().await);
        drop(throttle.acquire().await);
        let waiting = tokio::spawn({
            let throttle = throttle.clone();
            async move {
                drop(throttle.acquire().await);
                Instant::now()
            }
        });
        // The single-threaded test runtime runs the task until it waits on the bucket.
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "two answered requests emptied the bucket"
        );
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

    /// A bucket full from idleness is spent whole: the first `burst` requests leave at once,
    /// none kept in reserve. The next leaves one cell after the first answer was read, not
    /// after it was sent.
    #[tokio::test(start_paused = true)]
    async fn the_first_burst_requests_leave_at_once() {
        let throttle = Throttle::new(10.0, 20, 32);
        let start = Instant::now();
        let mut permits = Vec::new();
        for _ in 0..20 {
            permits.push(throttle.acquire().await);
        }
        assert_eq!(
            Instant::now(),
            start,
            "the whole burst leaves without waiting"
        );
        // The first answer takes 30 ms: its cell is charged then.
        tokio::time::advance(Duration::from_millis(30)).await;
        drop(permits.remove(0));
        throttle.acquire().await;
        assert_eq!(
            Instant::now() - start,
            Duration::from_millis(130),
            "one cell (100 ms) after the answer"
        );
    }

    /// No more requests in flight than the burst: they could all arrive at once.
    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_never_exceed_the_burst() {
        let throttle = Throttle::new(1_000_000.0, 3, 32);
        let held: Vec<_> = futures::future::join_all((0..3).map(|_| throttle.acquire())).await;
        let fourth = throttle.acquire();
        tokio::pin!(fourth);
        let waited = tokio::time::timeout(Duration::from_secs(60), &mut fourth).await;
        assert!(
            waited.is_err(),
            "a fourth request left with three in flight"
        );
        drop(held);
        tokio::time::timeout(Duration::from_millis(1), fourth)
            .await
            .expect("an answer frees a cell");
    }

    /// A small deterministic random stream (xorshift), so the test needs no seeded RNG type.
    struct Stream(u64);

    impl Stream {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// The tenant's bucket, full at first and charged on arrival, in exact arithmetic (GCRA:
    /// the simulator's bucket without its floating point, since paused time lands arrivals on
    /// the very instant the model allows).
    struct Tenant {
        full_at: Instant,
        refused: u32,
    }

    impl Tenant {
        fn arrive(&mut self, now: Instant, period: Duration, burst: u32) {
            // A token is there when the bucket lacks at most `burst - 1` cells' worth.
            if self.full_at <= now + period * (burst - 1) {
                self.full_at = self.full_at.max(now) + period;
            } else {
                self.refused += 1;
            }
        }
    }

    /// Requests spend the tenant's whole burst and then its rate, and each arrives at the
    /// tenant anywhere between leaving and being answered (the worst case for a client that
    /// counts on departure: a slow early request arriving together with fast later ones). A
    /// bucket of the same size and rate as the tenant's never meets an empty one, and the
    /// rate is not given up for it.
    #[tokio::test(start_paused = true)]
    async fn a_tenant_charging_on_arrival_never_refuses_whatever_the_transit_times() {
        const RATE: f64 = 10.0;
        const BURST: u32 = 20;
        const CALLS: u64 = 400;
        let throttle = Arc::new(Throttle::new(RATE, BURST, 10));
        let start = Instant::now();
        let tenant = Arc::new(Mutex::new(Tenant {
            full_at: start,
            refused: 0,
        }));
        let stream = Arc::new(Mutex::new(Stream(0x9e37_79b9_7f4a_7c15)));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (throttle, tenant, stream) = (throttle.clone(), tenant.clone(), stream.clone());
                tokio::spawn(async move {
                    for _ in 0..CALLS / 16 {
                        let permit = throttle.acquire().await;
                        // A round trip of 0–300 ms, the arrival anywhere within it; every
                        // third request as late as it can be.
                        let (round_trip, arrival) = {
                            let mut stream = stream.lock();
                            let round_trip = stream.below(301);
                            let arrival = match stream.below(3) {
                                0 => round_trip,
                                _ => stream.below(round_trip + 1),
                            };
                            (round_trip, arrival)
                        };
                        tokio::time::sleep(Duration::from_millis(arrival)).await;
                        tenant.lock().arrive(Instant::now(), period(RATE), BURST);
                        tokio::time::sleep(Duration::from_millis(round_trip - arrival)).await;
                        drop(permit);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(tenant.lock().refused, 0, "the tenant refused requests");
        // The bound: the calls beyond the burst at the rate. The model trails it by about a
        // round trip at each of the few moments the queue ran dry, never by the rate.
        let bound = (CALLS - u64::from(BURST)) as f64 / RATE;
        let took = (Instant::now() - start).as_secs_f64();
        assert!(
            took < bound * 1.05,
            "{CALLS} calls took {took:.2} s against a bound of {bound:.2} s"
        );
    }
}

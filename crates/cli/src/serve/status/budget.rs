//! The API budget: the tenant client counts every request, 429 and token fetch since the
//! process started; sampled every 10 s, those totals give the calls made since any moment of
//! the last day (the last hour, since the window opened) without a call to the tenant. Only
//! this process's client is counted: other processes sharing the journal have their own.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use skillsync_cxone::CounterSnapshot;

use super::super::Service;

/// How often the counters are sampled: the figures of a period are off by at most this much
/// of its start.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// How far back samples are kept: a window lasts at most a day.
const KEEP: SignedDuration = SignedDuration::from_hours(25);

/// The client's totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiSample {
    pub at: Timestamp,
    /// Requests sent, token requests included, retries included.
    pub requests: u64,
    /// 429 answers.
    pub throttled: u64,
    /// Token requests.
    pub token_fetches: u64,
}

impl ApiSample {
    pub fn of(at: Timestamp, counters: &CounterSnapshot) -> ApiSample {
        ApiSample {
            at,
            requests: counters.total_requests(),
            throttled: counters.throttled,
            token_fetches: counters.token_fetches,
        }
    }

    /// What happened between `earlier` and this sample.
    pub fn since(&self, earlier: &ApiSample) -> ApiSample {
        ApiSample {
            at: earlier.at,
            requests: self.requests.saturating_sub(earlier.requests),
            throttled: self.throttled.saturating_sub(earlier.throttled),
            token_fetches: self.token_fetches.saturating_sub(earlier.token_fetches),
        }
    }
}

/// The samples of the last day, oldest first, and when counting began (the client's
/// counters were zero then).
pub struct ApiHistory {
    started: Timestamp,
    samples: parking_lot::Mutex<VecDeque<ApiSample>>,
}

impl ApiHistory {
    pub fn new() -> ApiHistory {
        ApiHistory {
            started: Timestamp::now(),
            samples: parking_lot::Mutex::new(VecDeque::new()),
        }
    }

    /// When the counters started (this process's start).
    pub fn started(&self) -> Timestamp {
        self.started
    }

    pub fn record(&self, sample: ApiSample) {
        let mut samples = self.samples.lock();
        while samples
            .front()
            .is_some_and(|oldest| sample.at.duration_since(oldest.at) > KEEP)
        {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The totals as they stood at `at`: the newest sample taken at or before it; zero (the
    /// start) when `at` is before the first sample; `None` when samples that old are no longer
    /// kept.
    pub fn at(&self, at: Timestamp) -> Option<ApiSample> {
        let zero = ApiSample {
            at: self.started,
            ..ApiSample::default()
        };
        let samples = self.samples.lock();
        match samples.iter().rev().find(|s| s.at <= at) {
            Some(sample) => Some(*sample),
            None if samples
                .front()
                .is_none_or(|first| first.at.duration_since(self.started) < KEEP) =>
            {
                Some(zero)
            }
            None => None,
        }
    }
}

/// Samples the client's counters until the task is dropped.
pub async fn sample_api(service: &Service) {
    loop {
        service
            .api_history
            .record(ApiSample::of(Timestamp::now(), &service.api.counters()));
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Timestamp, requests: u64) -> ApiSample {
        ApiSample {
            at,
            requests,
            throttled: requests / 10,
            token_fetches: 1,
        }
    }

    #[test]
    fn a_period_is_counted_from_the_newest_sample_at_or_before_its_start() {
        let history = ApiHistory::new();
        let t0 = history.started();
        let at = |secs: i64| t0 + SignedDuration::from_secs(secs);
        assert_eq!(
            history.at(at(5)).unwrap().requests,
            0,
            "zero before any sample"
        );
        for (secs, requests) in [(10, 100), (20, 250), (30, 400)] {
            history.record(sample(at(secs), requests));
        }
        assert_eq!(history.at(at(5)).unwrap().requests, 0);
        assert_eq!(history.at(at(20)).unwrap().requests, 250);
        assert_eq!(history.at(at(29)).unwrap().requests, 250);
        let now = sample(at(31), 420);
        let period = now.since(&history.at(at(15)).unwrap());
        assert_eq!((period.requests, period.throttled), (320, 32));
    }

    #[test]
    fn samples_older_than_a_day_are_dropped() {
        let history = ApiHistory::new();
        let t0 = history.started();
        let hours = |h: i64| t0 + SignedDuration::from_hours(h);
        history.record(sample(hours(0), 1));
        history.record(sample(hours(26), 2));
        assert_eq!(history.samples.lock().len(), 1);
        assert_eq!(history.at(hours(27)).unwrap().requests, 2);
        assert_eq!(history.at(hours(1)), None, "no longer known");
    }
}

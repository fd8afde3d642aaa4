//! Counters the engine reports: requests by kind, retries, 429s, token fetches, conflicts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// Live counters, shared by every request of one client.
#[derive(Debug, Default)]
pub struct Counters {
    requests: Mutex<BTreeMap<String, u64>>,
    responses: Mutex<BTreeMap<(String, u16), u64>>,
    retries: AtomicU64,
    throttled: AtomicU64,
    token_fetches: AtomicU64,
    conflicts: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    /// Requests sent, by `METHOD route-template` (every attempt counts).
    pub requests: BTreeMap<String, u64>,
    /// Answers, by `METHOD route-template` and HTTP status; 0 for an attempt that got no
    /// answer (a dropped connection, a timeout). For the service's metrics.
    #[serde(skip)]
    pub responses: BTreeMap<(String, u16), u64>,
    /// Attempts that were retries of an earlier attempt.
    pub retries: u64,
    /// 429 answers.
    pub throttled: u64,
    /// Token requests.
    pub token_fetches: u64,
    /// Conflicts reported (412/409, per-entry 412).
    pub conflicts: u64,
}

impl CounterSnapshot {
    /// All requests sent, token requests included.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Requests that were not reads.
    pub fn writes(&self) -> u64 {
        self.requests
            .iter()
            .filter(|(kind, _)| !kind.starts_with("GET ") && !kind.contains("/oauth/token"))
            .map(|(_, n)| n)
            .sum()
    }
}

impl Counters {
    pub(crate) fn request(&self, method: &str, route: &str) {
        *self
            .requests
            .lock()
            .entry(format!("{method} {route}"))
            .or_default() += 1;
    }
    pub(crate) fn response(&self, method: &str, route: &str, status: u16) {
        *self
            .responses
            .lock()
            .entry((format!("{method} {route}"), status))
            .or_default() += 1;
    }
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn token_fetch(&self) {
        self.token_fetches.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            requests: self.requests.lock().clone(),
            responses: self.responses.lock().clone(),
            retries: self.retries.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            token_fetches: self.token_fetches.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
        }
    }
}

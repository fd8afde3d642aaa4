//! Counters for tests and benchmarks (`GET /sim/stats`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::WriteEffects;

/// Everything the simulator has counted since start or the last reset.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Request counts by method, route template and status: nested, so that counting a request
    /// looks its keys up by reference and allocates only the first time a key is seen.
    requests: BTreeMap<String, BTreeMap<String, BTreeMap<u16, u64>>>,
    /// Answers with 429 (rate limit or in-flight cap).
    pub throttled: u64,
    /// Routing-cache rebuilds (one per single PUT with skills, one per bulk request).
    pub cache_rebuilds: u64,
    /// Definitions created with a name+locale that already existed.
    pub duplicates_created: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// 5xx answered before applying anything.
    pub faults_before_commit: u64,
    /// 502 answered after a write was applied.
    pub faults_after_commit: u64,
    /// Connections closed instead of answering.
    pub dropped_connections: u64,
    /// User writes answered as applied but not kept (`--lose-write-rate`).
    pub writes_lost: u64,
    /// User writes refused with 400 and not applied (`--reject-write-rate`).
    pub writes_rejected: u64,
    /// Writes by the other integration that succeeded.
    pub other_writer_writes: u64,
    /// 412s the other integration met and retried.
    pub other_writer_conflicts: u64,
}

/// One row of the request table.
#[derive(Debug, Serialize)]
pub struct RequestCount {
    /// HTTP method.
    pub method: String,
    /// Route template, such as `/api/v2/routing/users/{userId}`.
    pub route: String,
    /// Status answered.
    pub status: u16,
    /// How many times.
    pub count: u64,
}

/// The body of `GET /sim/stats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    /// All API requests counted.
    pub total_requests: u64,
    /// Requests by method, route template and status.
    pub requests: Vec<RequestCount>,
    /// 429 answers.
    pub throttled: u64,
    /// Routing-cache rebuilds.
    pub cache_rebuilds: u64,
    /// Duplicate definitions created.
    pub duplicates_created: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Faults before commit.
    pub faults_before_commit: u64,
    /// Faults after commit.
    pub faults_after_commit: u64,
    /// Dropped connections.
    pub dropped_connections: u64,
    /// User writes answered as applied but not kept.
    pub writes_lost: u64,
    /// User writes refused and not applied.
    pub writes_rejected: u64,
    /// Other-integration writes.
    pub other_writer_writes: u64,
    /// Other-integration conflicts retried.
    pub other_writer_conflicts: u64,
}

impl Stats {
    /// Counts one answered request.
    pub fn record(&mut self, method: &str, route: &str, status: u16) {
        if !self.requests.contains_key(method) {
            self.requests.insert(method.to_string(), BTreeMap::new());
        }
        let routes = self.requests.get_mut(method).expect("inserted above");
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), BTreeMap::new());
        }
        *routes
            .get_mut(route)
            .expect("inserted above")
            .entry(status)
            .or_default() += 1;
        if status == 429 {
            self.throttled += 1;
        }
    }

    /// Books one applied-or-lost user write.
    pub fn count_write(&mut self, effects: WriteEffects) {
        self.cache_rebuilds += u64::from(effects.cache_rebuild);
        self.writes_lost += u64::from(effects.lost);
    }

    /// The report.
    pub fn report(&self) -> StatsReport {
        // In (method, route, status) order, as the nesting is.
        let requests: Vec<RequestCount> = self
            .requests
            .iter()
            .flat_map(|(method, routes)| {
                routes.iter().flat_map(move |(route, statuses)| {
                    statuses.iter().map(move |(status, count)| RequestCount {
                        method: method.clone(),
                        route: route.clone(),
                        status: *status,
                        count: *count,
                    })
                })
            })
            .collect();
        StatsReport {
            total_requests: requests.iter().map(|r| r.count).sum(),
            requests,
            throttled: self.throttled,
            cache_rebuilds: self.cache_rebuilds,
            duplicates_created: self.duplicates_created,
            tokens_issued: self.tokens_issued,
            faults_before_commit: self.faults_before_commit,
            faults_after_commit: self.faults_after_commit,
            dropped_connections: self.dropped_connections,
            writes_lost: self.writes_lost,
            writes_rejected: self.writes_rejected,
            other_writer_writes: self.other_writer_writes,
            other_writer_conflicts: self.other_writer_conflicts,
        }
    }
}

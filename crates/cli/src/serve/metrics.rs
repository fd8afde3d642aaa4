//! `/metrics`: Prometheus text. The service's own counters live here; the client's (calls by
//! route and status, retries, 429s, token fetches) and the queue's figures are read when
//! scraped, so the page never disagrees with the journal or the client.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Service;

/// The service's own counters.
#[derive(Default)]
pub struct Metrics {
    /// Events stored for the first time.
    pub events_accepted: Counter,
    /// Events whose id was stored before (acknowledged, not applied again).
    pub events_repeated: Counter,
    /// Requests refused before storing: bad signature (401), bad body (400), too large (413),
    /// queue full (429), stopping (503).
    pub requests_refused: Family<Vec<(String, String)>, Counter>,
    /// Events settled, by lane and outcome (applied, rejected, superseded).
    pub events_settled: Family<Vec<(String, String)>, Counter>,
    /// Runs of the engine the service started, by kind and outcome.
    pub runs: Family<Vec<(String, String)>, Counter>,
}

impl Metrics {
    pub fn refused(&self, status: u16) {
        self.requests_refused
            .get_or_create(&vec![("status".into(), status.to_string())])
            .inc();
    }

    pub fn settled(&self, lane: &str, state: &str, n: u64) {
        self.events_settled
            .get_or_create(&vec![
                ("lane".into(), lane.into()),
                ("state".into(), state.into()),
            ])
            .inc_by(n);
    }

    pub fn run(&self, kind: &str, outcome: &str) {
        self.runs
            .get_or_create(&vec![
                ("kind".into(), kind.into()),
                ("outcome".into(), outcome.into()),
            ])
            .inc();
    }
}

/// The whole page, read now.
pub async fn render(service: &Service) -> String {
    let metrics = &service.metrics;
    let mut registry = Registry::with_prefix("skillsync");
    registry.register(
        "events_accepted",
        "Events stored for the first time",
        metrics.events_accepted.clone(),
    );
    registry.register(
        "events_repeated",
        "Events whose id was already stored: acknowledged, not applied again",
        metrics.events_repeated.clone(),
    );
    registry.register(
        "event_requests_refused",
        "Event requests refused before storing, by HTTP status",
        metrics.requests_refused.clone(),
    );
    registry.register(
        "events_settled",
        "Events settled, by lane and state (applied, rejected, superseded)",
        metrics.events_settled.clone(),
    );
    registry.register(
        "runs",
        "Engine runs started by the service, by kind (skills, proficiencies, full) and outcome",
        metrics.runs.clone(),
    );

    let client = service.api.counters();
    let api_responses = Family::<Vec<(String, String)>, Counter>::default();
    for ((route, status), count) in &client.responses {
        let (method, path) = route.split_once(' ').unwrap_or(("", route));
        api_responses
            .get_or_create(&vec![
                ("method".into(), method.into()),
                ("route".into(), path.into()),
                ("status".into(), status.to_string()),
            ])
            .inc_by(*count);
    }
    registry.register(
        "api_responses",
        "Tenant API answers by method, route template and status (0: no answer)",
        api_responses,
    );
    for (name, help, value) in [
        (
            "api_retries",
            "Tenant API attempts that retried an earlier one",
            client.retries,
        ),
        (
            "api_throttled",
            "Tenant API answers 429 (rate limited)",
            client.throttled,
        ),
        (
            "api_token_fetches",
            "Access tokens requested",
            client.token_fetches,
        ),
        (
            "api_conflicts",
            "Writes refused for a stale version and re-merged",
            client.conflicts,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    }

    let gauge = |value: i64| {
        let gauge = Gauge::<i64>::default();
        gauge.set(value);
        gauge
    };
    match service.queue.event_stats().await {
        Ok(stats) => {
            registry.register(
                "event_queue_depth",
                "Events stored and not yet settled",
                gauge(stats.queued as i64),
            );
            let oldest = stats.oldest_queued.map_or(0, |t| {
                jiff::Timestamp::now().duration_since(t).as_secs().max(0)
            });
            registry.register(
                "event_queue_oldest_age_seconds",
                "Age of the oldest event not yet settled (0 when none)",
                gauge(oldest),
            );
        }
        Err(error) => {
            tracing::warn!(error = %skillsync_engine::explain(&error), "metrics: cannot read the event queue");
        }
    }
    let status = service.status.lock().clone();
    registry.register(
        "last_full_sync_timestamp_seconds",
        "When the last successful full sync ended (unix seconds; 0: none yet)",
        gauge(status.last_full_sync.map_or(0, |t| t.as_second())),
    );
    registry.register(
        "drift_assignments",
        "Owned assignments the last full read found different from the HRIS",
        gauge(status.drift.map_or(0, |d| d as i64)),
    );
    registry.register(
        "lease_held",
        "1 when this process held the tenant's lease at its last attempt",
        gauge(i64::from(status.lease_held)),
    );
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String does not fail");
    text
}

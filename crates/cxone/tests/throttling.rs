//! Throttling: a client-side limiter keeps 429s rare, and adaptation copes with a client set
//! faster than the tenant.

mod common;

use std::sync::Arc;

use futures::StreamExt;
use skillsync_core::UserId;
use skillsync_cxone::{TenantApi, UserQuery};
use skillsync_sim::{DurationRange, Knobs, Rate};

/// `calls` single-user reads spread over `tasks` tasks; every call must finally succeed.
async fn hammer(api: Arc<dyn TenantApi>, ids: Vec<String>, calls: usize, tasks: usize) {
    let ids = Arc::new(ids);
    let per_task = calls / tasks;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let api = api.clone();
        let ids = ids.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                let id = UserId(ids[(t * per_task + i) % ids.len()].clone());
                api.user(&id).await.expect("every call finally succeeds");
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
}

fn tenant_limits(rate: f64, burst: u32, in_flight: u32) -> Knobs {
    Knobs {
        rate_limit: Rate::PerSecond(rate),
        burst,
        max_in_flight: in_flight,
        latency: DurationRange::between_millis(1, 5),
        ..Knobs::quiet()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_equal_to_the_tenants_keep_429s_under_one_percent() {
    let sim = common::start(tenant_limits(200.0, 20, 8), 50).await;
    let ids = sim.user_ids(50).await;
    let mut settings = sim.settings();
    settings.requests_per_second = 200.0;
    settings.burst = 20;
    settings.max_in_flight = 8;
    let api = skillsync_cxone::connect(&settings).unwrap();
    hammer(api.clone(), ids, 2048, 64).await;
    let counters = api.counters();
    let sent = counters.total_requests() - counters.token_fetches;
    let share = counters.throttled as f64 / sent as f64;
    println!("{} of {sent} requests throttled", counters.throttled);
    assert!(
        share < 0.01,
        "{} of {sent} requests were throttled ({:.2}%)",
        counters.throttled,
        share * 100.0
    );
    assert_eq!(
        sim.stats().await["throttled"].as_u64().unwrap(),
        counters.throttled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_the_tenants_rate_adapts_and_keeps_429s_under_five_percent() {
    let sim = common::start(tenant_limits(200.0, 20, 8), 50).await;
    let ids = sim.user_ids(50).await;
    let mut settings = sim.settings();
    settings.requests_per_second = 400.0;
    settings.burst = 40;
    settings.max_in_flight = 8;
    let api = skillsync_cxone::connect(&settings).unwrap();
    hammer(api.clone(), ids, 2048, 64).await;
    let counters = api.counters();
    let sent = counters.total_requests() - counters.token_fetches;
    let share = counters.throttled as f64 / sent as f64;
    println!("{} of {sent} requests throttled", counters.throttled);
    assert!(
        counters.throttled > 0,
        "the tenant must have pushed back at twice its rate"
    );
    assert!(
        share < 0.05,
        "{} of {sent} requests were throttled ({:.2}%)",
        counters.throttled,
        share * 100.0
    );
}

#[tokio::test]
async fn paging_streams_every_user_across_pages() {
    let sim = common::start(Knobs::quiet(), 1203).await;
    let api = skillsync_cxone::connect(&sim.settings()).unwrap();
    let users: Vec<_> = api.users(UserQuery::default()).collect().await;
    assert_eq!(users.len(), 1203);
    let ids: std::collections::HashSet<_> = users
        .iter()
        .map(|u| u.as_ref().expect("every page read").user_id.clone())
        .collect();
    assert_eq!(
        ids.len(),
        1203,
        "pages fetched together still give each user once"
    );
    assert_eq!(
        sim.answered("GET", "/api/v2/routing/users").await,
        vec![(200, 3)],
        "500 per page: three pages"
    );
}

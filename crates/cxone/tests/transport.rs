//! Transport rules: https required off loopback, and an extra CA trusted on request.

mod common;

use futures::StreamExt;
use skillsync_cxone::{Error, Secret, Settings, UserQuery};
use skillsync_sim::{SimConfig, TlsOptions};

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused() {
    let settings = Settings::new(
        "http://tenant.example.com/api/v2",
        "https://tenant.example.com/api/v2/oauth/token",
        "id",
        Secret::new("secret"),
    );
    let error = skillsync_cxone::connect(&settings)
        .err()
        .expect("must be refused");
    assert!(
        matches!(&error, Error::Settings(m) if m.contains("api_base") && m.contains("https")),
        "{error}"
    );
}

#[tokio::test]
async fn https_works_when_the_simulators_ca_is_trusted_and_fails_when_it_is_not() {
    let dir = std::env::temp_dir().join(format!("skillsync-cxone-tls-{}", std::process::id()));
    let ca_file = dir.join("ca.pem");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        tls: Some(TlsOptions {
            ca_file: ca_file.clone(),
        }),
        ..SimConfig::quiet(common::tenant(5))
    };
    let simulator = skillsync_sim::Simulator::new(listener, config).unwrap();
    let base = simulator.endpoint().base_url.clone();
    assert!(base.starts_with("https://"));
    tokio::spawn(simulator.serve(std::future::pending()));

    let mut settings = Settings::new(
        &format!("{base}/api/v2"),
        &format!("{base}/api/v2/oauth/token"),
        skillsync_sim::DEMO_CLIENT_ID,
        Secret::new(skillsync_sim::DEMO_CLIENT_SECRET),
    );
    settings.retry.max_attempts = 2;
    settings.retry.base_delay = std::time::Duration::from_millis(1);

    let untrusting = skillsync_cxone::connect(&settings).unwrap();
    let refused: Vec<_> = untrusting.users(UserQuery::default()).collect().await;
    assert!(
        refused[0].is_err(),
        "a certificate from an unknown CA must be refused"
    );

    settings.ca_file = Some(ca_file);
    let trusting = skillsync_cxone::connect(&settings).unwrap();
    let users: Vec<_> = trusting.users(UserQuery::default()).collect().await;
    assert_eq!(users.len(), 5);
    assert!(users.iter().all(Result::is_ok));
    let _ = std::fs::remove_dir_all(dir);
}

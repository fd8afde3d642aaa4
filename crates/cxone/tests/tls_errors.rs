//! Connection failures say what went wrong and where: a TLS certificate this client does not
//! trust ends the call at once (sending again meets the same certificate) with the reason and
//! the setting that fixes it; a refused connection names the address and keeps the refusal in
//! its chain.

mod common;

use std::error::Error as _;

use skillsync_cxone::{Error, LastAttempt, Secret, Settings, SettingsProblem};
use skillsync_sim::{SimConfig, TlsOptions};

/// Every message in the chain, outermost first, as `{:#}` would print it.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(error), |e| (*e).source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn settings(base: &str) -> Settings {
    let mut settings = Settings::new(
        &format!("{base}/api/v2"),
        &format!("{base}/api/v2/oauth/token"),
        skillsync_sim::DEMO_CLIENT_ID,
        Secret::new(skillsync_sim::DEMO_CLIENT_SECRET),
    );
    settings.retry.base_delay = std::time::Duration::from_millis(1);
    settings
}

#[tokio::test]
async fn an_untrusted_certificate_is_not_retried_and_names_its_cause_and_ca_file() {
    let dir = std::env::temp_dir().join(format!("skillsync-tls-errors-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = SimConfig {
        tls: Some(TlsOptions {
            ca_file: dir.join("ca.pem"),
        }),
        ..SimConfig::quiet(common::tenant(2))
    };
    let simulator = skillsync_sim::Simulator::new(listener, config).unwrap();
    let base = simulator.endpoint().base_url.clone();
    tokio::spawn(simulator.serve(std::future::pending()));

    // The CA is not trusted: no ca_file.
    let api = skillsync_cxone::connect(&settings(&base)).unwrap();
    let error = api
        .user(&skillsync_core::UserId("42".into()))
        .await
        .unwrap_err();
    let Error::Settings(SettingsProblem::Certificate {
        address: named,
        reason,
        hint,
        ..
    }) = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(named, &address.to_string());
    assert!(reason.contains("unknown issuer"), "{reason}");
    assert!(hint.contains("[tenant] ca_file"), "{hint}");
    assert!(
        !error.is_transient(),
        "a certificate does not change by retrying"
    );
    let counters = api.counters();
    assert_eq!(
        counters.requests.get("POST /oauth/token"),
        Some(&1),
        "one attempt, no retries: {counters:?}"
    );
    assert_eq!(counters.retries, 0, "{counters:?}");
    let text = chain(&error);
    assert!(
        text.contains("UnknownIssuer"),
        "the chain keeps the TLS verdict: {text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_refused_connection_names_the_address_and_the_refusal() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut settings = settings(&format!("http://127.0.0.1:{port}"));
    settings.retry.max_attempts = 2;
    let api = skillsync_cxone::connect(&settings).unwrap();
    let error = api
        .user(&skillsync_core::UserId("42".into()))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "a listener may come back: {error:?}");
    let Error::Unavailable {
        last: LastAttempt::Connect { address, .. },
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(address, &format!("127.0.0.1:{port}"));
    let text = chain(&error);
    assert!(
        text.contains(&format!("could not connect to 127.0.0.1:{port}"))
            && text.to_lowercase().contains("connection refused"),
        "{text}"
    );
    assert!(
        error.source().is_some_and(|last| last.source().is_some()),
        "the transport error stays the source"
    );
}

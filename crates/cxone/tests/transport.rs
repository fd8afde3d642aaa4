//! Transport rules: https required off loopback, an extra CA trusted on request, and failures
//! reported as typed errors whose sources reach the underlying cause.

mod common;

use futures::StreamExt;
use std::error::Error as _;

use skillsync_cxone::{
    CaProblem, Error, LastAttempt, Secret, Settings, SettingsProblem, UserQuery,
};
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
        matches!(
            &error,
            Error::Settings(SettingsProblem::PlainHttp { field: "api_base", text })
                if text == "http://tenant.example.com/api/v2"
        ),
        "{error:?}"
    );
    let rule = error.source().expect("the rule broken is the source");
    assert!(rule.to_string().contains("use https"), "{rule}");
}

fn loopback_settings(base: &str) -> Settings {
    let mut settings = Settings::new(
        &format!("{base}/api/v2"),
        &format!("{base}/api/v2/oauth/token"),
        "id",
        Secret::new("secret"),
    );
    settings.retry.max_attempts = 2;
    settings.retry.base_delay = std::time::Duration::from_millis(1);
    settings
}

#[test]
fn a_ca_file_that_cannot_be_used_is_named_with_the_reason_as_its_source() {
    let dir = std::env::temp_dir().join(format!("skillsync-cxone-bad-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut settings = loopback_settings("http://127.0.0.1:9");

    let missing = dir.join("missing.pem");
    settings.ca_file = Some(missing.clone());
    let error = skillsync_cxone::connect(&settings).err().expect("refused");
    let Error::CaFile {
        path,
        problem: CaProblem::Read(io),
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(path, &missing);
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );

    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    settings.ca_file = Some(empty);
    let error = skillsync_cxone::connect(&settings).err().expect("refused");
    assert!(
        matches!(
            &error,
            Error::CaFile {
                problem: CaProblem::NoCertificate,
                ..
            }
        ),
        "{error:?}"
    );

    let garbled = dir.join("garbled.pem");
    std::fs::write(
        &garbled,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    settings.ca_file = Some(garbled);
    let error = skillsync_cxone::connect(&settings).err().expect("refused");
    let Error::CaFile {
        problem: CaProblem::Certificate { number: 1, source },
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(
        error.source().and_then(|p| p.source()).is_some(),
        "{source}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_tenant_that_cannot_be_reached_is_unavailable_with_the_transport_error_as_source() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = loopback_settings(&format!("http://127.0.0.1:{port}"));
    let api = skillsync_cxone::connect(&settings).unwrap();
    let error = api
        .user(&skillsync_core::UserId("42".into()))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let Error::Unavailable {
        route: "/oauth/token",
        last: LastAttempt::Connect {
            source: transport, ..
        },
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(transport.is_connect(), "{transport:?}");
    assert!(transport.url().is_none(), "URLs stay out of errors");
    let reached = std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
        (*e).source()
    })
    .any(|e| e.downcast_ref::<reqwest::Error>().is_some());
    assert!(reached, "the chain reaches the transport error");
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

//! The client secret and access tokens never reach the logs, even at trace level, even when
//! things go wrong. This file is its own test binary because it installs a global subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use serde_json::json;
use skillsync_core::{Kind, UserId};
use skillsync_cxone::{DefinitionQuery, Error, UserWrite};
use skillsync_sim::Knobs;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Access tokens the simulator issues look like `sim.` and 32 base-36 characters.
fn contains_access_token(log: &str) -> bool {
    log.match_indices("sim.").any(|(at, _)| {
        let rest = &log[at + 4..];
        rest.len() >= 32
            && rest[..32]
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_and_access_tokens_never_appear_in_trace_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let sim = common::start(Knobs::quiet(), 20).await;
    let api = skillsync_cxone::connect(&sim.settings()).unwrap();
    let user = UserId(sim.user_ids(1).await[0].clone());

    // A token fetch, reads, a conflict, a 400, retries through faults and dropped connections,
    // a refresh after expiry, and a 403: every path that logs.
    let read = api.user(&user).await.unwrap();
    let write = UserWrite {
        user_id: user.clone(),
        version: read.version,
        skills: Some(read.skills.clone()),
        proficiencies: None,
        as_read: None,
    };
    api.write_user(&write).await.unwrap();
    assert!(matches!(
        api.write_user(&write).await,
        Err(Error::Conflict { .. })
    ));
    sim.set_knobs(json!({ "faultRate": 0.3, "dropRate": 0.2 }))
        .await;
    for _ in 0..10 {
        let _ = api
            .definitions(Kind::Skill, DefinitionQuery::default())
            .try_collect::<Vec<_>>()
            .await;
    }
    sim.set_knobs(json!({ "faultRate": 0.0, "dropRate": 0.0 }))
        .await;
    sim.advance_clock("2h").await;
    api.user(&user).await.unwrap();
    let mut narrow = sim.settings();
    narrow.scopes = vec!["routing:skills:read".into()];
    let narrow = skillsync_cxone::connect(&narrow).unwrap();
    assert!(matches!(
        narrow.user(&user).await,
        Err(Error::MissingScope { .. })
    ));

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("/routing/users/{userId}") && log.contains("attempt"),
        "requests must be traced:\n{log}"
    );
    assert!(
        api.counters().retries > 0,
        "the faults must have caused retries"
    );
    assert!(
        !log.contains(skillsync_sim::DEMO_CLIENT_SECRET),
        "the client secret leaked into the log"
    );
    assert!(
        !contains_access_token(&log),
        "an access token leaked into the log"
    );
}

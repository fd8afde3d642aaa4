//! A run stops scheduling writes once failures pass the threshold, instead of grinding
//! through a tenant that refuses everything, and once the sync window has closed.

use std::fmt::Write as _;

use futures::TryStreamExt;
use skillsync_core::hris::{Source, read_desired};
use skillsync_core::{Kind, PlanOptions};
use skillsync_cxone::{DefinitionQuery, Secret, Settings};
use skillsync_engine::{ApplyContext, ApplyOptions, StopReason, WriteOptions};
use skillsync_sim::{GenerateOptions, SimConfig, TenantSource};

/// 300 agents who each should gain the skill `Claims_Intake` (which exists when planning),
/// planned against a simulated tenant.
struct Scenario {
    api: std::sync::Arc<dyn skillsync_cxone::TenantApi>,
    loaded: skillsync_core::Loaded,
    plan: skillsync_core::Plan,
    live: skillsync_core::Live,
    extra: skillsync_core::Definition,
}

async fn scenario() -> Scenario {
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 300,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = skillsync_sim::Simulator::new(
        listener,
        SimConfig::quiet(TenantSource::Doc(Box::new(doc.clone()))),
    )
    .unwrap();
    let base = simulator.endpoint().base_url.clone();
    tokio::spawn(simulator.serve(std::future::pending()));
    let mut settings = Settings::new(
        &format!("{base}/api/v2"),
        &format!("{base}/api/v2/oauth/token"),
        skillsync_sim::DEMO_CLIENT_ID,
        Secret::new(skillsync_sim::DEMO_CLIENT_SECRET),
    );
    settings.requests_per_second = 1000.0;
    settings.burst = 100;
    let api = skillsync_cxone::connect(&settings).unwrap();

    // A catalog with one extra skill every agent should get; the skill exists when planning.
    let profile = doc.profiles[0].id.clone();
    let extra = api
        .ensure_definition(&skillsync_cxone::NewDefinition {
            kind: Kind::Skill,
            name: "Claims_Intake".into(),
            locale: skillsync_core::Locale::parse("en-us").unwrap(),
            description: String::new(),
            routing_profile_id: profile.clone(),
        })
        .await
        .unwrap()
        .definition;
    let mut catalog = format!(
        "code,kind,locale,name,description,routing_profile_id\nClaims_Intake,skill,en-us,Claims_Intake,,{profile}\n"
    );
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level\n");
    for d in doc
        .skills
        .iter()
        .filter(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
    {
        writeln!(
            catalog,
            "{},skill,en-us,{},{},{}",
            d.name, d.name, d.description, d.routing_profile_id
        )
        .unwrap();
    }
    for (i, user) in doc.users.iter().enumerate() {
        writeln!(agents, "E{i},{},en-us", user.id).unwrap();
        writeln!(assignments, "E{i},Claims_Intake,5").unwrap();
        for a in &user.skills {
            if let Some(d) = doc
                .skills
                .iter()
                .find(|d| d.id == a.id && !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
            {
                writeln!(assignments, "E{i},{},{}", d.name, a.level).unwrap();
            }
        }
    }
    let source = |name: &str, text: &str| Source {
        name: name.to_string(),
        reader: std::io::Cursor::new(text.as_bytes().to_vec()),
    };
    let loaded = read_desired(
        source("catalog.csv", &catalog),
        source("agents.csv", &agents),
        source("assignments.csv", &assignments),
    )
    .unwrap_or_else(|p| panic!("{p:?}"));
    let live = skillsync_engine::read_live(api.as_ref(), &|_| {})
        .await
        .unwrap();
    let options = PlanOptions {
        bulk_threshold: 10_000,
        ..PlanOptions::default()
    };
    let plan = skillsync_core::plan(&loaded.desired, &live, &options).unwrap();
    assert_eq!(plan.users.len(), 300, "every agent gains Claims_Intake");
    Scenario {
        api,
        loaded,
        plan,
        live,
        extra,
    }
}

fn user_puts(api: &dyn skillsync_cxone::TenantApi) -> u64 {
    api.counters()
        .requests
        .get("PUT /routing/users/{userId}")
        .copied()
        .unwrap_or(0)
}

fn options(write: WriteOptions, live: &skillsync_core::Live) -> ApplyOptions {
    ApplyOptions {
        write,
        tenant_users: live.users.len(),
        ..ApplyOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_writes_all_fail_stops_early_and_accounts_for_every_user() {
    let Scenario {
        api,
        loaded,
        mut plan,
        live,
        extra,
    } = scenario().await;
    // Someone deletes the skill between plan and apply: every user write is now refused (400).
    api.delete_definition(Kind::Skill, &extra.id).await.unwrap();
    assert!(
        api.definitions(Kind::Skill, DefinitionQuery::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .iter()
            .all(|d| d.id != extra.id)
    );

    let write = WriteOptions {
        concurrency: 2,
        max_failures: 20,
        ..WriteOptions::default()
    };
    let report = skillsync_engine::apply(
        api.as_ref(),
        &loaded.desired,
        &mut plan,
        &live,
        options(write, &live),
        ApplyContext {
            journal: None,
            interrupt: None,
            progress: &|_, _, _| {},
        },
    )
    .await;
    let written = &report.written;
    assert!(
        matches!(written.stopped, Some(StopReason::Breaker { .. })),
        "{report:?}"
    );
    let puts = user_puts(api.as_ref());
    assert!(
        puts <= 30,
        "the run must stop soon after 20 failures, not send all 300: {puts} sent"
    );
    // Every user of the plan is in exactly one outcome, and the four add up to the plan.
    let (updated, current, failed, not_attempted) = written.tally();
    assert_eq!(written.users.len(), 300);
    assert_eq!(updated + current + failed + not_attempted, 300);
    assert_eq!((updated, current), (0, 0), "{report:?}");
    assert_eq!(
        failed as u64, puts,
        "one failure per write sent: {report:?}"
    );
    assert_eq!(not_attempted as u64, 300 - puts, "the rest were never sent");
    assert!(
        written
            .failed()
            .all(|(_, _, why)| why.contains("400") || why.contains("rejected")),
        "failures carry the tenant's reason: {:?}",
        written.failed().next()
    );
    assert!(
        written
            .not_attempted()
            .all(|(_, why)| matches!(why, StopReason::Breaker { .. })),
        "and the not attempted say why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_reaches_the_end_of_the_sync_window_writes_no_further_user() {
    let Scenario {
        api,
        loaded,
        plan,
        live,
        ..
    } = scenario().await;
    let closed = WriteOptions {
        concurrency: 2,
        write_until: Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1)),
        ..WriteOptions::default()
    };
    let report = skillsync_engine::apply(
        api.as_ref(),
        &loaded.desired,
        &mut plan.clone(),
        &live,
        options(closed, &live),
        ApplyContext {
            journal: None,
            interrupt: None,
            progress: &|_, _, _| {},
        },
    )
    .await;
    assert!(
        matches!(report.written.stopped, Some(StopReason::WindowClosed(_))),
        "{report:?}"
    );
    assert_eq!(
        user_puts(api.as_ref()),
        0,
        "no write after the window closed"
    );
    assert_eq!(report.written.tally(), (0, 0, 0, 300));

    // The same plan with the window still open writes every agent.
    let open = WriteOptions {
        concurrency: 2,
        write_until: Some(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)),
        ..WriteOptions::default()
    };
    let report = skillsync_engine::apply(
        api.as_ref(),
        &loaded.desired,
        &mut plan.clone(),
        &live,
        options(open, &live),
        ApplyContext {
            journal: None,
            interrupt: None,
            progress: &|_, _, _| {},
        },
    )
    .await;
    assert!(report.written.complete(), "{report:?}");
    assert_eq!(report.written.tally(), (300, 0, 0, 0));
    assert_eq!(report.users_read_back, 300);
}

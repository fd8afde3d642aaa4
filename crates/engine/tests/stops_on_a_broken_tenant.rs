//! A run stops scheduling writes once failures pass the threshold, instead of grinding
//! through a tenant that refuses everything, and once the sync window has closed.

use std::fmt::Write as _;

use futures::TryStreamExt;
use skillsync_core::hris::{Source, read_desired};
use skillsync_core::{Kind, PlanOptions};
use skillsync_cxone::{DefinitionQuery, Secret, Settings};
use skillsync_engine::ApplyOptions;
use skillsync_sim::{GenerateOptions, SimConfig, TenantSource};

/// 300 agents who each should gain the skill `Claims_Intake` (which exists when planning),
/// planned against a simulated tenant.
struct Scenario {
    api: std::sync::Arc<dyn skillsync_cxone::TenantApi>,
    loaded: skillsync_core::Loaded,
    plan: skillsync_core::Plan,
    resolution: skillsync_core::Resolution,
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
    let (resolution, _, _) = skillsync_core::resolve(&loaded.desired, &live);
    Scenario {
        api,
        loaded,
        plan,
        resolution,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_writes_all_fail_stops_early_instead_of_grinding_through() {
    let Scenario {
        api,
        loaded,
        plan,
        resolution,
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

    let apply_options = ApplyOptions {
        concurrency: 2,
        max_failures: 20,
        ..ApplyOptions::default()
    };
    let report = skillsync_engine::apply(
        api.as_ref(),
        &loaded.desired,
        &plan,
        resolution,
        apply_options,
        None,
        &|_, _, _| {},
    )
    .await
    .unwrap();
    assert!(report.stopped_early.is_some(), "{report:?}");
    let puts = user_puts(api.as_ref());
    assert!(
        puts <= 30,
        "the run must stop soon after 20 failures, not send all 300: {puts} sent"
    );
    assert_eq!(report.users_updated, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_reaches_the_end_of_the_sync_window_writes_no_further_user() {
    let Scenario {
        api,
        loaded,
        plan,
        resolution,
        ..
    } = scenario().await;
    let apply_options = ApplyOptions {
        concurrency: 2,
        write_until: Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1)),
        ..ApplyOptions::default()
    };
    let report = skillsync_engine::apply(
        api.as_ref(),
        &loaded.desired,
        &plan,
        resolution,
        apply_options,
        None,
        &|_, _, _| {},
    )
    .await
    .unwrap();
    let why = report.stopped_early.as_deref().unwrap_or_default();
    assert!(why.contains("sync window closed"), "{report:?}");
    assert_eq!(
        user_puts(api.as_ref()),
        0,
        "no write after the window closed"
    );
    assert_eq!(report.users_updated, 0);

    // The same plan with the window still open writes every agent.
    let live = skillsync_engine::read_live(api.as_ref(), &|_| {})
        .await
        .unwrap();
    let (resolution, _, _) = skillsync_core::resolve(&loaded.desired, &live);
    let report = skillsync_engine::apply(
        api.as_ref(),
        &loaded.desired,
        &plan,
        resolution,
        ApplyOptions {
            concurrency: 2,
            write_until: Some(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)),
            ..ApplyOptions::default()
        },
        None,
        &|_, _, _| {},
    )
    .await
    .unwrap();
    assert!(report.stopped_early.is_none(), "{report:?}");
    assert_eq!(report.users_updated, 300);
}

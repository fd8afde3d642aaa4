//! A run stops scheduling writes once failures pass the threshold, instead of grinding
//! through a tenant that refuses everything, and once the sync window has closed; and only
//! then: a lost answer, a signal after the last write, or a read-back finding are not stops.

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
    scenario_writing(false).await
}

/// The scenario, its 300 writes planned in bulk (`bulk`) or one by one.
async fn scenario_writing(bulk: bool) -> Scenario {
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
    let live = skillsync_engine::read_live(api.as_ref(), &Default::default(), &|_| {})
        .await
        .unwrap();
    let options = PlanOptions {
        bulk_threshold: if bulk { 50 } else { 10_000 },
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

/// Applies `plan` (made from `live`) with these write options.
async fn apply_with(
    api: &dyn skillsync_cxone::TenantApi,
    loaded: &skillsync_core::Loaded,
    plan: &mut skillsync_core::Plan,
    live: &skillsync_core::Live,
    write: WriteOptions,
    journal: Option<skillsync_engine::JournalRun<'_>>,
    interrupt: Option<&skillsync_engine::Interrupt>,
) -> skillsync_engine::ApplyReport {
    let options = ApplyOptions {
        write,
        tenant_users: live.users.len(),
        ..ApplyOptions::default()
    };
    let context = ApplyContext::new(journal, interrupt, &|_, _, _| {});
    skillsync_engine::apply(api, &loaded.desired, plan, live, options, context).await
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
    let report = apply_with(api.as_ref(), &loaded, &mut plan, &live, write, None, None).await;
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
    let report = apply_with(
        api.as_ref(),
        &loaded,
        &mut plan.clone(),
        &live,
        closed,
        None,
        None,
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
    let report = apply_with(
        api.as_ref(),
        &loaded,
        &mut plan.clone(),
        &live,
        open,
        None,
        None,
    )
    .await;
    assert!(report.written.complete(), "{report:?}");
    assert_eq!(report.written.tally(), (300, 0, 0, 0));
    assert_eq!(report.users_read_back, 300);
}

/// The real client over HTTP, with one misfortune injected at a precise moment: the first bulk
/// request lands and its answer is lost (as when the network fails after the request left),
/// or a signal arrives when the read-back starts listing users.
struct Unlucky {
    ours: std::sync::Arc<dyn skillsync_cxone::TenantApi>,
    lose_first_bulk_answer: std::sync::atomic::AtomicBool,
    interrupt_at_listing: Option<std::sync::Arc<skillsync_engine::Interrupt>>,
}

#[async_trait::async_trait]
impl skillsync_cxone::TenantApi for Unlucky {
    fn capabilities(&self) -> skillsync_cxone::Capabilities {
        self.ours.capabilities()
    }
    fn counters(&self) -> skillsync_cxone::CounterSnapshot {
        self.ours.counters()
    }
    async fn token_ready(&self) -> skillsync_cxone::Result<()> {
        self.ours.token_ready().await
    }
    fn definitions(
        &self,
        kind: Kind,
        query: DefinitionQuery,
    ) -> futures::stream::BoxStream<'_, skillsync_cxone::Result<skillsync_core::Definition>> {
        self.ours.definitions(kind, query)
    }
    async fn create_definition(
        &self,
        new: &skillsync_cxone::NewDefinition,
    ) -> skillsync_cxone::Result<skillsync_core::Definition> {
        self.ours.create_definition(new).await
    }
    async fn update_definition(
        &self,
        definition: &skillsync_core::Definition,
    ) -> skillsync_cxone::Result<skillsync_core::Definition> {
        self.ours.update_definition(definition).await
    }
    async fn delete_definition(
        &self,
        kind: Kind,
        id: &skillsync_core::DefinitionId,
    ) -> skillsync_cxone::Result<()> {
        self.ours.delete_definition(kind, id).await
    }
    fn users(
        &self,
        query: skillsync_cxone::UserQuery,
    ) -> futures::stream::BoxStream<'_, skillsync_cxone::Result<skillsync_core::UserAssignments>>
    {
        if let Some(interrupt) = &self.interrupt_at_listing {
            interrupt.raise();
        }
        self.ours.users(query)
    }
    async fn users_page(
        &self,
        page: usize,
    ) -> skillsync_cxone::Result<Vec<skillsync_core::UserAssignments>> {
        self.ours.users_page(page).await
    }
    async fn user(
        &self,
        id: &skillsync_core::UserId,
    ) -> skillsync_cxone::Result<skillsync_core::UserAssignments> {
        self.ours.user(id).await
    }
    async fn write_user(
        &self,
        write: &skillsync_cxone::UserWrite,
    ) -> skillsync_cxone::Result<skillsync_core::Version> {
        self.ours.write_user(write).await
    }
    async fn write_users(
        &self,
        writes: &[skillsync_cxone::UserWrite],
    ) -> skillsync_cxone::Result<Vec<skillsync_cxone::EntryOutcome>> {
        let answer = self.ours.write_users(writes).await;
        if self
            .lose_first_bulk_answer
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            assert!(answer.is_ok(), "the write itself went through: {answer:?}");
            return Err(skillsync_cxone::Error::Unavailable {
                method: "POST".into(),
                route: "/routing/users/bulk",
                attempts: 5,
                elapsed: std::time::Duration::from_secs(2),
                last: skillsync_cxone::LastAttempt::Status {
                    status: 502,
                    message: "answer lost".into(),
                },
            });
        }
        answer
    }
    fn profiles(
        &self,
        filter: Option<(Kind, skillsync_core::DefinitionId)>,
    ) -> futures::stream::BoxStream<'_, skillsync_cxone::Result<skillsync_cxone::Profile>> {
        self.ours.profiles(filter)
    }
    async fn write_profile(
        &self,
        profile: &skillsync_cxone::Profile,
    ) -> skillsync_cxone::Result<skillsync_core::Version> {
        self.ours.write_profile(profile).await
    }
    fn strategies(
        &self,
        proficiency: Option<skillsync_core::DefinitionId>,
    ) -> futures::stream::BoxStream<'_, skillsync_cxone::Result<skillsync_cxone::Strategy>> {
        self.ours.strategies(proficiency)
    }
    async fn write_strategy(
        &self,
        strategy: &skillsync_cxone::Strategy,
    ) -> skillsync_cxone::Result<skillsync_core::Version> {
        self.ours.write_strategy(strategy).await
    }
    async fn queues(&self) -> skillsync_cxone::Result<Vec<skillsync_cxone::Queue>> {
        self.ours.queues().await
    }
    async fn test_interaction(
        &self,
        queue_id: &str,
    ) -> skillsync_cxone::Result<skillsync_cxone::Routed> {
        self.ours.test_interaction(queue_id).await
    }
}

/// A bulk request of 100 users lands and its answer is lost. Before, the breaker counted
/// those 100 users as failed at once, stopped the run, and reported them failed without
/// reading them: the tenant had the change, the report and the journal said otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bulk_answer_is_confirmed_by_reading_not_counted_as_a_hundred_failures() {
    let Scenario {
        api,
        loaded,
        mut plan,
        live,
        ..
    } = scenario_writing(true).await;
    let unlucky = Unlucky {
        ours: api.clone(),
        lose_first_bulk_answer: true.into(),
        interrupt_at_listing: None,
    };
    let journal = skillsync_store::open("sqlite::memory:").await.unwrap();
    let run = journal
        .start_run(&skillsync_store::NewRun {
            command: "apply".into(),
            config_hash: "test".into(),
            started_at: jiff::Timestamp::now(),
            dialect: "routing".into(),
        })
        .await
        .unwrap();
    let write = WriteOptions {
        concurrency: 1,
        ..WriteOptions::default()
    };
    let journal_run = skillsync_engine::JournalRun {
        journal: journal.as_ref(),
        run,
    };
    let report = apply_with(
        &unlucky,
        &loaded,
        &mut plan,
        &live,
        write,
        Some(journal_run),
        None,
    )
    .await;
    assert_eq!(report.written.stopped, None, "{report:?}");
    assert_eq!(report.written.tally(), (300, 0, 0, 0), "{report:?}");
    // The 100 whose answer was lost are journaled applied, as a re-read confirmed them.
    let confirmed = journal
        .writes(run)
        .await
        .unwrap()
        .into_iter()
        .filter(|w| {
            w.status == skillsync_store::WriteStatus::Applied
                && w.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("answer was lost"))
        })
        .count();
    assert_eq!(confirmed, 100);
    // Confirmed with the one page of the listing that held them (all 300 agents fit on one),
    // not one GET each: it cost 100 single reads.
    let requests = api.counters().requests;
    let single_reads = requests.get("GET /routing/users/{userId}").copied();
    assert_eq!(single_reads.unwrap_or(0), 0, "{requests:?}");
}

/// A signal that arrives once every write is done (here: as the read-back starts) stops
/// nothing: the run is complete, not interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_after_the_last_write_does_not_make_a_complete_run_interrupted() {
    let Scenario {
        api,
        loaded,
        mut plan,
        live,
        ..
    } = scenario_writing(true).await;
    let interrupt = std::sync::Arc::new(skillsync_engine::Interrupt::new());
    let unlucky = Unlucky {
        ours: api.clone(),
        lose_first_bulk_answer: false.into(),
        interrupt_at_listing: Some(interrupt.clone()),
    };
    let report = apply_with(
        &unlucky,
        &loaded,
        &mut plan,
        &live,
        WriteOptions::default(),
        None,
        Some(&interrupt),
    )
    .await;
    assert!(interrupt.is_raised(), "the read-back listed users");
    assert_eq!(report.written.stopped, None, "{report:?}");
    assert!(report.written.complete(), "{report:?}");
}

/// What a read sees that listed the definitions before another writer created `extra` and
/// gave it to the first `holders` users, and read those users after: `extra` is missing from
/// the definitions and held by them as someone else's.
async fn read_racing_another_writers_create(
    api: &dyn skillsync_cxone::TenantApi,
    live: &skillsync_core::Live,
    extra: &skillsync_core::Definition,
    holders: usize,
) -> skillsync_core::Live {
    let mut users = Vec::new();
    for (i, user) in live.users.iter().enumerate() {
        let mut user = user.clone();
        if i < holders {
            user.skills.push(skillsync_core::Assignment {
                definition: extra.id.clone(),
                level: skillsync_core::Level::new(3).unwrap(),
                active: true,
            });
            let answer = api
                .write_user(&skillsync_cxone::UserWrite {
                    user_id: user.user_id.clone(),
                    version: user.version,
                    skills: Some(user.skills.clone()),
                    proficiencies: None,
                    as_read: None,
                })
                .await
                .unwrap();
            user.version = answer;
        }
        users.push(user);
    }
    skillsync_core::Live {
        definitions: live
            .definitions
            .iter()
            .filter(|d| d.id != extra.id)
            .cloned()
            .collect(),
        users,
        ..live.clone()
    }
}

/// Another writer creates the skill the plan was going to create and gives it to 50 agents,
/// after skillsync listed the definitions but before it read those users: their lists then
/// hold the new definition as someone else's, and the plan adds it again. The bulk entries
/// carried its id twice and the tenant refused them (400 "repeats id"), failing 50 users
/// instead of re-merging them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_created_by_another_writer_during_the_read_is_not_assigned_twice() {
    let Scenario {
        api,
        loaded,
        live,
        extra,
        ..
    } = scenario_writing(true).await;
    let stale = read_racing_another_writers_create(api.as_ref(), &live, &extra, 50).await;
    let options = PlanOptions {
        bulk_threshold: 50,
        ..PlanOptions::default()
    };
    let mut plan = skillsync_core::plan(&loaded.desired, &stale, &options).unwrap();
    let report = apply_with(
        api.as_ref(),
        &loaded,
        &mut plan,
        &stale,
        WriteOptions::default(),
        None,
        None,
    )
    .await;
    let failed: Vec<_> = report.written.failed().take(3).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let (updated, _, _, not_attempted) = report.written.tally();
    assert_eq!((updated, not_attempted), (300, 0), "{report:?}");
    for user in live.users.iter().take(60) {
        let now = api.user(&user.user_id).await.unwrap();
        let held: Vec<_> = now
            .skills
            .iter()
            .filter(|a| a.definition == extra.id)
            .collect();
        assert_eq!(held.len(), 1, "{now:?}");
        assert_eq!(held[0].level.get(), 5, "the HRIS's level: {now:?}");
    }
}

/// The same race, for holders the HRIS does not give the new skill (but changes otherwise):
/// their writes kept it as someone else's, and the read-back, which knows it as skillsync's
/// own by then, reported them failed ("not kept"). With the id bound, their read is merged
/// again and the skill is taken away as the HRIS says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_of_a_racing_created_definition_the_hris_does_not_want_are_merged_again() {
    let Scenario {
        api,
        mut loaded,
        live,
        extra,
        ..
    } = scenario_writing(true).await;
    let stale = read_racing_another_writers_create(api.as_ref(), &live, &extra, 60).await;
    let claims = skillsync_core::Code("Claims_Intake".into());
    let racing: Vec<&skillsync_core::UserId> =
        live.users.iter().take(60).map(|u| &u.user_id).collect();
    // Ten of the racing holders with another skill of the catalog to change.
    let unwanting: Vec<skillsync_core::UserId> = loaded
        .desired
        .agents
        .values()
        .filter(|a| racing.contains(&&a.user_id))
        .filter(|a| loaded.desired.assignments[&a.employee_id].len() > 1)
        .map(|a| a.user_id.clone())
        .take(10)
        .collect();
    assert_eq!(unwanting.len(), 10);
    for agent in loaded.desired.agents.values() {
        if !unwanting.contains(&agent.user_id) {
            continue;
        }
        let wanted = loaded
            .desired
            .assignments
            .get_mut(&agent.employee_id)
            .unwrap();
        wanted.remove(&claims);
        // Another change, so the agent is in the plan at all.
        for want in wanted.values_mut() {
            want.level =
                skillsync_core::Level::new(if want.level.get() == 1 { 2 } else { 1 }).unwrap();
        }
    }
    let options = PlanOptions {
        bulk_threshold: 50,
        ..PlanOptions::default()
    };
    let mut plan = skillsync_core::plan(&loaded.desired, &stale, &options).unwrap();
    let report = apply_with(
        api.as_ref(),
        &loaded,
        &mut plan,
        &stale,
        WriteOptions::default(),
        None,
        None,
    )
    .await;
    let failed: Vec<_> = report.written.failed().take(3).collect();
    assert!(failed.is_empty(), "{failed:?}");
    for user_id in &unwanting {
        let now = api.user(user_id).await.unwrap();
        assert!(
            now.skills.iter().all(|a| a.definition != extra.id),
            "the HRIS does not give it: {now:?}"
        );
    }
}

//! The write path journals every write the tenant answered, committing the records of writes
//! answered together in one transaction, and never runs ahead of a journal that cannot take
//! them: once it fails, the run stops scheduling writes, and only the writes already in flight
//! are answered without being journaled.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use skillsync_core::PlanOptions;
use skillsync_core::hris::{Source, read_desired};
use skillsync_cxone::{Secret, Settings};
use skillsync_engine::{ApplyContext, ApplyOptions, JournalRun, StopReason, WriteOptions};
use skillsync_sim::{GenerateOptions, SimConfig, TenantSource};
use skillsync_store::intercept::{Hook, Intercepted, JournalCall};
use skillsync_store::{Journal, NewRun, RunId, SqliteStore, StoreError, WriteStatus};

/// Refuses every `record_writes` once the journal has taken `capacity` records, counting what
/// it took and what it refused.
struct FillsUp {
    capacity: u64,
    taken: AtomicU64,
    refused: AtomicU64,
    calls: AtomicU64,
}

impl Hook for FillsUp {
    async fn around<'a, T: Send + 'a>(
        &'a self,
        method: JournalCall,
        call: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> Result<T, StoreError> {
        let JournalCall::RecordWrites { records } = method else {
            return call.await;
        };
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.taken.load(Ordering::SeqCst) >= self.capacity {
            self.refused.fetch_add(records as u64, Ordering::SeqCst);
            return Err(StoreError::Unsupported {
                url: "test".into(),
                reason: "the disk is full".into(),
            });
        }
        let out = call.await?;
        self.taken.fetch_add(records as u64, Ordering::SeqCst);
        Ok(out)
    }
}

/// 300 agents of a simulated tenant, each planned one level up on its first skill, written
/// one `If-Match` update each (a record per write: the most journal calls a run makes).
async fn planned() -> (
    std::sync::Arc<dyn skillsync_cxone::TenantApi>,
    skillsync_core::Loaded,
    skillsync_core::Plan,
    skillsync_core::Live,
) {
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
    let catalog_skills: Vec<&skillsync_sim::Definition> = doc
        .skills
        .iter()
        .filter(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .collect();
    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    for d in &catalog_skills {
        writeln!(
            catalog,
            "{},skill,en-us,{},{},{}",
            d.name, d.name, d.description, d.routing_profile_id
        )
        .unwrap();
    }
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level\n");
    let mut changed = 0;
    for (i, user) in doc.users.iter().enumerate() {
        writeln!(agents, "E{i},{},en-us", user.id).unwrap();
        let mut first = true;
        for a in &user.skills {
            if let Some(d) = catalog_skills.iter().find(|d| d.id == a.id) {
                let level = if first { a.level % 10 + 1 } else { a.level };
                changed += usize::from(first);
                first = false;
                writeln!(assignments, "E{i},{},{level}", d.name).unwrap();
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
        bulk_threshold: 10_000,
        ..PlanOptions::default()
    };
    let plan = skillsync_core::plan(&loaded.desired, &live, &options).unwrap();
    assert_eq!(plan.users.len(), changed);
    assert!(changed > 200, "most agents hold a catalog skill: {changed}");
    (api, loaded, plan, live)
}

fn user_puts(api: &dyn skillsync_cxone::TenantApi) -> u64 {
    api.counters()
        .requests
        .get("PUT /routing/users/{userId}")
        .copied()
        .unwrap_or(0)
}

async fn apply(
    api: &dyn skillsync_cxone::TenantApi,
    loaded: &skillsync_core::Loaded,
    plan: &mut skillsync_core::Plan,
    live: &skillsync_core::Live,
    journal: &Intercepted<FillsUp>,
    concurrency: usize,
) -> (skillsync_engine::ApplyReport, RunId) {
    let run = journal
        .start_run(&NewRun {
            command: "apply".into(),
            config_hash: "test".into(),
            started_at: Timestamp::now(),
            dialect: "routing".into(),
        })
        .await
        .unwrap();
    let options = ApplyOptions {
        write: WriteOptions {
            concurrency,
            ..WriteOptions::default()
        },
        tenant_users: live.users.len(),
        ..ApplyOptions::default()
    };
    let context = ApplyContext::new(Some(JournalRun { journal, run }), None, &|_, _, _| {});
    let report = skillsync_engine::apply(api, &loaded.desired, plan, live, options, context).await;
    (report, run)
}

fn fills_up(capacity: u64) -> Intercepted<FillsUp> {
    Intercepted::new(
        SqliteStore::in_memory().unwrap(),
        FillsUp {
            capacity,
            taken: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_answered_is_journaled_once_whoever_commits_it() {
    let (api, loaded, mut plan, live) = planned().await;
    let planned = plan.users.len();
    let journal = fills_up(u64::MAX);
    let (report, run) = apply(api.as_ref(), &loaded, &mut plan, &live, &journal, 8).await;
    assert!(report.written.complete(), "{report:?}");
    let writes = journal.writes(run).await.unwrap();
    assert_eq!(writes.len(), planned, "one record per write");
    assert!(writes.iter().all(|w| w.status == WriteStatus::Applied));
    let users: std::collections::BTreeSet<&str> =
        writes.iter().map(|w| w.subject.as_str()).collect();
    assert_eq!(users.len(), planned, "each user once");
    assert_eq!(user_puts(api.as_ref()), planned as u64);
    assert!(journal.hook.calls.load(Ordering::SeqCst) <= planned as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_fails_stops_the_writes_and_only_those_in_flight_go_unjournaled() {
    let (api, loaded, mut plan, live) = planned().await;
    let concurrency = 4;
    let journal = fills_up(60);
    let (report, run) = apply(
        api.as_ref(),
        &loaded,
        &mut plan,
        &live,
        &journal,
        concurrency,
    )
    .await;
    let written = &report.written;
    assert!(
        matches!(&written.stopped, Some(StopReason::Journal(why)) if why.contains("the disk is full")),
        "{:?}",
        written.stopped
    );
    let (taken, refused) = (
        journal.hook.taken.load(Ordering::SeqCst),
        journal.hook.refused.load(Ordering::SeqCst),
    );
    let puts = user_puts(api.as_ref());
    // Every write the tenant answered was handed to the journal: taken, or refused and the
    // run stopped.
    assert_eq!(puts, taken + refused, "{report:?}");
    assert!(taken >= 60, "the journal took writes until it was full");
    assert!(
        refused <= concurrency as u64,
        "only writes already in flight when the journal failed were answered after it: {refused}"
    );
    assert_eq!(journal.writes(run).await.unwrap().len() as u64, taken);
    let (_, _, _, not_attempted) = written.tally();
    assert!(
        not_attempted as u64 >= plan.users.len() as u64 - puts,
        "the rest were not attempted: {report:?}"
    );
}

//! Retiring while someone else keeps writing. Another integration (a second real client on
//! the same simulated tenant) writes at a precise moment: right before our delete, or between
//! our read and our bulk write. Everything goes over real HTTP; the wrapper only decides when
//! the other writer acts, so no test sleeps stand in for a race.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use cxone::{
    Capabilities, DefinitionQuery, EntryOutcome, NewDefinition, Profile, Queue, Routed, Secret,
    Settings, TenantApi, UserQuery, UserWrite,
};
use engine::retire::{RetireFailure, RetireOptions};
use futures::TryStreamExt;
use futures::stream::BoxStream;
use sim::{GenerateOptions, SimConfig, TenantSource};
use skillsync_core::hris::{Source, read_desired};
use skillsync_core::{
    Assignment, Definition, DefinitionId, Desired, Kind, Level, RetiredMode, UserAssignments,
    UserId, Version,
};

/// Our client, plus another integration that re-assigns the retired proficiency to one user
/// right before each of our first `interfere` deletes.
struct Contested {
    ours: Arc<dyn TenantApi>,
    theirs: Arc<dyn TenantApi>,
    user: UserId,
    interfere: AtomicUsize,
}

impl Contested {
    async fn reassign(&self, id: &DefinitionId) {
        let user = self.theirs.user(&self.user).await.unwrap();
        let mut list = user.proficiencies.clone().unwrap();
        list.push(Assignment {
            definition: id.clone(),
            level: Level::new(4).unwrap(),
            active: true,
        });
        self.theirs
            .write_user(&UserWrite {
                user_id: self.user.clone(),
                version: user.version,
                skills: None,
                proficiencies: Some(list),
            })
            .await
            .unwrap();
    }
}

#[async_trait]
impl TenantApi for Contested {
    fn capabilities(&self) -> Capabilities {
        self.ours.capabilities()
    }
    fn counters(&self) -> cxone::CounterSnapshot {
        self.ours.counters()
    }
    fn definitions(
        &self,
        kind: Kind,
        query: DefinitionQuery,
    ) -> BoxStream<'_, cxone::Result<Definition>> {
        self.ours.definitions(kind, query)
    }
    async fn create_definition(&self, new: &NewDefinition) -> cxone::Result<Definition> {
        self.ours.create_definition(new).await
    }
    async fn update_definition(&self, definition: &Definition) -> cxone::Result<Definition> {
        self.ours.update_definition(definition).await
    }
    async fn delete_definition(&self, kind: Kind, id: &DefinitionId) -> cxone::Result<()> {
        let left = self.interfere.load(Ordering::SeqCst);
        if left > 0 {
            self.interfere.store(left - 1, Ordering::SeqCst);
            self.reassign(id).await;
        }
        self.ours.delete_definition(kind, id).await
    }
    fn users(&self, query: UserQuery) -> BoxStream<'_, cxone::Result<UserAssignments>> {
        self.ours.users(query)
    }
    async fn user(&self, id: &UserId) -> cxone::Result<UserAssignments> {
        self.ours.user(id).await
    }
    async fn write_user(&self, write: &UserWrite) -> cxone::Result<Version> {
        self.ours.write_user(write).await
    }
    async fn write_users(&self, writes: &[UserWrite]) -> cxone::Result<Vec<EntryOutcome>> {
        self.ours.write_users(writes).await
    }
    fn profiles(
        &self,
        filter: Option<(Kind, DefinitionId)>,
    ) -> BoxStream<'_, cxone::Result<Profile>> {
        self.ours.profiles(filter)
    }
    async fn write_profile(&self, profile: &Profile) -> cxone::Result<Version> {
        self.ours.write_profile(profile).await
    }
    async fn queues(&self) -> cxone::Result<Vec<Queue>> {
        self.ours.queues().await
    }
    async fn test_interaction(&self, queue_id: &str) -> cxone::Result<Routed> {
        self.ours.test_interaction(queue_id).await
    }
}

struct Tenant {
    desired: Desired,
    ours: Arc<dyn TenantApi>,
    theirs: Arc<dyn TenantApi>,
    /// The en-us proficiency retired.
    proficiency: DefinitionId,
    /// A user who does not hold it.
    bystander: UserId,
}

async fn tenant() -> Tenant {
    let doc = sim::generate(&GenerateOptions {
        agents: 120,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = sim::Simulator::new(
        listener,
        SimConfig::quiet(TenantSource::Doc(Box::new(doc.clone()))),
    )
    .unwrap();
    let base = simulator.endpoint().base_url.clone();
    tokio::spawn(simulator.serve(std::future::pending()));
    let client = || {
        let mut settings = Settings::new(
            &format!("{base}/api/v2"),
            &format!("{base}/api/v2/oauth/token"),
            sim::DEMO_CLIENT_ID,
            Secret::new(sim::DEMO_CLIENT_SECRET),
        );
        settings.requests_per_second = 1000.0;
        settings.burst = 100;
        cxone::connect(&settings).unwrap()
    };
    let name = sim::proficiency_name(0);
    let proficiency = doc.proficiencies.iter().find(|d| d.name == name).unwrap();
    let catalog = format!(
        "code,kind,locale,name,description,routing_profile_id\nACW,proficiency,en-us,{name},,{}\n",
        proficiency.routing_profile_id
    );
    let bystander = doc
        .users
        .iter()
        .find(|u| u.proficiencies.iter().all(|a| a.id != proficiency.id))
        .unwrap();
    let source = |name: &str, text: String| Source {
        name: name.to_string(),
        reader: std::io::Cursor::new(text.into_bytes()),
    };
    let desired = read_desired(
        source("catalog.csv", catalog),
        source(
            "agents.csv",
            format!("employee_id,user_id,locale\nE1,{},en-us\n", bystander.id),
        ),
        source(
            "assignments.csv",
            "employee_id,code,level\nE1,ACW,2\n".into(),
        ),
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
    .desired;
    Tenant {
        desired,
        ours: client(),
        theirs: client(),
        proficiency: DefinitionId::from(proficiency.id.as_str()),
        bystander: UserId::from(bystander.id.as_str()),
    }
}

fn contested(t: &Tenant, interfere: usize) -> Contested {
    Contested {
        ours: t.ours.clone(),
        theirs: t.theirs.clone(),
        user: t.bystander.clone(),
        interfere: AtomicUsize::new(interfere),
    }
}

async fn exists(api: &dyn TenantApi, id: &DefinitionId) -> bool {
    api.definitions(Kind::Proficiency, DefinitionQuery::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .iter()
        .any(|d| &d.id == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_refused_because_someone_reassigned_it_rediscovers_strips_and_deletes() {
    let t = tenant().await;
    let api = contested(&t, 1);
    let variants: Vec<_> = t.desired.catalog.entries.values().collect();
    let plan = engine::retire::prepare(&api, &t.desired, &variants, RetiredMode::Hard)
        .await
        .unwrap();
    assert!(!plan.users().is_empty(), "some users hold it");
    let before = t.ours.user(&t.bystander).await.unwrap();

    let report =
        engine::retire::retire(&api, &plan, RetireOptions::default(), None, &|_, _, _| {}).await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.deletes_refused, 1, "{report:?}");
    assert_eq!(report.definitions_deleted, 1);
    assert_eq!(
        report.users_stripped,
        plan.users().len() + 1,
        "the re-assigned user too"
    );
    assert!(!exists(t.ours.as_ref(), &t.proficiency).await);
    let after = t.ours.user(&t.bystander).await.unwrap();
    assert_eq!(after.skills, before.skills);
    assert_eq!(
        after.proficiencies, before.proficiencies,
        "only the re-added one went"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_that_keep_meeting_references_stop_after_three_rounds_naming_what_is_left() {
    let t = tenant().await;
    let api = contested(&t, usize::MAX);
    let variants: Vec<_> = t.desired.catalog.entries.values().collect();
    let plan = engine::retire::prepare(&api, &t.desired, &variants, RetiredMode::Hard)
        .await
        .unwrap();
    let report =
        engine::retire::retire(&api, &plan, RetireOptions::default(), None, &|_, _, _| {}).await;
    assert_eq!(report.deletes_refused, 3, "{report:?}");
    let failure = report.failure.expect("it cannot finish");
    assert!(
        matches!(
            failure,
            RetireFailure::StillReferenced {
                users: 1,
                profiles: 0,
                rounds: 3,
                ..
            }
        ),
        "{failure:?}"
    );
    let message = failure.to_string();
    assert!(
        message.contains("still referenced by 1 user(s) and 0 routing profile(s) after 3 rounds"),
        "{message}"
    );
    assert!(exists(t.ours.as_ref(), &t.proficiency).await, "not deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_changed_between_read_and_write_is_re_read_and_keeps_the_other_change() {
    let t = tenant().await;
    let api = contested(&t, 0);
    let variants: Vec<_> = t.desired.catalog.entries.values().collect();
    let plan = engine::retire::prepare(&api, &t.desired, &variants, RetiredMode::Hard)
        .await
        .unwrap();
    // Another integration changes one holder after we read it: our bulk entry is now stale.
    let holder = plan.users()[0].user_id.clone();
    let read = t.theirs.user(&holder).await.unwrap();
    let mut skills = read.skills.clone();
    skills[0].level = Level::new(i64::from(skills[0].level.get() % 10 + 1)).unwrap();
    t.theirs
        .write_user(&UserWrite {
            user_id: holder.clone(),
            version: read.version,
            skills: Some(skills.clone()),
            proficiencies: None,
        })
        .await
        .unwrap();

    let report =
        engine::retire::retire(&api, &plan, RetireOptions::default(), None, &|_, _, _| {}).await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.conflicts, 1, "{report:?}");
    let now = t.ours.user(&holder).await.unwrap();
    assert_eq!(
        now.skills, skills,
        "the other integration's change survives"
    );
    assert!(
        now.proficiencies
            .unwrap()
            .iter()
            .all(|a| a.definition != t.proficiency)
    );
    assert!(!exists(t.ours.as_ref(), &t.proficiency).await);
}

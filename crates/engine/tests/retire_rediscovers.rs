//! Retiring while someone else keeps writing. Another integration (a second real client on
//! the same simulated tenant) writes at a precise moment: right before our delete, or between
//! our read and our bulk write. Everything goes over real HTTP; the wrapper only decides when
//! the other writer acts, so no test sleeps stand in for a race. The gateway's faults after
//! commit (every write lands, then its answer is a 502) show what a run journals and counts
//! when it never hears how its writes went.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use skillsync_core::hris::{Source, read_desired};
use skillsync_core::{
    Assignment, Definition, DefinitionId, Desired, Kind, Level, RetiredMode, UserAssignments,
    UserId, Version,
};
use skillsync_cxone::{
    Capabilities, DefinitionQuery, EntryOutcome, NewDefinition, Profile, Queue, Routed, Secret,
    Settings, TenantApi, UserQuery, UserWrite,
};
use skillsync_engine::JournalRun;
use skillsync_engine::retire::{RetireFailure, RetireOptions};
use skillsync_sim::{GenerateOptions, SimConfig, TenantDoc, TenantSource};

/// Our client, plus another integration that re-assigns the retired definition to one user
/// right before each of our first `interfere` deletes: added to the user's list, or, with
/// `only`, as the whole list.
struct Contested {
    ours: Arc<dyn TenantApi>,
    theirs: Arc<dyn TenantApi>,
    user: UserId,
    interfere: AtomicUsize,
    only: bool,
}

impl Contested {
    async fn reassign(&self, kind: Kind, id: &DefinitionId) {
        let user = self.theirs.user(&self.user).await.unwrap();
        let mut list = match kind {
            Kind::Skill => user.skills.clone(),
            Kind::Proficiency => user.proficiencies.clone().unwrap(),
        };
        if self.only {
            list.clear();
        }
        list.push(Assignment {
            definition: id.clone(),
            level: Level::new(4).unwrap(),
            active: true,
        });
        self.theirs
            .write_user(&UserWrite {
                user_id: self.user.clone(),
                version: user.version,
                skills: (kind == Kind::Skill).then(|| list.clone()),
                proficiencies: (kind == Kind::Proficiency).then_some(list),
                as_read: None,
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
    ) -> BoxStream<'_, skillsync_cxone::Result<Definition>> {
        self.ours.definitions(kind, query)
    }
    async fn create_definition(&self, new: &NewDefinition) -> skillsync_cxone::Result<Definition> {
        self.ours.create_definition(new).await
    }
    async fn update_definition(
        &self,
        definition: &Definition,
    ) -> skillsync_cxone::Result<Definition> {
        self.ours.update_definition(definition).await
    }
    async fn delete_definition(
        &self,
        kind: Kind,
        id: &DefinitionId,
    ) -> skillsync_cxone::Result<()> {
        let left = self.interfere.load(Ordering::SeqCst);
        if left > 0 {
            self.interfere.store(left - 1, Ordering::SeqCst);
            self.reassign(kind, id).await;
        }
        self.ours.delete_definition(kind, id).await
    }
    fn users(&self, query: UserQuery) -> BoxStream<'_, skillsync_cxone::Result<UserAssignments>> {
        self.ours.users(query)
    }
    async fn users_page(
        &self,
        page: usize,
    ) -> skillsync_cxone::Result<Vec<skillsync_core::UserAssignments>> {
        self.ours.users_page(page).await
    }
    async fn user(&self, id: &UserId) -> skillsync_cxone::Result<UserAssignments> {
        self.ours.user(id).await
    }
    async fn write_user(&self, write: &UserWrite) -> skillsync_cxone::Result<Version> {
        self.ours.write_user(write).await
    }
    async fn write_users(
        &self,
        writes: &[UserWrite],
    ) -> skillsync_cxone::Result<Vec<EntryOutcome>> {
        self.ours.write_users(writes).await
    }
    fn profiles(
        &self,
        filter: Option<(Kind, DefinitionId)>,
    ) -> BoxStream<'_, skillsync_cxone::Result<Profile>> {
        self.ours.profiles(filter)
    }
    async fn write_profile(&self, profile: &Profile) -> skillsync_cxone::Result<Version> {
        self.ours.write_profile(profile).await
    }
    fn strategies(
        &self,
        proficiency: Option<DefinitionId>,
    ) -> BoxStream<'_, skillsync_cxone::Result<skillsync_cxone::Strategy>> {
        self.ours.strategies(proficiency)
    }
    async fn write_strategy(
        &self,
        strategy: &skillsync_cxone::Strategy,
    ) -> skillsync_cxone::Result<Version> {
        self.ours.write_strategy(strategy).await
    }
    async fn queues(&self) -> skillsync_cxone::Result<Vec<Queue>> {
        self.ours.queues().await
    }
    async fn test_interaction(&self, queue_id: &str) -> skillsync_cxone::Result<Routed> {
        self.ours.test_interaction(queue_id).await
    }
}

struct Tenant {
    desired: Desired,
    ours: Arc<dyn TenantApi>,
    theirs: Arc<dyn TenantApi>,
    /// The en-us definition retired.
    retired: DefinitionId,
    /// A user who does not hold it.
    bystander: UserId,
}

/// Retiring the first proficiency of a quiet tenant.
async fn tenant() -> Tenant {
    tenant_of(Kind::Proficiency, |_, _| {}, 0.0).await
}

/// A generated tenant, reshaped by `shape` (given the id of the definition to retire), whose
/// gateway lands every write and then answers 502 with probability `fault_after_commit`; the
/// catalog lists the first definition of `kind`.
async fn tenant_of(
    kind: Kind,
    shape: impl FnOnce(&mut TenantDoc, &str),
    fault_after_commit: f64,
) -> Tenant {
    let mut doc = skillsync_sim::generate(&GenerateOptions {
        agents: 120,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    let (name, definitions) = match kind {
        Kind::Skill => (skillsync_sim::skill_name(0), &doc.skills),
        Kind::Proficiency => (skillsync_sim::proficiency_name(0), &doc.proficiencies),
    };
    let retired = definitions.iter().find(|d| d.name == name).unwrap().clone();
    shape(&mut doc, &retired.id);
    let mut config = SimConfig::quiet(TenantSource::Doc(Box::new(doc.clone())));
    config.knobs.fault_after_commit_rate = fault_after_commit;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = skillsync_sim::Simulator::new(listener, config).unwrap();
    let base = simulator.endpoint().base_url.clone();
    tokio::spawn(simulator.serve(std::future::pending()));
    let client = || {
        let mut settings = Settings::new(
            &format!("{base}/api/v2"),
            &format!("{base}/api/v2/oauth/token"),
            skillsync_sim::DEMO_CLIENT_ID,
            Secret::new(skillsync_sim::DEMO_CLIENT_SECRET),
        );
        settings.requests_per_second = 1000.0;
        settings.burst = 100;
        skillsync_cxone::connect(&settings).unwrap()
    };
    let catalog = format!(
        "code,kind,locale,name,description,routing_profile_id\nACW,{},en-us,{name},,{}\n",
        kind.noun(),
        retired.routing_profile_id
    );
    let bystander = doc
        .users
        .iter()
        .find(|u| {
            u.skills
                .iter()
                .chain(&u.proficiencies)
                .all(|a| a.id != retired.id)
        })
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
        retired: DefinitionId::from(retired.id.as_str()),
        bystander: UserId::from(bystander.id.as_str()),
    }
}

fn contested(t: &Tenant, interfere: usize) -> Contested {
    Contested {
        ours: t.ours.clone(),
        theirs: t.theirs.clone(),
        user: t.bystander.clone(),
        interfere: AtomicUsize::new(interfere),
        only: false,
    }
}

async fn exists(api: &dyn TenantApi, kind: Kind, id: &DefinitionId) -> bool {
    api.definitions(kind, DefinitionQuery::default())
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
    let plan = skillsync_engine::retire::prepare(&api, &t.desired, &variants, RetiredMode::Hard)
        .await
        .unwrap();
    assert!(!plan.users().is_empty(), "some users hold it");
    let before = t.ours.user(&t.bystander).await.unwrap();

    let report = skillsync_engine::retire::retire(
        &api,
        &plan,
        RetireOptions::default(),
        None,
        &|_, _, _| {},
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.deletes_refused, 1, "{report:?}");
    assert_eq!(report.definitions_deleted, 1);
    assert_eq!(
        report.users_stripped,
        plan.users().len() + 1,
        "the re-assigned user too"
    );
    assert!(!exists(t.ours.as_ref(), Kind::Proficiency, &t.retired).await);
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
    let plan = skillsync_engine::retire::prepare(&api, &t.desired, &variants, RetiredMode::Hard)
        .await
        .unwrap();
    let report = skillsync_engine::retire::retire(
        &api,
        &plan,
        RetireOptions::default(),
        None,
        &|_, _, _| {},
    )
    .await;
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
    assert!(
        exists(t.ours.as_ref(), Kind::Proficiency, &t.retired).await,
        "not deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_changed_between_read_and_write_is_re_read_and_keeps_the_other_change() {
    let t = tenant().await;
    let api = contested(&t, 0);
    let variants: Vec<_> = t.desired.catalog.entries.values().collect();
    let plan = skillsync_engine::retire::prepare(&api, &t.desired, &variants, RetiredMode::Hard)
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
            as_read: None,
        })
        .await
        .unwrap();

    let report = skillsync_engine::retire::retire(
        &api,
        &plan,
        RetireOptions::default(),
        None,
        &|_, _, _| {},
    )
    .await;
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
            .all(|a| a.definition != t.retired)
    );
    assert!(!exists(t.ours.as_ref(), Kind::Proficiency, &t.retired).await);
}

/// Gives every holder of the retired skill another skill, so that stripping it empties no one.
fn nobody_holds_only(doc: &mut TenantDoc, retired: &str) {
    let other = doc
        .skills
        .iter()
        .find(|d| d.id != retired && d.locale == "en-us")
        .unwrap()
        .id
        .clone();
    for user in &mut doc.users {
        if user.skills.iter().all(|a| a.id == retired) && !user.skills.is_empty() {
            user.skills.push(skillsync_sim::Assignment {
                id: other.clone(),
                level: 3,
                active: true,
            });
        }
    }
}

/// A user found again after a refused delete is screened like the users `prepare` read: if
/// stripping would take their last skill, they are not written without `allow_empty_skills`,
/// and the delete stops on the users-failed path; with it, they are stripped and it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_found_again_holding_only_the_retired_skill_is_not_emptied_unless_allowed() {
    let t = tenant_of(Kind::Skill, nobody_holds_only, 0.0).await;
    // Right before our delete, another integration makes the retired skill the bystander's
    // only one.
    let api = Contested {
        only: true,
        ..contested(&t, 1)
    };
    let variants: Vec<_> = t.desired.catalog.entries.values().collect();
    let plan = skillsync_engine::retire::prepare(&api, &t.desired, &variants, RetiredMode::Hard)
        .await
        .unwrap();
    assert!(!plan.users().is_empty(), "some users hold it");
    skillsync_engine::retire::check(&plan, &t.desired, true, false)
        .expect("nobody read is emptied");

    let report = skillsync_engine::retire::retire(
        &api,
        &plan,
        RetireOptions::default(),
        None,
        &|_, _, _| {},
    )
    .await;
    assert_eq!(report.deletes_refused, 1, "{report:?}");
    assert_eq!(report.definitions_deleted, 0, "{report:?}");
    assert_eq!(
        report
            .users_failed
            .iter()
            .map(|(u, _)| u)
            .collect::<Vec<_>>(),
        [&t.bystander],
        "{report:?}"
    );
    let failure = report.failure.expect("the delete stops");
    assert!(
        matches!(failure, RetireFailure::UsersFailed { count: 1, .. }),
        "{failure:?}"
    );
    let message = failure.to_string();
    assert!(
        message.contains(t.bystander.as_str())
            && message.contains("holds no other skill")
            && message.contains("--allow-empty-skills")
            && message.contains("the definitions were kept"),
        "{message}"
    );
    let now = t.ours.user(&t.bystander).await.unwrap();
    assert_eq!(
        now.skills.iter().map(|a| &a.definition).collect::<Vec<_>>(),
        [&t.retired],
        "not written: still in the queues the retired skill routes"
    );
    assert!(exists(t.ours.as_ref(), Kind::Skill, &t.retired).await);

    // Allowed, the same user is stripped to nothing and the definition goes.
    let plan = skillsync_engine::retire::prepare(
        t.ours.as_ref(),
        &t.desired,
        &variants,
        RetiredMode::Hard,
    )
    .await
    .unwrap();
    let options = RetireOptions {
        allow_empty_skills: true,
        ..RetireOptions::default()
    };
    let report =
        skillsync_engine::retire::retire(t.ours.as_ref(), &plan, options, None, &|_, _, _| {})
            .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(t.ours.user(&t.bystander).await.unwrap().skills, Vec::new());
    assert!(!exists(t.ours.as_ref(), Kind::Skill, &t.retired).await);
}

/// Holders of the retired skill in the fault-after-commit tenant.
const LOST_ANSWERS: usize = 25;

/// Exactly `LOST_ANSWERS` users hold the retired skill (each with another one) and exactly one
/// routing profile lists it.
fn twenty_five_holders_and_one_profile(doc: &mut TenantDoc, retired: &str) {
    let other = doc
        .skills
        .iter()
        .find(|d| d.id != retired && d.locale == "en-us")
        .unwrap()
        .id
        .clone();
    for (i, user) in doc.users.iter_mut().enumerate() {
        user.skills.retain(|a| a.id != retired && a.id != other);
        user.skills.push(skillsync_sim::Assignment {
            id: other.clone(),
            level: 3,
            active: true,
        });
        if i < LOST_ANSWERS {
            user.skills.push(skillsync_sim::Assignment {
                id: retired.to_string(),
                level: 5,
                active: true,
            });
        }
    }
    for (i, profile) in doc.profiles.iter_mut().enumerate() {
        profile.skills.retain(|id| id != retired);
        if i == 0 {
            profile.skills.push(retired.to_string());
        }
    }
}

/// A journaled retirement of every catalog variant of `t`, as `skillsync retire` runs it.
struct Journaled {
    plan: skillsync_engine::retire::RetirePlan,
    report: skillsync_engine::retire::RetireReport,
    journal: Box<dyn skillsync_store::Journal>,
    run: skillsync_store::RunId,
}

async fn retire_journaled(t: &Tenant, mode: RetiredMode) -> Journaled {
    let journal = skillsync_store::open("sqlite::memory:").await.unwrap();
    let run = journal_run(journal.as_ref()).await;
    let variants: Vec<_> = t.desired.catalog.entries.values().collect();
    let plan = skillsync_engine::retire::prepare(t.ours.as_ref(), &t.desired, &variants, mode)
        .await
        .unwrap();
    let report = skillsync_engine::retire::retire(
        t.ours.as_ref(),
        &plan,
        RetireOptions::default(),
        Some(JournalRun {
            journal: journal.as_ref(),
            run,
        }),
        &|_, _, _| {},
    )
    .await;
    Journaled {
        plan,
        report,
        journal,
        run,
    }
}

async fn journal_run(journal: &dyn skillsync_store::Journal) -> skillsync_store::RunId {
    journal
        .start_run(&skillsync_store::NewRun {
            command: "retire".into(),
            config_hash: "test".into(),
            started_at: jiff::Timestamp::now(),
            dialect: "routing".into(),
        })
        .await
        .unwrap()
}

/// Every write lands and is answered 502; the client's retry meets 412 (the version moved, by
/// our own write). The re-read shows each change in place: each is journaled as applied, with
/// a settle time for the users' skills, and counted as done by this run, not found done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_writes_whose_answers_were_lost_are_journaled_applied_and_counted_stripped() {
    let t = tenant_of(Kind::Skill, twenty_five_holders_and_one_profile, 1.0).await;
    let Journaled {
        plan,
        report,
        journal,
        run,
    } = retire_journaled(&t, RetiredMode::Hard).await;
    assert_eq!(plan.users().len(), LOST_ANSWERS);
    assert_eq!(plan.profiles().len(), 1);
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.users_stripped, LOST_ANSWERS, "{report:?}");
    assert_eq!(report.users_already_clear, 0, "{report:?}");
    assert_eq!(report.profiles_stripped, 1, "{report:?}");
    assert_eq!(report.definitions_deleted, 1, "{report:?}");
    assert!(!exists(t.ours.as_ref(), Kind::Skill, &t.retired).await);

    let writes = journal.writes(run).await.unwrap();
    let applied = |target: skillsync_store::WriteTarget| {
        writes
            .iter()
            .filter(|w| w.target == target && w.status == skillsync_store::WriteStatus::Applied)
            .collect::<Vec<_>>()
    };
    let users = applied(skillsync_store::WriteTarget::UserSkills);
    let subjects: std::collections::BTreeSet<&str> =
        users.iter().map(|w| w.subject.as_str()).collect();
    assert_eq!(users.len(), LOST_ANSWERS, "{writes:#?}");
    assert_eq!(
        subjects,
        plan.users()
            .iter()
            .map(|u| u.user_id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert!(users.iter().all(|w| w.settles_at.is_some()), "{users:#?}");
    assert_eq!(
        applied(skillsync_store::WriteTarget::Profile).len(),
        1,
        "{writes:#?}"
    );
    assert_eq!(
        applied(skillsync_store::WriteTarget::Definition).len(),
        1,
        "{writes:#?}"
    );
    assert!(
        journal.settles_at(run).await.unwrap().is_some(),
        "25 users lost a routable skill: the run settles"
    );
}

/// The same for `--soft`: the deactivation lands, its answer is lost, the retry meets 412; the
/// conflict is journaled, then the write as applied, and the definition counts as deactivated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_deactivation_whose_answer_was_lost_is_journaled_applied_and_counted() {
    let t = tenant_of(Kind::Proficiency, |_, _| {}, 1.0).await;
    let Journaled {
        plan,
        report,
        journal,
        run,
    } = retire_journaled(&t, RetiredMode::Soft).await;
    assert_eq!(plan.targets.len(), 1);
    assert!(plan.targets[0].definition.active, "active when read");
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.definitions_deactivated, 1, "{report:?}");
    let now = t
        .ours
        .definitions(Kind::Proficiency, DefinitionQuery::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.id == t.retired)
        .unwrap();
    assert!(!now.active);

    let writes = journal.writes(run).await.unwrap();
    let statuses: Vec<skillsync_store::WriteStatus> = writes.iter().map(|w| w.status).collect();
    assert_eq!(
        statuses,
        [
            skillsync_store::WriteStatus::Conflict,
            skillsync_store::WriteStatus::Applied
        ],
        "{writes:#?}"
    );
    assert!(
        writes
            .iter()
            .all(|w| w.target == skillsync_store::WriteTarget::Definition
                && w.subject == t.retired.as_str()),
        "{writes:#?}"
    );
    assert!(
        matches!(&writes[1].after, skillsync_store::Snapshot::Definition(d) if !d.active),
        "{writes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_retiring_a_skill_settles_like_any_routing_change_and_a_proficiency_does_not() {
    for (kind, routes) in [(Kind::Skill, true), (Kind::Proficiency, false)] {
        let t = tenant_of(kind, |_, _| {}, 0.0).await;
        let Journaled {
            report,
            journal,
            run,
            ..
        } = retire_journaled(&t, RetiredMode::Soft).await;
        assert_eq!(report.definitions_deactivated, 1, "{kind}: {report:?}");
        // Routing drops an inactive skill only once its cache catches up; verify and history
        // need to know when.
        assert_eq!(
            journal.settles_at(run).await.unwrap().is_some(),
            routes,
            "{kind}: {:#?}",
            journal.writes(run).await.unwrap()
        );
    }
}

/// A tenant whose retired proficiency two routing strategies name (one with another
/// proficiency beside it); a third strategy names only that other one.
async fn tenant_with_strategies() -> (Tenant, String) {
    let other = std::sync::Mutex::new(String::new());
    let t = tenant_of(
        Kind::Proficiency,
        |doc, retired| {
            let kept = doc
                .proficiencies
                .iter()
                .find(|d| d.id != retired && !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
                .unwrap()
                .id
                .clone();
            let strategy = |n: u8, ids: Vec<String>| skillsync_sim::Strategy {
                id: format!("strategy-{n}"),
                name: format!("Strategy_{n}"),
                proficiencies: ids,
                version: 1,
            };
            doc.strategies = vec![
                strategy(1, vec![kept.clone(), retired.to_string()]),
                strategy(2, vec![retired.to_string()]),
                strategy(3, vec![kept.clone()]),
            ];
            *other.lock().unwrap() = kept;
        },
        0.0,
    )
    .await;
    let other = other.into_inner().unwrap();
    (t, other)
}

async fn strategy(api: &dyn TenantApi, id: &str) -> skillsync_cxone::Strategy {
    api.strategies(None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap()
}

/// Someone changes a strategy between the read and our write: the `If-Match` write is refused,
/// re-read, and only the retired id goes, their change kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_changed_after_the_read_is_re_read_and_stripped_keeping_the_change() {
    let (t, other) = tenant_with_strategies().await;
    let variants: Vec<_> = t.desired.catalog.entries.values().collect();
    let plan = skillsync_engine::retire::prepare(
        t.ours.as_ref(),
        &t.desired,
        &variants,
        RetiredMode::Hard,
    )
    .await
    .unwrap();
    assert_eq!(plan.strategies().len(), 2, "{:?}", plan.strategies());

    // Another writer reorders strategy-2's list and adds the other proficiency.
    let mut theirs = strategy(t.theirs.as_ref(), "strategy-2").await;
    theirs.proficiencies = vec![DefinitionId::from(other.as_str()), t.retired.clone()];
    t.theirs.write_strategy(&theirs).await.unwrap();

    let report = skillsync_engine::retire::retire(
        t.ours.as_ref(),
        &plan,
        RetireOptions::default(),
        None,
        &|_, _, _| {},
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.strategies_stripped, 2, "{report:?}");
    assert!(report.conflicts >= 1, "{report:?}");
    assert_eq!(report.definitions_deleted, 1);
    for id in ["strategy-1", "strategy-2"] {
        assert_eq!(
            strategy(t.ours.as_ref(), id).await.proficiencies,
            [DefinitionId::from(other.as_str())],
            "{id}: only the retired id went"
        );
    }
    assert_eq!(strategy(t.ours.as_ref(), "strategy-3").await.version.0, 1);
}

/// A strategy that starts naming the proficiency after the read makes the delete meet 409
/// REFERENCED: the references are found again (strategies included), stripped, and the
/// delete goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_that_names_it_after_the_read_is_found_again_when_the_delete_is_refused() {
    let (t, other) = tenant_with_strategies().await;
    let variants: Vec<_> = t.desired.catalog.entries.values().collect();
    let plan = skillsync_engine::retire::prepare(
        t.ours.as_ref(),
        &t.desired,
        &variants,
        RetiredMode::Hard,
    )
    .await
    .unwrap();
    let mut late = strategy(t.theirs.as_ref(), "strategy-3").await;
    late.proficiencies.push(t.retired.clone());
    t.theirs.write_strategy(&late).await.unwrap();

    let report = skillsync_engine::retire::retire(
        t.ours.as_ref(),
        &plan,
        RetireOptions::default(),
        None,
        &|_, _, _| {},
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.deletes_refused, 1, "{report:?}");
    assert_eq!(report.strategies_stripped, 3, "{report:?}");
    assert!(!exists(t.ours.as_ref(), Kind::Proficiency, &t.retired).await);
    assert_eq!(
        strategy(t.ours.as_ref(), "strategy-3").await.proficiencies,
        [DefinitionId::from(other.as_str())]
    );
}

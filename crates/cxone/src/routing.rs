//! The routing dialect (SPEC 1.2–1.4): definitions, `/routing/users` with bulk and
//! proficiencies, profiles, queues and test interactions.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::json;
use skillsync_core::{Definition, DefinitionId, Kind, UserAssignments, UserId, Version};

use crate::api::{
    Capabilities, DefinitionQuery, EntryOutcome, NewDefinition, Profile, Queue, Routed, Strategy,
    TenantApi, UserQuery, UserWrite,
};
use crate::error::{AnswerProblem, Error, Result};
use crate::http::{Call, Http};
use crate::metrics::CounterSnapshot;
use crate::settings::Dialect;
use crate::wire::{
    BulkAnswer, Page, RoutingUser, WireAssignmentRef, WireDefinition, WireProfile, WireQueue,
    WireRouted, WireStrategy,
};

/// A user's id alone, borrowed from the page where it can be.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIdOnly<'a> {
    #[serde(borrow)]
    user_id: std::borrow::Cow<'a, str>,
}

/// Largest page the tenant serves; fewer pages means fewer calls. Also the page size of
/// [`TenantApi::users_page`], so a user's place in a full listing tells its page.
pub const PAGE_SIZE: usize = 500;
/// Most entries in one bulk request.
pub const MAX_BULK_ENTRIES: usize = 100;
// `write_users` names the limit in a static message.
const _: () = assert!(MAX_BULK_ENTRIES == 100);

/// What the routing dialect does: bulk writes, proficiencies, and an active flag on every
/// assignment (SPEC 1.3).
pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    dialect: Dialect::Routing,
    max_bulk_entries: Some(MAX_BULK_ENTRIES),
    proficiencies: true,
    inactive_assignments: true,
    strategies: true,
    profiles: true,
    locale_in_name: false,
    per_definition_writes: None,
    deletes_definitions: true,
    max_create_batch: None,
};

/// The routing dialect.
#[derive(Debug, Clone)]
pub struct RoutingApi {
    pub(crate) http: Arc<Http>,
}

pub(crate) fn collection(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Skill => ("/routing/skills", "/routing/skills/{id}"),
        Kind::Proficiency => ("/routing/proficiencies", "/routing/proficiencies/{id}"),
    }
}

/// One page of a paged list (1-based, [`PAGE_SIZE`] asked for), with the list's total.
pub(crate) async fn fetch_page<W, T>(
    http: &Http,
    route: &'static str,
    filters: &[(&'static str, String)],
    page: usize,
    convert: impl Fn(W) -> std::result::Result<T, AnswerProblem> + Send + 'static,
) -> Result<(Vec<Result<T>>, usize)>
where
    W: DeserializeOwned + 'static,
    T: Send + 'static,
{
    let mut call = Call::new(Method::GET, route, route.to_string());
    for (name, value) in filters {
        call = call.query(name, value.clone());
    }
    let call = call.query("page", page).query("pageSize", PAGE_SIZE);
    let reply = http.send(&call).await?;
    // A full page of users takes milliseconds to decode: on a blocking thread, the pages
    // that arrive together decode on every core while the runtime keeps the requests going.
    let decode = move || {
        let body: Page<W> = reply.json(&call)?;
        let items: Vec<Result<T>> = body
            .entities
            .into_iter()
            .map(|w| convert(w).map_err(|problem| call.protocol_error(problem)))
            .collect();
        Ok((items, body.total))
    };
    match tokio::task::spawn_blocking(decode).await {
        Ok(decoded) => decoded,
        // A decode that panicked panics here; only a runtime shutting down cancels one, and
        // then nobody is left waiting for it.
        Err(join) => std::panic::resume_unwind(
            join.try_into_panic()
                .unwrap_or_else(|_| Box::new("page decode cancelled at shutdown")),
        ),
    }
}

/// Pages fetched at once after the first: the first answer's `total` says how many there are,
/// so the rest need not wait for each other (the throttle still paces them).
const PAGES_IN_PARALLEL: usize = 8;

/// Streams every item of a paged list, in order. The first page tells how many pages there
/// are; the rest are fetched concurrently, which lets a read use the tenant's burst instead of
/// one round trip per page.
pub(crate) fn paged<'a, W, T>(
    http: &'a Http,
    route: &'static str,
    filters: Vec<(&'static str, String)>,
    convert: impl Fn(W) -> std::result::Result<T, AnswerProblem> + Send + Sync + Clone + 'static,
) -> BoxStream<'a, Result<T>>
where
    W: DeserializeOwned + Send + 'static,
    T: Send + 'static,
{
    let filters = Arc::new(filters);
    let fetch = move |page: usize| {
        let filters = filters.clone();
        let convert = convert.clone();
        async move { fetch_page(http, route, &filters, page, convert).await }
    };
    let rest = fetch.clone();
    stream::once(fetch(1))
        .map_ok(move |(first, total)| {
            // The tenant may serve smaller pages than asked for; its first page's size is the
            // size of every page but the last.
            let served = first.len();
            let pages = if served == 0 {
                1
            } else {
                total.div_ceil(served)
            };
            let rest = rest.clone();
            let later = stream::iter(2..=pages)
                .map(rest)
                .buffered(PAGES_IN_PARALLEL)
                .map_ok(|(items, _)| items);
            stream::once(async move { Ok(first) }).chain(later)
        })
        .try_flatten()
        .map_ok(stream::iter)
        .try_flatten()
        .boxed()
}

impl RoutingApi {
    fn definition_body(new_or_existing: (&str, &str, bool, &str, &str)) -> serde_json::Value {
        let (name, locale, active, description, profile) = new_or_existing;
        json!({
            "name": name,
            "locale": locale,
            "active": active,
            "description": description,
            "routingProfileId": profile,
        })
    }
}

#[async_trait]
impl TenantApi for RoutingApi {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn counters(&self) -> CounterSnapshot {
        self.http.counters.snapshot()
    }

    async fn token_ready(&self) -> Result<()> {
        self.http.token_ready().await
    }

    fn definitions(&self, kind: Kind, query: DefinitionQuery) -> BoxStream<'_, Result<Definition>> {
        let mut filters = Vec::new();
        if let Some(name) = query.name {
            filters.push(("name", name));
        }
        if let Some(locale) = query.locale {
            filters.push(("locale", locale.to_string()));
        }
        if let Some(active) = query.active {
            filters.push(("active", active.to_string()));
        }
        let (route, _) = collection(kind);
        paged(&self.http, route, filters, move |w: WireDefinition| {
            w.into_domain(kind)
        })
    }

    async fn create_definition(&self, new: &NewDefinition) -> Result<Definition> {
        let (route, _) = collection(new.kind);
        let body = Self::definition_body((
            &new.name,
            new.locale.as_str(),
            true,
            &new.description,
            &new.routing_profile_id,
        ));
        let call = Call::new(Method::POST, route, route.to_string())
            .json(body)
            .no_blind_retry()
            .about(new.kind.noun(), &new.name);
        let reply = self.http.send(&call).await?;
        let wire: WireDefinition = reply.json(&call)?;
        wire.into_domain(new.kind)
            .map_err(|problem| call.protocol_error(problem))
    }

    async fn update_definition(&self, d: &Definition) -> Result<Definition> {
        let (route, item) = collection(d.kind);
        let body = Self::definition_body((
            &d.name,
            d.locale.as_str(),
            d.active,
            &d.description,
            &d.routing_profile_id,
        ));
        let call = Call::new(Method::PUT, item, format!("{route}/{}", d.id))
            .json(body)
            .if_match(d.version)
            .about(d.kind.noun(), &d.id);
        let reply = self.http.send(&call).await?;
        let wire: WireDefinition = reply.json(&call)?;
        wire.into_domain(d.kind)
            .map_err(|problem| call.protocol_error(problem))
    }

    async fn delete_definition(&self, kind: Kind, id: &DefinitionId) -> Result<()> {
        let (route, item) = collection(kind);
        let call = Call::new(Method::DELETE, item, format!("{route}/{id}")).about(kind.noun(), id);
        match self.http.send(&call).await {
            Ok(_) => Ok(()),
            // A retried DELETE whose first attempt succeeded finds nothing: that is success.
            Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn users(&self, query: UserQuery) -> BoxStream<'_, Result<UserAssignments>> {
        let mut filters = Vec::new();
        if let Some(id) = query.skill_id {
            filters.push(("skillId", id.0));
        }
        if let Some(id) = query.proficiency_id {
            filters.push(("proficiencyId", id.0));
        }
        let Some(only) = query.only else {
            return paged(
                &self.http,
                "/routing/users",
                filters,
                RoutingUser::into_domain,
            );
        };
        // Only the wanted users are decoded whole; of the others only the id is read, which
        // allocates nothing.
        let wanted = move |raw: Box<serde_json::value::RawValue>| {
            let id: UserIdOnly = serde_json::from_str(raw.get()).map_err(AnswerProblem::Json)?;
            if !only.contains(id.user_id.as_ref()) {
                return Ok(None);
            }
            let user: RoutingUser = serde_json::from_str(raw.get()).map_err(AnswerProblem::Json)?;
            user.into_domain().map(Some)
        };
        paged(&self.http, "/routing/users", filters, wanted)
            .try_filter_map(|user| std::future::ready(Ok(user)))
            .boxed()
    }

    fn user_profiles(&self) -> BoxStream<'_, Result<crate::api::UserProfile>> {
        paged(
            &self.http,
            "/users",
            Vec::new(),
            crate::wire::DirectoryUser::into_profile,
        )
    }

    async fn users_page(&self, page: usize) -> Result<Vec<UserAssignments>> {
        let (users, _) = fetch_page(
            &self.http,
            "/routing/users",
            &[],
            page,
            RoutingUser::into_domain,
        )
        .await?;
        users.into_iter().collect()
    }

    async fn user(&self, id: &UserId) -> Result<UserAssignments> {
        let call = Call::new(
            Method::GET,
            "/routing/users/{userId}",
            format!("/routing/users/{id}"),
        )
        .about("user", id);
        let reply = self.http.send(&call).await?;
        let user: RoutingUser = reply.json(&call)?;
        let mut user = user
            .into_domain()
            .map_err(|problem| call.protocol_error(problem))?;
        if let Some(version) = reply.etag {
            user.version = version;
        }
        Ok(user)
    }

    async fn write_user(&self, write: &UserWrite) -> Result<Version> {
        let call = Call::new(
            Method::PUT,
            "/routing/users/{userId}",
            format!("/routing/users/{}", write.user_id),
        )
        .json(UserBody::of(write, false))
        .if_match(write.version)
        .about("user", &write.user_id);
        let reply = self.http.send(&call).await?;
        let user: RoutingUser = reply.json(&call)?;
        Ok(Version(user.version))
    }

    async fn write_users(&self, writes: &[UserWrite]) -> Result<Vec<EntryOutcome>> {
        if writes.len() > MAX_BULK_ENTRIES {
            return Err(Error::Unsupported {
                dialect: "routing",
                operation: "bulk writes of more than 100 users",
            });
        }
        let call = Call::new(
            Method::POST,
            "/routing/users/bulk",
            "/routing/users/bulk".to_string(),
        )
        .json(BulkBody {
            users: writes.iter().map(|w| UserBody::of(w, true)).collect(),
        })
        .about("bulk of users", writes.len());
        let reply = self.http.send(&call).await?;
        let answer: BulkAnswer = reply.json(&call)?;
        if answer.results.len() != writes.len() {
            return Err(call.protocol_error(AnswerProblem::BulkResults {
                results: answer.results.len(),
                entries: writes.len(),
            }));
        }
        let outcomes = answer
            .results
            .into_iter()
            .zip(writes)
            .map(|(result, write)| {
                debug_assert!(
                    result
                        .user_id
                        .as_str()
                        .is_none_or(|id| id == write.user_id.as_str())
                );
                match (result.status, result.version) {
                    (200, Some(version)) => EntryOutcome::Applied(Version(version)),
                    (412, _) => {
                        self.http.counters.conflict();
                        EntryOutcome::Conflict
                    }
                    (404, _) => EntryOutcome::NotFound,
                    (status, _) => EntryOutcome::Rejected(format!(
                        "{status}: {}",
                        result.error.unwrap_or_default()
                    )),
                }
            })
            .collect();
        Ok(outcomes)
    }

    fn profiles(&self, filter: Option<(Kind, DefinitionId)>) -> BoxStream<'_, Result<Profile>> {
        let filters = match filter {
            Some((Kind::Skill, id)) => vec![("skillId", id.0)],
            Some((Kind::Proficiency, id)) => vec![("proficiencyId", id.0)],
            None => Vec::new(),
        };
        paged(
            &self.http,
            "/routing/profiles",
            filters,
            |w: WireProfile| Ok(Profile::from(w)),
        )
    }

    async fn write_profile(&self, profile: &Profile) -> Result<Version> {
        let call = Call::new(
            Method::PUT,
            "/routing/profiles/{id}",
            format!("/routing/profiles/{}", profile.id),
        )
        .json(json!({ "skills": profile.skills, "proficiencies": profile.proficiencies }))
        .if_match(profile.version)
        .about("routing profile", &profile.id);
        let reply = self.http.send(&call).await?;
        let wire: WireProfile = reply.json(&call)?;
        Ok(Version(wire.version))
    }

    fn strategies(&self, proficiency: Option<DefinitionId>) -> BoxStream<'_, Result<Strategy>> {
        let filters = match proficiency {
            Some(id) => vec![("proficiencyId", id.0)],
            None => Vec::new(),
        };
        paged(
            &self.http,
            "/routing/strategies",
            filters,
            |w: WireStrategy| Ok(Strategy::from(w)),
        )
    }

    async fn write_strategy(&self, strategy: &Strategy) -> Result<Version> {
        let call = Call::new(
            Method::PUT,
            "/routing/strategies/{id}",
            format!("/routing/strategies/{}", strategy.id),
        )
        .json(json!({ "proficiencies": strategy.proficiencies }))
        .if_match(strategy.version)
        .about("routing strategy", &strategy.id);
        let reply = self.http.send(&call).await?;
        let wire: WireStrategy = reply.json(&call)?;
        Ok(Version(wire.version))
    }

    async fn queues(&self) -> Result<Vec<Queue>> {
        paged(&self.http, "/routing/queues", Vec::new(), |w: WireQueue| {
            Ok(Queue::from(w))
        })
        .try_collect()
        .await
    }

    async fn test_interaction(&self, queue_id: &str) -> Result<Routed> {
        // Each test interaction is a new event, so a retry after an unknown outcome is harmless.
        let call = Call::new(
            Method::POST,
            "/interactions/test",
            "/interactions/test".to_string(),
        )
        .json(json!({ "queueId": queue_id }))
        .about("queue", queue_id);
        let reply = self.http.send(&call).await?;
        let wire: WireRouted = reply.json(&call)?;
        Ok(Routed::from(wire))
    }
}

/// The body of a bulk write, serialized straight from the writes (30,000 users' lists at
/// 100,000 agents: no tree of JSON values is built first).
#[derive(serde::Serialize)]
struct BulkBody<'a> {
    users: Vec<UserBody<'a>>,
}

/// The body of a routing-dialect user write: only the lists that change are sent, so that
/// everything else stays exactly as it is (absent lists are left alone by the tenant).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct UserBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skills: Option<WireList<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proficiencies: Option<WireList<'a>>,
}

impl<'a> UserBody<'a> {
    fn of(write: &'a UserWrite, with_identity: bool) -> UserBody<'a> {
        UserBody {
            user_id: with_identity.then_some(&write.user_id),
            version: with_identity.then_some(write.version),
            skills: write.skills.as_deref().map(WireList),
            proficiencies: write.proficiencies.as_deref().map(WireList),
        }
    }
}

/// A list of assignments as the routing dialect writes them: `{"id", "level", "active"}`.
struct WireList<'a>(&'a [skillsync_core::Assignment]);

impl serde::Serialize for WireList<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(WireAssignmentRef::of))
    }
}

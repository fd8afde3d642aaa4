//! The users dialect (SPEC 1.5): `/users/{id}` with `skills.proficiencies`, per-user merge
//! updates only, and 409 for a stale version. Definitions, profiles and queues are the same
//! tenant's, served by the routing endpoints.

use async_trait::async_trait;
use futures::stream::BoxStream;
use reqwest::Method;
use serde_json::json;
use skillsync_core::{Definition, DefinitionId, Kind, UserAssignments, UserId, Version};

use crate::api::{
    Capabilities, DefinitionQuery, EntryOutcome, NewDefinition, Profile, Queue, Routed, Strategy,
    TenantApi, UserQuery, UserWrite,
};
use crate::error::{Error, Result};
use crate::http::Call;
use crate::metrics::CounterSnapshot;
use crate::routing::{RoutingApi, paged};
use crate::settings::Dialect;
use crate::wire::{DialectProficiency, DialectUser};

/// What the users dialect does (SPEC 1.5): one merge update per user, and a skills list of
/// ids and levels only: no proficiencies, and no active flag (an inactive assignment would be
/// written as active).
pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    dialect: Dialect::Users,
    max_bulk_entries: None,
    proficiencies: false,
    inactive_assignments: false,
    // SPEC 1.5 has no strategies: they are a routing-dialect resource.
    strategies: false,
    profiles: true,
    locale_in_name: false,
    per_definition_writes: None,
    deletes_definitions: true,
    max_create_batch: None,
};

/// The users dialect.
#[derive(Debug, Clone)]
pub struct UsersApi {
    pub(crate) routing: RoutingApi,
}

#[async_trait]
impl TenantApi for UsersApi {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn counters(&self) -> CounterSnapshot {
        self.routing.counters()
    }

    async fn token_ready(&self) -> Result<()> {
        self.routing.token_ready().await
    }

    fn definitions(&self, kind: Kind, query: DefinitionQuery) -> BoxStream<'_, Result<Definition>> {
        self.routing.definitions(kind, query)
    }

    async fn create_definition(&self, new: &NewDefinition) -> Result<Definition> {
        self.routing.create_definition(new).await
    }

    async fn update_definition(&self, definition: &Definition) -> Result<Definition> {
        self.routing.update_definition(definition).await
    }

    async fn delete_definition(&self, kind: Kind, id: &DefinitionId) -> Result<()> {
        self.routing.delete_definition(kind, id).await
    }

    fn users(&self, query: UserQuery) -> BoxStream<'_, Result<UserAssignments>> {
        if query.skill_id.is_some() || query.proficiency_id.is_some() {
            // This dialect cannot filter by assignment; the routing endpoint can.
            return self.routing.users(query);
        }
        paged(
            &self.routing.http,
            "/users",
            Vec::new(),
            DialectUser::into_domain,
        )
    }

    fn user_profiles(&self) -> BoxStream<'_, Result<crate::api::UserProfile>> {
        self.routing.user_profiles()
    }

    async fn users_page(&self, page: usize) -> Result<Vec<UserAssignments>> {
        let (users, _) = crate::routing::fetch_page(
            &self.routing.http,
            "/users",
            &[],
            page,
            DialectUser::into_domain,
        )
        .await?;
        users.into_iter().collect()
    }

    async fn user(&self, id: &UserId) -> Result<UserAssignments> {
        let call =
            Call::new(Method::GET, "/users/{userId}", format!("/users/{id}")).about("user", id);
        let reply = self.routing.http.send(&call).await?;
        let user: DialectUser = reply.json(&call)?;
        let mut user = user
            .into_domain()
            .map_err(|problem| call.protocol_error(problem))?;
        if let Some(version) = reply.etag {
            user.version = version;
        }
        Ok(user)
    }

    async fn write_user(&self, write: &UserWrite) -> Result<Version> {
        if write.proficiencies.is_some() {
            return Err(Error::Unsupported {
                dialect: "users",
                operation: "proficiency assignments",
            });
        }
        let Some(skills) = &write.skills else {
            return Ok(write.version);
        };
        let list: Vec<DialectProficiency> = skills
            .iter()
            .map(|a| DialectProficiency {
                skill: a.definition.0.clone(),
                level: a.level.get(),
            })
            .collect();
        let call = Call::new(
            Method::PUT,
            "/users/{userId}",
            format!("/users/{}", write.user_id),
        )
        .json(json!({ "skills": { "proficiencies": list } }))
        .if_match(write.version)
        .about("user", &write.user_id);
        let reply = self.routing.http.send(&call).await?;
        let user: DialectUser = reply.json(&call)?;
        Ok(Version(user.version))
    }

    async fn write_users(&self, _writes: &[UserWrite]) -> Result<Vec<EntryOutcome>> {
        Err(Error::Unsupported {
            dialect: "users",
            operation: "bulk writes",
        })
    }

    fn profiles(&self, filter: Option<(Kind, DefinitionId)>) -> BoxStream<'_, Result<Profile>> {
        self.routing.profiles(filter)
    }

    async fn write_profile(&self, profile: &Profile) -> Result<Version> {
        self.routing.write_profile(profile).await
    }

    /// The users dialect has no routing strategies (SPEC 1.5).
    fn strategies(&self, _proficiency: Option<DefinitionId>) -> BoxStream<'_, Result<Strategy>> {
        Box::pin(futures::stream::once(async {
            Err(Error::Unsupported {
                dialect: "users",
                operation: "listing routing strategies",
            })
        }))
    }

    async fn write_strategy(&self, _strategy: &Strategy) -> Result<Version> {
        Err(Error::Unsupported {
            dialect: "users",
            operation: "writing routing strategies",
        })
    }

    async fn queues(&self) -> Result<Vec<Queue>> {
        self.routing.queues().await
    }

    async fn test_interaction(&self, queue_id: &str) -> Result<Routed> {
        self.routing.test_interaction(queue_id).await
    }
}

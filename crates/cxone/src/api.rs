//! The operations the engine needs, behind one trait with one implementation per dialect.

use async_trait::async_trait;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use skillsync_core::{
    Assignment, Definition, DefinitionId, Kind, Locale, UserAssignments, UserId, Version,
};

pub use skillsync_core::AssignmentOp;

use crate::error::{Error, Result};
use crate::metrics::CounterSnapshot;
use crate::settings::Dialect;

/// What a dialect can do, so the engine can choose its strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Which dialect.
    pub dialect: Dialect,
    /// Most entries one bulk write may carry; `None` when there is no bulk endpoint.
    pub max_bulk_entries: Option<usize>,
    /// Whether proficiency assignments are visible and writable.
    pub proficiencies: bool,
    /// Whether an assignment's active flag is written, so one can be kept but inactive.
    pub inactive_assignments: bool,
    /// Whether the dialect reads and writes routing strategies (`/routing/strategies`), the
    /// third kind of reference that blocks a proficiency's delete. The users dialect has none.
    pub strategies: bool,
    /// Whether definitions are scoped to routing profiles (`routingProfileId`, checked against
    /// `/routing/profiles`). The CXone dialect has no such thing.
    pub profiles: bool,
    /// Whether a definition has no locale field and a locale variant is a definition of its
    /// own, told apart by its name alone (the CXone dialect): definitions are matched by name.
    pub locale_in_name: bool,
    /// Most agents one per-definition assignment write carries, for a dialect that writes
    /// assignments per definition ([`TenantApi::write_definition`]) instead of per user;
    /// `None` for the dialects that write a user's whole list.
    pub per_definition_writes: Option<usize>,
    /// Whether `delete_definition` exists (the CXone dialect retires skills by deactivating).
    pub deletes_definitions: bool,
    /// Most definitions one [`TenantApi::create_definitions`] call creates; `None` when the
    /// dialect creates one at a time.
    pub max_create_batch: Option<usize>,
}

impl Capabilities {
    /// What the dialect can carry in a user's assignments, for `core` to check the desired
    /// state against before anything is sent.
    pub fn carries(&self) -> skillsync_core::DialectCarries {
        skillsync_core::DialectCarries {
            dialect: self.dialect.name(),
            proficiencies: self.proficiencies,
            inactive_assignments: self.inactive_assignments,
        }
    }
}

impl Dialect {
    /// What this dialect can do, as its client declares it: known from the configuration
    /// alone, before any client is set up or any request is made.
    pub fn capabilities(self) -> Capabilities {
        match self {
            Dialect::Routing => crate::routing::CAPABILITIES,
            Dialect::Users => crate::users::CAPABILITIES,
            Dialect::Cxone => crate::admin::CAPABILITIES,
        }
    }
}

/// Filters for listing definitions.
#[derive(Debug, Clone, Default)]
pub struct DefinitionQuery {
    /// Exact name.
    pub name: Option<String>,
    /// Exact locale.
    pub locale: Option<Locale>,
    /// Active flag.
    pub active: Option<bool>,
}

/// A definition to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDefinition {
    /// Skill or proficiency.
    pub kind: Kind,
    /// Name.
    pub name: String,
    /// Locale.
    pub locale: Locale,
    /// Description.
    pub description: String,
    /// The routing profile it is scoped to (required by the tenant).
    pub routing_profile_id: String,
}

/// The outcome of ensuring a definition exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    /// The definition (existing or new).
    pub definition: Definition,
    /// True when this call created it.
    pub created: bool,
    /// Other definitions with the same name and locale (made by someone's earlier blind
    /// retries); worth reporting, never silently used.
    pub duplicates: Vec<DefinitionId>,
}

/// Filters for listing users.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Only users holding this skill.
    pub skill_id: Option<DefinitionId>,
    /// Only users holding this proficiency.
    pub proficiency_id: Option<DefinitionId>,
    /// Only these definitions' assignments are wanted: a dialect that reads assignments per
    /// definition reads just these (the others are left out of the lists it returns, which is
    /// safe only where writes never replace a whole list). `None` reads them all.
    pub definitions: Option<Vec<DefinitionId>>,
    /// With `definitions`: only users holding one of them are wanted, so a dialect that reads
    /// per definition need not list every user (one who holds none is left out, not absent
    /// from the tenant). A dialect that lists users whole ignores it.
    pub holders_only: bool,
    /// Only these users are wanted: a dialect may leave the others out, undecoded (the
    /// read-back wants the users written, from pages of every user). `None` wants them all.
    pub only: Option<std::sync::Arc<foldhash::HashSet<UserId>>>,
}

/// A user's directory entry (`GET /users`): who the user is, not what they hold. `export`
/// derives employee ids from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// The user.
    pub user_id: UserId,
    /// E-mail address (empty when the tenant has none).
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
}

/// A merge write of one user: the lists present replace the user's lists, carrying the version
/// they were computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWrite {
    /// The user.
    pub user_id: UserId,
    /// The version the new lists were merged against.
    pub version: Version,
    /// The complete new skill list, if skills change.
    pub skills: Option<Vec<Assignment>>,
    /// The complete new proficiency list, if proficiencies change.
    pub proficiencies: Option<Vec<Assignment>>,
    /// The user as read when the new lists were merged: a dialect that writes per assignment
    /// sends only the difference from it (a dialect that writes whole lists ignores it). `None`
    /// makes such a dialect read the user first.
    pub as_read: Option<UserAssignments>,
}

/// One agent of a per-definition write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAssignment {
    /// The agent.
    pub user_id: UserId,
    /// The HRIS level (the client maps it to the tenant's scale); ignored by `Unassign`.
    pub level: skillsync_core::Level,
    /// Active flag; ignored by `Unassign`.
    pub active: bool,
}

/// One per-definition assignment write: one operation on one definition for some agents (at
/// most [`Capabilities::per_definition_writes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionWrite {
    /// The definition.
    pub definition: DefinitionId,
    /// What is done.
    pub op: AssignmentOp,
    /// To whom.
    pub agents: Vec<AgentAssignment>,
}

/// What happened to one entry of a bulk write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Applied; the user's new version.
    Applied(Version),
    /// The version was stale: re-read, re-merge, retry.
    Conflict,
    /// No such user.
    NotFound,
    /// The tenant refused the entry.
    Rejected(String),
}

/// A routing profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Skills it references.
    pub skills: Vec<DefinitionId>,
    /// Proficiencies it references.
    pub proficiencies: Vec<DefinitionId>,
    /// For `If-Match`.
    pub version: Version,
}

/// A routing strategy: conditions over proficiencies (routing dialect only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Proficiencies its conditions reference.
    pub proficiencies: Vec<DefinitionId>,
    /// For `If-Match`.
    pub version: Version,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The locale-specific skill it requires.
    pub skill_id: DefinitionId,
    /// Lowest qualifying level.
    pub min_level: u8,
    /// Production queues take no test interactions.
    pub production: bool,
}

/// The answer to a test interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Id of the test interaction.
    pub interaction_id: String,
    /// Whether an agent was chosen.
    pub routed: bool,
    /// The agent chosen.
    pub user_id: Option<UserId>,
    /// Why nobody was chosen.
    pub reason: Option<String>,
}

/// Whether the caller has just looked a definition up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookedUp {
    /// Look before the first `POST`.
    No,
    /// A listing made moments ago did not have it.
    Absent,
}

/// How many times `ensure_definition` looks and posts before giving up.
const ENSURE_ATTEMPTS: u32 = 6;

/// The tenant, as the engine sees it.
#[async_trait]
pub trait TenantApi: Send + Sync {
    /// What this dialect can do.
    fn capabilities(&self) -> Capabilities;

    /// Requests, retries, 429s and token fetches so far.
    fn counters(&self) -> CounterSnapshot;

    /// Has a token ready, fetching one if none is cached: whether the tenant's token endpoint
    /// answers and takes the credentials (a service's readiness).
    async fn token_ready(&self) -> Result<()>;

    /// Definitions of one kind, page by page.
    fn definitions(&self, kind: Kind, query: DefinitionQuery) -> BoxStream<'_, Result<Definition>>;

    /// One `POST`; never retried blindly (see [`TenantApi::ensure_definition`]).
    async fn create_definition(&self, new: &NewDefinition) -> Result<Definition>;

    /// One `POST` creating several definitions (at most [`Capabilities::max_create_batch`]),
    /// never retried blindly: an outcome per definition, in order. Only for definitions just
    /// looked up and found absent; one whose outcome is not `Ok` is left to
    /// [`TenantApi::ensure_definition`], which looks before it posts again.
    async fn create_definitions(&self, news: &[NewDefinition]) -> Result<Vec<Result<Definition>>> {
        let _ = news;
        Err(Error::Unsupported {
            dialect: self.capabilities().dialect.name(),
            operation: "creating definitions in a batch",
        })
    }

    /// Full replace with `If-Match` (e.g. to reactivate or soft-delete).
    async fn update_definition(&self, definition: &Definition) -> Result<Definition>;

    /// Hard delete; [`Error::Referenced`] while anything references it.
    async fn delete_definition(&self, kind: Kind, id: &DefinitionId) -> Result<()>;

    /// Users with their assignments and versions, page by page.
    fn users(&self, query: UserQuery) -> BoxStream<'_, Result<UserAssignments>>;

    /// One page (1-based, of [`crate::PAGE_SIZE`] users) of the listing [`TenantApi::users`]
    /// streams: the users a full listing had on it, in one call, when several of them must be
    /// read again.
    async fn users_page(&self, page: usize) -> Result<Vec<UserAssignments>>;

    /// One user.
    async fn user(&self, id: &UserId) -> Result<UserAssignments>;

    /// Every user's directory entry (`GET /users`, scope `admin:users:read`), page by page.
    /// Only `export` needs it; a client that cannot list the directory says so.
    fn user_profiles(&self) -> BoxStream<'_, Result<UserProfile>> {
        Box::pin(futures::stream::once(async {
            Err(Error::Unsupported {
                dialect: "this",
                operation: "listing the user directory",
            })
        }))
    }

    /// One merge write with `If-Match`; [`Error::Conflict`] when the version is stale.
    async fn write_user(&self, write: &UserWrite) -> Result<Version>;

    /// A bulk write (at most `max_bulk_entries`), each entry guarded by its version.
    async fn write_users(&self, writes: &[UserWrite]) -> Result<Vec<EntryOutcome>>;

    /// One per-definition assignment write, for a dialect whose
    /// [`Capabilities::per_definition_writes`] is set: an outcome per agent, in the order given
    /// ([`EntryOutcome::Conflict`] when the agent's assignment was not as the write assumed).
    async fn write_definition(&self, write: &DefinitionWrite) -> Result<Vec<EntryOutcome>> {
        let _ = write;
        Err(Error::Unsupported {
            dialect: self.capabilities().dialect.name(),
            operation: "per-definition assignment writes",
        })
    }

    /// Routing profiles, optionally only those referencing a definition.
    fn profiles(&self, kind: Option<(Kind, DefinitionId)>) -> BoxStream<'_, Result<Profile>>;

    /// Replaces a profile's lists with `If-Match`.
    async fn write_profile(&self, profile: &Profile) -> Result<Version>;

    /// Routing strategies, optionally only those referencing a proficiency. Only a dialect
    /// whose [`Capabilities::strategies`] is true has them; the others answer
    /// [`Error::Unsupported`].
    fn strategies(&self, proficiency: Option<DefinitionId>) -> BoxStream<'_, Result<Strategy>>;

    /// Replaces a strategy's proficiency list with `If-Match`.
    async fn write_strategy(&self, strategy: &Strategy) -> Result<Version>;

    /// All queues.
    async fn queues(&self) -> Result<Vec<Queue>>;

    /// Submits a test interaction to a non-production queue.
    async fn test_interaction(&self, queue_id: &str) -> Result<Routed>;

    /// Definitions with exactly this name and locale (more than one means duplicates).
    async fn find_definitions(
        &self,
        kind: Kind,
        name: &str,
        locale: &Locale,
    ) -> Result<Vec<Definition>> {
        let query = DefinitionQuery {
            name: Some(name.to_string()),
            locale: Some(locale.clone()),
            active: None,
        };
        let found: Vec<Definition> = self.definitions(kind, query).try_collect().await?;
        Ok(found
            .into_iter()
            .filter(|d| d.name == name && &d.locale == locale)
            .collect())
    }

    /// Makes sure a definition with this name and locale exists, creating it only if absent.
    /// The tenant accepts duplicates, so a POST whose answer was lost (5xx after commit, a
    /// dropped connection, a timeout) is never simply sent again: we look first.
    async fn ensure_definition(&self, new: &NewDefinition) -> Result<Ensured> {
        self.ensure_definition_after(new, LookedUp::No).await
    }

    /// [`TenantApi::ensure_definition`] for a caller that may have just listed the definitions
    /// and seen this one absent: then the first look-up would only repeat that listing, so the
    /// first `POST` goes out at once. Any retry still looks first.
    async fn ensure_definition_after(
        &self,
        new: &NewDefinition,
        looked_up: LookedUp,
    ) -> Result<Ensured> {
        let mut posted = false;
        let mut last_error = None;
        for attempt in 1..=ENSURE_ATTEMPTS {
            let mut found = if attempt == 1 && looked_up == LookedUp::Absent {
                Vec::new()
            } else {
                self.find_definitions(new.kind, &new.name, &new.locale)
                    .await?
            };
            if !found.is_empty() {
                // Prefer an active one; the list is in creation order, so the oldest wins ties.
                let chosen = found.iter().position(|d| d.active).unwrap_or(0);
                let definition = found.remove(chosen);
                return Ok(Ensured {
                    definition,
                    created: posted,
                    duplicates: found.into_iter().map(|d| d.id).collect(),
                });
            }
            match self.create_definition(new).await {
                Ok(definition) => {
                    return Ok(Ensured {
                        definition,
                        created: true,
                        duplicates: Vec::new(),
                    });
                }
                Err(error) if error.is_transient() => {
                    tracing::debug!(attempt, name = %new.name, locale = %new.locale, %error, "create outcome unknown; looking again before any retry");
                    posted = true;
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or(Error::Unsupported {
            dialect: "any",
            operation: "ensure_definition without attempts",
        }))
    }
}

#[cfg(test)]
mod tests {
    use skillsync_core::DialectCarries;

    use super::*;
    use crate::settings::{Secret, Settings};

    #[test]
    fn a_configured_dialect_states_what_its_client_carries_before_any_client_exists() {
        for dialect in [Dialect::Routing, Dialect::Users] {
            let mut settings = Settings::new(
                "http://127.0.0.1:9/api/v2",
                "http://127.0.0.1:9/api/v2/oauth/token",
                "id",
                Secret::new("s3cret"),
            );
            settings.dialect = dialect;
            let api = crate::connect(&settings).unwrap();
            assert_eq!(api.capabilities(), dialect.capabilities(), "{dialect:?}");
        }
        // SPEC 1.5: the users dialect writes skill ids and levels, nothing else.
        assert_eq!(
            Dialect::Users.capabilities().carries(),
            DialectCarries {
                dialect: "users",
                proficiencies: false,
                inactive_assignments: false,
            }
        );
        assert_eq!(
            Dialect::Routing.capabilities().carries(),
            DialectCarries {
                dialect: "routing",
                proficiencies: true,
                inactive_assignments: true,
            }
        );
    }
}

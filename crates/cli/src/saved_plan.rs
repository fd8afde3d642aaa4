//! Saved plans: `skillsync plan --out FILE` and `skillsync apply FILE` (`docs/saved-plan.md`).
//!
//! A saved plan is applied exactly or not at all. It records what it was computed from: the
//! desired state's digest (the HRIS files' bytes and the config's fingerprint), the catalog
//! resolved to the tenant's definition ids, and each user to change with the version read.
//! `apply FILE` refuses before reading the tenant when the digest differs, then re-reads only
//! the users the plan changes, plans them again, and refuses before the first write when that
//! plan is not the saved one (a user changed by another writer, a definition created meanwhile).
//! Since planning is a pure function of the desired state and the tenant read, the same digest
//! and the same users and definitions give the same changes: what is written is what was saved.
//!
//! The file holds no secret and no token: the config enters only through its fingerprint, a
//! hash, and nothing of the client's credentials is written.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skillsync_core::render::PlanDocument;
use skillsync_core::{Desired, Plan, UserId};

use crate::config::Config;

/// What a saved plan file says it is.
pub const FORMAT: &str = "skillsync-plan";
/// The version of the file's layout; a file of another version is refused.
pub const FORMAT_VERSION: u32 = 1;

/// The file `plan --out` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPlan {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// When the plan was made (RFC 3339, UTC).
    pub created_at: String,
    /// The tenant it was made against, as the config names it.
    pub tenant: SavedTenant,
    /// SHA-256 of the three HRIS files' bytes and the config's fingerprint.
    pub desired_digest: String,
    /// Each catalog variant and the tenant definition it resolved to.
    pub definitions: Vec<ResolvedVariant>,
    /// The users the plan writes, with the version each was read at.
    pub users: Vec<SavedUser>,
    /// The plan itself, as `plan --output json` prints it (`docs/plan-json.md`).
    pub plan: Value,
}

/// The tenant a plan was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedTenant {
    /// `[tenant] api_base`.
    pub api_base: String,
    /// `[tenant] dialect`.
    pub dialect: String,
}

/// One catalog variant resolved against the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedVariant {
    /// HRIS code.
    pub code: String,
    /// Locale.
    pub locale: String,
    /// `{"existing": id}`, `{"new": …}` for one the plan creates, or `null` (retired).
    pub definition: Value,
}

/// One user the plan writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedUser {
    /// The tenant's user id.
    pub user_id: String,
    /// The agent's employee id; `None` for a user no longer in the HRIS (`absent_agents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    /// The version the plan read, which its write carries.
    pub version: u64,
}

/// The digest of the desired state: the HRIS files as they are on disk now and the config's
/// fingerprint (its text and the keys set from the environment, hashed: no secret in clear).
pub fn desired_digest(config: &Config) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(format!("{FORMAT} {FORMAT_VERSION}\n"));
    hasher.update(format!("config {}\n", config.fingerprint()));
    let sources = &config.sources;
    for (role, path) in [
        ("catalog", &sources.catalog),
        ("agents", &sources.agents),
        ("assignments", &sources.assignments),
    ] {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        // Lengths first: no two sets of files hash the same bytes.
        hasher.update(format!("{role} {}\n", bytes.len()));
        hasher.update(&bytes);
    }
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// Each catalog variant and what the plan resolved it to.
fn resolved(plan: &Plan, desired: &Desired) -> Vec<ResolvedVariant> {
    desired
        .catalog
        .entries
        .keys()
        .map(|(code, locale)| ResolvedVariant {
            code: code.to_string(),
            locale: locale.to_string(),
            definition: serde_json::to_value(plan.resolution.definition(code, locale))
                .expect("a definition ref serializes"),
        })
        .collect()
}

impl SavedPlan {
    /// The saved form of `plan`, made from `desired` under `config`.
    pub fn new(plan: &Plan, desired: &Desired, config: &Config, digest: String) -> SavedPlan {
        SavedPlan {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            created_at: jiff::Timestamp::now().to_string(),
            tenant: SavedTenant {
                api_base: config.tenant.api_base.clone(),
                dialect: config.tenant.dialect.name().to_string(),
            },
            desired_digest: digest,
            definitions: resolved(plan, desired),
            users: plan
                .users
                .iter()
                .map(|u| SavedUser {
                    user_id: u.user_id.to_string(),
                    employee_id: (!u.absent_from_hris).then(|| u.employee_id.to_string()),
                    version: u.version.0,
                })
                .collect(),
            plan: serde_json::to_value(PlanDocument::new(plan)).expect("a plan serializes"),
        }
    }

    /// Writes it to `path` through a temporary file and a rename: a reader never sees half.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("plan");
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.with_context(|| format!("cannot write the plan to {}", path.display()))
    }

    /// Reads a saved plan, refusing a file that is not one or of another format version.
    pub fn read(path: &Path) -> anyhow::Result<SavedPlan> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the saved plan {}", path.display()))?;
        let head: Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a saved plan (not JSON); make one with `skillsync plan --out FILE`",
                path.display()
            )
        })?;
        if head["format"] != FORMAT {
            anyhow::bail!(
                "{} is not a saved plan (no \"format\": \"{FORMAT}\"); make one with `skillsync plan --out FILE`",
                path.display()
            );
        }
        if head["formatVersion"] != FORMAT_VERSION {
            anyhow::bail!(
                "{} is a saved plan of format version {}, this skillsync reads version {FORMAT_VERSION}; run `skillsync plan --out` again",
                path.display(),
                head["formatVersion"]
            );
        }
        serde_json::from_value(head)
            .with_context(|| format!("{} is not a valid saved plan", path.display()))
    }

    /// The users to read again: those the plan writes.
    pub fn user_ids(&self) -> Vec<UserId> {
        let mut users: Vec<UserId> = self
            .users
            .iter()
            .map(|u| UserId::from(u.user_id.as_str()))
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// The owned assignments the plan counted when it was made: the base of a percentage
    /// `max_removals`, which a plan made again from the changed users only would not have.
    pub fn owned_assignments_before(&self) -> u64 {
        self.plan["totals"]["ownedAssignmentsBefore"]
            .as_u64()
            .unwrap_or_default()
    }

    /// `Ok` when `fresh`, planned again from the users read now, is the saved plan; else why
    /// not, naming the users changed since, for the refusal.
    pub fn matches(&self, fresh: &Plan, desired: &Desired) -> Result<(), String> {
        let again = "run `skillsync plan --out` again and review the new plan";
        let fresh_users: BTreeMap<&str, &skillsync_core::plan::UserPlan> = fresh
            .users
            .iter()
            .map(|u| (u.user_id.as_str(), u))
            .collect();
        let changed: Vec<String> = self
            .users
            .iter()
            .filter_map(|saved| {
                let who = match &saved.employee_id {
                    Some(employee) => format!("user {} (employee {employee})", saved.user_id),
                    None => format!("user {}", saved.user_id),
                };
                match fresh_users.get(saved.user_id.as_str()) {
                    Some(now) if now.version.0 == saved.version => None,
                    Some(now) => Some(format!(
                        "{who} is at version {}, the plan read version {}",
                        now.version.0, saved.version
                    )),
                    None => Some(format!(
                        "{who} changed since version {} and needs none of the plan's changes now (or is gone)",
                        saved.version
                    )),
                }
            })
            .collect();
        if !changed.is_empty() {
            return Err(format!(
                "{} of the plan's users changed since the plan was made: {}; nothing written\n  hint: {again}",
                changed.len(),
                changed.join("; ")
            ));
        }
        // Same users at the same versions, same files and config: a difference left is in
        // the tenant's definitions (one created, deactivated or renamed by someone else).
        let fresh_document = serde_json::to_value(PlanDocument::new(fresh)).expect("serializes");
        let same = |field: &str| fresh_document[field] == self.plan[field];
        if resolved(fresh, desired) != self.definitions
            || !same("definitions")
            || !same("users")
            || !same("absentAgents")
        {
            return Err(format!(
                "the tenant's definitions changed since the plan was made (created, reactivated or changed by another writer): the plan would not be the one saved; nothing written\n  hint: {again}"
            ));
        }
        Ok(())
    }
}

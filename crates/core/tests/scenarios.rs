//! Data-driven scenarios: one folder per scenario under `tests/scenarios/`, holding the three
//! HRIS files and `tenant.json` (the live state). Each folder is read through `read_desired`,
//! planned against the tenant, and the result snapshotted: the problems when the inputs or the
//! plan are refused, otherwise the human plan and the JSON plan.
//!
//! Snapshots are named after the folder (`scenarios__<folder>@human.snap`,
//! `@json.snap`, `@problems.snap`); a folder's optional `about.txt` becomes the snapshot's
//! description, so a reviewer reads what the scenario means next to what it produced.
//!
//! `tenant.json`:
//!
//! ```json
//! {
//!   "definitions": [{ "id": "sk-bill-en", "kind": "skill", "name": "Billing_Dispute_Resolution",
//!                     "locale": "en-us", "active": true, "description": "…",
//!                     "routing_profile_id": "…", "version": 1 }],
//!   "users": [{ "user_id": "u-1001", "skills": [{ "definition": "sk-bill-en", "level": 8,
//!               "active": true }], "proficiencies": [], "version": 4 }],
//!   "profile_ids": ["…"],
//!   "sees_proficiencies": true,
//!   "options": { "bulk_threshold": 50, "bulk_batch_size": 100, "bulk_available": true }
//! }
//! ```
//!
//! `sees_proficiencies` defaults to true, `options` and each of its fields to
//! `PlanOptions::default()`.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use serde::Deserialize;
use skillsync_core::{
    Definition, Live, PlanOptions, Source, Style, UserAssignments, plan, plan_human, plan_json,
    problems_human, read_desired,
};

/// `tenant.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tenant {
    definitions: Vec<Definition>,
    users: Vec<UserAssignments>,
    profile_ids: BTreeSet<String>,
    #[serde(default = "yes")]
    sees_proficiencies: bool,
    #[serde(default)]
    options: Options,
}

fn yes() -> bool {
    true
}

/// `tenant.json`'s `options`: any field left out is the default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_bulk_threshold")]
    bulk_threshold: usize,
    #[serde(default = "default_bulk_batch_size")]
    bulk_batch_size: usize,
    #[serde(default = "default_bulk_available")]
    bulk_available: bool,
}

fn default_bulk_threshold() -> usize {
    PlanOptions::default().bulk_threshold
}

fn default_bulk_batch_size() -> usize {
    PlanOptions::default().bulk_batch_size
}

fn default_bulk_available() -> bool {
    PlanOptions::default().bulk_available
}

impl Default for Options {
    fn default() -> Self {
        let d = PlanOptions::default();
        Options {
            bulk_threshold: d.bulk_threshold,
            bulk_batch_size: d.bulk_batch_size,
            bulk_available: d.bulk_available,
        }
    }
}

impl From<Options> for PlanOptions {
    fn from(o: Options) -> Self {
        PlanOptions {
            bulk_threshold: o.bulk_threshold,
            bulk_batch_size: o.bulk_batch_size,
            bulk_available: o.bulk_available,
            ..PlanOptions::default()
        }
    }
}

fn open(dir: &Path, name: &str) -> Source<File> {
    let path = dir.join(name);
    let reader = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Source {
        name: name.to_string(),
        reader,
    }
}

fn tenant(dir: &Path) -> (Live, PlanOptions) {
    let path = dir.join("tenant.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tenant: Tenant =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let live = Live {
        definitions: tenant.definitions,
        users: tenant.users,
        profile_ids: tenant.profile_ids,
        sees_proficiencies: tenant.sees_proficiencies,
        without_profiles: false,
    };
    (live, tenant.options.into())
}

#[test]
fn scenarios() {
    insta::glob!("scenarios/*/catalog.csv", |catalog| {
        let dir = catalog.parent().expect("a scenario folder");
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a folder name in UTF-8")
            .to_string();
        let (live, options) = tenant(dir);

        let mut settings = insta::Settings::clone_current();
        settings.remove_snapshot_suffix();
        settings.set_omit_expression(true);
        if let Ok(about) = std::fs::read_to_string(dir.join("about.txt")) {
            settings.set_description(about.trim());
        }
        let _guard = settings.bind_to_scope();

        let loaded = read_desired(
            open(dir, "catalog.csv"),
            open(dir, "agents.csv"),
            open(dir, "assignments.csv"),
        );
        let outcome = loaded.and_then(|loaded| {
            match plan(&loaded.desired, &live, &options) {
                Ok(mut plan) => {
                    // As `skillsync plan` shows them: the HRIS's warnings first.
                    plan.warnings.splice(0..0, loaded.warnings);
                    Ok(plan)
                }
                Err(mut problems) => {
                    problems.splice(0..0, loaded.warnings);
                    Err(problems)
                }
            }
        });
        match outcome {
            Ok(plan) => {
                let human = plan_human(&plan, Style { color: false });
                insta::with_settings!({ snapshot_suffix => "human" }, {
                    insta::assert_snapshot!(name.as_str(), human);
                });
                let json = plan_json(&plan);
                insta::with_settings!({ snapshot_suffix => "json" }, {
                    insta::assert_json_snapshot!(name.as_str(), json);
                });
            }
            Err(problems) => {
                let text = problems_human(&problems, Style { color: false });
                insta::with_settings!({ snapshot_suffix => "problems" }, {
                    insta::assert_snapshot!(name.as_str(), text);
                });
            }
        }
    });
}

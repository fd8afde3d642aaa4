//! `skillsync export`: the three HRIS files written from the live tenant, such that `plan`
//! against them reports no changes. The way to adopt a tenant that already has skills.
//!
//! Read-only on the tenant: no lease, no journal created (the journal is only read, when it
//! exists, for the variants `retire` took out of management). The files are built in memory,
//! then checked the way `plan` would read them: parsed by the HRIS readers and planned
//! against the same live read. Whatever that plan would still change (something the rules
//! below missed) is left out and reported, so the files written always plan to no changes.
//! Nothing is written unless all three can be; each goes through a temporary file and a
//! rename, so a crash leaves the old file or the new one, never half of one.
//!
//! What the HRIS files cannot say is left out and reported, never merged:
//! - a definition excluded by `--include`/`--exclude`, invisible to the dialect
//!   (proficiencies under `dialect = "users"`), retired, or whose text the files cannot carry
//!   exactly (a name that starts like a formula, a description with spaces at its ends, …);
//! - a name+locale that exists only inactive (a catalog row would make `apply` reactivate it);
//! - of a duplicated name+locale, the copies: the catalog row means the one `plan` resolves
//!   to (the oldest active one, in the tenant's order), so that is the one exported;
//! - an agent holding what its one locale cannot express (variants of several locales, a
//!   copy of a duplicated definition): left out of `agents.csv`, so `plan` never touches them.
//!
//! Assignments to definitions outside the exported catalog are not written: `plan` never
//! touches them (they are another integration's, or left out above), and they are counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;
use skillsync_core::hris::{Source, read_desired};
use skillsync_core::{DefinitionId, Kind, Live, Locale, Problem, Retired, UserId};

use crate::args::CommonArgs;
use crate::config::Config;
use crate::output::{OutputFormat, exit, print_json};

/// The version of the `--output json` document: fields are only added within it.
const SCHEMA_VERSION: u64 = 1;

/// The three files, in the order they are checked and written.
const FILES: [&str; 3] = ["catalog.csv", "agents.csv", "assignments.csv"];

/// Write the HRIS files from the live tenant, so that `plan` against them reports no changes
///
/// The way to adopt a tenant that already has skills: export, point [source] at the files,
/// `skillsync plan` (no changes), then let the HRIS own them. Reads the tenant, writes nothing
/// to it, takes no lease and creates no journal.
///
///   skillsync export --out hris --exclude 'Ext_*'       # leave another integration's out
///   skillsync export --out hris --include 'Claims_*' --default-locale en-us --force
///   skillsync export --out hris --employee-id email --output json > export.json
///
/// catalog.csv gets one row per definition (code = its name), agents.csv one row per user
/// (employee_id = the tenant's user id, or e-mail address with --employee-id email; locale =
/// that of the definitions the user holds, or --default-locale), assignments.csv what each
/// agent holds of the catalog. Output is sorted, so the same tenant gives the same bytes.
///
/// What the files cannot express is left out and reported on stderr (and in --output json,
/// docs/export-json.md), never merged: inactive-only definitions; of duplicates (same kind,
/// name and locale) the copies, the oldest active one being exported as plan resolves it;
/// agents holding variants of several locales or a duplicate's copy (left out of agents.csv,
/// so plan never touches them); retired variants; text the CSV rules refuse. Assignments to
/// definitions outside the exported catalog are not written and are counted: plan never
/// touches them.
///
/// Refuses to replace existing files unless --force (nothing is written; each file goes
/// through a temporary file and a rename). Exit 0 when written, 1 otherwise.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExportArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The folder to write catalog.csv, agents.csv and assignments.csv into (created if absent).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Replace the files if they exist.
    #[arg(long)]
    pub force: bool,

    /// Export only definitions whose name matches this glob (`*`, `?`, `[abc]`, `{a,b}`);
    /// repeatable. Default: every definition.
    #[arg(long, value_name = "PATTERN")]
    pub include: Vec<String>,

    /// Leave out definitions whose name matches this glob (e.g. another integration's
    /// `Ext_*`); repeatable; wins over --include.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// What becomes an agent's employee_id: the tenant's user id, or the user's e-mail address
    /// (read from GET /users, scope admin:users:read; a user with none, or sharing it with
    /// another, is left out). Replace them with the HRIS's ids afterwards if they differ, in
    /// agents.csv and assignments.csv alike.
    #[arg(long, value_enum, default_value_t = EmployeeIdFrom::UserId)]
    pub employee_id: EmployeeIdFrom,

    /// An agent's locale: that of the catalog definitions they hold (`assignments`; agents
    /// holding none get --default-locale), or --default-locale for everyone (`default`).
    #[arg(long, value_enum, default_value_t = LocaleFrom::Assignments)]
    pub locale_from: LocaleFrom,

    /// The locale of agents without one of their own. Default: the locale most agents hold
    /// definitions in (ties: the first in alphabetical order).
    #[arg(long, value_name = "LOCALE")]
    pub default_locale: Option<String>,
}

/// `--employee-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EmployeeIdFrom {
    /// The tenant's user id.
    UserId,
    /// The user's e-mail address.
    Email,
}

/// `--locale-from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LocaleFrom {
    /// The locale of the catalog definitions the agent holds.
    Assignments,
    /// --default-locale for every agent.
    Default,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
enum WarningKind {
    /// A name+locale that exists more than once.
    Duplicate,
    /// A name+locale that exists only inactive.
    Inactive,
    /// A variant `skillsync retire` took out of management.
    Retired,
    /// A definition whose text the HRIS files cannot carry exactly.
    Unexpressible,
    /// Definitions the configured dialect cannot see.
    NotVisible,
    /// A name used by a skill and a proficiency: the proficiency's code was changed.
    CodeRenamed,
    /// An agent whose holdings the files cannot express.
    AgentLeftOut,
}

/// One thing reported.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Warning {
    kind: WarningKind,
    message: String,
    /// The definition's name, for definition warnings.
    name: Option<String>,
    locale: Option<Locale>,
    /// Tenant definitions concerned (a duplicate's, in the tenant's order).
    definition_ids: Vec<DefinitionId>,
    /// The user, for `agentLeftOut`.
    user_id: Option<UserId>,
}

impl Warning {
    fn definition(kind: WarningKind, name: &str, locale: &Locale, message: String) -> Warning {
        Warning {
            kind,
            message,
            name: Some(name.to_string()),
            locale: Some(locale.clone()),
            definition_ids: Vec::new(),
            user_id: None,
        }
    }

    fn agent(user: &UserId, message: String) -> Warning {
        Warning {
            kind: WarningKind::AgentLeftOut,
            message,
            name: None,
            locale: None,
            definition_ids: Vec::new(),
            user_id: Some(user.clone()),
        }
    }
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    /// Rows of catalog.csv.
    definitions: usize,
    /// Distinct codes.
    codes: usize,
    /// Distinct locales of the catalog.
    locales: usize,
    /// Rows of agents.csv.
    agents: usize,
    /// Rows of assignments.csv.
    assignments: usize,
    /// Tenant definitions left out by --include/--exclude.
    excluded_definitions: usize,
    /// Tenant definitions left out for another reason (a warning says which).
    left_out_definitions: usize,
    /// Users left out of agents.csv (a warning each).
    left_out_agents: usize,
    /// Assignments exported agents hold to definitions outside the catalog (not written).
    assignments_outside_catalog: usize,
}

/// The `--output json` document; its schema is `docs/export-json.md`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportDocument<'a> {
    schema_version: u64,
    files: Files,
    employee_id: EmployeeIdFrom,
    locale_from: LocaleFrom,
    default_locale: Option<&'a Locale>,
    totals: &'a Totals,
    warnings: &'a [Warning],
}

/// Where the files were written.
#[derive(Debug, Serialize)]
struct Files {
    catalog: String,
    agents: String,
    assignments: String,
}

/// What an export decides, before anything is written.
#[derive(Debug, Default)]
struct Export {
    catalog: String,
    agents: String,
    assignments: String,
    default_locale: Option<Locale>,
    totals: Totals,
    warnings: Vec<Warning>,
}

/// The options an export is built from.
struct Options {
    /// E-mail addresses by user, for `--employee-id email`; `None`: user ids.
    emails: Option<HashMap<UserId, String>>,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    locale_from: LocaleFrom,
    default_locale: Option<Locale>,
}

impl Options {
    fn wants(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|set| set.is_match(name))
            && self.exclude.as_ref().is_none_or(|set| !set.is_match(name))
    }
}

/// `routing_profile_id` of the catalog rows of a dialect without routing profiles (cxone).
const NO_PROFILE: &str = "none";

/// A catalog variant left out after the self-check, by kind, name and locale.
type VariantKey = (Kind, String, Locale);

/// What the self-check found the plan would still change: left out in the next round.
#[derive(Debug, Default)]
struct Dropped {
    variants: BTreeMap<VariantKey, String>,
    users: BTreeMap<UserId, String>,
}

/// Who owns a tenant definition in the export.
struct Owner<'a> {
    code: &'a str,
    kind: Kind,
    name: &'a str,
    locale: &'a Locale,
    canonical: bool,
}

fn globs(patterns: &[String], flag: &str) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder
            .add(Glob::new(pattern).map_err(|e| format!("{flag} `{pattern}` is not a glob: {e}"))?);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| format!("{flag}: {e}"))
}

/// Runs the command.
pub async fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let common = &args.common;
    let config = match Config::load(&common.config) {
        Ok(config) => config,
        Err(problems) => return Ok(crate::cmd::validate::report_problems(common, &problems)),
    };
    let usage = |message: String| {
        eprintln!("error: {message}");
        Ok(exit::error())
    };
    let default_locale = match args.default_locale.as_deref().map(Locale::parse) {
        None => None,
        Some(Ok(locale)) => Some(locale),
        Some(Err(e)) => return usage(format!("--default-locale: {e}")),
    };
    let (include, exclude) = match (
        globs(&args.include, "--include"),
        globs(&args.exclude, "--exclude"),
    ) {
        (Ok(include), Ok(exclude)) => (include, exclude),
        (Err(e), _) | (_, Err(e)) => return usage(e),
    };
    let mut options = Options {
        emails: None,
        include,
        exclude,
        locale_from: args.locale_from,
        default_locale,
    };
    let paths: Vec<PathBuf> = FILES.iter().map(|f| args.out.join(f)).collect();
    // Refused before the tenant is read, and again just before writing.
    if let Some(message) = refusal(&paths, args.force) {
        return usage(message);
    }

    let settings = match config.client_settings() {
        Ok(settings) => settings,
        Err(problems) => return Ok(crate::cmd::validate::report_problems(common, &problems)),
    };
    let api = skillsync_cxone::connect(&settings).context("cannot set up the tenant client")?;
    let retired = crate::inputs::Session::retirements(&config).await?;
    let started = std::time::Instant::now();
    let mut live = skillsync_engine::read_live(api.as_ref(), &Default::default(), &|_| {})
        .await
        .with_context(|| format!("cannot read the tenant at {}", config.tenant.api_base))?;
    if let Some(pattern) = &config.tenant.name_pattern {
        // A dialect whose skill names carry the locale (cxone): the code and locale are read
        // back out of each name that follows the pattern, so the catalog written renders to
        // the same names again.
        for definition in &mut live.definitions {
            if let Some((code, locale)) = pattern.split(&definition.name) {
                definition.name = code;
                definition.locale = locale;
            }
        }
    }
    if live.without_profiles {
        // The column is required and a dialect without profiles never reads it.
        for definition in &mut live.definitions {
            definition.routing_profile_id = NO_PROFILE.to_string();
        }
    } else {
        // Each definition's profile is checked; the live read lists them only for a plan
        // that must check one.
        live.profile_ids = skillsync_engine::read_profile_ids(api.as_ref())
            .await
            .with_context(|| format!("cannot read the tenant at {}", config.tenant.api_base))?;
    }
    if args.employee_id == EmployeeIdFrom::Email {
        use futures::TryStreamExt;
        let profiles: Vec<skillsync_cxone::UserProfile> =
            api.user_profiles().try_collect().await.with_context(|| {
                format!(
                    "cannot read the user directory at {} for --employee-id email",
                    config.tenant.api_base
                )
            })?;
        options.emails = Some(profiles.into_iter().map(|p| (p.user_id, p.email)).collect());
    }
    eprintln!(
        "read {} users and {} definitions in {:.1} s ({} requests)",
        live.users.len(),
        live.definitions.len(),
        started.elapsed().as_secs_f64(),
        api.counters().total_requests()
    );

    let carries = crate::inputs::carries(&config);
    // The self-check is about the agents the files hold: a user they leave out (reported as
    // such) cannot be brought back by leaving out more, so absent users are kept here. Under
    // `absent_agents = "strip"`, `plan` would strip those users' owned assignments.
    let plan_options = skillsync_core::PlanOptions {
        absent_agents: skillsync_core::AbsentAgents::Keep,
        ..config.plan_options(api.capabilities().max_bulk_entries.is_some())
    };
    let shown: Vec<String> = paths.iter().map(|p| crate::inputs::display(p)).collect();
    let mut dropped = Dropped::default();
    let export = loop {
        let export = match build(&live, &retired, &options, &dropped) {
            Ok(export) => export,
            Err(message) => return usage(message),
        };
        // The self-check: the files as `plan` reads them, planned against the same read.
        let loaded = read_desired(
            Source {
                name: shown[0].clone(),
                reader: export.catalog.as_bytes(),
            },
            Source {
                name: shown[1].clone(),
                reader: export.agents.as_bytes(),
            },
            Source {
                name: shown[2].clone(),
                reader: export.assignments.as_bytes(),
            },
        )
        .and_then(|loaded| skillsync_core::refuse_uncarried(loaded, &carries));
        let mut desired = match loaded {
            Ok(loaded) => loaded.desired,
            Err(problems) => return Ok(not_round_trip(common, problems)),
        };
        desired.retired = retired.clone();
        let plan = match skillsync_core::plan(&desired, &live, &plan_options) {
            Ok(plan) => plan,
            Err(problems) => return Ok(not_round_trip(common, problems)),
        };
        if plan.is_empty() {
            break export;
        }
        let before = dropped.variants.len() + dropped.users.len();
        for action in &plan.definitions {
            dropped.variants.insert(
                (action.kind, action.name.clone(), action.locale.clone()),
                format!(
                    "plan would {} it ({})",
                    format!("{:?}", action.action).to_lowercase(),
                    action.fields.join(", ")
                ),
            );
        }
        for user in &plan.users {
            let what: Vec<String> = user
                .changes()
                .map(|c| format!("{} {} ({}): {:?}", c.kind, c.name, c.locale, c.why))
                .collect();
            dropped.users.insert(
                user.user_id.clone(),
                format!("plan would still change it: {}", what.join("; ")),
            );
        }
        if dropped.variants.len() + dropped.users.len() == before {
            anyhow::bail!(
                "the exported files would not plan to no changes (a bug: please report it)"
            );
        }
    };

    if let Some(message) = refusal(&paths, args.force) {
        return usage(message);
    }
    write_all(
        &args.out,
        &paths,
        [&export.catalog, &export.agents, &export.assignments],
    )?;

    report(args, &config, &export, &shown);
    Ok(exit::ok())
}

/// Problems found reading the files back: a bug of the export, not of the tenant.
fn not_round_trip(common: &CommonArgs, mut problems: Vec<Problem>) -> ExitCode {
    problems.push(Problem::error(
        "export",
        "the exported files would not read back as written; nothing was written (a bug: please report it)",
    ));
    crate::cmd::validate::report_problems(common, &problems)
}

/// Why the files cannot be written, naming every one that exists; `None` when they can.
fn refusal(paths: &[PathBuf], force: bool) -> Option<String> {
    let existing: Vec<String> = paths
        .iter()
        .filter(|p| p.exists())
        .map(|p| crate::inputs::display(p))
        .collect();
    if existing.is_empty() || force {
        return None;
    }
    Some(format!(
        "{} already exist{}: nothing written; pass --force to replace {}",
        existing.join(", "),
        if existing.len() == 1 { "s" } else { "" },
        if existing.len() == 1 { "it" } else { "them" }
    ))
}

/// Writes every file to a temporary sibling first, then renames each into place: a failure
/// before the renames leaves every old file as it was, a crash never leaves half a file.
fn write_all(dir: &Path, paths: &[PathBuf], contents: [&String; 3]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temps = Vec::new();
    let result = (|| {
        for (path, text) in paths.iter().zip(contents) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
            let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
            temps.push(temp.clone());
            let mut file = std::fs::File::create(&temp)
                .with_context(|| format!("cannot write {}", temp.display()))?;
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", temp.display()))?;
        }
        for (temp, path) in temps.iter().zip(paths) {
            std::fs::rename(temp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for temp in &temps {
            let _ = std::fs::remove_file(temp);
        }
    }
    result
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn row(out: &mut String, values: &[&str]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, value);
    }
    out.push('\n');
}

/// Why the HRIS files cannot carry a definition's text exactly (docs/hris-files.md), if so.
fn unexpressible(name: &str, description: &str, profile: &str) -> Option<String> {
    const FORMULA: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
    let trimmed = |s: &str| s.trim_matches([' ', '\t', '\r', '\n']) == s;
    if name.is_empty() || !trimmed(name) {
        return Some("its name is empty or has spaces at its ends".into());
    }
    if name.chars().count() > 128 {
        return Some("its name is longer than a code may be (128 characters)".into());
    }
    if name.starts_with(FORMULA) || name.chars().any(char::is_control) {
        return Some("its name starts like a formula or holds a control character".into());
    }
    if !trimmed(description) || description.chars().count() > 1000 {
        return Some("its description has spaces at its ends or is over 1,000 characters".into());
    }
    if description.starts_with(FORMULA)
        || description
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n'))
    {
        return Some("its description starts like a formula or holds a control character".into());
    }
    if !is_id(profile) {
        return Some(format!("its routing profile id `{profile}` is not an id"));
    }
    None
}

/// Why a value cannot be an `employee_id` (typed text, one line, at most 128 characters).
fn unexpressible_employee(value: &str) -> Option<String> {
    if value.trim_matches([' ', '\t', '\r', '\n']) != value || value.chars().count() > 128 {
        Some("has spaces at its ends or is over 128 characters".into())
    } else if value.starts_with(['=', '+', '-', '@']) || value.chars().any(char::is_control) {
        Some("starts like a formula or holds a control character".into())
    } else {
        None
    }
}

/// `[A-Za-z0-9][A-Za-z0-9._:-]{0,127}`: the HRIS files' ids.
fn is_id(value: &str) -> bool {
    let mut bytes = value.bytes();
    value.len() <= 128
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Builds the three files from the live read: pure, deterministic.
fn build(
    live: &Live,
    retired: &[Retired],
    options: &Options,
    dropped: &Dropped,
) -> Result<Export, String> {
    let mut export = Export::default();
    let mut warnings = Vec::new();

    // Definitions by kind, name and locale, each group in the tenant's order.
    let mut groups: BTreeMap<VariantKey, Vec<&skillsync_core::Definition>> = BTreeMap::new();
    let mut invisible = 0;
    for d in &live.definitions {
        if !options.wants(&d.name) {
            export.totals.excluded_definitions += 1;
            continue;
        }
        if d.kind == Kind::Proficiency && !live.sees_proficiencies {
            invisible += 1;
            continue;
        }
        groups
            .entry((d.kind, d.name.clone(), d.locale.clone()))
            .or_default()
            .push(d);
    }
    if invisible > 0 {
        warnings.push(Warning {
            kind: WarningKind::NotVisible,
            message: format!(
                "{invisible} proficiency definitions left out: the users dialect cannot see proficiency assignments"
            ),
            name: None,
            locale: None,
            definition_ids: Vec::new(),
            user_id: None,
        });
        export.totals.left_out_definitions += invisible;
    }

    // Codes: a definition's name, unless a skill and a proficiency share it.
    let mut kinds_of: BTreeMap<&str, BTreeSet<Kind>> = BTreeMap::new();
    for (kind, name, _) in groups.keys() {
        kinds_of.entry(name).or_default().insert(*kind);
    }
    let code_of = |kind: Kind, name: &str| -> String {
        if kind == Kind::Proficiency && kinds_of.get(name).is_some_and(|k| k.len() > 1) {
            format!("{name}_proficiency")
        } else {
            name.to_string()
        }
    };
    let mut renamed = BTreeSet::new();

    let mut owners: HashMap<&DefinitionId, Owner<'_>> = HashMap::new();
    let codes: Vec<String> = groups.keys().map(|(k, n, _)| code_of(*k, n)).collect();
    let mut catalog_rows: Vec<(&str, &Locale, Kind, &skillsync_core::Definition)> = Vec::new();
    for (((kind, name, locale), defs), code) in groups.iter().zip(&codes) {
        let ids: Vec<DefinitionId> = defs.iter().map(|d| d.id.clone()).collect();
        let left_out = |kind_of: WarningKind, why: String| {
            let mut w = Warning::definition(kind_of, name, locale, why);
            w.definition_ids = ids.clone();
            w
        };
        let what = format!("{kind} {name} ({locale})");
        if let Some(r) = retired.iter().find(|r| {
            (r.code.as_str() == code && &r.locale == locale)
                || r.definitions.iter().any(|id| ids.contains(id))
        }) {
            warnings.push(left_out(
                WarningKind::Retired,
                format!("{what} was retired in run {}: left out", r.run),
            ));
            export.totals.left_out_definitions += defs.len();
            continue;
        }
        if let Some(why) = dropped.variants.get(&(*kind, name.clone(), locale.clone())) {
            warnings.push(left_out(
                WarningKind::Unexpressible,
                format!("{what} left out: {why}"),
            ));
            export.totals.left_out_definitions += defs.len();
            continue;
        }
        // The one `plan` resolves the row to: the oldest active, else the oldest.
        let canonical = defs.iter().find(|d| d.active).unwrap_or(&defs[0]);
        if !canonical.active {
            warnings.push(left_out(
                WarningKind::Inactive,
                format!(
                    "{what} is inactive{}: left out (a catalog row would make apply reactivate it); assignments to it are left as they are",
                    if defs.len() > 1 { " in every copy" } else { "" }
                ),
            ));
            export.totals.left_out_definitions += defs.len();
            continue;
        }
        if let Some(why) =
            unexpressible(name, &canonical.description, &canonical.routing_profile_id)
        {
            warnings.push(left_out(
                WarningKind::Unexpressible,
                format!("{what} left out: {why}"),
            ));
            export.totals.left_out_definitions += defs.len();
            continue;
        }
        if !live.without_profiles && !live.profile_ids.contains(&canonical.routing_profile_id) {
            warnings.push(left_out(
                WarningKind::Unexpressible,
                format!(
                    "{what} left out: its routing profile {} does not exist",
                    canonical.routing_profile_id
                ),
            ));
            export.totals.left_out_definitions += defs.len();
            continue;
        }
        if defs.len() > 1 {
            let inactive = defs.iter().filter(|d| !d.active).count();
            warnings.push(left_out(
                WarningKind::Duplicate,
                format!(
                    "{what} exists {} times ({inactive} inactive): exported as {} (the oldest active one, as plan resolves it); agents holding another copy are left out",
                    defs.len(),
                    canonical.id
                ),
            ));
            export.totals.left_out_definitions += defs.len() - 1;
        }
        if code != name {
            renamed.insert((name.clone(), code.clone()));
        }
        for d in defs {
            owners.insert(
                &d.id,
                Owner {
                    code,
                    kind: *kind,
                    name,
                    locale,
                    canonical: d.id == canonical.id,
                },
            );
        }
        catalog_rows.push((code, locale, *kind, canonical));
    }
    for (name, code) in renamed {
        warnings.push(Warning {
            kind: WarningKind::CodeRenamed,
            message: format!(
                "{name} names a skill and a proficiency: the proficiency's code is {code}"
            ),
            name: Some(name),
            locale: None,
            definition_ids: Vec::new(),
            user_id: None,
        });
    }
    if catalog_rows.is_empty() {
        return Err(
            "nothing to export: no definition is left in the catalog (check --include/--exclude)"
                .into(),
        );
    }
    catalog_rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let catalog_locales: BTreeSet<&Locale> = catalog_rows.iter().map(|r| r.1).collect();

    // Each user's holdings of the catalog.
    struct Held<'a> {
        owner: &'a Owner<'a>,
        definition: &'a DefinitionId,
        level: u8,
        active: bool,
    }
    // By user id; a user the listing returned twice (its pages shifted during the read) counts
    // once, as its last reading, which is the one `plan` keeps.
    let users: BTreeMap<&UserId, &skillsync_core::UserAssignments> =
        live.users.iter().map(|u| (&u.user_id, u)).collect();
    let mut holdings: Vec<(&UserId, Vec<Held<'_>>, usize)> = Vec::new();
    let mut locale_votes: BTreeMap<&Locale, usize> = BTreeMap::new();
    for user in users.into_values() {
        let mut held = Vec::new();
        let mut outside = 0;
        let proficiencies = match &user.proficiencies {
            Some(list) if live.sees_proficiencies => list.as_slice(),
            _ => &[],
        };
        for (kind, list) in [
            (Kind::Skill, &user.skills[..]),
            (Kind::Proficiency, proficiencies),
        ] {
            for a in list {
                match owners.get(&a.definition).filter(|o| o.kind == kind) {
                    Some(owner) => held.push(Held {
                        owner,
                        definition: &a.definition,
                        level: a.level.get(),
                        active: a.active,
                    }),
                    None => outside += 1,
                }
            }
        }
        let locales: BTreeSet<&Locale> = held.iter().map(|h| h.owner.locale).collect();
        if let [only] = locales.iter().collect::<Vec<_>>()[..] {
            *locale_votes.entry(only).or_default() += 1;
        }
        holdings.push((&user.user_id, held, outside));
    }
    let default_locale = match &options.default_locale {
        Some(locale) if catalog_locales.contains(locale) => locale.clone(),
        Some(locale) => {
            return Err(format!(
                "--default-locale {locale}: no exported definition is in it (the catalog's locales: {})",
                catalog_locales
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        None => locale_votes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(l, _)| (*l).clone())
            .unwrap_or_else(|| (*catalog_locales.first().expect("not empty")).clone()),
    };

    // E-mail addresses more than one user has: none of them can be an employee id.
    let mut shared = BTreeSet::new();
    if let Some(emails) = &options.emails {
        let mut seen = BTreeSet::new();
        for email in emails.values().filter(|e| !e.is_empty()) {
            if !seen.insert(email.as_str()) {
                shared.insert(email.as_str());
            }
        }
    }
    let mut agent_rows = Vec::new();
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    for (user_id, mut held, outside) in holdings {
        let locales: BTreeSet<&Locale> = held.iter().map(|h| h.owner.locale).collect();
        let locale = match options.locale_from {
            LocaleFrom::Assignments => locales
                .first()
                .copied()
                .cloned()
                .unwrap_or_else(|| default_locale.clone()),
            LocaleFrom::Default => default_locale.clone(),
        };
        let mut why = None;
        let employee = match &options.emails {
            None => Ok(user_id.as_str()),
            Some(emails) => match emails.get(user_id).map(String::as_str) {
                None | Some("") => Err("it has no e-mail address for --employee-id email".into()),
                Some(email) if shared.contains(email) => Err(format!(
                    "its e-mail address {email} is another user's too: employee ids must be unique"
                )),
                Some(email) => match unexpressible_employee(email) {
                    Some(why) => Err(format!("its e-mail address {why}")),
                    None => Ok(email),
                },
            },
        };
        if let Some(reason) = dropped.users.get(user_id) {
            why = Some(reason.clone());
        } else if !is_id(user_id.as_str()) {
            why = Some("its user id is not an id the HRIS files accept".to_string());
        } else if let Err(reason) = &employee {
            why = Some(reason.clone());
        } else if locales.iter().any(|l| **l != locale) {
            let shown: Vec<&str> = locales.iter().map(|l| l.as_str()).collect();
            why = Some(format!(
                "holds catalog definitions in {} but an agent has one locale ({locale})",
                shown.join(" and ")
            ));
        } else if let Some(copy) = held.iter().find(|h| !h.owner.canonical) {
            why = Some(format!(
                "holds {} of the duplicated {} {} ({}), not the one exported",
                copy.definition, copy.owner.kind, copy.owner.name, copy.owner.locale
            ));
        } else {
            let mut codes = BTreeSet::new();
            if let Some(twice) = held.iter().find(|h| !codes.insert(h.owner.code)) {
                why = Some(format!("holds {} twice", twice.owner.code));
            }
        }
        if let Some(why) = why {
            warnings.push(Warning::agent(
                user_id,
                format!("user {user_id} left out of agents.csv (plan will not touch them): {why}"),
            ));
            export.totals.left_out_agents += 1;
            continue;
        }
        let employee = employee.expect("checked above");
        export.totals.agents += 1;
        export.totals.assignments_outside_catalog += outside;
        held.sort_by(|a, b| a.owner.code.cmp(b.owner.code));
        agent_rows.push((employee, user_id, locale, held));
    }
    // Both files sorted by employee id (unique), then code.
    agent_rows.sort_by(|a, b| a.0.cmp(b.0));
    for (employee, user_id, locale, held) in &agent_rows {
        row(&mut agents, &[employee, user_id.as_str(), locale.as_str()]);
        for h in held {
            let level = h.level.to_string();
            let active = if h.active { "true" } else { "false" };
            row(&mut assignments, &[employee, h.owner.code, &level, active]);
            export.totals.assignments += 1;
        }
    }
    if export.totals.agents == 0 || export.totals.assignments == 0 {
        return Err(
            "nothing to export: no agent holds a definition of the exported catalog, and plan cannot read an assignments.csv without rows"
                .into(),
        );
    }

    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    for (code, locale, kind, d) in &catalog_rows {
        row(
            &mut catalog,
            &[
                code,
                kind.noun(),
                locale.as_str(),
                &d.name,
                &d.description,
                &d.routing_profile_id,
            ],
        );
    }
    export.totals.definitions = catalog_rows.len();
    export.totals.codes = catalog_rows
        .iter()
        .map(|r| r.0)
        .collect::<BTreeSet<_>>()
        .len();
    export.totals.locales = catalog_locales.len();
    warnings.sort_by(|a, b| (a.kind, &a.message).cmp(&(b.kind, &b.message)));
    export.catalog = catalog;
    export.agents = agents;
    export.assignments = assignments;
    export.default_locale = Some(default_locale);
    export.warnings = warnings;
    Ok(export)
}

/// Warnings on stderr (human: the first 20 of each kind), the summary on stdout.
fn report(args: &ExportArgs, config: &Config, export: &Export, shown: &[String]) {
    let mut by_kind: BTreeMap<WarningKind, usize> = BTreeMap::new();
    for warning in &export.warnings {
        let seen = by_kind.entry(warning.kind).or_default();
        *seen += 1;
        if *seen <= 20 {
            eprintln!("warning: {}", warning.message);
        }
    }
    for (kind, count) in &by_kind {
        if *count > 20 {
            eprintln!(
                "warning: … and {} more like this ({kind:?}); --output json lists them all",
                count - 20
            );
        }
    }
    let totals = &export.totals;
    match args.common.output {
        OutputFormat::Json => {
            let document = ExportDocument {
                schema_version: SCHEMA_VERSION,
                files: Files {
                    catalog: shown[0].clone(),
                    agents: shown[1].clone(),
                    assignments: shown[2].clone(),
                },
                employee_id: args.employee_id,
                locale_from: args.locale_from,
                default_locale: export.default_locale.as_ref(),
                totals,
                warnings: &export.warnings,
            };
            if let Err(error) = print_json(&document) {
                eprintln!("error: {error:#}");
            }
        }
        OutputFormat::Human => {
            let mut text = String::new();
            let width = shown.iter().map(|s| s.chars().count()).max().unwrap_or(0);
            let _ = writeln!(
                text,
                "Exported {} to {}:",
                config.tenant.api_base,
                args.out.display()
            );
            let _ = writeln!(
                text,
                "  {:w$}  {} definitions: {} codes in {} locales",
                shown[0],
                totals.definitions,
                totals.codes,
                totals.locales,
                w = width
            );
            let _ = writeln!(
                text,
                "  {:w$}  {} agents (employee_id = {}; locale from {}, default {})",
                shown[1],
                totals.agents,
                match args.employee_id {
                    EmployeeIdFrom::UserId => "user id",
                    EmployeeIdFrom::Email => "e-mail address",
                },
                match args.locale_from {
                    LocaleFrom::Assignments => "the definitions they hold",
                    LocaleFrom::Default => "--default-locale",
                },
                export
                    .default_locale
                    .as_ref()
                    .map_or("none", |l| l.as_str()),
                w = width
            );
            let _ = writeln!(
                text,
                "  {:w$}  {} assignments",
                shown[2],
                totals.assignments,
                w = width
            );
            let mut left_out = Vec::new();
            if totals.excluded_definitions > 0 {
                left_out.push(format!(
                    "{} definitions by --include/--exclude",
                    totals.excluded_definitions
                ));
            }
            if totals.left_out_definitions > 0 {
                left_out.push(format!(
                    "{} definitions the files cannot express (warnings above)",
                    totals.left_out_definitions
                ));
            }
            if totals.left_out_agents > 0 {
                left_out.push(format!(
                    "{} users (warnings above; plan will not touch them)",
                    totals.left_out_agents
                ));
            }
            if totals.assignments_outside_catalog > 0 {
                left_out.push(format!(
                    "{} assignments to definitions outside the catalog (plan never touches them)",
                    totals.assignments_outside_catalog
                ));
            }
            if !left_out.is_empty() {
                let _ = writeln!(text, "Left out: {}.", left_out.join("; "));
            }
            let _ = writeln!(
                text,
                "`skillsync plan` against these files reports no changes; the HRIS takes them over from here (give employee_id the HRIS's ids first if they differ)."
            );
            crate::output::out!("{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skillsync_core::{Assignment, Definition, Level, UserAssignments, Version};

    fn locale(tag: &str) -> Locale {
        Locale::parse(tag).unwrap()
    }

    fn definition(id: &str, kind: Kind, name: &str, tag: &str) -> Definition {
        Definition {
            id: DefinitionId(id.into()),
            kind,
            name: name.into(),
            locale: locale(tag),
            active: true,
            description: String::new(),
            routing_profile_id: "p-1".into(),
            version: Version(1),
        }
    }

    fn user(id: &str, skills: &[(&str, u8)]) -> UserAssignments {
        UserAssignments {
            user_id: UserId(id.into()),
            skills: skills
                .iter()
                .map(|(d, level)| Assignment {
                    definition: DefinitionId((*d).into()),
                    level: Level::new(i64::from(*level)).unwrap(),
                    active: true,
                })
                .collect(),
            proficiencies: Some(Vec::new()),
            version: Version(1),
            modified_at: None,
            unmapped: Default::default(),
        }
    }

    fn options() -> Options {
        Options {
            emails: None,
            include: None,
            exclude: None,
            locale_from: LocaleFrom::Assignments,
            default_locale: None,
        }
    }

    fn live(definitions: Vec<Definition>, users: Vec<UserAssignments>) -> Live {
        Live {
            definitions,
            users,
            profile_ids: ["p-1".to_string()].into(),
            sees_proficiencies: true,
            without_profiles: false,
        }
    }

    #[test]
    fn a_user_listed_twice_is_one_agent_as_last_read_and_the_default_locale_is_the_most_held() {
        let live = live(
            vec![
                definition("s-en", Kind::Skill, "Sales", "en-us"),
                definition("s-de", Kind::Skill, "Sales", "de-de"),
            ],
            vec![
                user("u-1", &[("s-de", 2)]),
                user("u-2", &[("s-de", 3)]),
                user("u-1", &[("s-de", 4)]),
                user("u-3", &[("s-en", 5)]),
                user("u-4", &[]),
            ],
        );
        let export = build(&live, &[], &options(), &Dropped::default()).unwrap();
        assert_eq!(
            export.agents,
            "employee_id,user_id,locale\nu-1,u-1,de-de\nu-2,u-2,de-de\nu-3,u-3,en-us\nu-4,u-4,de-de\n"
        );
        assert_eq!(
            export.assignments,
            "employee_id,code,level,active\nu-1,Sales,4,true\nu-2,Sales,3,true\nu-3,Sales,5,true\n"
        );
        assert_eq!(export.default_locale, Some(locale("de-de")));
    }

    #[test]
    fn a_name_shared_by_both_kinds_gets_two_codes_and_text_is_quoted_only_when_needed() {
        let mut skill = definition("s", Kind::Skill, "Mentor", "en-us");
        skill.description = "coach, \"senior\"\nline two".into();
        let live = live(
            vec![skill, definition("p", Kind::Proficiency, "Mentor", "en-us")],
            vec![UserAssignments {
                proficiencies: Some(vec![Assignment {
                    definition: DefinitionId("p".into()),
                    level: Level::new(1).unwrap(),
                    active: false,
                }]),
                ..user("u-1", &[("s", 7)])
            }],
        );
        let export = build(&live, &[], &options(), &Dropped::default()).unwrap();
        assert_eq!(
            export.catalog,
            "code,kind,locale,name,description,routing_profile_id\n\
             Mentor,skill,en-us,Mentor,\"coach, \"\"senior\"\"\nline two\",p-1\n\
             Mentor_proficiency,proficiency,en-us,Mentor,,p-1\n"
        );
        assert_eq!(
            export.assignments,
            "employee_id,code,level,active\nu-1,Mentor,7,true\nu-1,Mentor_proficiency,1,false\n"
        );
        assert!(
            export
                .warnings
                .iter()
                .any(|w| w.kind == WarningKind::CodeRenamed)
        );
    }

    #[test]
    fn shared_or_missing_emails_leave_their_users_out() {
        let live = live(
            vec![definition("s", Kind::Skill, "Sales", "en-us")],
            vec![
                user("u-1", &[("s", 1)]),
                user("u-2", &[("s", 2)]),
                user("u-3", &[("s", 3)]),
                user("u-4", &[("s", 4)]),
            ],
        );
        let emails = [("u-1", "a@x"), ("u-2", "a@x"), ("u-3", "c@x"), ("u-4", "")]
            .into_iter()
            .map(|(u, e)| (UserId(u.into()), e.to_string()))
            .collect();
        let options = Options {
            emails: Some(emails),
            ..options()
        };
        let export = build(&live, &[], &options, &Dropped::default()).unwrap();
        assert_eq!(export.agents, "employee_id,user_id,locale\nc@x,u-3,en-us\n");
        assert_eq!(export.totals.left_out_agents, 3);
    }

    #[test]
    fn patterns_choose_what_is_owned_and_an_empty_catalog_is_refused() {
        let live = live(
            vec![
                definition("s", Kind::Skill, "Sales", "en-us"),
                definition("x", Kind::Skill, "Ext_QA", "en-us"),
            ],
            vec![user("u-1", &[("s", 1), ("x", 2)])],
        );
        let exclude = Options {
            exclude: globs(&["Ext_*".into()], "--exclude").unwrap(),
            ..options()
        };
        let export = build(&live, &[], &exclude, &Dropped::default()).unwrap();
        assert!(!export.catalog.contains("Ext_QA"));
        assert_eq!(export.totals.assignments_outside_catalog, 1);
        let nothing = Options {
            include: globs(&["Nope*".into()], "--include").unwrap(),
            ..options()
        };
        assert!(build(&live, &[], &nothing, &Dropped::default()).is_err());
    }
}

//! Loading what every sync command starts from: the config, then the HRIS files, all checked
//! before anything touches the network.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use skillsync_core::hris::{Loaded, Source, read_desired};
use skillsync_core::{DialectCarries, Problem, refuse_uncarried};

use crate::config::Config;

/// Reads and validates the three HRIS files named by the config, and refuses the rows the
/// configured dialect cannot carry (see [`carries`]), all before any request.
pub fn read_hris(config: &Config) -> Result<Loaded, Vec<Problem>> {
    let sources = &config.sources;
    let open = |path: &Path| -> Result<Source<BufReader<File>>, Problem> {
        let name = display(path);
        File::open(path)
            .map(|file| Source {
                name: name.clone(),
                reader: BufReader::with_capacity(1 << 16, file),
            })
            .map_err(|e| {
                Problem::error(&name, format!("cannot read: {e}"))
                    .hint(format!("check [source] in {}", config.path.display()))
            })
    };
    let (catalog, agents, assignments) = (
        open(&sources.catalog),
        open(&sources.agents),
        open(&sources.assignments),
    );
    let loaded = match (catalog, agents, assignments) {
        (Ok(c), Ok(a), Ok(s)) => read_desired(c, a, s)?,
        (c, a, s) => return Err([c.err(), a.err(), s.err()].into_iter().flatten().collect()),
    };
    let loaded = refuse_uncarried(loaded, &carries(config))?;
    if config.tenant.dialect.capabilities().locale_in_name {
        name_variants(loaded, config.tenant.name_pattern.as_ref())
    } else {
        Ok(loaded)
    }
}

/// For a dialect whose skills carry the locale in their name (cxone): each catalog variant's
/// tenant name, by `[tenant] name_pattern` when it is set (else the catalog's `name` as it is),
/// refusing two variants the tenant would take for one skill (it compares names ignoring case).
fn name_variants(
    mut loaded: Loaded,
    pattern: Option<&skillsync_core::NamePattern>,
) -> Result<Loaded, Vec<Problem>> {
    let file = loaded.desired.files.catalog.clone();
    let mut seen: std::collections::HashMap<String, (String, u64)> =
        std::collections::HashMap::new();
    let mut problems = Vec::new();
    if let Some(pattern) = pattern {
        for ((code, locale), entry) in loaded.desired.catalog.entries.iter_mut() {
            entry.name = pattern.render(code.as_str(), locale);
        }
    }
    // In file order, so the second of two rows is the one blamed.
    let mut in_file: Vec<_> = loaded.desired.catalog.entries.iter().collect();
    in_file.sort_by_key(|(_, entry)| entry.line);
    for ((code, locale), entry) in in_file {
        let key = entry.name.to_lowercase();
        if let Some((other, line)) = seen.get(&key) {
            problems.push(
                Problem::error(
                    &file,
                    format!(
                        "{code} ({locale}) is named {} in the tenant, as is {other} at line {line}: the tenant compares skill names ignoring case, so they would be one skill",
                        entry.name
                    ),
                )
                .at_line(entry.line)
                .hint("give each variant its own name (the `name` column, or [tenant] name_pattern)"),
            );
        } else {
            seen.insert(key, (format!("{code} ({locale})"), entry.line));
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems)
    }
}

/// What the configured dialect can carry in a user's assignments, as its client declares it,
/// known from the config alone: no client is set up and nothing is sent. `skillsync assign`
/// checks its one assignment with it through [`skillsync_core::uncarried_assignment`].
pub fn carries(config: &Config) -> DialectCarries {
    config.tenant.dialect.capabilities().carries()
}

/// A path as the user will recognise it: relative to the working directory when it can be.
pub fn display(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// What every command that talks to the tenant starts from: the config, the validated HRIS
/// files and a client. Opening it reports any problem (exit 1) before the first request.
pub struct Session {
    /// The resolved config.
    pub config: Config,
    /// The validated HRIS files.
    pub loaded: Loaded,
    /// The tenant client.
    pub api: std::sync::Arc<dyn skillsync_cxone::TenantApi>,
}

impl Session {
    /// Loads the config and files and sets up the client; `Err(code)` once problems are printed.
    pub async fn open(
        common: &crate::args::CommonArgs,
    ) -> anyhow::Result<Result<Session, std::process::ExitCode>> {
        use anyhow::Context;
        let invalid =
            |problems: &[Problem]| Ok(Err(crate::cmd::validate::report_problems(common, problems)));
        let config = match Config::load(&common.config) {
            Ok(config) => config,
            Err(problems) => return invalid(&problems),
        };
        let mut loaded = match read_hris(&config) {
            Ok(loaded) => loaded,
            Err(problems) => return invalid(&problems),
        };
        loaded.desired.retired = Self::retirements(&config).await?;
        let settings = match config.client_settings() {
            Ok(settings) => settings,
            Err(problems) => return invalid(&problems),
        };
        let api = skillsync_cxone::connect(&settings).context("cannot set up the tenant client")?;
        Ok(Ok(Session {
            config,
            loaded,
            api,
        }))
    }

    /// Reads the live tenant.
    pub async fn read_live(
        &self,
        progress: &(dyn Fn(skillsync_engine::LiveProgress) + Sync),
    ) -> anyhow::Result<skillsync_core::Live> {
        use anyhow::Context;
        skillsync_engine::read_live(self.api.as_ref(), &self.loaded.desired.catalog, progress)
            .await
            .with_context(|| format!("cannot read the tenant at {}", self.config.tenant.api_base))
    }

    /// The catalog variants `skillsync retire` took out of management, from the journal:
    /// every plan leaves them alone.
    pub async fn retirements(config: &Config) -> anyhow::Result<Vec<skillsync_core::Retired>> {
        use anyhow::Context;
        let url = config.store_shown();
        // No journal yet means nothing was ever retired; plan and drift must not create one.
        let Some(journal) = skillsync_store::open_existing(&config.store_connect_url()?)
            .await
            .with_context(|| {
                format!("cannot open the journal ({url}) to learn which codes are retired")
            })?
        else {
            return Ok(Vec::new());
        };
        skillsync_engine::retirements(journal.as_ref())
            .await
            .with_context(|| {
                format!("cannot learn from the journal ({url}) which codes are retired")
            })
    }

    /// What the journal knows skillsync manages (nothing without a journal yet), and what
    /// `--adopt` lets this run take over.
    pub async fn ownership(
        &self,
        adopt: &crate::args::AdoptArgs,
    ) -> anyhow::Result<skillsync_core::Ownership> {
        use anyhow::Context;
        let url = self.config.store_shown();
        let managed = match skillsync_store::open_existing(&self.config.store_connect_url()?)
            .await
            .with_context(|| format!("cannot open the journal ({url})"))?
        {
            Some(journal) => skillsync_engine::managed_definitions(journal.as_ref())
                .await
                .with_context(|| {
                    format!(
                        "cannot learn from the journal ({url}) which definitions skillsync manages"
                    )
                })?,
            None => Default::default(),
        };
        Ok(skillsync_core::Ownership {
            managed,
            adopt: skillsync_core::Adopt::from_args(&adopt.adopt),
        })
    }

    /// Plans against `live`, with the files' warnings first; `Err(code)` once problems are printed.
    pub fn plan(
        &self,
        live: &skillsync_core::Live,
        common: &crate::args::CommonArgs,
    ) -> Result<skillsync_core::Plan, std::process::ExitCode> {
        let options = self
            .config
            .plan_options(self.api.capabilities().max_bulk_entries.is_some());
        match skillsync_core::plan(&self.loaded.desired, live, &options) {
            Ok(mut plan) => {
                plan.warnings
                    .splice(0..0, self.loaded.warnings.iter().cloned());
                Ok(plan)
            }
            Err(problems) => Err(crate::cmd::validate::report_problems(common, &problems)),
        }
    }
}

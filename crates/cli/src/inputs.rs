//! Loading what every sync command starts from: the config, then the HRIS files, all checked
//! before anything touches the network.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use skillsync_core::hris::{Loaded, Source, read_catalog_first};
use skillsync_core::{DialectCarries, Problem, refuse_uncarried};

use crate::config::Config;

/// Reads and validates the three HRIS files named by the config, and refuses the rows the
/// configured dialect cannot carry (see [`carries`]), all before any request.
pub fn read_hris(config: &Config) -> Result<Loaded, Vec<Problem>> {
    let (catalog, agents, assignments) = open_sources(config)?;
    Checks::of(config).apply(read_catalog_first(catalog).read_rest(agents, assignments))
}

/// The HRIS files being read: the catalog already (small, and all the tenant's read needs),
/// the agents and assignments on a blocking thread.
pub struct HrisReading {
    /// The catalog as the tenant names it, when `catalog.csv` has no error: what the tenant's
    /// read can start from while the rest is read.
    pub catalog: Option<skillsync_core::Catalog>,
    rest: tokio::task::JoinHandle<Result<Loaded, Vec<Problem>>>,
}

impl HrisReading {
    /// Starts reading the files named by the config: what [`read_hris`] reads, with the same
    /// problems, the larger files meanwhile.
    pub fn start(config: &Config) -> HrisReading {
        let checks = Checks::of(config);
        let (catalog, agents, assignments) = match open_sources(config) {
            Ok(sources) => sources,
            Err(problems) => {
                return HrisReading {
                    catalog: None,
                    rest: tokio::task::spawn(std::future::ready(Err(problems))),
                };
            }
        };
        let first = read_catalog_first(catalog);
        let catalog = first.catalog().cloned().map(|mut catalog| {
            checks.tenant_names(&mut catalog);
            catalog
        });
        let rest =
            tokio::task::spawn_blocking(move || checks.apply(first.read_rest(agents, assignments)));
        HrisReading { catalog, rest }
    }

    /// The files read and checked.
    pub async fn finish(self) -> Result<Loaded, Vec<Problem>> {
        self.rest
            .await
            .expect("reading the HRIS files does not panic")
    }
}

/// What a sync of everyone prepares under the lease from the files read: their desired state
/// with the journal's retirements, and their warnings.
pub async fn prepared(
    mut loaded: Loaded,
    journal: &dyn skillsync_store::Journal,
) -> Result<skillsync_engine::Prepared, skillsync_engine::Error> {
    loaded.desired.retired = skillsync_engine::retirements(journal).await?;
    Ok(skillsync_engine::Prepared {
        desired: std::sync::Arc::new(loaded.desired),
        warnings: loaded.warnings,
        users: None,
    })
}

type Sources = (
    Source<BufReader<File>>,
    Source<BufReader<File>>,
    Source<BufReader<File>>,
);

/// The three files opened, or a problem for each that cannot be.
fn open_sources(config: &Config) -> Result<Sources, Vec<Problem>> {
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
    match (
        open(&sources.catalog),
        open(&sources.agents),
        open(&sources.assignments),
    ) {
        (Ok(c), Ok(a), Ok(s)) => Ok((c, a, s)),
        (c, a, s) => Err([c.err(), a.err(), s.err()].into_iter().flatten().collect()),
    }
}

/// What the config adds to the files' own checks: the rows the dialect cannot carry, and, for
/// a dialect that carries the locale in a skill's name, the names the tenant knows.
struct Checks {
    carries: DialectCarries,
    /// `Some` for a dialect with the locale in the name: `[tenant] name_pattern`, if set.
    names: Option<Option<skillsync_core::NamePattern>>,
}

impl Checks {
    fn of(config: &Config) -> Checks {
        Checks {
            carries: carries(config),
            names: config
                .tenant
                .dialect
                .capabilities()
                .locale_in_name
                .then(|| config.tenant.name_pattern.clone()),
        }
    }

    fn apply(&self, loaded: Result<Loaded, Vec<Problem>>) -> Result<Loaded, Vec<Problem>> {
        let mut loaded = refuse_uncarried(loaded?, &self.carries)?;
        match &self.names {
            Some(_) => {
                self.tenant_names(&mut loaded.desired.catalog);
                refuse_one_name_for_two(loaded)
            }
            None => Ok(loaded),
        }
    }

    /// Each catalog variant's tenant name, by `[tenant] name_pattern` when it is set (else
    /// the catalog's `name` as it is).
    fn tenant_names(&self, catalog: &mut skillsync_core::Catalog) {
        if let Some(Some(pattern)) = &self.names {
            for ((code, locale), entry) in catalog.entries.iter_mut() {
                entry.name = pattern.render(code.as_str(), locale);
            }
        }
    }
}

/// For a dialect whose skills carry the locale in their name (cxone): refuses two variants the
/// tenant would take for one skill (it compares names ignoring case).
fn refuse_one_name_for_two(loaded: Loaded) -> Result<Loaded, Vec<Problem>> {
    let file = loaded.desired.files.catalog.clone();
    let mut seen: std::collections::HashMap<String, (String, u64)> =
        std::collections::HashMap::new();
    let mut problems = Vec::new();
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

/// The files' problems, as an error that ends a join.
struct Refused(Vec<Problem>);

/// A path as the user will recognise it: relative to the working directory when it can be.
pub fn display(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A session whose HRIS files are still being read: [`Session::open_reading`].
pub struct Opening {
    /// The resolved config.
    pub config: Config,
    /// The files, being read.
    pub reading: HrisReading,
    /// The tenant client.
    pub api: std::sync::Arc<dyn skillsync_cxone::TenantApi>,
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

    /// The config checked and the client set up, the HRIS files being read ([`HrisReading`]):
    /// for a command that can start reading the tenant from the catalog meanwhile. Config
    /// problems are reported here; the files' when they are finished.
    pub async fn open_reading(
        common: &crate::args::CommonArgs,
    ) -> anyhow::Result<Result<Opening, std::process::ExitCode>> {
        use anyhow::Context;
        let invalid =
            |problems: &[Problem]| Ok(Err(crate::cmd::validate::report_problems(common, problems)));
        let config = match Config::load(&common.config) {
            Ok(config) => config,
            Err(problems) => return invalid(&problems),
        };
        let settings = match config.client_settings() {
            Ok(settings) => settings,
            // The files' problems come first, as `open` reports them.
            Err(problems) => return invalid(&read_hris(&config).err().unwrap_or(problems)),
        };
        let reading = HrisReading::start(&config);
        let api = skillsync_cxone::connect(&settings).context("cannot set up the tenant client")?;
        Ok(Ok(Opening {
            config,
            reading,
            api,
        }))
    }

    /// [`Session::open`] and [`Session::read_live`] at once, for the commands that only read
    /// (`plan`, `drift`): the tenant is read from the catalog while the agents and assignments
    /// files are read, and a file with an error stops the read, so the problems are reported
    /// as [`Session::open`] reports them, with no write and no more calls.
    pub async fn open_and_read(
        common: &crate::args::CommonArgs,
        progress: &(dyn Fn(skillsync_engine::LiveProgress) + Sync),
    ) -> anyhow::Result<Result<(Session, skillsync_core::Live), std::process::ExitCode>> {
        use anyhow::Context;
        use futures::FutureExt;
        let Opening {
            config,
            reading,
            api,
        } = match Self::open_reading(common).await? {
            Ok(opening) => opening,
            Err(code) => return Ok(Err(code)),
        };
        let read_from = reading.catalog.clone();
        let read = async {
            match &read_from {
                Some(catalog) => Some(
                    skillsync_engine::read_live(api.as_ref(), catalog, progress)
                        .await
                        .with_context(|| {
                            format!("cannot read the tenant at {}", config.tenant.api_base)
                        }),
                ),
                None => None,
            }
        };
        // Dropping the read when the files are refused cancels its requests.
        let files = reading.finish().map(|loaded| loaded.map_err(Refused));
        let (mut loaded, read) = match futures::future::try_join(files, read.map(Ok)).await {
            Ok(both) => both,
            Err(Refused(problems)) => {
                return Ok(Err(crate::cmd::validate::report_problems(
                    common, &problems,
                )));
            }
        };
        loaded.desired.retired = Self::retirements(&config).await?;
        let session = Session {
            config,
            loaded,
            api,
        };
        let live = match read {
            Some(live) => live?,
            None => session.read_live(progress).await?,
        };
        Ok(Ok((session, live)))
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

//! `skillsync.toml` (SPEC section 3): parsed strictly (an unknown key is a typo until proven
//! otherwise), with every problem naming the file, line and key, and resolved once into
//! [`Config`]: paths made relative to the config file, secrets read from the environment or a
//! file, limits and sync knobs checked.

mod env;
mod locate;

#[cfg(test)]
mod fuzz;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;
use skillsync_core::{Problem, Window};
use skillsync_cxone::{Dialect, Secret, SettingsProblem};

use locate::Locations;

/// Where a secret comes from: `{ env = "NAME" }`, `{ file = "path" }`, or (discouraged) the
/// value itself.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// From an environment variable.
    Env {
        /// Variable name.
        env: String,
    },
    /// From a file (trailing newline trimmed).
    File {
        /// Path, relative to the config file.
        file: PathBuf,
    },
    /// Written into the config file.
    Literal(String),
}

/// By hand rather than `untagged`, whose refusal ("did not match any variant") says nothing
/// about what to write.
impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected { env = \"NAME\" }, { file = \"PATH\" } or a string";
        let value = toml::Value::deserialize(deserializer)?;
        let wrong = |what: &str| serde::de::Error::custom(format!("{EXPECTED}, found {what}"));
        match value {
            toml::Value::String(text) => Ok(SecretSource::Literal(text)),
            toml::Value::Table(table) => {
                let mut entries = table.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((key, toml::Value::String(text))), None) if key == "env" => {
                        Ok(SecretSource::Env { env: text })
                    }
                    (Some((key, toml::Value::String(text))), None) if key == "file" => {
                        Ok(SecretSource::File { file: text.into() })
                    }
                    (Some((key, _)), None) if key == "env" || key == "file" => {
                        Err(wrong(&format!("`{key}` that is not a string")))
                    }
                    (Some((key, _)), None) => Err(wrong(&format!("the key `{key}`"))),
                    (None, _) => Err(wrong("an empty table")),
                    (Some(_), Some(_)) => Err(wrong("a table of several keys")),
                }
            }
            other => Err(wrong(&format!("a {}", other.type_str()))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    tenant: TenantSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    sync: SyncSection,
    source: SourceSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    serve: ServeSection,
}

/// `[serve]`: the long-running service (`skillsync serve`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeSection {
    listen: Option<String>,
    webhook_secret: Option<SecretSource>,
    proficiency_flush: Option<String>,
    full_sync_at: Option<String>,
    replay_window: Option<String>,
    request_timeout: Option<String>,
    max_body_bytes: Option<usize>,
    max_queued: Option<u64>,
    status_token: Option<SecretSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantSection {
    api_base: String,
    token_url: Option<String>,
    client_id: SecretSource,
    client_secret: SecretSource,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    dialect: DialectName,
    timezone: Option<String>,
    scopes: Option<Vec<String>>,
    name_pattern: Option<String>,
    proficiency_scale: Option<std::collections::BTreeMap<String, i64>>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DialectName {
    #[default]
    Routing,
    Users,
    Cxone,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LimitsSection {
    requests_per_second: f64,
    burst: u32,
    max_in_flight: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            requests_per_second: 10.0,
            burst: 20,
            max_in_flight: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SyncSection {
    bulk_threshold: usize,
    bulk_batch_size: usize,
    propagation_window: String,
    window: Option<String>,
    /// A count or a percentage: read by hand, so that each wrong value gets its own message.
    max_removals: Option<toml::Value>,
    /// `keep` or `strip`: read by hand, so that a wrong value names both.
    absent_agents: Option<toml::Value>,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            bulk_threshold: 50,
            bulk_batch_size: 100,
            propagation_window: "30s".into(),
            window: None,
            max_removals: None,
            absent_agents: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    catalog: PathBuf,
    agents: PathBuf,
    assignments: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    url: Option<String>,
    /// The PostgreSQL password, from the environment or a file: kept out of `url` so the
    /// config file can be shared and committed.
    password: Option<SecretSource>,
    /// How long a writing command's lease on the tenant lasts unless renewed (default 60s).
    lease_ttl: Option<String>,
}

/// `[serve]`, resolved.
#[derive(Debug, Clone)]
pub struct Serve {
    /// Where the HTTP surface listens (loopback unless told otherwise).
    pub listen: std::net::SocketAddr,
    /// The HMAC key HRIS events are signed with.
    pub webhook_secret: SecretSource,
    /// How long proficiency events wait to be written together.
    pub proficiency_flush: Duration,
    /// When the nightly full sync runs, wall-clock in the tenant's time zone.
    pub full_sync_at: jiff::civil::Time,
    /// How far a request's signed timestamp may be from the service's clock.
    pub replay_window: Duration,
    /// How long one request may take, its body's arrival included (a client that sends
    /// slowly, or stops, is answered 408 and frees its connection).
    pub request_timeout: Duration,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Events waiting beyond this: new ones are answered 429.
    pub max_queued: u64,
    /// When set, the status page (`/`, `/runs/*`) asks for this token (bearer, or the
    /// password of basic auth); `None`: open to whoever can reach the listener.
    pub status_token: Option<SecretSource>,
}

/// A removal threshold: a count, or a share of the owned assignments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxRemovals {
    /// At most this many removals.
    Count(u64),
    /// At most this percentage of the assignments skillsync owns.
    Percent(f64),
}

/// The HRIS files.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `catalog.csv`.
    pub catalog: PathBuf,
    /// `agents.csv`.
    pub agents: PathBuf,
    /// `assignments.csv`.
    pub assignments: PathBuf,
}

/// The tenant part of the config, with secrets not yet read (validate needs no secrets).
#[derive(Debug, Clone)]
pub struct Tenant {
    pub api_base: String,
    pub token_url: String,
    pub client_id: SecretSource,
    pub client_secret: SecretSource,
    pub ca_file: Option<PathBuf>,
    pub dialect: Dialect,
    /// The IANA name as written; `None` means UTC.
    pub timezone: Option<String>,
    /// `timezone` looked up in the time zone database.
    pub time_zone: TimeZone,
    pub scopes: Vec<String>,
    /// How a catalog variant's tenant skill name is made from its code and locale (cxone);
    /// `None`: the catalog's `name` column is the tenant's name as it is.
    pub name_pattern: Option<skillsync_core::NamePattern>,
    /// HRIS level → the tenant's proficiency value (cxone).
    pub proficiency_scale: skillsync_core::ProficiencyScale,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, as named.
    pub path: PathBuf,
    pub tenant: Tenant,
    pub requests_per_second: f64,
    pub burst: u32,
    pub max_in_flight: usize,
    pub bulk_threshold: usize,
    pub bulk_batch_size: usize,
    pub propagation_window: Duration,
    /// `[sync] window`, in the tenant's time zone; `None`: any time.
    pub window: Option<Window>,
    pub max_removals: MaxRemovals,
    /// `[sync] absent_agents`: what becomes of the owned assignments of tenant users not in
    /// `agents.csv`.
    pub absent_agents: skillsync_core::AbsentAgents,
    pub sources: Sources,
    pub store_url: String,
    /// How long a writing command's lease on the tenant lasts unless renewed.
    pub lease_ttl: Duration,
    /// `[store] password`, put into the URL only when connecting.
    pub store_password: Option<SecretSource>,
    /// `[serve]`.
    pub serve: Serve,
    /// What is allowed but unwise (a secret written into the file), for the caller to say.
    pub warnings: Vec<Problem>,
    /// Where each key is in the file, for problems found after loading.
    locations: Locations,
    /// The keys the environment set over the file's.
    overrides: Vec<env::Override>,
}

impl Config {
    /// Reads and checks the config file (every problem found is returned at once), and says
    /// its warnings on stderr, once per process however many times it is loaded.
    pub fn load(path: &Path) -> Result<Config, Vec<Problem>> {
        static SAID: AtomicBool = AtomicBool::new(false);
        let config = Config::read(path)?;
        if !config.warnings.is_empty() && !SAID.swap(true, Ordering::Relaxed) {
            for warning in &config.warnings {
                eprintln!("{warning}");
            }
        }
        Ok(config)
    }

    /// Reads and checks the config file, keeping its warnings in [`Config::warnings`] for the
    /// caller to report.
    pub fn read(path: &Path) -> Result<Config, Vec<Problem>> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            vec![
                Problem::error(&name, format!("cannot read the config file: {e}")).hint(
                    "pass --config PATH, or run skillsync from the folder holding skillsync.toml",
                ),
            ]
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
            let (line, column) = line_and_column(&valid, offset);
            let mut p = Problem::error(&name, "the config file is not UTF-8 text")
                .at_line(line)
                .hint("save skillsync.toml as UTF-8");
            p.column = Some(column);
            vec![p]
        })?;
        let mut locations = Locations::of(&text);
        let overrides = env::overrides(std::env::vars_os())?;
        let file = read_file(&name, &text, &mut locations, &overrides)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let at = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String, hint: &str| {
            let mut p = at_key(&name, &locations, key, Problem::error(&name, message));
            if !hint.is_empty() {
                p.hint = Some(hint.to_string());
            }
            problems.push(p);
        };

        let tenant = file.tenant;
        let api_base = tenant.api_base.trim_end_matches('/').to_string();
        let token_url = tenant
            .token_url
            .unwrap_or_else(|| format!("{api_base}/oauth/token"));
        let limits = file.limits;
        if !(limits.requests_per_second > 0.0 && limits.requests_per_second.is_finite()) {
            problem(
                "limits.requests_per_second",
                format!("must be positive, got {}", limits.requests_per_second),
                "set it to the tenant's API rate limit",
            );
        }
        if limits.burst == 0 {
            problem("limits.burst", "must be at least 1".into(), "");
        }
        if limits.max_in_flight == 0 {
            problem("limits.max_in_flight", "must be at least 1".into(), "");
        }
        let sync = file.sync;
        if !(1..=100).contains(&sync.bulk_batch_size) {
            problem(
                "sync.bulk_batch_size",
                format!(
                    "must be 1–100 (the tenant's bulk limit), got {}",
                    sync.bulk_batch_size
                ),
                "",
            );
        }
        let propagation_window = match humantime::parse_duration(&sync.propagation_window) {
            Ok(d) => d,
            Err(e) => {
                problem(
                    "sync.propagation_window",
                    format!("`{}`: {e}", sync.propagation_window),
                    "write a duration such as 30s",
                );
                Duration::from_secs(30)
            }
        };
        let lease_ttl = match file
            .store
            .lease_ttl
            .as_deref()
            .map(humantime::parse_duration)
        {
            None => Duration::from_secs(60),
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                problem(
                    "store.lease_ttl",
                    "must be longer than zero".into(),
                    "write a duration such as 60s",
                );
                Duration::from_secs(60)
            }
            Some(Err(e)) => {
                problem(
                    "store.lease_ttl",
                    format!(
                        "`{}`: {e}",
                        file.store.lease_ttl.as_deref().unwrap_or_default()
                    ),
                    "write a duration such as 60s",
                );
                Duration::from_secs(60)
            }
        };
        let max_removals = match sync.max_removals.as_ref().map(max_removals_from) {
            None => MaxRemovals::Percent(10.0),
            Some(Ok(m)) => m,
            Some(Err(message)) => {
                problem(
                    "sync.max_removals",
                    message,
                    "write a count such as 500, or a share of the owned assignments such as \"10%\"",
                );
                MaxRemovals::Percent(10.0)
            }
        };
        let absent_agents = match sync.absent_agents.as_ref().map(absent_agents_from) {
            None => skillsync_core::AbsentAgents::Keep,
            Some(Ok(setting)) => setting,
            Some(Err(message)) => {
                problem(
                    "sync.absent_agents",
                    message,
                    "write \"keep\" (leave users not in agents.csv as they are) or \"strip\" (remove the assignments skillsync owns from them)",
                );
                skillsync_core::AbsentAgents::Keep
            }
        };
        let time_zone = match &tenant.timezone {
            None => TimeZone::UTC,
            Some(name) => match jiff::tz::db().get(name) {
                Ok(time_zone) => time_zone,
                Err(_) => {
                    problem(
                        "tenant.timezone",
                        format!("unknown time zone `{name}`"),
                        "write an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"",
                    );
                    TimeZone::UTC
                }
            },
        };
        let window = match &sync.window {
            None => None,
            Some(text) => match Window::parse(text) {
                Ok(window) => Some(window),
                Err(e) => {
                    problem("sync.window", e.to_string(), e.hint());
                    None
                }
            },
        };
        if let Some(url) = &file.store.url
            && let Some(message) = store_url_problem(url)
        {
            problem(
                "store.url",
                message,
                "write sqlite://PATH (the default is sqlite://skillsync.db beside this file), \
                 sqlite::memory:, or postgres://USER@HOST/DATABASE (postgresql:// too)",
            );
        }
        if let (Some(_), Some(url)) = (&file.store.password, &file.store.url) {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                problem(
                    "store.password",
                    "a password is for a postgres:// journal".into(),
                    "remove store.password, or point store.url at PostgreSQL",
                );
            } else if user_info(url).is_none_or(|(start, end)| start == end) {
                problem(
                    "store.url",
                    "a password needs a user name in the url".into(),
                    "write postgres://USER@host/db",
                );
            } else if url_password(url).is_some() {
                problem(
                    "store.url",
                    "the url carries a password and store.password gives one too".into(),
                    "keep the password out of the url: store.password = { env = \"…\" }",
                );
            }
        }
        let settings_check =
            skillsync_cxone::Settings::new(&api_base, &token_url, "check", Secret::new("check"));
        if let Err(e) = settings_check.validate() {
            let (key, message) = url_problem(&e);
            problem(
                &key,
                message,
                "write the tenant's https:// URL (token_url may be left out: it defaults to api_base/oauth/token)",
            );
        }
        let dialect = match tenant.dialect {
            DialectName::Routing => Dialect::Routing,
            DialectName::Users => Dialect::Users,
            DialectName::Cxone => Dialect::Cxone,
        };
        for (key, set) in [
            ("tenant.name_pattern", tenant.name_pattern.is_some()),
            (
                "tenant.proficiency_scale",
                tenant.proficiency_scale.is_some(),
            ),
        ] {
            if set && dialect != Dialect::Cxone {
                problem(
                    key,
                    format!(
                        "only the cxone dialect uses it (this tenant is {})",
                        dialect.name()
                    ),
                    "remove it, or set dialect = \"cxone\"",
                );
            }
        }
        let name_pattern = match tenant.name_pattern.as_deref() {
            None => None,
            Some(text) => match skillsync_core::NamePattern::parse(text) {
                Ok(pattern) => Some(pattern),
                Err(e) => {
                    problem(
                        "tenant.name_pattern",
                        e.to_string(),
                        "write the tenant's naming rule with {code} and {locale}, e.g. \"{code}_{locale}\"",
                    );
                    None
                }
            },
        };
        let proficiency_scale = match &tenant.proficiency_scale {
            None => skillsync_core::ProficiencyScale::cxone_default(),
            Some(table) => {
                let mut entries = Vec::with_capacity(table.len());
                for (level, value) in table {
                    match level.trim().parse::<i64>() {
                        Ok(level) => entries.push((level, *value)),
                        Err(_) => problem(
                            "tenant.proficiency_scale",
                            format!("`{level}` is not an HRIS level"),
                            "key each tenant value by its HRIS level, 1 to 10: \"10\" = 1",
                        ),
                    }
                }
                match skillsync_core::ProficiencyScale::from_table(&entries) {
                    Ok(scale) => scale,
                    Err(e) => {
                        problem(
                            "tenant.proficiency_scale",
                            e.to_string(),
                            "map every HRIS level 1 to 10 to its own tenant value 1 to 20 (1 is the tenant's best), or leave the table out for 10 → 1, 9 → 3, … 1 → 19",
                        );
                        skillsync_core::ProficiencyScale::cxone_default()
                    }
                }
            }
        };
        let serve_section = file.serve;
        let mut duration = |key: &str, text: Option<&str>, default: Duration| match text
            .map(humantime::parse_duration)
        {
            None => default,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                problem(
                    key,
                    "must be longer than zero".into(),
                    "write a duration such as 30s",
                );
                default
            }
            Some(Err(e)) => {
                problem(
                    key,
                    format!("`{}`: {e}", text.unwrap_or_default()),
                    "write a duration such as 30s or 5m",
                );
                default
            }
        };
        let proficiency_flush = duration(
            "serve.proficiency_flush",
            serve_section.proficiency_flush.as_deref(),
            Duration::from_secs(30),
        );
        let replay_window = duration(
            "serve.replay_window",
            serve_section.replay_window.as_deref(),
            Duration::from_secs(300),
        );
        let request_timeout = duration(
            "serve.request_timeout",
            serve_section.request_timeout.as_deref(),
            Duration::from_secs(30),
        );
        let listen = match serve_section.listen.as_deref() {
            None => std::net::SocketAddr::from(([127, 0, 0, 1], 8787)),
            Some(text) => match text.parse() {
                Ok(address) => address,
                Err(_) => {
                    problem(
                        "serve.listen",
                        format!("`{text}` is not an address and port"),
                        "write IP:PORT, e.g. \"127.0.0.1:8787\" (0.0.0.0:8787 listens on every interface)",
                    );
                    std::net::SocketAddr::from(([127, 0, 0, 1], 8787))
                }
            },
        };
        let full_sync_at = match serve_section.full_sync_at.as_deref() {
            None => window.map_or(jiff::civil::time(2, 0, 0, 0), |w| w.opens()),
            // Seconds are allowed (HH:MM:SS), for a schedule that must be exact.
            Some(text) => match text
                .trim()
                .parse::<jiff::civil::Time>()
                .ok()
                .filter(|_| text.trim().len() == 8)
                .map_or_else(|| skillsync_core::window::parse_time_of_day(text), Ok)
            {
                Ok(at) => {
                    if let Some(w) = &window
                        && !time_in_window(at, w)
                    {
                        problem(
                            "serve.full_sync_at",
                            format!(
                                "{text} is outside [sync] window {}-{}",
                                w.opens().strftime("%H:%M"),
                                w.closes().strftime("%H:%M")
                            ),
                            "pick a time inside the window (the full sync may only write there), or leave full_sync_at out to start when the window opens",
                        );
                    }
                    at
                }
                Err(e) => {
                    problem(
                        "serve.full_sync_at",
                        e.to_string(),
                        "write HH:MM in the tenant's timezone, e.g. \"02:30\"",
                    );
                    jiff::civil::time(2, 0, 0, 0)
                }
            },
        };
        let max_body_bytes = serve_section.max_body_bytes.unwrap_or(1 << 20);
        if max_body_bytes < 1024 {
            problem(
                "serve.max_body_bytes",
                format!("{max_body_bytes} bytes is too small for one event"),
                "leave it out (1 MiB) or give at least 1024",
            );
        }
        let max_queued = serve_section.max_queued.unwrap_or(100_000);
        if max_queued == 0 {
            problem("serve.max_queued", "must be at least 1".into(), "");
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let serve = Serve {
            listen,
            webhook_secret: serve_section
                .webhook_secret
                .unwrap_or_else(|| SecretSource::Env {
                    env: "SKILLSYNC_WEBHOOK_SECRET".into(),
                }),
            proficiency_flush,
            full_sync_at,
            replay_window,
            request_timeout,
            max_body_bytes,
            max_queued,
            status_token: serve_section.status_token,
        };
        let mut warnings = Vec::new();
        for (key, source) in [
            ("tenant.client_secret", Some(&tenant.client_secret)),
            ("store.password", file.store.password.as_ref()),
            ("serve.webhook_secret", Some(&serve.webhook_secret)),
            ("serve.status_token", serve.status_token.as_ref()),
        ] {
            if let Some(SecretSource::Literal(_)) = source {
                let warning = Problem::warning(
                    &name,
                    format!("{key} is written in the config file in plain text"),
                )
                .hint(format!(
                    "keep secrets out of files that are shared or committed: \
                     {key} = {{ env = \"NAME\" }} reads it from the environment, \
                     {key} = {{ file = \"PATH\" }} from a file only you can read (chmod 600)"
                ));
                warnings.push(at_key(&name, &locations, key, warning));
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            tenant: Tenant {
                api_base,
                token_url,
                client_id: tenant.client_id,
                client_secret: tenant.client_secret,
                ca_file: tenant.ca_file.as_deref().map(&at),
                dialect,
                name_pattern,
                proficiency_scale,
                timezone: tenant.timezone,
                time_zone,
                scopes: tenant.scopes.unwrap_or_default(),
            },
            requests_per_second: limits.requests_per_second,
            burst: limits.burst,
            max_in_flight: limits.max_in_flight,
            bulk_threshold: sync.bulk_threshold,
            bulk_batch_size: sync.bulk_batch_size,
            propagation_window,
            window,
            max_removals,
            absent_agents,
            sources: Sources {
                catalog: at(&file.source.catalog),
                agents: at(&file.source.agents),
                assignments: at(&file.source.assignments),
            },
            lease_ttl,
            serve,
            store_password: file.store.password,
            store_url: file
                .store
                .url
                .unwrap_or_else(|| format!("sqlite://{}", base.join("skillsync.db").display())),
            warnings,
            locations,
            overrides,
        })
    }

    /// A problem with the value of `key`, at its line when the file has it.
    fn problem_at(&self, key: &str, message: String, hint: String) -> Problem {
        let name = self.path.display().to_string();
        at_key(
            &name,
            &self.locations,
            key,
            Problem::error(&name, message).hint(hint),
        )
    }

    /// `[tenant] ca_file` loaded as the client will load it, so that a file that is not a PEM
    /// certificate is refused before any command needs it.
    pub fn ca_file_problem(&self) -> Option<Problem> {
        let path = self.tenant.ca_file.as_ref()?;
        let mut settings = skillsync_cxone::Settings::new(
            &self.tenant.api_base,
            &self.tenant.token_url,
            "check",
            Secret::new("check"),
        );
        settings.ca_file = Some(path.clone());
        match skillsync_cxone::routing(&settings) {
            Err(skillsync_cxone::Error::CaFile { problem, .. }) => Some(
                self.problem_at(
                    "tenant.ca_file",
                    format!(
                        "cannot use {} as a CA certificate: {}",
                        path.display(),
                        chain(&problem)
                    ),
                    "point ca_file at the PEM certificate (-----BEGIN CERTIFICATE-----) of the \
                 authority that signed the tenant's certificate, such as the one \
                 `skillsync sim --tls` writes"
                        .into(),
                ),
            ),
            Err(other) => Some(self.problem_at(
                "tenant.ca_file",
                format!("cannot use {}: {}", path.display(), chain(&other)),
                String::new(),
            )),
            Ok(_) => None,
        }
    }

    /// Reads a secret, naming the config key (and its line) when it cannot.
    pub fn secret(&self, key: &str, source: &SecretSource) -> Result<Secret, Problem> {
        let fail = |message: String, hint: String| self.problem_at(key, message, hint);
        match source {
            SecretSource::Env { env } => match std::env::var(env) {
                Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
                _ => Err(fail(
                    format!("environment variable {env} is not set"),
                    format!(
                        "export {env}=… before running, or point {key} at a file with {{ file = \"…\" }}"
                    ),
                )),
            },
            SecretSource::File { file } => {
                let base = self
                    .path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let path = if file.is_absolute() {
                    file.clone()
                } else {
                    base.join(file)
                };
                let shown = path.display();
                let or_env =
                    format!("or read it from the environment: {key} = {{ env = \"NAME\" }}");
                match std::fs::read(&path) {
                    Ok(bytes) => match String::from_utf8(bytes) {
                        Ok(text) if !text.trim().is_empty() => {
                            Ok(Secret::new(text.trim_end_matches(['\r', '\n'])))
                        }
                        Ok(_) => Err(fail(
                            format!("secret file {shown} is empty"),
                            format!(
                                "write the secret into {shown} (a final newline is fine), {or_env}"
                            ),
                        )),
                        Err(_) => Err(fail(
                            format!("secret file {shown} is not UTF-8 text"),
                            format!("write the secret into {shown} as text, {or_env}"),
                        )),
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(fail(
                        format!("secret file {shown} does not exist"),
                        format!(
                            "create {shown} holding only the secret, readable only by you \
                             (chmod 600), {or_env}"
                        ),
                    )),
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(fail(
                        format!("secret file {shown} cannot be read: {e}"),
                        format!(
                            "let the user running skillsync read {shown} (and nobody else: \
                             chmod 600), {or_env}"
                        ),
                    )),
                    Err(e) => Err(fail(
                        format!("cannot read secret file {shown}: {e}"),
                        format!("point {key} at a file holding only the secret, {or_env}"),
                    )),
                }
            }
            SecretSource::Literal(value) => Ok(Secret::new(value.clone())),
        }
    }

    /// Client settings, with secrets read.
    pub fn client_settings(&self) -> Result<skillsync_cxone::Settings, Vec<Problem>> {
        let id = self.secret("tenant.client_id", &self.tenant.client_id);
        let secret = self.secret("tenant.client_secret", &self.tenant.client_secret);
        let (id, secret) = match (id, secret) {
            (Ok(id), Ok(secret)) => (id, secret),
            (id, secret) => return Err(id.err().into_iter().chain(secret.err()).collect()),
        };
        let mut settings = skillsync_cxone::Settings::new(
            &self.tenant.api_base,
            &self.tenant.token_url,
            id.expose(),
            secret,
        );
        settings.ca_file = self.tenant.ca_file.clone();
        settings.dialect = self.tenant.dialect;
        settings.proficiency_scale = self.tenant.proficiency_scale.clone();
        settings.scopes = self.tenant.scopes.clone();
        settings.requests_per_second = self.requests_per_second;
        settings.burst = self.burst;
        settings.max_in_flight = self.max_in_flight;
        // Tokens outlive the command, so that a few commands in a minute need one token.
        settings.token_cache = skillsync_cxone::default_cache_dir();
        Ok(settings)
    }

    /// A fingerprint of the config file's text, journaled with each run so an auditor can see
    /// when the configuration changed between runs.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(std::fs::read(&self.path).unwrap_or_default());
        // A key the environment sets is part of the configuration the run used.
        for over in &self.overrides {
            hasher.update(format!("\n{}={}", over.var, over.value));
        }
        let digest = hasher.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// `[store] url` with `[store] password` in it, to connect with; never to be shown
    /// (`store_shown` is).
    pub fn store_connect_url(&self) -> anyhow::Result<String> {
        let Some(source) = &self.store_password else {
            return Ok(self.store_url.clone());
        };
        let password = self
            .secret("store.password", source)
            .map_err(|problem| anyhow::anyhow!("{problem}"))?;
        Ok(with_password(&self.store_url, password.expose()))
    }

    /// Opens the journal named by `[store] url`.
    pub async fn journal(&self) -> anyhow::Result<Box<dyn skillsync_store::Journal>> {
        use anyhow::Context;
        skillsync_store::open(&self.store_connect_url()?)
            .await
            .with_context(|| format!("cannot open the journal ({})", self.store_shown()))
    }

    /// Opens the journal only if it exists already: read-only commands never create one.
    pub async fn existing_journal(
        &self,
    ) -> anyhow::Result<Option<Box<dyn skillsync_store::Journal>>> {
        use anyhow::Context;
        skillsync_store::open_existing(&self.store_connect_url()?)
            .await
            .with_context(|| format!("cannot open the journal ({})", self.store_shown()))
    }

    /// `[store] url` as it may be shown: without any password it carries.
    pub fn store_shown(&self) -> String {
        skillsync_store::redact(&self.store_url)
    }

    /// How the journal labels a run of `command` made with these settings, and the tenant's
    /// lease it takes first (waiting up to `wait` for another holder).
    pub fn run_label(&self, command: &str, wait: Option<Duration>) -> skillsync_engine::RunLabel {
        skillsync_engine::RunLabel {
            command: command.into(),
            config_hash: self.fingerprint(),
            dialect: format!("{:?}", self.tenant.dialect).to_lowercase(),
            lease: Some(skillsync_engine::LeaseOptions {
                key: self.lease_key(),
                holder: skillsync_store::LeaseHolder {
                    host: host_name(),
                    pid: std::process::id(),
                    command: command.into(),
                },
                ttl: self.lease_ttl,
                wait,
            }),
        }
    }

    /// One writer per tenant: the API base and the client id name the tenant as the API sees
    /// it (the client id is an identifier, not a secret).
    fn lease_key(&self) -> String {
        let client = self
            .secret("tenant.client_id", &self.tenant.client_id)
            .map(|id| id.expose().to_string())
            .unwrap_or_default();
        // One tenant, one key, however its URL is spelled: the scheme and host lowercased, the
        // default port dropped, no trailing slash.
        let base = reqwest::Url::parse(&self.tenant.api_base)
            .map(|url| url.to_string())
            .unwrap_or_else(|_| self.tenant.api_base.clone());
        format!("{} {client}", base.trim_end_matches('/'))
    }

    /// The write path's settings.
    pub fn write_options(&self) -> skillsync_engine::WriteOptions {
        skillsync_engine::WriteOptions {
            bulk_batch_size: self.bulk_batch_size,
            concurrency: self.max_in_flight,
            propagation_window: self.propagation_window,
            ..skillsync_engine::WriteOptions::default()
        }
    }

    /// `[sync] window` in the tenant's time zone; `None` when writes may happen at any time.
    pub fn sync_window(&self) -> Option<skillsync_engine::SyncWindow> {
        Some(skillsync_engine::SyncWindow {
            window: self.window?,
            zone: self.tenant.time_zone.clone(),
            zone_name: self.tenant.timezone.clone().unwrap_or_else(|| "UTC".into()),
        })
    }

    /// The effective settings, one per line, so a user can see what the defaults became.
    pub fn summary(&self) -> String {
        let dialect = self.tenant.dialect.name();
        let removals = match self.max_removals {
            MaxRemovals::Count(n) => format!("{n} removals"),
            MaxRemovals::Percent(p) => format!("{p}% of owned assignments"),
        };
        let window = match (&self.window, &self.tenant.timezone) {
            (None, _) => "any time".to_string(),
            (Some(w), Some(tz)) => format!("{w} ({tz})"),
            (Some(w), None) => format!("{w} (UTC: [tenant] timezone is not set)"),
        };
        format!(
            "tenant:  {} ({dialect} dialect)\nlimits:  {}/s, burst {}, {} in flight\nsync:    bulk above {} users in batches of {}; at most {removals}; window {window}; settles {} after a write; users not in agents.csv: {}\nstore:   {}",
            self.tenant.api_base,
            self.requests_per_second,
            self.burst,
            self.max_in_flight,
            self.bulk_threshold,
            self.bulk_batch_size,
            humantime::format_duration(self.propagation_window),
            match self.absent_agents {
                skillsync_core::AbsentAgents::Keep => "kept as they are",
                skillsync_core::AbsentAgents::Strip => "owned assignments removed",
            },
            self.store_shown(),
        )
    }

    /// Why writing at `now` is not allowed: it is outside `[sync] window`. The message names the
    /// next opening in the tenant's time and in this machine's, for whoever reads it. `None`
    /// inside the window or when there is none.
    pub fn outside_window(&self, now: Timestamp) -> Option<String> {
        let zone_name = self.tenant.timezone.as_deref().unwrap_or("UTC");
        self.window?
            .outside(now, &self.tenant.time_zone, zone_name, &TimeZone::system())
    }

    /// Options for the planner.
    pub fn plan_options(&self, bulk_available: bool) -> skillsync_core::PlanOptions {
        skillsync_core::PlanOptions {
            bulk_threshold: self.bulk_threshold,
            bulk_batch_size: self.bulk_batch_size,
            bulk_available,
            absent_agents: self.absent_agents,
        }
    }
}

/// `[sync] absent_agents`: `"keep"` or `"strip"`.
fn absent_agents_from(value: &toml::Value) -> Result<skillsync_core::AbsentAgents, String> {
    let expected = skillsync_core::AbsentAgents::NAMES
        .map(|name| format!("\"{name}\""))
        .join(" or ");
    match value {
        toml::Value::String(text) => skillsync_core::AbsentAgents::parse(text)
            .ok_or_else(|| format!("must be {expected}, got `{text}`")),
        other => Err(format!("must be {expected}, got a {}", other.type_str())),
    }
}

/// Whether wall-clock `at` falls inside the window's span of the day (ignoring
/// daylight-saving nights, which the schedule handles).
fn time_in_window(at: jiff::civil::Time, window: &Window) -> bool {
    if window.crosses_midnight() {
        at >= window.opens() || at < window.closes()
    } else {
        at >= window.opens() && at < window.closes()
    }
}

/// `--max-removals` on the command line.
pub fn parse_max_removals_arg(text: &str) -> Result<MaxRemovals, String> {
    parse_max_removals(text)
}

const NOT_A_THRESHOLD: &str = "must be a count ≥ 0 or a percentage like 5%";

/// `[sync] max_removals`: a whole count, or a percentage written as a string.
fn max_removals_from(value: &toml::Value) -> Result<MaxRemovals, String> {
    match value {
        toml::Value::Integer(n) => u64::try_from(*n)
            .map(MaxRemovals::Count)
            .map_err(|_| format!("{NOT_A_THRESHOLD}, got {n}")),
        toml::Value::String(text) => parse_max_removals(text),
        toml::Value::Float(x) => Err(format!("{NOT_A_THRESHOLD}, got {x}")),
        other => Err(format!("{NOT_A_THRESHOLD}, got a {}", other.type_str())),
    }
}

fn parse_max_removals(text: &str) -> Result<MaxRemovals, String> {
    let text = text.trim();
    match text.strip_suffix('%') {
        Some(number) => match number.trim().parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(MaxRemovals::Percent(p)),
            Ok(p) if p > 100.0 => Err(format!(
                "`{text}` is above 100%: no more than all of the owned assignments can be removed"
            )),
            _ => Err(format!("`{text}` {NOT_A_THRESHOLD}")),
        },
        None => text
            .parse()
            .map(MaxRemovals::Count)
            .map_err(|_| format!("`{text}` {NOT_A_THRESHOLD}")),
    }
}

/// Why `[store] url` cannot name a journal: only SQLite and PostgreSQL can hold one.
fn store_url_problem(url: &str) -> Option<String> {
    let url = url.trim();
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if postgres || url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return None;
    }
    match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(path) if path.trim().is_empty() => Some("the sqlite path is empty".into()),
        Some(_) => None,
        None => Some(format!(
            "`{}` is not a journal url: its scheme must be sqlite or postgres",
            skillsync_store::redact(url)
        )),
    }
}

/// The key of a URL setting the client refuses, and why (the rule, not "not usable").
fn url_problem(error: &skillsync_cxone::Error) -> (String, String) {
    let field = match error {
        skillsync_cxone::Error::Settings(
            SettingsProblem::NotAUrl { field, .. }
            | SettingsProblem::PlainHttp { field, .. }
            | SettingsProblem::Scheme { field, .. },
        ) => *field,
        _ => "api_base",
    };
    let message = match std::error::Error::source(error) {
        Some(rule) => chain(rule),
        None => error.to_string(),
    };
    (format!("tenant.{field}"), message)
}

/// An error and its causes, `outer: inner`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// `problem` placed at `key`: the key named, and its line and column when the file has it.
fn at_key(name: &str, locations: &Locations, key: &str, mut problem: Problem) -> Problem {
    debug_assert_eq!(problem.file, name);
    problem.field = Some(key.to_string());
    if let Some(var) = locations.env_var(key) {
        problem.file = var.to_string();
    } else if let Some((line, column)) = locations.key(key) {
        problem.line = Some(line);
        problem.column = Some(column);
    }
    problem
}

/// The file's sections, with the keys the environment sets (`env.rs`) over them. A problem
/// with the file keeps its line; one with a value from the environment names its variable.
fn read_file(
    name: &str,
    text: &str,
    locations: &mut Locations,
    overrides: &[env::Override],
) -> Result<ConfigFile, Vec<Problem>> {
    let located =
        |e: toml::de::Error, locations: &Locations| vec![toml_problem(name, locations, &e)];
    if overrides.is_empty() {
        return toml::from_str(text).map_err(|e| located(e, locations));
    }
    let mut table: toml::Table = toml::from_str(text).map_err(|e| located(e, locations))?;
    let mut problems = Vec::new();
    for over in overrides {
        match env::apply(&mut table, over) {
            Ok(()) => locations.set_from_env(&over.key, &over.var),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let merged = toml::Value::Table(table);
    match ConfigFile::deserialize(merged.clone()) {
        Ok(file) => Ok(file),
        Err(error) => {
            // The file's own mistake keeps its line, unless a variable replaced that key.
            if let Err(own) = toml::from_str::<ConfigFile>(text) {
                let problem = toml_problem(name, locations, &own);
                let replaced = problem
                    .field
                    .as_deref()
                    .is_some_and(|key| locations.env_var(key).is_some());
                if problem.line.is_some() && !replaced {
                    return Err(vec![problem]);
                }
            }
            // Otherwise a variable's value: the one whose key the message names, else all.
            let message = error.message().trim().to_string();
            let named: Vec<&env::Override> = overrides
                .iter()
                .filter(|o| {
                    let last = o.key.rsplit('.').next().unwrap_or_default();
                    message.contains(&format!("`{last}`")) || message.contains(&o.key)
                })
                .collect();
            let culprits = if named.is_empty() {
                overrides.iter().collect()
            } else {
                named
            };
            Err(culprits
                .into_iter()
                .map(|o| {
                    let mut p = Problem::error(&o.var, message.clone()).hint(format!(
                        "it sets `{}` of skillsync.toml (SPEC section 3 lists every key and its type)",
                        o.key
                    ));
                    p.field = Some(o.key.clone());
                    p
                })
                .collect())
        }
    }
}

fn toml_problem(name: &str, locations: &Locations, error: &toml::de::Error) -> Problem {
    let mut problem = Problem::error(name, error.message().trim().to_string())
        .hint("see the example configuration in the README (SPEC section 3 lists every key)");
    if let Some(span) = error.span() {
        let (line, column) = locations.line_and_column(span.start);
        problem.line = Some(line);
        problem.column = Some(column);
        problem.field = locations.key_at(span.start).map(str::to_string);
    }
    problem
}

/// The 1-based line and column of a byte offset in `text`.
fn line_and_column(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, column)
}

/// This machine's name, for whoever meets a lease this process holds.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into())
}

/// Where the user info of a `scheme://user[:password]@host…` URL is, if it has one.
fn user_info(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    Some((start, start + at))
}

/// The password a URL carries, if any.
fn url_password(url: &str) -> Option<&str> {
    let (start, end) = user_info(url)?;
    url[start..end]
        .split_once(':')
        .map(|(_, password)| password)
}

/// The URL with `password` (percent-encoded) after its user name.
fn with_password(url: &str, password: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let encoded = utf8_percent_encode(password, NON_ALPHANUMERIC).to_string();
    // The config refuses a password without a user name, so there is always one to follow.
    match user_info(url) {
        Some((_, end)) => format!("{}:{encoded}{}", &url[..end], &url[end..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("skillsync.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const MINIMAL: &str = r#"
[tenant]
api_base = "http://127.0.0.1:8089/api/v2"
client_id = "skillsync-demo"
client_secret = { env = "SKILLSYNC_TEST_SECRET_UNSET" }

[source]
catalog = "hris/catalog.csv"
agents = "hris/agents.csv"
assignments = "hris/assignments.csv"
"#;

    #[test]
    fn defaults_follow_the_spec_and_paths_are_relative_to_the_config() {
        let dir = std::env::temp_dir().join(format!("skillsync-config-{}", std::process::id()));
        let config = Config::load(&write(&dir, MINIMAL)).unwrap();
        assert_eq!(config.bulk_threshold, 50);
        assert_eq!(config.bulk_batch_size, 100);
        assert_eq!(config.max_removals, MaxRemovals::Percent(10.0));
        assert_eq!(
            config.tenant.token_url,
            "http://127.0.0.1:8089/api/v2/oauth/token"
        );
        assert_eq!(config.sources.agents, dir.join("hris/agents.csv"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_unknown_key_is_reported_with_its_line() {
        let dir =
            std::env::temp_dir().join(format!("skillsync-config-typo-{}", std::process::id()));
        let text = MINIMAL.replace("[source]", "[sync]\nbulk_treshold = 10\n\n[source]");
        let problems = Config::load(&write(&dir, &text)).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("bulk_treshold"),
            "{}",
            problems[0]
        );
        assert_eq!(
            problems[0].line,
            Some(8),
            "the key is on line 8 (the text starts with a blank line)"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_secret_names_the_variable_and_the_key() {
        let dir =
            std::env::temp_dir().join(format!("skillsync-config-secret-{}", std::process::id()));
        let config = Config::load(&write(&dir, MINIMAL)).unwrap();
        let problems = config.client_settings().unwrap_err();
        let text = problems[0].to_string();
        assert!(
            text.contains("SKILLSYNC_TEST_SECRET_UNSET") && text.contains("tenant.client_secret"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn outside_the_window_names_the_next_opening_in_the_tenants_time() {
        let dir =
            std::env::temp_dir().join(format!("skillsync-config-window-{}", std::process::id()));
        let text = MINIMAL
            .replace("[source]", "[sync]\nwindow = \"02:00-04:00\"\n\n[source]")
            .replace(
                "client_secret",
                "timezone = \"Europe/Berlin\"\nclient_secret",
            );
        let config = Config::load(&write(&dir, &text)).unwrap();
        let inside: Timestamp = "2026-12-03T01:30:00Z".parse().unwrap();
        assert_eq!(config.outside_window(inside), None);
        let outside: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let why = config.outside_window(outside).unwrap();
        assert!(
            why.starts_with(
                "outside the sync window 02:00–04:00 (Europe/Berlin); the next one opens 2026-12-03 02:00 CET ("
            ) && why.ends_with(" local time)"),
            "{why}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn removal_thresholds_take_counts_and_percentages() {
        assert_eq!(parse_max_removals("10%"), Ok(MaxRemovals::Percent(10.0)));
        assert_eq!(parse_max_removals("250"), Ok(MaxRemovals::Count(250)));
        assert!(parse_max_removals("lots").is_err());
        assert!(
            parse_max_removals("150%")
                .unwrap_err()
                .contains("above 100%")
        );
    }

    #[test]
    fn a_store_password_goes_after_the_user_percent_encoded() {
        assert_eq!(
            with_password("postgres://app@db:5432/j?options=x", "p@ss:/w?rd"),
            "postgres://app:p%40ss%3A%2Fw%3Frd@db:5432/j?options=x"
        );
        assert_eq!(url_password("postgres://app:pw@db/j"), Some("pw"));
        assert_eq!(url_password("postgres://app@db/j?x=a:b@c"), None);
        assert_eq!(url_password("postgres://db/j"), None);
    }
}

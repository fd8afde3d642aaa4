//! `skillsync init`: a commented `skillsync.toml` and the three HRIS files with their headers,
//! so a new user starts from a configuration `validate` accepts instead of from the README.
//! Asks nothing: what cannot be defaulted (the tenant's address and client id) is a
//! placeholder to replace, or comes from `--from-sim`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::output::{exit, outln};

/// Flags of `skillsync init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// Fill the tenant for a running simulator (`skillsync sim` prints its URL): its API
    /// base and the demo client id.
    #[arg(long, value_name = "URL")]
    pub from_sim: Option<String>,

    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
}

/// The HRIS files, with their headers (SPEC section 3).
const HRIS: [(&str, &str); 3] = [
    (
        "hris/catalog.csv",
        "code,kind,locale,name,description,routing_profile_id\n",
    ),
    ("hris/agents.csv", "employee_id,user_id,locale\n"),
    ("hris/assignments.csv", "employee_id,code,level,active\n"),
];

/// Runs the command.
pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let (api_base, client_id, origin) = match &args.from_sim {
        Some(url) => {
            let base = url.trim_end_matches('/');
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                eprintln!(
                    "error: --from-sim `{url}` is not a URL\n  hint: give what `skillsync sim` prints, e.g. http://127.0.0.1:8089"
                );
                return Ok(exit::error());
            }
            (
                format!("{base}/api/v2"),
                skillsync_sim::DEMO_CLIENT_ID.to_string(),
                format!("the simulator at {base}"),
            )
        }
        None => (
            "https://your-tenant.example.com/api/v2".to_string(),
            "your-client-id".to_string(),
            "placeholders: replace api_base and client_id with your tenant's".to_string(),
        ),
    };
    let config = template(&api_base, &client_id, &origin, &time_zone());
    let files: Vec<(PathBuf, String)> = std::iter::once((args.dir.join("skillsync.toml"), config))
        .chain(
            HRIS.iter()
                .map(|(path, header)| (args.dir.join(path), header.to_string())),
        )
        .collect();
    // All or nothing: every file is checked before the first is written.
    if !args.force {
        let existing: Vec<String> = files
            .iter()
            .filter(|(path, _)| path.exists())
            .map(|(path, _)| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            eprintln!(
                "error: {} already exist{}; nothing written\n  hint: pass --force to overwrite, or --dir to write elsewhere",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            );
            return Ok(exit::error());
        }
    }
    for (path, text) in &files {
        write(path, text)?;
    }
    outln!("Wrote {}:", args.dir.display());
    for (path, _) in &files {
        outln!("  {}", path.display());
    }
    outln!();
    outln!("Next:");
    match &args.from_sim {
        Some(_) => outln!(
            "  export SKILLSYNC_CLIENT_SECRET={}",
            skillsync_sim::DEMO_CLIENT_SECRET
        ),
        None => {
            outln!("  edit [tenant] api_base and client_id in skillsync.toml");
            outln!("  export SKILLSYNC_CLIENT_SECRET=…   (or client_secret = {{ file = \"…\" }})");
        }
    }
    outln!("  skillsync validate                   # the config and the files, offline");
    outln!(
        "  skillsync export --out hris --force  # adopt what the tenant holds now, or fill hris/ from the HRIS"
    );
    outln!("  skillsync plan                       # what apply would change");
    Ok(exit::ok())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// This machine's time zone by its IANA name, or UTC.
fn time_zone() -> String {
    jiff::tz::TimeZone::system()
        .iana_name()
        .map(str::to_string)
        .unwrap_or_else(|| "UTC".to_string())
}

fn template(api_base: &str, client_id: &str, origin: &str, time_zone: &str) -> String {
    format!(
        r#"# skillsync.toml, written by `skillsync init` ({origin}).
# Every key is explained in the README; `skillsync validate` checks this file and the HRIS
# files without touching the network.

[tenant]
api_base = "{api_base}"
client_id = "{client_id}"
client_secret = {{ env = "SKILLSYNC_CLIENT_SECRET" }}   # or {{ file = "secret.txt" }}; never a literal
dialect = "routing"                # "routing" (skills and proficiencies) or "users"
timezone = "{time_zone}"           # IANA name: the clock of [sync] window and the nightly sync
# token_url = "…/oauth/token"      # default: api_base's /oauth/token
# ca_file = "ca.pem"               # an extra certificate authority to trust

[limits]
requests_per_second = 10           # the tenant's API limit
burst = 20
max_in_flight = 10

[sync]
bulk_threshold = 50                # more users changing than this go by bulk requests
bulk_batch_size = 100
propagation_window = "30s"         # how long a write takes to reach the routing cache
max_removals = "10%"               # apply stops before writing if it would remove more
# window = "02:00-04:00"           # apply writes only then, in [tenant] timezone; absent: any time
# absent_agents = "strip"          # users not in agents.csv lose skillsync's assignments; default "keep"

[source]
catalog = "hris/catalog.csv"       # code,kind,locale,name,description,routing_profile_id
agents = "hris/agents.csv"         # employee_id,user_id,locale
assignments = "hris/assignments.csv"  # employee_id,code,level,active

[store]
url = "sqlite://skillsync.db"      # the journal; postgres://… to share it between hosts

# [serve]                          # `skillsync serve`: the middleware (docs/serve.md)
# listen = "127.0.0.1:8787"
# webhook_secret = {{ env = "SKILLSYNC_WEBHOOK_SECRET" }}
# proficiency_flush = "30s"
# full_sync_at = "02:00"
"#
    )
}

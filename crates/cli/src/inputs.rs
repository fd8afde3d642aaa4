//! Loading what every sync command starts from: the config, then the HRIS files, all checked
//! before anything touches the network.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use skillsync_core::Problem;
use skillsync_core::hris::{Loaded, Source, read_desired};

use crate::config::Config;

/// Reads and validates the three HRIS files named by the config.
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
    match (catalog, agents, assignments) {
        (Ok(c), Ok(a), Ok(s)) => read_desired(c, a, s),
        (c, a, s) => Err([c.err(), a.err(), s.err()].into_iter().flatten().collect()),
    }
}

/// A path as the user will recognise it: relative to the working directory when it can be.
pub fn display(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}

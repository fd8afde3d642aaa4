//! The service's desired state: the HRIS files as last read (reloaded when one changes; a
//! reload that fails keeps the last good files and says why), with every applied event that
//! occurred after the files were exported laid over them. The files' export time is the
//! newer of the agents' and assignments' modification times (the catalog holds no one's
//! assignments): an event older than that is already in them, or was overruled by them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use jiff::Timestamp;
use skillsync_core::{Desired, Event, Kind, Problem};
use skillsync_store::{EventLane, EventQueue};

use crate::config::Config;

/// The files as read, and when they were exported.
#[derive(Clone)]
pub struct Files {
    pub desired: Arc<Desired>,
    pub warnings: Arc<Vec<Problem>>,
    pub exported_at: Timestamp,
    stamps: Vec<Option<SystemTime>>,
}

/// What a batch of work starts from.
pub struct Current {
    /// The files with the events newer than them laid over, and the retired codes.
    pub desired: Desired,
    /// The files' warnings.
    pub warnings: Arc<Vec<Problem>>,
}

pub struct DesiredSource {
    config: Config,
    files: parking_lot::Mutex<Files>,
}

impl DesiredSource {
    /// Reads the files; any problem stops the service from starting.
    pub async fn load(config: &Config) -> Result<DesiredSource, Vec<Problem>> {
        let files = read(config.clone()).await?;
        Ok(DesiredSource {
            config: config.clone(),
            files: parking_lot::Mutex::new(files),
        })
    }

    /// The files, re-read first if one of them changed since.
    pub async fn files(&self) -> Files {
        let known = self.files.lock().clone();
        if stamps(&paths(&self.config)) == known.stamps {
            return known;
        }
        match read(self.config.clone()).await {
            Ok(files) => {
                tracing::info!(exported_at = %files.exported_at, "HRIS files changed: re-read");
                *self.files.lock() = files.clone();
                files
            }
            Err(problems) => {
                let first = problems
                    .iter()
                    .find(|p| p.is_error())
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                tracing::error!(problems = problems.len(), first = %first, "the HRIS files changed but are not valid; keeping the last good ones");
                known
            }
        }
    }

    /// The lane an event goes to: a proficiency code's assignments are batched; everything
    /// else (skills, unknown codes, agent events) goes at once.
    pub fn lane_of(&self, event: &Event) -> EventLane {
        let desired = self.files.lock().desired.clone();
        match &event.change {
            skillsync_core::Change::AssignmentSet { code, .. }
            | skillsync_core::Change::AssignmentRemoved { code } => {
                match desired.catalog.kind_of(code) {
                    Some(Kind::Proficiency) => EventLane::Proficiencies,
                    _ => EventLane::Skills,
                }
            }
            _ => EventLane::Skills,
        }
    }

    /// The files, with retirements from the journal and the applied events newer than the
    /// files laid over them.
    pub async fn current(
        &self,
        journal: &dyn skillsync_store::Journal,
        queue: &dyn EventQueue,
    ) -> Result<Current, skillsync_engine::Error> {
        let files = self.files().await;
        let mut desired = (*files.desired).clone();
        desired.retired = skillsync_engine::retirements(journal).await?;
        let applied = queue
            .applied_events_since(files.exported_at)
            .await
            .map_err(skillsync_engine::Error::Journal)?;
        let events: Vec<Event> = applied
            .iter()
            .filter_map(|record| stored_event(&record.body))
            .collect();
        skillsync_core::overlay(&mut desired, &events);
        Ok(Current {
            desired,
            warnings: files.warnings.clone(),
        })
    }
}

/// An event as stored (its canonical JSON).
pub fn stored_event(body: &str) -> Option<Event> {
    // Stored events were checked on arrival; `now` only bounds how far ahead they may be.
    skillsync_core::parse_events(body.as_bytes(), Timestamp::MAX)
        .ok()?
        .into_iter()
        .next()
}

/// The HRIS files: the catalog first, then the two that say who holds what.
fn paths(config: &Config) -> Vec<PathBuf> {
    vec![
        config.sources.catalog.clone(),
        config.sources.agents.clone(),
        config.sources.assignments.clone(),
    ]
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

async fn read(config: Config) -> Result<Files, Vec<Problem>> {
    tokio::task::spawn_blocking(move || {
        let before = stamps(&paths(&config));
        let loaded = crate::inputs::read_hris(&config)?;
        // The agents and assignments say who holds what; the catalog only what codes mean,
        // so saving it again overrules no event.
        let exported_at = before[1..]
            .iter()
            .flatten()
            .max()
            .and_then(|t| Timestamp::try_from(*t).ok())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        Ok(Files {
            desired: Arc::new(loaded.desired),
            warnings: Arc::new(loaded.warnings),
            exported_at,
            stamps: before,
        })
    })
    .await
    .unwrap_or_else(|e| {
        Err(vec![Problem::error(
            "HRIS files",
            format!("reading failed: {e}"),
        )])
    })
}

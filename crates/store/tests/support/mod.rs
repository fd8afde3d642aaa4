//! Runs a store test on every backend: SQLite always, PostgreSQL when
//! `SKILLSYNC_TEST_DATABASE_URL` names a server (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`). Each PostgreSQL case gets a schema of its own,
//! dropped when the case ends (also when it panics), so cases run in parallel and leave nothing
//! behind.
#![allow(dead_code)] // Each test file uses its own part.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use skillsync_store::{EventQueue, Journal};

/// The variable naming the PostgreSQL server to test against.
pub const DATABASE_URL: &str = "SKILLSYNC_TEST_DATABASE_URL";

/// A directory under the system temp dir, unique per process and test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("skillsync-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("skillsync.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh PostgreSQL schema on the test server, dropped with everything in it on drop.
pub struct Schema {
    server: String,
    name: String,
}

impl Schema {
    /// A new empty schema, or `None` (said on stderr) when no test server is configured.
    pub async fn create() -> Option<Schema> {
        let Ok(server) = std::env::var(DATABASE_URL) else {
            eprintln!("{DATABASE_URL} is not set: the PostgreSQL case is skipped");
            return None;
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "skillsync_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let schema = Schema { server, name };
        schema
            .admin()
            .await
            .batch_execute(&format!("CREATE SCHEMA {}", schema.name))
            .await
            .unwrap();
        Some(schema)
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store URL for this schema: the server's URL with a libpq `search_path` option, and
    /// the schema's name as the application name so that its sessions can be found.
    pub fn url(&self) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20search_path%3D{name}&application_name={name}",
            self.server,
            name = self.name
        )
    }

    /// A direct connection to the server (default search path), to look behind the store.
    pub async fn admin(&self) -> tokio_postgres::Client {
        connect(&self.server).await
    }

    /// The tables in the schema, sorted.
    pub async fn tables(&self) -> Vec<String> {
        let rows = self
            .admin()
            .await
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = $1 ORDER BY 1",
                &[&self.name],
            )
            .await
            .unwrap();
        rows.iter().map(|row| row.get(0)).collect()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside the test's runtime, which it then blocks: a session the case left
        // in a transaction (it panicked, or the rollback of a dropped transaction was not sent
        // yet) would hold its locks against the DROP for ever, so the case's sessions are ended
        // first, by a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = connect(&server).await;
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
                         WHERE application_name = $1",
                        &[&name],
                    )
                    .await?;
                admin
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {DATABASE_URL}: {e}"));
    tokio::spawn(connection);
    client
}

/// Where one case's journal lives.
pub enum Backend {
    /// A SQLite file in a directory of its own.
    Sqlite(TempDir),
    /// A PostgreSQL schema of its own.
    Postgres(Schema),
}

impl Backend {
    /// `sqlite` or `postgres`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The store URL.
    pub fn url(&self) -> String {
        match self {
            Backend::Sqlite(dir) => format!("sqlite://{}", dir.db().display()),
            Backend::Postgres(schema) => schema.url(),
        }
    }

    /// How the store's messages name it: the file's path, or the URL without its user
    /// information.
    pub fn shown(&self) -> String {
        match self {
            Backend::Sqlite(dir) => dir.db().display().to_string(),
            Backend::Postgres(schema) => skillsync_store::redact(&schema.url()),
        }
    }

    /// A new handle on this case's journal (a new connection, or pool), creating it the first
    /// time: dropping one and opening again is what a restarted process does.
    pub async fn open(&self) -> Box<dyn Journal> {
        skillsync_store::open(&self.url())
            .await
            .unwrap_or_else(|e| panic!("{}: cannot open the journal: {e:?}", self.name()))
    }

    /// A new handle on this case's event queue (a connection, or pool, of its own), creating
    /// the store the first time, as a restarted `serve` process does.
    pub async fn open_events(&self) -> Box<dyn EventQueue> {
        skillsync_store::open_events(&self.url())
            .await
            .unwrap_or_else(|e| panic!("{}: cannot open the event queue: {e:?}", self.name()))
    }
}

/// A backend for each store the test runs on: SQLite always, PostgreSQL when configured.
pub async fn backends(test: &str) -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite(TempDir::new(test))];
    if let Some(schema) = Schema::create().await {
        all.push(Backend::Postgres(schema));
    }
    all
}

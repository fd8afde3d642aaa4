//! Where a test's journal lives: a SQLite file in its workspace always, and PostgreSQL (a
//! schema of its own, dropped afterwards) whenever `SKILLSYNC_TEST_DATABASE_URL` is set, so
//! the same process-level tests prove both backends.

use std::path::Path;

/// The variable naming the PostgreSQL database the tests may use (`.ci/run` sets it).
pub const DATABASE_URL_VAR: &str = "SKILLSYNC_TEST_DATABASE_URL";

pub enum TestStore {
    Sqlite,
    Postgres(PostgresSchema),
}

impl TestStore {
    /// The PostgreSQL store, or `None` (said on stderr) when no database is configured.
    pub async fn postgres(tag: &str) -> Option<TestStore> {
        let Ok(url) = std::env::var(DATABASE_URL_VAR) else {
            eprintln!("{DATABASE_URL_VAR} is not set: the PostgreSQL case of {tag} is skipped");
            return None;
        };
        Some(TestStore::Postgres(PostgresSchema::create(&url, tag).await))
    }

    /// `sqlite` or `postgres`: part of a workspace's name, so the two cases of one test, run
    /// in parallel in one process, never share a folder.
    pub fn name(&self) -> &'static str {
        match self {
            TestStore::Sqlite => "sqlite",
            TestStore::Postgres(_) => "postgres",
        }
    }

    /// The `[store] url` of a workspace at `dir`.
    pub fn url(&self, dir: &Path) -> String {
        match self {
            TestStore::Sqlite => format!("sqlite://{}", dir.join("skillsync.db").display()),
            TestStore::Postgres(schema) => schema.url.clone(),
        }
    }

    /// The `[store]` table of a config using this store, leases lasting `ttl`.
    pub fn config_table(&self, dir: &Path, ttl: &str) -> String {
        format!(
            "\n[store]\nurl = \"{}\"\nlease_ttl = \"{ttl}\"\n",
            self.url(dir)
        )
    }

    /// Opens the journal as another process would.
    pub async fn open(&self, dir: &Path) -> Box<dyn skillsync_store::Journal> {
        skillsync_store::open(&self.url(dir))
            .await
            .expect("the test journal opens")
    }
}

/// A schema of the test database for one test, so tests run in parallel; dropped with it.
pub struct PostgresSchema {
    admin_url: String,
    name: String,
    /// The database URL with this schema first on the search path.
    pub url: String,
}

impl PostgresSchema {
    async fn create(admin_url: &str, tag: &str) -> Self {
        // PostgreSQL cuts names at 63 bytes: the unique part goes first, so that two runs of
        // one test (two test binaries at once) never share, and drop, each other's schema.
        let tag: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(24)
            .collect();
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("sscli_{}_{unique}_{tag}", std::process::id());
        assert!(name.len() <= 63, "{name} is too long for PostgreSQL");
        execute(admin_url, &format!("CREATE SCHEMA {name}")).await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{name}");
        PostgresSchema {
            admin_url: admin_url.to_string(),
            name,
            url,
        }
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(execute(&admin_url, &sql));
        })
        .join();
    }
}

async fn execute(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {DATABASE_URL_VAR}: {e}"));
    let connection = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = connection.await;
}

/// Runs a process-level test once per store: `NAME::sqlite` always, `NAME::postgres` when the
/// test database is configured. The case is `async fn NAME(store: TestStore)`.
#[macro_export]
macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$case($crate::common::store::TestStore::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let tag = concat!(stringify!($case));
                    if let Some(store) = $crate::common::store::TestStore::postgres(tag).await {
                        super::$case(store).await;
                    }
                }
            }
        )*
    };
}

//! Access tokens kept between processes, so that a few commands in a minute do not queue
//! behind the token endpoint's limit (a few requests per minute).
//!
//! One file per key (token URL, client id, a hash of the client secret, and scope set), named
//! by a hash of the key and holding the key itself, which is checked on every read: a token
//! for another URL, client, secret or scope set is never used. The secret itself is never
//! written: only a SHA-256 of it, salted with the URL and client id. Files are written with
//! mode 0600 in a directory with mode 0700, through a temporary file and a rename, so that a
//! reader sees either the old file or the new one, never half of one. A file that cannot be
//! read or parsed is ignored (a fresh token is fetched and replaces it) with a debug log.
//! Nothing here ever logs or prints a token.
//!
//! Beside each token file is a lock file (`token-….lock`, empty). A process that finds no
//! token holds an exclusive advisory lock on it while it looks again and fetches one, so that
//! processes started together make one token request: the others wait, then read the token
//! just written. The wait is bounded ([`TokenFile::lock`]): a holder that is stuck delays the
//! others, it does not stop them.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::settings::Secret;

/// The environment variable that names the cache directory, over the XDG default.
pub const CACHE_DIR_VAR: &str = "SKILLSYNC_CACHE_DIR";

/// The format of the files; a file of another version is ignored. (Version 1 had no hash of
/// the client secret in its key.)
const FORMAT: u32 = 2;
/// A token file is small; anything bigger is not one of ours.
const MAX_FILE: u64 = 64 * 1024;
/// Temporary files left by a process that died mid-write are removed after this long.
const STALE_TEMP: Duration = Duration::from_secs(600);
/// The first pause between two tries at a lock another process holds; it doubles up to
/// [`LOCK_POLL_MAX`]. (The standard library has no lock with a timeout.)
const LOCK_POLL_MIN: Duration = Duration::from_millis(2);
const LOCK_POLL_MAX: Duration = Duration::from_millis(50);

/// The user's cache directory for skillsync: `$SKILLSYNC_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/skillsync`, else `$HOME/.cache/skillsync`; `None` when none of them is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var(CACHE_DIR_VAR) {
        return Some(dir);
    }
    // The XDG spec says a relative value is invalid and is to be ignored.
    if let Some(xdg) = var("XDG_CACHE_HOME").filter(|dir| dir.is_absolute()) {
        return Some(xdg.join("skillsync"));
    }
    var("HOME").map(|home| home.join(".cache").join("skillsync"))
}

/// What a cached token is for. It holds no secret, only a hash of it: a token obtained with
/// one secret is never used with another, so that a rotated secret gets a token of its own and
/// a wrong one is refused by the token endpoint instead of riding on someone else's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    token_url: String,
    client_id: String,
    /// [`secret_hash`] of the client secret.
    secret_hash: String,
    /// Sorted and without repeats: the order a config lists scopes in does not matter.
    scopes: Vec<String>,
}

impl Key {
    pub(crate) fn new(
        token_url: &Url,
        client_id: &str,
        client_secret: &Secret,
        scopes: &[String],
    ) -> Key {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let token_url = token_url.as_str().to_string();
        Key {
            secret_hash: secret_hash(&token_url, client_id, client_secret),
            token_url,
            client_id: client_id.to_string(),
            scopes,
        }
    }

    /// The file this key's token lives in: a stable hash (64-bit FNV-1a) of the key. A collision
    /// only costs a token fetch, since the file's own key is compared on read.
    pub(crate) fn file_name(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
            // A separator no URL, id or scope contains, so fields cannot run into each other.
            hash ^= 0xff;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        };
        feed(&FORMAT.to_le_bytes());
        feed(self.token_url.as_bytes());
        feed(self.client_id.as_bytes());
        feed(self.secret_hash.as_bytes());
        for scope in &self.scopes {
            feed(scope.as_bytes());
        }
        format!("token-{hash:016x}.json")
    }

    /// The lock file beside the token file.
    fn lock_name(&self) -> String {
        lock_name_of(&self.file_name())
    }
}

/// `token-<hash>.lock` for `token-<hash>.json`.
fn lock_name_of(file_name: &str) -> String {
    format!("{}.lock", file_name.trim_end_matches(".json"))
}

/// Hex SHA-256 of the client secret, salted with what else identifies the client (so that it
/// is no plain hash of the secret, to be looked up in a table) and length-prefixed field by
/// field (so that fields cannot run into each other).
fn secret_hash(token_url: &str, client_id: &str, client_secret: &Secret) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"skillsync token cache: client secret\0");
    for field in [token_url, client_id, client_secret.expose()] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A token read back from the cache.
pub(crate) struct Stored {
    pub value: Secret,
    pub issued_at: SystemTime,
    pub expires_at: SystemTime,
}

/// The file's contents. No `Debug`: it holds a token.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    format: u32,
    token_url: String,
    client_id: String,
    /// Absent from files of format 1, which are read only to be pruned.
    #[serde(default)]
    client_secret_hash: String,
    scopes: Vec<String>,
    #[serde(with = "secret_text")]
    access_token: Secret,
    /// Milliseconds since the Unix epoch.
    issued_at_ms: u64,
    /// Milliseconds since the Unix epoch.
    expires_at_ms: u64,
}

/// Writes a [`Secret`] as its text. Only this file format may do so; `Secret` itself has no
/// `Serialize`, so it cannot end up in another document by accident.
mod secret_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::settings::Secret;

    pub fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// One key's token file.
#[derive(Debug)]
pub(crate) struct TokenFile {
    dir: PathBuf,
    key: Key,
}

impl TokenFile {
    pub(crate) fn new(dir: PathBuf, key: Key) -> TokenFile {
        TokenFile { dir, key }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(self.key.file_name())
    }

    /// The cached token for this key, if there is one that has not expired. Any problem is
    /// logged at debug level and reads as no token.
    pub(crate) fn load(&self) -> Option<Stored> {
        let path = self.path();
        let entry = match read_entry(&path) {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                tracing::debug!(path = %path.display(), "no cached token");
                return None;
            }
            Err(reason) => {
                tracing::debug!(path = %path.display(), %reason, "cached token ignored");
                return None;
            }
        };
        if entry.format != FORMAT
            || entry.token_url != self.key.token_url
            || entry.client_id != self.key.client_id
            || entry.client_secret_hash != self.key.secret_hash
            || entry.scopes != self.key.scopes
        {
            tracing::debug!(path = %path.display(), "cached token ignored: it is for another client, secret, URL or scope set");
            return None;
        }
        let stored = Stored {
            value: entry.access_token,
            issued_at: from_ms(entry.issued_at_ms),
            expires_at: from_ms(entry.expires_at_ms),
        };
        if stored.expires_at <= SystemTime::now() || stored.issued_at > stored.expires_at {
            tracing::debug!(path = %path.display(), "cached token ignored: expired");
            return None;
        }
        Some(stored)
    }

    /// Keeps a token for other processes. Failing to is logged at debug level and is
    /// otherwise harmless: the next process fetches its own.
    pub(crate) fn store(&self, value: &Secret, issued_at: SystemTime, lifetime: Duration) {
        let entry = Entry {
            format: FORMAT,
            token_url: self.key.token_url.clone(),
            client_id: self.key.client_id.clone(),
            client_secret_hash: self.key.secret_hash.clone(),
            scopes: self.key.scopes.clone(),
            access_token: value.clone(),
            issued_at_ms: to_ms(issued_at),
            expires_at_ms: to_ms(issued_at + lifetime),
        };
        let written = serde_json::to_vec(&entry)
            .map_err(io::Error::other)
            .and_then(|bytes| write_atomically(&self.dir, &self.key.file_name(), &bytes));
        match written {
            Ok(()) => tracing::debug!(path = %self.path().display(), "token cached"),
            Err(error) => {
                tracing::debug!(dir = %self.dir.display(), %error, "token not cached");
            }
        }
        prune(&self.dir, &self.key.file_name());
    }

    /// Drops the cached token if it is `rejected` (the tenant refused it), so that no other
    /// process tries it again; a different token (a fresher one another process wrote) stays.
    /// Call it holding [`TokenFile::lock`], which every writer holds, so that the token
    /// compared is the token removed.
    pub(crate) fn forget(&self, rejected: &Secret) {
        let path = self.path();
        if let Ok(Some(entry)) = read_entry(&path)
            && &entry.access_token == rejected
        {
            match fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "rejected token dropped from the cache")
                }
                Err(error) => {
                    tracing::debug!(path = %path.display(), %error, "rejected token not dropped")
                }
            }
        }
    }

    /// Takes this key's lock, to look for a token and fetch one if there is none while other
    /// processes wait. Waits at most `wait` for another holder; then (with a warning) and on
    /// any error (debug log), goes on without the lock: `None`, and the caller fetches
    /// anyway, since a token request too many is better than a command that hangs.
    pub(crate) async fn lock(&self, wait: Duration) -> Option<FetchLock> {
        let path = self.dir.join(self.key.lock_name());
        if let Err(error) = ensure_dir(&self.dir) {
            tracing::debug!(dir = %self.dir.display(), %error, "token fetched without the lock");
            return None;
        }
        let started = Instant::now();
        let mut pause = LOCK_POLL_MIN;
        loop {
            let file = match open_lock_file(&path) {
                Ok(file) => file,
                Err(error) => {
                    tracing::debug!(path = %path.display(), %error, "token fetched without the lock");
                    return None;
                }
            };
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(fs::TryLockError::WouldBlock) => {
                        let waited = started.elapsed();
                        if waited >= wait {
                            tracing::warn!(
                                lock = %path.display(),
                                "another skillsync process has been fetching a token for {} s; fetching one anyway",
                                waited.as_secs()
                            );
                            return None;
                        }
                        tokio::time::sleep(pause.min(wait - waited)).await;
                        pause = (pause * 2).min(LOCK_POLL_MAX);
                    }
                    Err(fs::TryLockError::Error(error)) => {
                        tracing::debug!(path = %path.display(), %error, "token fetched without the lock");
                        return None;
                    }
                }
            }
            // The lock file may have been pruned and created anew while this one waited: a
            // lock on a file no longer at the path excludes nobody, so lock the current one.
            if is_at(&file, &path) {
                return Some(FetchLock { _file: file });
            }
        }
    }
}

/// This process's hold on a key's lock; dropping it (closing the file) lets the next one in.
#[derive(Debug)]
pub(crate) struct FetchLock {
    _file: fs::File,
}

/// Opens (creating it, mode 0600) a lock file.
fn open_lock_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Whether `file` is the file at `path` (not one removed from it since it was opened).
fn is_at(file: &fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Reads and parses a token file; `Ok(None)` when there is none.
fn read_entry(path: &Path) -> Result<Option<Entry>, String> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read its metadata: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "its mode {mode:o} lets others read it (expected 600)"
            ));
        }
    }
    if meta.len() > MAX_FILE {
        return Err(format!("it is {} bytes, too big to be a token", meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    // The parser's message is not logged: it may quote the file, and the file holds a token.
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        format!(
            "it does not parse (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

/// Creates the directory (mode 0700) if needed, and tightens it to 0700 if it is looser.
fn ensure_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // A directory others can read or write is not made private behind its owner's back
        // (it may be shared on purpose, or be /tmp): no token is kept there.
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is readable or writable by others (mode {mode:o}); tokens are kept only in a private directory",
                    dir.display()
                ),
            ));
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

/// Writes `bytes` to `dir/name` through a temporary file (mode 0600) and a rename.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    ensure_dir(dir)?;
    let suffix: u64 = rand::rng().random();
    let temp = dir.join(format!(".{name}.{}.{suffix:016x}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, dir.join(name))
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes other keys' expired token files, their lock files when no process holds them, and
/// temporary files left by a crashed writer, so that the directory does not grow with every
/// tenant, client, secret or scope set ever used.
fn prune(dir: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let path = entry.path();
        let stale = if name.starts_with(".token-") && name.ends_with(".tmp") {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| now.duration_since(at).unwrap_or_default() > STALE_TEMP)
        } else if name.starts_with("token-") && name.ends_with(".json") && name != keep {
            matches!(read_entry(&path), Ok(Some(e)) if from_ms(e.expires_at_ms) <= now)
        } else {
            false
        };
        if stale {
            let _ = fs::remove_file(&path);
        }
    }
    // Lock files whose token file is gone, once no process holds them. One opened by a
    // process that then waits on it is no harm: having the lock, it finds the file gone
    // from the path and locks the new one (see `TokenFile::lock`).
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let keep_lock = lock_name_of(keep);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some(stem) = name
            .strip_prefix("token-")
            .and_then(|n| n.strip_suffix(".lock"))
        else {
            continue;
        };
        if name == keep_lock || dir.join(format!("token-{stem}.json")).exists() {
            continue;
        }
        let path = entry.path();
        if let Ok(file) = fs::OpenOptions::new().read(true).open(&path)
            && file.try_lock().is_ok()
            && is_at(&file, &path)
        {
            let _ = fs::remove_file(&path);
        }
    }
}

fn to_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn key(client: &str, scopes: &[&str]) -> Key {
        keyed(client, "the-secret", scopes)
    }

    fn keyed(client: &str, secret: &str, scopes: &[&str]) -> Key {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        Key::new(
            &url("https://tenant.example.com/api/v2/oauth/token"),
            client,
            &Secret::new(secret),
            &scopes,
        )
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "skillsync-token-cache-{tag}-{}-{:x}",
            std::process::id(),
            rand::rng().random::<u32>()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_key_separates_url_client_and_scope_set_but_not_scope_order() {
        let base = key("a", &["x", "y"]);
        assert_eq!(base.file_name(), key("a", &["y", "x", "x"]).file_name());
        assert_ne!(base.file_name(), key("b", &["x", "y"]).file_name());
        assert_ne!(base.file_name(), key("a", &["x"]).file_name());
        assert_ne!(base.file_name(), key("a", &[]).file_name());
        let other_url = Key::new(
            &url("https://other.example.com/api/v2/oauth/token"),
            "a",
            &Secret::new("the-secret"),
            &["x".into(), "y".into()],
        );
        assert_ne!(base.file_name(), other_url.file_name());
        // Fields cannot run into each other.
        assert_ne!(key("ab", &["c"]).file_name(), key("a", &["bc"]).file_name());
        // Stable across builds: the name is part of the on-disk format.
        assert_eq!(base.file_name(), key("a", &["x", "y"]).file_name());
        assert!(base.file_name().starts_with("token-") && base.file_name().ends_with(".json"));
    }

    #[test]
    fn the_key_separates_client_secrets_without_holding_one() {
        let base = keyed("a", "secret-one", &["x"]);
        let other = keyed("a", "secret-two", &["x"]);
        assert_ne!(base.file_name(), other.file_name());
        assert_ne!(base.secret_hash, other.secret_hash);
        assert_eq!(base, keyed("a", "secret-one", &["x"]));
        // The hash is salted with the client: the same secret of another client differs.
        assert_ne!(
            base.secret_hash,
            keyed("b", "secret-one", &["x"]).secret_hash
        );
        assert_eq!(base.secret_hash.len(), 64);
        assert!(!format!("{base:?}").contains("secret-one"));

        let dir = temp_dir("secrets");
        let one = TokenFile::new(dir.clone(), base);
        one.store(
            &Secret::new("tok-1"),
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        assert!(one.load().is_some());
        let two = TokenFile::new(dir.clone(), other.clone());
        assert!(two.load().is_none(), "another secret never reads it");

        // Renamed to the other secret's name, the entry's own key still refuses it.
        fs::copy(one.path(), two.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(two.path(), fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(two.load().is_none());
        let text = fs::read_to_string(one.path()).unwrap();
        assert!(!text.contains("secret-one") && !one.key.file_name().contains("secret"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_lock_makes_others_wait_for_its_holder_but_not_forever() {
        let dir = temp_dir("lock");
        let file = TokenFile::new(dir.clone(), key("a", &[]));
        let held = file
            .lock(Duration::from_secs(5))
            .await
            .expect("a free lock");
        let lock_path = dir.join(file.key.lock_name());
        assert!(lock_path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&lock_path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }

        // A holder that never lets go delays another taker by the bound, then no longer.
        let started = Instant::now();
        assert!(file.lock(Duration::from_millis(150)).await.is_none());
        assert!(started.elapsed() >= Duration::from_millis(150));

        // A taker waiting when the holder lets go gets the lock.
        let waiter = TokenFile::new(dir.clone(), key("a", &[]));
        let waiting = tokio::spawn(async move { waiter.lock(Duration::from_secs(60)).await });
        drop(held);
        let taken = waiting
            .await
            .unwrap()
            .expect("the lock once its holder let go");

        // Another key's lock is another lock.
        let other = TokenFile::new(dir.clone(), key("b", &[]));
        assert!(other.lock(Duration::ZERO).await.is_some());
        drop(taken);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_lock_file_removed_while_awaited_is_not_trusted() {
        let dir = temp_dir("relock");
        let file = TokenFile::new(dir.clone(), key("a", &[]));
        let held = file.lock(Duration::from_secs(5)).await.unwrap();
        let waiter = TokenFile::new(dir.clone(), key("a", &[]));
        let waiting = tokio::spawn(async move { waiter.lock(Duration::from_secs(60)).await });
        // Pruned from under both: whichever file the waiter opened, it must end up holding
        // the one now at the path, or a third process would not be kept out.
        fs::remove_file(dir.join(file.key.lock_name())).unwrap();
        drop(held);
        let taken = waiting.await.unwrap().expect("the lock");
        assert!(
            file.lock(Duration::ZERO).await.is_none(),
            "the file at the path is held"
        );
        drop(taken);
        assert!(file.lock(Duration::ZERO).await.is_some());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_token_is_read_back_only_for_its_own_key() {
        let dir = temp_dir("keys");
        let mine = TokenFile::new(dir.clone(), key("a", &["x"]));
        mine.store(
            &Secret::new("tok-1"),
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        assert_eq!(mine.load().unwrap().value, Secret::new("tok-1"));
        assert!(
            TokenFile::new(dir.clone(), key("b", &["x"]))
                .load()
                .is_none()
        );
        assert!(TokenFile::new(dir.clone(), key("a", &[])).load().is_none());

        // A file for key A renamed to key B's name (a hash collision, or tampering) is refused.
        let other = key("b", &["x"]);
        fs::copy(dir.join(mine.key.file_name()), dir.join(other.file_name())).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(
                dir.join(other.file_name()),
                fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        assert!(TokenFile::new(dir.clone(), other).load().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_and_hold_no_secret_but_the_token() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("modes");
        let file = TokenFile::new(dir.join("nested"), key("a", &[]));
        file.store(
            &Secret::new("tok-1"),
            SystemTime::now(),
            Duration::from_secs(60),
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("nested")), 0o700);
        assert_eq!(mode(&file.path()), 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no temporary file is left: {leftovers:?}"
        );

        // A file others can read is not trusted.
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(file.load().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn expired_corrupt_and_rejected_tokens_are_not_used() {
        let dir = temp_dir("bad");
        let file = TokenFile::new(dir.clone(), key("a", &[]));
        let long_ago = SystemTime::now() - Duration::from_secs(7200);
        file.store(&Secret::new("old"), long_ago, Duration::from_secs(3600));
        assert!(file.load().is_none(), "expired");

        file.store(
            &Secret::new("tok"),
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        file.forget(&Secret::new("another"));
        assert!(file.load().is_some(), "only the rejected token is dropped");
        file.forget(&Secret::new("tok"));
        assert!(file.load().is_none());

        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(file.path())
            .unwrap()
            .write_all(b"{\"format\":1,\"tokenUrl\":")
            .unwrap();
        assert!(file.load().is_none(), "corrupt");
        file.store(
            &Secret::new("tok"),
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        assert!(file.load().is_some(), "a corrupt file is replaced");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn other_keys_expired_files_are_pruned_on_write() {
        let dir = temp_dir("prune");
        let old = TokenFile::new(dir.clone(), key("old", &[]));
        old.store(
            &Secret::new("old"),
            SystemTime::now() - Duration::from_secs(7200),
            Duration::from_secs(3600),
        );
        let live = TokenFile::new(dir.clone(), key("live", &[]));
        live.store(
            &Secret::new("live"),
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        assert!(!old.path().exists());
        let again = TokenFile::new(dir.clone(), key("again", &[]));
        again.store(
            &Secret::new("again"),
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        assert!(live.path().exists(), "a live token of another key stays");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn lock_files_are_pruned_with_their_token_unless_held() {
        let dir = temp_dir("prune-locks");
        let gone = TokenFile::new(dir.clone(), key("gone", &[]));
        drop(gone.lock(Duration::ZERO).await.unwrap());
        let held = TokenFile::new(dir.clone(), key("held", &[]));
        let holding = held.lock(Duration::ZERO).await.unwrap();
        let live = TokenFile::new(dir.clone(), key("live", &[]));
        live.store(
            &Secret::new("live"),
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        drop(live.lock(Duration::ZERO).await.unwrap());

        let writer = TokenFile::new(dir.clone(), key("writer", &[]));
        let writing = writer.lock(Duration::ZERO).await.unwrap();
        writer.store(
            &Secret::new("w"),
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        let lock = |f: &TokenFile| dir.join(f.key.lock_name());
        assert!(!lock(&gone).exists(), "no token, no holder: removed");
        assert!(lock(&held).exists(), "held: kept");
        assert!(lock(&live).exists(), "its token is there: kept");
        assert!(lock(&writer).exists(), "the writer's own: kept");
        drop((holding, writing));
        fs::remove_dir_all(&dir).unwrap();
    }
}

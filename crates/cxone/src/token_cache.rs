//! Access tokens kept between processes, so that a few commands in a minute do not queue
//! behind the token endpoint's limit (a few requests per minute).
//!
//! One file per key (token URL, client id and scope set; never the secret), named by a hash
//! of the key and holding the key itself, which is checked on every read: a token for another
//! URL, client or scope set is never used. Files are written with mode 0600 in a directory
//! with mode 0700, through a temporary file and a rename, so that a reader sees either the old
//! file or the new one, never half of one. A file that cannot be read or parsed is ignored
//! (a fresh token is fetched and replaces it) with a debug log. Nothing here ever logs or
//! prints a token.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::settings::Secret;

/// The environment variable that names the cache directory, over the XDG default.
pub const CACHE_DIR_VAR: &str = "SKILLSYNC_CACHE_DIR";

/// The format of the files; a file of another version is ignored.
const FORMAT: u32 = 1;
/// A token file is small; anything bigger is not one of ours.
const MAX_FILE: u64 = 64 * 1024;
/// Temporary files left by a process that died mid-write are removed after this long.
const STALE_TEMP: Duration = Duration::from_secs(600);

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

/// What a cached token is for. It holds no secret: two clients with the same id and different
/// secrets share an entry, which is harmless since the token itself is what the tenant checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    token_url: String,
    client_id: String,
    /// Sorted and without repeats: the order a config lists scopes in does not matter.
    scopes: Vec<String>,
}

impl Key {
    pub(crate) fn new(token_url: &Url, client_id: &str, scopes: &[String]) -> Key {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        Key {
            token_url: token_url.as_str().to_string(),
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
        for scope in &self.scopes {
            feed(scope.as_bytes());
        }
        format!("token-{hash:016x}.json")
    }
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
            || entry.scopes != self.key.scopes
        {
            tracing::debug!(path = %path.display(), "cached token ignored: it is for another client, URL or scope set");
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

    /// Drops the cached token if it is `rejected` (the tenant answered 401 to it), so that no
    /// other process tries it again.
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

/// Removes other keys' expired token files and temporary files left by a crashed writer, so
/// that the directory does not grow with every tenant, client or scope set ever used.
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
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        Key::new(
            &url("https://tenant.example.com/api/v2/oauth/token"),
            client,
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
}

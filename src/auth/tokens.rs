//! Bearer tokens in their own file in the data directory (`tokens.json`, mode 0600), not in
//! sled, so `dipledger token ...` can manage them while a server runs on the directory; the
//! server re-reads the file when it changes (checked at most every
//! [`TOKEN_RELOAD_INTERVAL`]). A token is 256 random bits, shown once when created; the file
//! holds only its SHA-256, compared in constant time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{Principal, Role};
use crate::log::limits::MAX_PRINCIPAL_BYTES;
use crate::time::Timestamp;

/// The token file's name in the data directory.
pub const TOKENS_FILE: &str = "tokens.json";
/// Every token starts with this, so a leaked one is recognisable in logs and scanners.
pub const TOKEN_PREFIX: &str = "dpl_";
/// Random bytes in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Most tokens one file holds, revoked ones included.
pub const MAX_TOKENS: usize = 10_000;
/// How often, at most, the server looks at the file for changes (a revocation takes effect
/// within this).
pub const TOKEN_RELOAD_INTERVAL: Duration = Duration::from_millis(250);
/// How long `token` commands wait for another one holding the file's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
/// The format of the token file this build reads and writes.
pub const TOKEN_FILE_VERSION: u32 = 1;

const _: () = assert!(TOKEN_BYTES >= 32, "at least 256 random bits");

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `authorization` header.
    #[error("no bearer token: send `authorization: Bearer <token>`")]
    Missing,
    /// Not `Bearer dpl_<64 hex digits>`.
    #[error("the authorization header is not `Bearer dpl_<64 hex digits>`")]
    Malformed,
    /// No such token.
    #[error("unknown token")]
    Unknown,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Revoked.
    #[error("the token was revoked")]
    Revoked,
    /// A verified client certificate whose subject CN names no principal with a live token.
    #[error("the client certificate's CN {0:?} names no principal with a live (unexpired, unrevoked) token")]
    UnknownCertificate(String),
}

/// One token as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The token's id (a UUID), to list and revoke it by; not secret.
    pub id: String,
    /// The principal it authenticates, recorded as `recorded_by`.
    pub principal: String,
    /// The roles it grants.
    pub roles: Vec<Role>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// SHA-256 of the token, hex.
    pub sha256: String,
}

/// The token file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFile {
    /// [`TOKEN_FILE_VERSION`].
    pub version: u32,
    /// Set when the first token is created and never cleared: authentication stays on.
    pub auth_enabled: bool,
    /// Every token ever created, revoked ones included.
    pub tokens: Vec<TokenEntry>,
}

impl Default for TokenFile {
    fn default() -> Self {
        TokenFile {
            version: TOKEN_FILE_VERSION,
            auth_enabled: false,
            tokens: Vec::new(),
        }
    }
}

/// Errors reading or writing the token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A request the file cannot take (a bad name, an unknown id, too many tokens).
    #[error("{0}")]
    Refused(String),
}

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A new token's text: the prefix and 64 hex digits of fresh randomness.
fn new_secret() -> Result<String, TokenFileError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|error| TokenFileError::Refused(format!("no randomness for a token: {error}")))?;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

/// Whether `text` has the shape of a token.
fn well_formed(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX)
        .is_some_and(|hex| hex.len() == TOKEN_BYTES * 2 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

impl TokenFile {
    /// The token file of `dir`; an empty one when there is none yet.
    pub fn load(dir: &Path) -> Result<TokenFile, TokenFileError> {
        let path = dir.join(TOKENS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
            Err(source) => return Err(TokenFileError::Io { path, source }),
        };
        let file: TokenFile = serde_json::from_str(&text).map_err(|error| TokenFileError::Damaged {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        if file.version != TOKEN_FILE_VERSION {
            return Err(TokenFileError::Damaged {
                path,
                reason: format!("format {} is not {TOKEN_FILE_VERSION}", file.version),
            });
        }
        Ok(file)
    }

    /// Writes the file whole: a temporary file, fsynced, renamed over the old one (readers see
    /// the old or the new file, never a part), then the directory fsynced. Mode 0600.
    pub fn save(&self, dir: &Path) -> Result<(), TokenFileError> {
        let path = dir.join(TOKENS_FILE);
        let temporary = dir.join(format!("{TOKENS_FILE}.tmp"));
        let io = |source| TokenFileError::Io {
            path: path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(self).expect("a token file serializes");
        let mut file = open_private(&temporary).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, &path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io)
    }

    /// Adds a token for `principal` with `roles`, expiring at `expires_at` if given. Returns
    /// the entry and the token's text, which is not kept anywhere.
    pub fn create(
        &mut self,
        principal: &str,
        roles: &[Role],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(TokenEntry, String), TokenFileError> {
        check_principal(principal)?;
        if roles.is_empty() {
            return Err(TokenFileError::Refused("a token needs at least one role".into()));
        }
        if self.tokens.len() >= MAX_TOKENS {
            return Err(TokenFileError::Refused(format!(
                "the token file holds {MAX_TOKENS} tokens, the limit"
            )));
        }
        let secret = new_secret()?;
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let entry = TokenEntry {
            id: Uuid::now_v7().to_string(),
            principal: principal.to_owned(),
            roles,
            created_at: now,
            expires_at,
            revoked_at: None,
            sha256: sha256_hex(&secret),
        };
        self.tokens.push(entry.clone());
        self.auth_enabled = true;
        Ok((entry, secret))
    }

    /// Revokes the token with id `id` (revoking a revoked token is refused).
    pub fn revoke(&mut self, id: &str, now: Timestamp) -> Result<TokenEntry, TokenFileError> {
        let Some(entry) = self.tokens.iter_mut().find(|entry| entry.id == id) else {
            return Err(TokenFileError::Refused(format!("no token has the id {id:?}")));
        };
        if entry.revoked_at.is_some() {
            return Err(TokenFileError::Refused(format!("token {id} is already revoked")));
        }
        entry.revoked_at = Some(now);
        Ok(entry.clone())
    }

    /// The principal a bearer token authenticates at `now`.
    pub fn authenticate(&self, token: &str, now: Timestamp) -> Result<Principal, AuthFailure> {
        if !well_formed(token) {
            return Err(AuthFailure::Malformed);
        }
        let presented = sha256_hex(token);
        let mut found = None;
        for entry in &self.tokens {
            // Every stored hash is compared, whole, in constant time.
            if bool::from(entry.sha256.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or(AuthFailure::Unknown)?;
        if entry.revoked_at.is_some() {
            return Err(AuthFailure::Revoked);
        }
        if entry.expires_at.is_some_and(|expiry| expiry <= now) {
            return Err(AuthFailure::Expired);
        }
        Ok(Principal {
            name: entry.principal.clone(),
            roles: entry.roles.clone(),
        })
    }
}

impl TokenFile {
    /// The principal `name` as a verified client certificate names it: the roles of all its
    /// live (unexpired, unrevoked) tokens; revoking or letting them all expire shuts the
    /// certificate out too.
    pub fn authenticate_name(&self, name: &str, now: Timestamp) -> Result<Principal, AuthFailure> {
        let mut roles: Vec<Role> = Vec::new();
        let live = self.tokens.iter().filter(|entry| {
            entry.principal == name && entry.revoked_at.is_none() && entry.expires_at.is_none_or(|e| e > now)
        });
        for entry in live {
            for role in &entry.roles {
                if !roles.contains(role) {
                    roles.push(*role);
                }
            }
        }
        if roles.is_empty() {
            return Err(AuthFailure::UnknownCertificate(name.chars().take(64).collect()));
        }
        Ok(Principal {
            name: name.to_owned(),
            roles,
        })
    }
}

/// A principal's name: 1 to [`MAX_PRINCIPAL_BYTES`] bytes of letters, digits, `-`, `_`, `.`
/// and `@` (it is recorded on every event the principal writes).
fn check_principal(name: &str) -> Result<(), TokenFileError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
    if name.is_empty() || name.len() > MAX_PRINCIPAL_BYTES || !name.chars().all(allowed) {
        return Err(TokenFileError::Refused(format!(
            "{} is not a principal name: 1 to {MAX_PRINCIPAL_BYTES} letters, digits, '-', '_', '.' or '@'",
            crate::domain::common::quoted(name)
        )));
    }
    Ok(())
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Runs `change` on the token file of `dir` under its lock file (`tokens.json.lock`, created
/// exclusively), so two `token` commands never lose each other's change, and saves the result.
pub fn update<T>(
    dir: &Path,
    change: impl FnOnce(&mut TokenFile) -> Result<T, TokenFileError>,
) -> Result<T, TokenFileError> {
    let lock = dir.join(format!("{TOKENS_FILE}.lock"));
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(source) => return Err(TokenFileError::Io { path: lock, source }),
        }
    }
    let result = TokenFile::load(dir).and_then(|mut file| {
        let value = change(&mut file)?;
        file.save(dir)?;
        Ok(value)
    });
    let _ = std::fs::remove_file(&lock);
    result
}

/// The size and modification time of the file, to notice a change without reading it.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

/// The server's view of the token file, re-read when it changes.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    dir: PathBuf,
    required: bool,
    state: RwLock<(TokenFile, Stamp, Instant)>,
}

impl TokenStore {
    /// The store of `dir`; `require_auth` turns authentication on even before a first token.
    pub fn open(dir: &Path, require_auth: bool) -> Result<TokenStore, TokenFileError> {
        let path = dir.join(TOKENS_FILE);
        let file = TokenFile::load(dir)?;
        Ok(TokenStore {
            state: RwLock::new((file, stamp(&path), Instant::now())),
            path,
            dir: dir.to_owned(),
            required: require_auth,
        })
    }

    /// The data directory whose tokens these are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether requests must authenticate (a token was ever created, or `--require-auth`).
    pub fn auth_required(&self) -> bool {
        self.refresh();
        self.required || self.state.read().expect("token state").0.auth_enabled
    }

    /// The principal a bearer token authenticates now.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthFailure> {
        self.refresh();
        let now = crate::log::Clock::now(&crate::log::SystemClock);
        self.state.read().expect("token state").0.authenticate(token, now)
    }

    /// Authenticates the principal a verified client certificate names (see
    /// [`TokenFile::authenticate_name`]).
    pub fn authenticate_name(&self, name: &str) -> Result<Principal, AuthFailure> {
        self.refresh();
        let now = crate::log::Clock::now(&crate::log::SystemClock);
        self.state
            .read()
            .expect("token state")
            .0
            .authenticate_name(name, now)
    }

    /// Re-reads the file if it changed, at most every [`TOKEN_RELOAD_INTERVAL`]. A file that
    /// cannot be read keeps the last good view (and says so on stderr): a half-written file
    /// never opens the door.
    fn refresh(&self) {
        {
            let state = self.state.read().expect("token state");
            if state.2.elapsed() < TOKEN_RELOAD_INTERVAL {
                return;
            }
        }
        let mut state = self.state.write().expect("token state");
        state.2 = Instant::now();
        let now = stamp(&self.path);
        if now == state.1 {
            return;
        }
        match TokenFile::load(&self.dir) {
            Ok(file) => {
                // Once on, authentication stays on, whatever the file now says.
                let was_enabled = state.0.auth_enabled;
                state.0 = file;
                state.0.auth_enabled |= was_enabled;
                state.1 = now;
            }
            Err(error) => eprintln!("dipledger: token file not reloaded, keeping the last one: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_micros(1_764_633_600_000_000);

    #[test]
    fn a_file_takes_max_tokens_and_refuses_one_more() {
        let mut file = TokenFile::default();
        for n in 0..MAX_TOKENS {
            file.create(&format!("p{n}"), &[Role::Reader], None, NOW)
                .unwrap_or_else(|error| panic!("token {n} of {MAX_TOKENS}: {error}"));
        }
        assert_eq!(file.tokens.len(), MAX_TOKENS);
        match file.create("one-more", &[Role::Reader], None, NOW) {
            Err(TokenFileError::Refused(reason)) => {
                assert_eq!(
                    reason,
                    format!("the token file holds {MAX_TOKENS} tokens, the limit")
                )
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_token_authenticates_until_it_expires_or_is_revoked() {
        let mut file = TokenFile::default();
        let later = Timestamp::from_unix_micros(NOW.unix_micros() + 1_000_000);
        let (entry, secret) = file
            .create("embassy", &[Role::Recorder], Some(later), NOW)
            .unwrap();
        assert!(file.auth_enabled);
        assert!(secret.starts_with(TOKEN_PREFIX) && secret.len() == TOKEN_PREFIX.len() + 64);
        assert_ne!(entry.sha256, secret, "only the hash is kept");
        let principal = file.authenticate(&secret, NOW).unwrap();
        assert_eq!(principal.name, "embassy");
        assert!(principal.may(Role::Reader) && principal.may(Role::Recorder));
        assert!(!principal.may(Role::Admin));
        assert_eq!(file.authenticate(&secret, later), Err(AuthFailure::Expired));
        let other = format!("{TOKEN_PREFIX}{}", "0".repeat(64));
        assert_eq!(file.authenticate(&other, NOW), Err(AuthFailure::Unknown));
        assert_eq!(file.authenticate("Bearer x", NOW), Err(AuthFailure::Malformed));
        file.revoke(&entry.id, NOW).unwrap();
        assert_eq!(file.authenticate(&secret, NOW), Err(AuthFailure::Revoked));
        assert!(file.revoke(&entry.id, NOW).is_err(), "revoked once");
        assert!(
            file.auth_enabled,
            "revoking the last token keeps authentication on"
        );
    }

    #[test]
    fn principal_names_and_roles_are_checked() {
        let mut file = TokenFile::default();
        assert!(file.create("", &[Role::Reader], None, NOW).is_err());
        assert!(file.create("a b", &[Role::Reader], None, NOW).is_err());
        let longest = "p".repeat(MAX_PRINCIPAL_BYTES);
        assert!(file.create(&longest, &[Role::Reader], None, NOW).is_ok());
        assert!(file
            .create(&format!("{longest}p"), &[Role::Reader], None, NOW)
            .is_err());
        assert!(file.create("auditor", &[], None, NOW).is_err());
    }

    #[test]
    fn the_file_round_trips_privately_and_updates_under_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TokenFile::load(dir.path()).unwrap(), TokenFile::default());
        let (entry, _) = update(dir.path(), |file| file.create("ops", &[Role::Admin], None, NOW)).unwrap();
        let loaded = TokenFile::load(dir.path()).unwrap();
        assert_eq!(loaded.tokens, [entry]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKENS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            !dir.path().join(format!("{TOKENS_FILE}.lock")).exists(),
            "lock released"
        );
        std::fs::write(dir.path().join(TOKENS_FILE), "{").unwrap();
        assert!(matches!(
            TokenFile::load(dir.path()),
            Err(TokenFileError::Damaged { .. })
        ));
    }
}

//! The ledger's identity and signing key, in `<data dir>/audit/`:
//! - `ledger-id`: a UUID chosen when the directory is first used; the origin line of every
//!   checkpoint and the name of every key is `dipledger/<ledger id>`;
//! - `signing-key.pem`: the Ed25519 key (PKCS#8 PEM, mode 0600), generated on first use
//!   unless the server is given `--signing-key FILE`;
//! - `signing-key.previous.pem`: after `dipledger audit rotate-key`, the key before; the first
//!   checkpoint the new key signs is cosigned by it.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use uuid::Uuid;

use super::note::{NoteSigner, NoteVerifier};

/// The folder of the audit files inside the data directory.
pub const AUDIT_DIR: &str = "audit";
/// The ledger id file.
pub const LEDGER_ID_FILE: &str = "ledger-id";
/// The signing key file.
pub const KEY_FILE: &str = "signing-key.pem";
/// The key before the last rotation.
pub const PREVIOUS_KEY_FILE: &str = "signing-key.previous.pem";

/// Why the identity or a key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file holds something else than expected.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The ledger's identity and keys.
pub struct LedgerKeys {
    /// The ledger id.
    pub ledger_id: Uuid,
    /// The current key.
    pub signer: NoteSigner,
    /// The key before the last rotation, if it is still kept.
    pub previous: Option<NoteSigner>,
}

impl LedgerKeys {
    /// The origin line and key name: `dipledger/<ledger id>`.
    pub fn origin(&self) -> String {
        origin_of(self.ledger_id)
    }

    /// Loads the identity and keys of `data_dir`, creating the id and key on first use. With
    /// `signing_key`, that PKCS#8 PEM file is the current key instead of the directory's.
    pub fn open(data_dir: &Path, signing_key: Option<&Path>) -> Result<LedgerKeys, KeyError> {
        let dir = data_dir.join(AUDIT_DIR);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let ledger_id = ledger_id(&dir)?;
        let name = origin_of(ledger_id);
        let key = match signing_key {
            Some(path) => read_key(path)?,
            None => read_or_create_key(&dir.join(KEY_FILE))?,
        };
        let previous_path = dir.join(PREVIOUS_KEY_FILE);
        let previous = match previous_path.exists() {
            true => Some(read_key(&previous_path)?),
            false => None,
        };
        let signer = |key| NoteSigner::new(&name, key).expect("a UUID origin is a valid key name");
        Ok(LedgerKeys {
            ledger_id,
            signer: signer(key),
            previous: previous.map(signer),
        })
    }

    /// The current key's verifier.
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// Replaces the directory's key by a new one, keeping the old as the previous key (which
    /// cosigns the next checkpoint). Returns the new verifier key.
    pub fn rotate(data_dir: &Path) -> Result<NoteVerifier, KeyError> {
        let keys = LedgerKeys::open(data_dir, None)?;
        let dir = data_dir.join(AUDIT_DIR);
        let (current, previous) = (dir.join(KEY_FILE), dir.join(PREVIOUS_KEY_FILE));
        std::fs::rename(&current, &previous).map_err(io(&previous))?;
        let key = read_or_create_key(&current)?;
        Ok(NoteSigner::new(&keys.origin(), key)
            .expect("valid name")
            .verifier())
    }
}

/// `dipledger/<ledger id>`.
pub fn origin_of(ledger_id: Uuid) -> String {
    format!("dipledger/{ledger_id}")
}

fn ledger_id(dir: &Path) -> Result<Uuid, KeyError> {
    let path = dir.join(LEDGER_ID_FILE);
    if !path.exists() {
        write_new(&path, format!("{}\n", Uuid::now_v7()).as_bytes())?;
    }
    // (If another process made it first, its id stands.)
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    Uuid::parse_str(text.trim()).map_err(|error| KeyError::Malformed {
        path,
        reason: format!("not a UUID: {error}"),
    })
}

fn read_key(path: &Path) -> Result<SigningKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(io(path))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|error| KeyError::Malformed {
        path: path.to_owned(),
        reason: format!("not an Ed25519 PKCS#8 PEM private key: {error}"),
    })
}

fn read_or_create_key(path: &Path) -> Result<SigningKey, KeyError> {
    if !path.exists() {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| KeyError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(error.to_string()),
        })?;
        let pem = SigningKey::from_bytes(&seed)
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| KeyError::Malformed {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
        write_new(path, pem.as_bytes())?;
    }
    read_key(path)
}

/// Writes a new file readable by its owner only, durably (file and directory synced), unless
/// it exists: the bytes go to a temporary file first and are linked into place, so a server
/// and a CLI command making the same file at once never see half of it; the loser reads the
/// winner's file.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let temporary = path.with_extension(format!("{}.tmp", Uuid::now_v7().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&temporary);
    linked.map_err(io(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_processes_making_the_identity_at_once_agree_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || LedgerKeys::open(&path, None).unwrap())
            })
            .collect();
        let keys: Vec<LedgerKeys> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        for other in &keys[1..] {
            assert_eq!(other.ledger_id, keys[0].ledger_id);
            assert_eq!(other.verifier(), keys[0].verifier());
        }
    }

    #[test]
    fn the_identity_and_key_are_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = LedgerKeys::open(dir.path(), None).unwrap();
        let again = LedgerKeys::open(dir.path(), None).unwrap();
        assert_eq!(first.ledger_id, again.ledger_id);
        assert_eq!(first.verifier(), again.verifier());
        assert_eq!(first.verifier().name(), format!("dipledger/{}", first.ledger_id));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(AUDIT_DIR).join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let rotated = LedgerKeys::rotate(dir.path()).unwrap();
        let after = LedgerKeys::open(dir.path(), None).unwrap();
        assert_eq!(after.verifier(), rotated);
        assert_ne!(rotated, first.verifier());
        assert_eq!(after.previous.unwrap().verifier(), first.verifier());
    }
}

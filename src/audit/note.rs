//! C2SP signed notes with Ed25519 keys, and C2SP tlog checkpoints inside them: the format of
//! Go's `golang.org/x/mod/sumdb/note` and of transparency-log witnesses.
//!
//! A note is its text (UTF-8, ending in a newline), a blank line, and one line per signature:
//! `— <key name> <base64(key hash (4 bytes) ‖ Ed25519 signature of the text)>`. The key hash is
//! the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key); a verifier key is written
//! `<name>+<key hash as 8 hex digits>+<base64(0x01 ‖ public key)>`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The signature type byte of Ed25519 in C2SP signed notes.
const ED25519_TYPE: u8 = 0x01;
/// The longest note accepted for verification (a checkpoint is a few hundred bytes).
pub const MAX_NOTE_BYTES: usize = 16 * 1024;
/// The most signature lines read from a note.
pub const MAX_NOTE_SIGNATURES: usize = 16;
/// The dash that starts a signature line (U+2014 and a space).
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a note or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The bytes are not a note, checkpoint or key of the expected shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No signature by the expected key verifies.
    #[error("no valid signature by {0}")]
    Unverified(String),
}

fn malformed(what: &'static str, reason: impl Into<String>) -> NoteError {
    NoteError::Malformed {
        what,
        reason: reason.into(),
    }
}

fn key_hash(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_TYPE]);
    hasher.update(public.as_bytes());
    hasher.finalize()[..4].try_into().expect("4 bytes")
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(malformed("key name", "empty, or holds a space or '+'"));
    }
    Ok(())
}

/// A named Ed25519 signing key.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    /// A signer named `name` (no spaces or '+').
    pub fn new(name: &str, key: SigningKey) -> Result<NoteSigner, NoteError> {
        check_key_name(name)?;
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
        })
    }

    /// The verifier of this signer's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The signature line of `text`.
    fn signature_line(&self, text: &str) -> String {
        let mut blob = key_hash(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, BASE64.encode(blob))
    }
}

/// A named Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads a verifier key `<name>+<hash>+<base64(0x01 ‖ key)>`.
    pub fn parse(text: &str) -> Result<NoteVerifier, NoteError> {
        let bad = |reason: &str| malformed("verifier key", reason);
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+hash+key"));
        };
        check_key_name(name)?;
        let material = BASE64
            .decode(material)
            .map_err(|_| bad("the key is not base64"))?;
        if material.len() != 33 || material[0] != ED25519_TYPE {
            return Err(bad("not an Ed25519 key (type 0x01, 32 bytes)"));
        }
        let key = VerifyingKey::from_bytes(material[1..].try_into().expect("32 bytes"))
            .map_err(|_| bad("not a valid Ed25519 point"))?;
        let verifier = NoteVerifier {
            name: name.to_owned(),
            key,
        };
        if format!("{:08x}", u32::from_be_bytes(verifier.key_hash())) != hash {
            return Err(bad("the key hash does not match the name and key"));
        }
        Ok(verifier)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn key_hash(&self) -> [u8; 4] {
        key_hash(&self.name, &self.key)
    }

    /// The C2SP verifier key string.
    pub fn to_vkey(&self) -> String {
        let mut material = vec![ED25519_TYPE];
        material.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            u32::from_be_bytes(self.key_hash()),
            BASE64.encode(material)
        )
    }
}

/// Signs `text` (which must end in a newline) with every signer, in order.
pub fn sign_note(text: &str, signers: &[&NoteSigner]) -> String {
    assert!(text.ends_with('\n'), "a note's text ends with a newline");
    let mut note = format!("{text}\n");
    for signer in signers {
        note.push_str(&signer.signature_line(text));
    }
    note
}

/// Splits a note into its text and its signature lines (name, key hash, signature).
/// A signature line: key name, key hash, signature.
type SignatureLine<'a> = (&'a str, [u8; 4], [u8; 64]);

fn split_note(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(malformed("note", format!("over {MAX_NOTE_BYTES} bytes")));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("note", "no blank line before the signatures"))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if !signatures.ends_with('\n') {
        return Err(malformed(
            "note",
            "the last signature line does not end with a newline",
        ));
    }
    let mut parsed = Vec::new();
    for line in signatures.lines().take(MAX_NOTE_SIGNATURES) {
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| malformed("note", "a signature line does not start with '— '"))?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("note", "a signature line has no signature"))?;
        let blob = BASE64
            .decode(blob)
            .map_err(|_| malformed("note", "a signature is not base64"))?;
        if blob.len() != 68 {
            continue; // Another algorithm's signature: not ours to check.
        }
        parsed.push((
            name,
            blob[..4].try_into().expect("4 bytes"),
            blob[4..].try_into().expect("64 bytes"),
        ));
    }
    Ok((text, parsed))
}

/// The note's text, signatures unchecked (for notes this server stored itself).
pub fn note_text(note: &str) -> Result<&str, NoteError> {
    Ok(split_note(note)?.0)
}

/// The note's text if `verifier` signed it; other signatures are ignored.
pub fn open_note<'a>(note: &'a str, verifier: &NoteVerifier) -> Result<&'a str, NoteError> {
    let (text, signatures) = split_note(note)?;
    let wanted = verifier.key_hash();
    for (name, hash, signature) in signatures {
        if name == verifier.name && hash == wanted {
            let signature = ed25519_dalek::Signature::from_bytes(&signature);
            if verifier.key.verify(text.as_bytes(), &signature).is_ok() {
                return Ok(text);
            }
        }
    }
    Err(NoteError::Unverified(verifier.name.clone()))
}

/// A C2SP tlog checkpoint: the origin, the tree size, the root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (`dipledger/<ledger id>`).
    pub origin: String,
    /// Leaves in the tree (the log's position the checkpoint covers).
    pub size: u64,
    /// The RFC 9162 root of the first `size` records.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint's text: three lines.
    pub fn to_text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root))
    }

    /// Reads a checkpoint's text (extension lines after the third are allowed and ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |reason: &str| malformed("checkpoint", reason);
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the second line is not a tree size"))?;
        let root = lines
            .next()
            .and_then(|r| BASE64.decode(r).ok())
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or_else(|| bad("the third line is not a base64 SHA-256 hash"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Opens a signed checkpoint note with `verifier` and checks its origin is `origin`.
    pub fn open(note: &str, verifier: &NoteVerifier, origin: Option<&str>) -> Result<Checkpoint, NoteError> {
        let checkpoint = Checkpoint::parse(open_note(note, verifier)?)?;
        if let Some(origin) = origin {
            if checkpoint.origin != origin {
                return Err(malformed("checkpoint", format!("origin is not {origin}")));
            }
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Go's golang.org/x/mod/sumdb/note (and of the C2SP signed-note text).
    const PETER_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn peter() -> NoteSigner {
        let material = BASE64
            .decode(PETER_SIGNER.splitn(5, '+').nth(4).unwrap())
            .unwrap();
        assert_eq!(material[0], ED25519_TYPE);
        let seed: [u8; 32] = material[1..].try_into().unwrap();
        NoteSigner::new("PeterNeumann", SigningKey::from_bytes(&seed)).unwrap()
    }

    #[test]
    fn notes_are_read_at_max_note_bytes_and_refused_one_past() {
        // The reference note with its text padded; signatures are not checked by `note_text`.
        let padded = |len: usize| {
            let padding = "x".repeat(len - SIGNED.len());
            format!("{padding}{SIGNED}")
        };
        let at_max = padded(MAX_NOTE_BYTES);
        assert_eq!(at_max.len(), MAX_NOTE_BYTES);
        assert!(note_text(&at_max).unwrap().ends_with(TEXT));
        match note_text(&padded(MAX_NOTE_BYTES + 1)) {
            Err(NoteError::Malformed { what, reason }) => {
                assert_eq!((what, reason), ("note", format!("over {MAX_NOTE_BYTES} bytes")))
            }
            other => panic!("expected a refused note, got {other:?}"),
        }
    }

    #[test]
    fn at_most_max_note_signatures_lines_are_read() {
        let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
        let (text, peter) = SIGNED.split_once("\n\n").unwrap();
        let other = format!("\u{2014} Other {}\n", BASE64.encode([7u8; 68]));
        // Peter's signature as the last line read: verified.
        let last_read = format!("{text}\n\n{}{peter}", other.repeat(MAX_NOTE_SIGNATURES - 1));
        assert_eq!(open_note(&last_read, &verifier).unwrap(), TEXT);
        // One line further: never read, so the note is not signed by Peter as far as it goes.
        let past = format!("{text}\n\n{}{peter}", other.repeat(MAX_NOTE_SIGNATURES));
        assert!(matches!(
            open_note(&past, &verifier),
            Err(NoteError::Unverified(_))
        ));
    }

    #[test]
    fn signing_reproduces_the_reference_note_byte_for_byte() {
        let signer = peter();
        assert_eq!(signer.verifier().to_vkey(), PETER_VKEY);
        assert_eq!(sign_note(TEXT, &[&signer]), SIGNED);
        let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
        assert_eq!(open_note(SIGNED, &verifier).unwrap(), TEXT);
    }

    #[test]
    fn an_altered_text_or_another_key_does_not_verify() {
        let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
        let altered = SIGNED.replace("cryptography", "cryptographY");
        assert!(matches!(
            open_note(&altered, &verifier),
            Err(NoteError::Unverified(_))
        ));
        let other = NoteSigner::new("PeterNeumann", SigningKey::from_bytes(&[7; 32])).unwrap();
        assert!(open_note(SIGNED, &other.verifier()).is_err());
        assert!(
            NoteVerifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                .is_err()
        );
    }

    #[test]
    fn a_checkpoint_round_trips_through_a_cosigned_note() {
        let checkpoint = Checkpoint {
            origin: "dipledger/0192f0c1-0000-7000-8000-000000000000".into(),
            size: 3,
            root: [9; 32],
        };
        let old = NoteSigner::new("dipledger/old", SigningKey::from_bytes(&[1; 32])).unwrap();
        let note = sign_note(&checkpoint.to_text(), &[&peter(), &old]);
        let opened = Checkpoint::open(&note, &old.verifier(), Some(&checkpoint.origin)).unwrap();
        assert_eq!(opened, checkpoint);
        assert_eq!(
            Checkpoint::open(&note, &peter().verifier(), None).unwrap(),
            checkpoint
        );
        assert!(Checkpoint::open(&note, &old.verifier(), Some("dipledger/other")).is_err());
    }
}

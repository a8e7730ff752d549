//! Offline verification: what an auditor checks with no server and no data directory. Proof
//! files are JSON ([`InclusionBundle`], [`ConsistencyBundle`]); checkpoints are signed notes;
//! exports are the JSON lines of `dipledger export`.

use std::io::BufRead;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::note::{Checkpoint, NoteError, NoteVerifier};
use crate::log::backup::{from_hex, read_export_line, to_hex, ExportLine, ExportRead, MAX_EXPORT_LINE_BYTES};
use crate::log::Envelope;
use crate::merkle::{self, Hash, ProofError};

/// Why something did not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The checkpoint's signature or format.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    /// A proof failed.
    #[error("{0}")]
    Proof(#[from] ProofError),
    /// A file is not what it should be.
    #[error("{0}")]
    Malformed(String),
    /// The export disagrees with the checkpoint or with itself, at a position when known.
    #[error("{}{reason}", match position { Some(p) => format!("position {p}: "), None => String::new() })]
    Export {
        /// The first position found wrong, when the export itself shows it.
        position: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

/// An inclusion proof as `dipledger audit prove` writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InclusionBundle {
    /// The signed checkpoint the proof is for.
    pub checkpoint: String,
    /// The record's position.
    pub position: u64,
    /// The tree size (the checkpoint's).
    pub tree_size: u64,
    /// The record's leaf input, base64.
    pub leaf_input: String,
    /// The audit path, hex, from the leaf up.
    pub hashes: Vec<String>,
}

/// A consistency proof as `dipledger audit prove` writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsistencyBundle {
    /// The older signed checkpoint.
    pub old_checkpoint: String,
    /// The newer signed checkpoint.
    pub new_checkpoint: String,
    /// The proof, hex.
    pub hashes: Vec<String>,
}

fn hashes_from_hex(hashes: &[String]) -> Result<Vec<Hash>, VerifyError> {
    if hashes.len() > merkle::MAX_PROOF_HASHES {
        return Err(ProofError::WrongLength.into());
    }
    hashes
        .iter()
        .map(|hex| {
            from_hex(hex)
                .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
                .ok_or_else(|| VerifyError::Malformed(format!("{hex:.16}... is not a 32-byte hex hash")))
        })
        .collect()
}

/// Hex of each hash.
pub fn hashes_to_hex(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|hash| to_hex(hash)).collect()
}

/// Verifies an inclusion bundle against `verifier`: the checkpoint's signature, that the leaf
/// input is the record at the claimed position, and the audit path. Returns the event.
pub fn verify_inclusion(
    bundle: &InclusionBundle,
    verifier: &NoteVerifier,
) -> Result<(Checkpoint, Envelope), VerifyError> {
    let checkpoint = Checkpoint::open(&bundle.checkpoint, verifier, Some(verifier.name()))?;
    if bundle.tree_size != checkpoint.size {
        return Err(VerifyError::Malformed(format!(
            "the proof is for a tree of {} records, the checkpoint covers {}",
            bundle.tree_size, checkpoint.size
        )));
    }
    let input = BASE64
        .decode(&bundle.leaf_input)
        .map_err(|_| VerifyError::Malformed("leaf_input is not base64".into()))?;
    let envelope: Envelope = crate::encoding::decode(&input)
        .map_err(|error| VerifyError::Malformed(format!("leaf_input is not an event: {error}")))?;
    if envelope.position != bundle.position {
        return Err(VerifyError::Malformed(format!(
            "the leaf input is the event at position {}, not {}",
            envelope.position, bundle.position
        )));
    }
    if bundle.position == 0 {
        return Err(VerifyError::Malformed("position 0 is not a record".into()));
    }
    let proof = hashes_from_hex(&bundle.hashes)?;
    merkle::verify_inclusion(
        bundle.position - 1,
        bundle.tree_size,
        &merkle::leaf_hash(&input),
        &proof,
        &checkpoint.root,
    )?;
    Ok((checkpoint, envelope))
}

/// Verifies that the newer checkpoint extends the older one, both signed by `verifier`.
pub fn verify_consistency(
    bundle: &ConsistencyBundle,
    verifier: &NoteVerifier,
) -> Result<(Checkpoint, Checkpoint), VerifyError> {
    let old = Checkpoint::open(&bundle.old_checkpoint, verifier, Some(verifier.name()))?;
    let new = Checkpoint::open(&bundle.new_checkpoint, verifier, Some(verifier.name()))?;
    let proof = hashes_from_hex(&bundle.hashes)?;
    merkle::verify_consistency(old.size, new.size, &proof, &old.root, &new.root)?;
    Ok((old, new))
}

/// What a verified export held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportVerified {
    /// The checkpoint verified against.
    pub checkpoint: Checkpoint,
    /// Lines read (at least the checkpoint's size; later ones are hashed but not covered).
    pub events: u64,
}

/// Verifies an unfiltered export from position 1 against a signed checkpoint: every line's
/// fields are encoded as the leaf input and hashed (and must match the line's leaf hash), and
/// the root of the first `checkpoint.size` leaves must be the signed root.
pub fn verify_export(
    input: &mut dyn BufRead,
    checkpoint_note: &str,
    verifier: &NoteVerifier,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportVerified, VerifyError> {
    let checkpoint = Checkpoint::open(checkpoint_note, verifier, Some(verifier.name()))?;
    // Only the right edge of the tree is kept, not every leaf: an export of any size verifies in
    // constant memory.
    let mut tree = merkle::CompactRange::default();
    let mut text = String::new();
    let mut position = 0u64;
    loop {
        let read = read_export_line(input, &mut text)
            .map_err(|error| VerifyError::Malformed(format!("reading the export: {error}")))?;
        if read == ExportRead::End {
            break;
        }
        let expected = position + 1;
        let at = |reason: String| VerifyError::Export {
            position: Some(expected),
            reason,
        };
        if read == ExportRead::TooLong {
            return Err(at(format!("the line is over {MAX_EXPORT_LINE_BYTES} bytes")));
        }
        let line: ExportLine = serde_json::from_str(text.trim_end())
            .map_err(|error| at(format!("not an export line: {error}")))?;
        if line.position != expected {
            return Err(at(format!(
                "the export has position {} where {expected} belongs: a filtered or partial export cannot be verified; export the whole log (no filters) from position 1",
                line.position
            )));
        }
        position = line.position;
        let leaf = leaf_of(&line).map_err(at)?;
        if position <= checkpoint.size {
            tree.push(leaf);
        }
        if position % 65_536 == 0 {
            progress(position);
        }
    }
    progress(position);
    if position < checkpoint.size {
        return Err(VerifyError::Export {
            position: None,
            reason: format!(
                "the export holds {position} records; the checkpoint covers {}",
                checkpoint.size
            ),
        });
    }
    if tree.root() != checkpoint.root {
        return Err(VerifyError::Export {
            position: None,
            reason: format!(
                "the root of its first {} records is not the signed root: the export is not the history the checkpoint signed",
                checkpoint.size
            ),
        });
    }
    Ok(ExportVerified {
        checkpoint,
        events: position,
    })
}

/// The leaf hash of an export line: the hash of its leaf input (verbatim, or rebuilt from
/// the fields of an export from before it was carried), checked against the line's own
/// `leaf_hash` and, through `to_envelope`, against its readable fields.
fn leaf_of(line: &ExportLine) -> Result<Hash, String> {
    let leaf = merkle::leaf_hash(&line.leaf_input()?);
    if to_hex(&leaf) != line.leaf_hash.to_lowercase() {
        return Err("the event's fields do not hash to its leaf_hash: the line was altered".into());
    }
    Ok(leaf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_are_read_at_max_proof_hashes_and_refused_one_past() {
        let hash = "ab".repeat(32);
        let at_max = vec![hash.clone(); merkle::MAX_PROOF_HASHES];
        assert_eq!(hashes_from_hex(&at_max).unwrap().len(), merkle::MAX_PROOF_HASHES);
        let one_past = vec![hash; merkle::MAX_PROOF_HASHES + 1];
        assert!(matches!(
            hashes_from_hex(&one_past),
            Err(VerifyError::Proof(ProofError::WrongLength))
        ));
    }
}

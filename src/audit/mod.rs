//! Verifiable history: the ledger's signing key and identity (`keys`), C2SP signed notes and
//! checkpoints (`note`), the server's checkpoint signer (`checkpoints`) and the offline
//! verification of proofs and exports (`verify`). The Merkle tree itself is `crate::merkle`
//! (pure) over the log's stored tiles (`crate::log::tree`).

pub mod checkpoints;
pub mod keys;
pub mod note;

pub use checkpoints::{CheckpointPolicy, Checkpoints, Signed};
pub use keys::LedgerKeys;
pub use note::{Checkpoint, NoteSigner, NoteVerifier};
pub mod verify;

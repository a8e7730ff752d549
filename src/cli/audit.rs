//! `dipledger audit ...`: the ledger's verifier key, proofs fetched from a server into files,
//! and their offline verification (no server, no data directory), and the witness loop.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use clap::Subcommand;
use dipledger::api::pb;
use dipledger::api::pb::audit_service_client::AuditServiceClient;
use dipledger::audit::verify::{self, ConsistencyBundle, InclusionBundle};
use dipledger::audit::{Checkpoint, LedgerKeys, NoteVerifier};

/// `dipledger audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditVerb {
    /// Print the ledger's checkpoint verifier key (`name+keyhash+base64key`); makes the
    /// ledger id and key if the directory has none yet.
    Key {
        /// The data directory.
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Replace the directory's signing key; the old key cosigns the next checkpoint. Restart
    /// the server to use it. Prints the new verifier key.
    RotateKey {
        /// The data directory.
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Fetch a signed checkpoint (the latest, or the first covering --position) and print it.
    Checkpoint {
        /// The server.
        #[arg(long, env = "DIPLEDGER_SERVER", default_value = super::DEFAULT_SERVER)]
        server: String,
        /// The smallest checkpoint covering this position (0: the latest).
        #[arg(long, default_value_t = 0)]
        position: u64,
    },
    /// Fetch the inclusion proof of one record against the first checkpoint covering it (or
    /// --checkpoint FILE), as a JSON file for `verify-inclusion`.
    ProveInclusion {
        /// The server.
        #[arg(long, env = "DIPLEDGER_SERVER", default_value = super::DEFAULT_SERVER)]
        server: String,
        /// The record's position.
        #[arg(long)]
        position: u64,
        /// Prove against this signed checkpoint instead.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Fetch the consistency proof from an older signed checkpoint (a file) to the latest,
    /// as a JSON file for `verify-consistency`.
    ProveConsistency {
        /// The server.
        #[arg(long, env = "DIPLEDGER_SERVER", default_value = super::DEFAULT_SERVER)]
        server: String,
        /// The older checkpoint.
        #[arg(long)]
        old: PathBuf,
    },
    /// Verify an inclusion proof file offline against a verifier key.
    VerifyInclusion {
        /// The verifier key (or @FILE).
        #[arg(long)]
        key: String,
        /// The proof file (from `prove-inclusion`).
        #[arg(long)]
        proof: PathBuf,
    },
    /// Verify a consistency proof file offline against a verifier key.
    VerifyConsistency {
        /// The verifier key (or @FILE).
        #[arg(long)]
        key: String,
        /// The proof file (from `prove-consistency`).
        #[arg(long)]
        proof: PathBuf,
    },
    /// Verify an unfiltered export (JSON lines from position 1) offline against a signed
    /// checkpoint: every record hashed, the root recomputed, the signature checked.
    VerifyExport {
        /// The verifier key (or @FILE).
        #[arg(long)]
        key: String,
        /// The signed checkpoint (a file, from `audit checkpoint`).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The export (from `dipledger export --format jsonl`).
        #[arg(long)]
        export: PathBuf,
    },
    /// The witness: keep the last verified checkpoint in --state and check that each new one
    /// extends it; exit 3 on a fork or rewritten history.
    Watch {
        /// The server.
        #[arg(long, env = "DIPLEDGER_SERVER", default_value = super::DEFAULT_SERVER)]
        server: String,
        /// The verifier key (or @FILE).
        #[arg(long)]
        key: String,
        /// Where the last verified checkpoint is kept.
        #[arg(long)]
        state: PathBuf,
        /// Milliseconds between two checks.
        #[arg(long, default_value_t = 5_000)]
        interval_ms: u64,
        /// Check once and exit.
        #[arg(long)]
        once: bool,
    },
}

/// Exit code of `watch` and the verifiers when history does not verify.
pub const EXIT_NOT_VERIFIED: u8 = 3;

/// Runs an audit verb.
pub async fn run(verb: AuditVerb) -> anyhow::Result<ExitCode> {
    match verb {
        AuditVerb::Key { data_dir } => {
            let keys = LedgerKeys::open(&data_dir, None).context("reading the ledger's key")?;
            println!("{}", keys.verifier().to_vkey());
        }
        AuditVerb::RotateKey { data_dir } => {
            let verifier = LedgerKeys::rotate(&data_dir).context("rotating the ledger's key")?;
            println!("{}", verifier.to_vkey());
        }
        AuditVerb::Checkpoint { server, position } => {
            print!("{}", fetch_checkpoint(&server, position).await?.note);
        }
        AuditVerb::ProveInclusion {
            server,
            position,
            checkpoint,
        } => {
            check_position(position)?;
            prove_inclusion(&server, position, checkpoint.as_deref()).await?
        }
        AuditVerb::ProveConsistency { server, old } => prove_consistency(&server, &old).await?,
        AuditVerb::VerifyInclusion { key, proof } => {
            let bundle: InclusionBundle = read_json(&proof)?;
            return Ok(report(verify::verify_inclusion(&bundle, &verifier(&key)?).map(|(c, e)| {
                format!(
                    "OK: position {} ({} v{} of {}, recorded by {}) is in the tree of {} records signed by {}",
                    e.position, e.event_type, e.stream_version, e.stream_id, e.recorded_by, c.size, c.origin
                )
            })));
        }
        AuditVerb::VerifyConsistency { key, proof } => {
            let bundle: ConsistencyBundle = read_json(&proof)?;
            return Ok(report(verify::verify_consistency(&bundle, &verifier(&key)?).map(
                |(old, new)| {
                    format!(
                        "OK: the tree of {} records extends the tree of {}",
                        new.size, old.size
                    )
                },
            )));
        }
        AuditVerb::VerifyExport {
            key,
            checkpoint,
            export,
        } => {
            let note = read_text(&checkpoint)?;
            let file =
                std::fs::File::open(&export).with_context(|| format!("--export {}", export.display()))?;
            let mut input = BufReader::with_capacity(1 << 20, file);
            let verified = verify::verify_export(&mut input, &note, &verifier(&key)?, &mut |_| {});
            return Ok(report(verified.map(|v| {
                format!(
                    "OK: {} records read; the first {} hash to the root signed by {}",
                    v.events, v.checkpoint.size, v.checkpoint.origin
                )
            })));
        }
        AuditVerb::Watch {
            server,
            key,
            state,
            interval_ms,
            once,
        } => return watch(&server, &verifier(&key)?, &state, interval_ms, once).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the outcome of a verification; exit 3 when it failed.
fn report(outcome: Result<String, verify::VerifyError>) -> ExitCode {
    match outcome {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("NOT VERIFIED: {error}");
            ExitCode::from(EXIT_NOT_VERIFIED)
        }
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    serde_json::from_str(&read_text(path)?).with_context(|| format!("{} is not a proof file", path.display()))
}

/// The verifier key given on the command line, or read from `@FILE`.
fn verifier(key: &str) -> anyhow::Result<NoteVerifier> {
    let text = match key.strip_prefix('@') {
        Some(path) => read_text(Path::new(path))?,
        None => key.to_owned(),
    };
    NoteVerifier::parse(&text).context("--key")
}

async fn client(server: &str) -> anyhow::Result<AuditServiceClient<super::Connection>> {
    Ok(AuditServiceClient::new(super::connect(server).await?))
}

async fn fetch_checkpoint(server: &str, position: u64) -> anyhow::Result<pb::GetCheckpointResponse> {
    let request = pb::GetCheckpointRequest {
        at_or_after_position: position,
    };
    Ok(client(server).await?.get_checkpoint(request).await?.into_inner())
}

async fn prove_inclusion(server: &str, position: u64, checkpoint: Option<&Path>) -> anyhow::Result<()> {
    let note = match checkpoint {
        Some(path) => read_text(path)?,
        None => fetch_checkpoint(server, position).await?.note,
    };
    let text = dipledger::audit::note::note_text(&note).context("the checkpoint")?;
    let size = Checkpoint::parse(text).context("the checkpoint")?.size;
    let proof = client(server)
        .await?
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            position,
            tree_size: size,
        })
        .await?
        .into_inner();
    let bundle = InclusionBundle {
        checkpoint: note,
        position,
        tree_size: size,
        leaf_input: BASE64.encode(&proof.leaf_input),
        hashes: proof
            .hashes
            .iter()
            .map(|h| dipledger::log::backup::to_hex(h))
            .collect(),
    };
    println!("{}", serde_json::to_string_pretty(&bundle)?);
    Ok(())
}

async fn prove_consistency(server: &str, old: &Path) -> anyhow::Result<()> {
    let old_note = read_text(old)?;
    let old_size = Checkpoint::parse(dipledger::audit::note::note_text(&old_note)?)?.size;
    let new = fetch_checkpoint(server, 0).await?;
    let proof = consistency(server, old_size, new.tree_size).await?;
    let bundle = ConsistencyBundle {
        old_checkpoint: old_note,
        new_checkpoint: new.note,
        hashes: proof,
    };
    println!("{}", serde_json::to_string_pretty(&bundle)?);
    Ok(())
}

async fn consistency(server: &str, first: u64, second: u64) -> anyhow::Result<Vec<String>> {
    let proof = client(server)
        .await?
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: first,
            second_size: second,
        })
        .await?
        .into_inner();
    Ok(proof
        .hashes
        .iter()
        .map(|h| dipledger::log::backup::to_hex(h))
        .collect())
}

/// One witness round: the latest checkpoint, verified, and (with a state) proven to extend it.
async fn witness_round(
    server: &str,
    key: &NoteVerifier,
    state: &Path,
) -> anyhow::Result<Result<String, String>> {
    let new = fetch_checkpoint(server, 0).await?;
    let checkpoint = match Checkpoint::open(&new.note, key, Some(key.name())) {
        Ok(checkpoint) => checkpoint,
        Err(error) => return Ok(Err(format!("the server's checkpoint does not verify: {error}"))),
    };
    if state.exists() {
        let old_note = read_text(state)?;
        let old = Checkpoint::open(&old_note, key, Some(key.name())).context("the state file")?;
        if checkpoint.size < old.size {
            return Ok(Err(format!(
                "FORK: the server signed a tree of {} records after one of {}",
                checkpoint.size, old.size
            )));
        }
        let bundle = ConsistencyBundle {
            old_checkpoint: old_note,
            new_checkpoint: new.note.clone(),
            hashes: consistency(server, old.size, checkpoint.size).await?,
        };
        if let Err(error) = verify::verify_consistency(&bundle, key) {
            return Ok(Err(format!(
                "FORK: the tree of {} records does not extend the verified tree of {} ({error}): history was rewritten",
                checkpoint.size, old.size
            )));
        }
    }
    let temporary = state.with_extension("tmp");
    std::fs::write(&temporary, &new.note).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, state).with_context(|| format!("writing {}", state.display()))?;
    Ok(Ok(format!(
        "OK: checkpoint of {} records verified",
        checkpoint.size
    )))
}

async fn watch(
    server: &str,
    key: &NoteVerifier,
    state: &Path,
    interval_ms: u64,
    once: bool,
) -> anyhow::Result<ExitCode> {
    loop {
        match witness_round(server, key, state).await? {
            Ok(message) => println!("{message}"),
            Err(alarm) => {
                eprintln!("{alarm}");
                return Ok(ExitCode::from(EXIT_NOT_VERIFIED));
            }
        }
        if once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_millis(interval_ms)).await;
    }
}

/// Refuses a position of 0 early (the server would too).
pub fn check_position(position: u64) -> anyhow::Result<()> {
    if position == 0 {
        bail!("--position starts at 1");
    }
    Ok(())
}

//! Verifiable history over the real server: signed checkpoints, inclusion and consistency
//! proofs and tiles verified with the ledger's public key alone; status codes of bad requests;
//! and what a forger who rewrites the stored records (and then the tree, and the checkpoints)
//! runs into.

use std::time::Duration;

use crate::support::api::{append_many, within, Harness};
use crate::support::cli::{dipledger, dipledger_async};
use crate::support::tamper::{forge_record, forge_tile, forget_checkpoints};
use dipledger::api::pb;
use dipledger::api::pb::audit_service_client::AuditServiceClient;
use dipledger::api::server::ServerOptions;
use dipledger::audit::{Checkpoint, LedgerKeys, NoteVerifier};
use dipledger::log::{Direction, Envelope, EventFilter, Log, LogConfig};
use dipledger::merkle::{self, Hash, NaiveNodes};
use tonic::transport::Channel;

const EVENTS: usize = 300;

async fn audit(harness: &Harness) -> AuditServiceClient<Channel> {
    AuditServiceClient::new(harness.channel().await)
}

fn verifier(harness: &Harness) -> NoteVerifier {
    LedgerKeys::open(harness.dir.path(), None).unwrap().verifier()
}

/// Every leaf hash of the log, as its records store them.
fn leaves(log: &Log) -> Vec<Hash> {
    log.read_all(1, Direction::Forwards, 10_000, &EventFilter::default())
        .unwrap()
        .events
        .iter()
        .map(|event| *event.leaf_hash())
        .collect()
}

fn hash(bytes: &[u8]) -> Hash {
    bytes.try_into().expect("32 bytes")
}

/// The signed checkpoint covering `position`, opened with `key`.
async fn checkpoint(
    client: &mut AuditServiceClient<Channel>,
    position: u64,
    key: &NoteVerifier,
) -> (Checkpoint, String) {
    let response = within(
        "a checkpoint",
        client.get_checkpoint(pb::GetCheckpointRequest {
            at_or_after_position: position,
        }),
    )
    .await
    .unwrap()
    .into_inner();
    let checkpoint =
        Checkpoint::open(&response.note, key, Some(key.name())).expect("signed by the ledger's key");
    assert_eq!(checkpoint.size, response.tree_size);
    assert_eq!(checkpoint.root.to_vec(), response.root_hash);
    assert_eq!(response.verifier_key, key.to_vkey());
    (checkpoint, response.note)
}

async fn started_with_events() -> Harness {
    let harness = Harness::start().await;
    append_many(&harness.log, "party-LBY", EVENTS, "party:LBY").await;
    harness
}

#[tokio::test]
async fn checkpoints_proofs_and_tiles_verify_with_the_ledger_key_alone() {
    let harness = started_with_events().await;
    let key = verifier(&harness);
    let mut client = audit(&harness).await;
    let (signed, _) = checkpoint(&mut client, EVENTS as u64, &key).await;
    assert_eq!(signed.size, EVENTS as u64);
    assert_eq!(signed.origin, key.name());
    let all = leaves(&harness.log);
    assert_eq!(signed.root, merkle::root(&NaiveNodes(&all), signed.size).unwrap());
    for position in [1u64, 2, 255, 256, 257, 300] {
        let proof = client
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                position,
                tree_size: signed.size,
            })
            .await
            .unwrap()
            .into_inner();
        let leaf = merkle::leaf_hash(&proof.leaf_input);
        assert_eq!(proof.leaf_hash, leaf.to_vec());
        let envelope: Envelope = dipledger::encoding::decode(&proof.leaf_input).unwrap();
        assert_eq!(envelope.position, position, "the leaf input is the record itself");
        let hashes: Vec<Hash> = proof.hashes.iter().map(|h| hash(h)).collect();
        merkle::verify_inclusion(position - 1, signed.size, &leaf, &hashes, &signed.root).unwrap();
    }
    // Consistency from an older tree (its root computed from the records' leaves).
    for first in [1u64, 100, 256, 299, 300] {
        let proof = client
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                first_size: first,
                second_size: signed.size,
            })
            .await
            .unwrap()
            .into_inner();
        let hashes: Vec<Hash> = proof.hashes.iter().map(|h| hash(h)).collect();
        let old_root = merkle::root(&NaiveNodes(&all), first).unwrap();
        merkle::verify_consistency(first, signed.size, &hashes, &old_root, &signed.root).unwrap();
    }
    // Tiles: the full first one and the partial second, as C2SP serves them.
    let full = client
        .get_tile(pb::GetTileRequest {
            level: 0,
            index: 0,
            width: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(full.path, "tile/0/000");
    assert_eq!(full.hashes, all[..256].concat());
    let partial = client
        .get_tile(pb::GetTileRequest {
            level: 0,
            index: 1,
            width: 44,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(partial.path, "tile/0/001.p/44");
    assert_eq!(partial.hashes, all[256..300].concat());
    let level1 = client
        .get_tile(pb::GetTileRequest {
            level: 1,
            index: 0,
            width: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        level1.hashes,
        merkle::root(&NaiveNodes(&all), 256).unwrap().to_vec()
    );
}

#[tokio::test]
async fn a_checkpoint_follows_new_commits_and_extends_the_one_before() {
    let harness = started_with_events().await;
    let key = verifier(&harness);
    let mut client = audit(&harness).await;
    let (first, _) = checkpoint(&mut client, EVENTS as u64, &key).await;
    let head = append_many(&harness.log, "party-FRA", 10, "party:FRA").await;
    // Signed within the interval (1 s by default); the call waits for it.
    let (second, _) = checkpoint(&mut client, head, &key).await;
    assert_eq!(second.size, head);
    let proof = client
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: first.size,
            second_size: second.size,
        })
        .await
        .unwrap()
        .into_inner();
    let hashes: Vec<Hash> = proof.hashes.iter().map(|h| hash(h)).collect();
    merkle::verify_consistency(first.size, second.size, &hashes, &first.root, &second.root).unwrap();
    // The smallest checkpoint covering an older position is the older one.
    let (older, _) = checkpoint(&mut client, 5, &key).await;
    assert_eq!(older.size, first.size);
}

#[tokio::test]
async fn bad_proof_requests_get_the_documented_codes() {
    let harness = started_with_events().await;
    let mut client = audit(&harness).await;
    let head = EVENTS as u64;
    let past = client
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            position: 1,
            tree_size: head + 1,
        })
        .await
        .unwrap_err();
    assert_eq!(past.code(), tonic::Code::OutOfRange);
    assert!(past.message().starts_with("tree_size:"), "{}", past.message());
    let zero = client
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            position: 0,
            tree_size: head,
        })
        .await
        .unwrap_err();
    assert_eq!(zero.code(), tonic::Code::OutOfRange);
    assert!(zero.message().starts_with("position:"), "{}", zero.message());
    let reversed = client
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: 10,
            second_size: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(reversed.code(), tonic::Code::InvalidArgument);
    assert!(
        reversed.message().contains("first_size"),
        "{}",
        reversed.message()
    );
    let beyond = client
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: 1,
            second_size: head + 1,
        })
        .await
        .unwrap_err();
    assert_eq!(beyond.code(), tonic::Code::OutOfRange);
    let wide = client
        .get_tile(pb::GetTileRequest {
            level: 0,
            index: 0,
            width: 257,
        })
        .await
        .unwrap_err();
    assert_eq!(wide.code(), tonic::Code::InvalidArgument);
    let unwritten = client
        .get_tile(pb::GetTileRequest {
            level: 0,
            index: 1,
            width: 45,
        })
        .await
        .unwrap_err();
    assert_eq!(unwritten.code(), tonic::Code::OutOfRange);
    // A position past the head waits for a signature until the deadline, then UNAVAILABLE.
    let mut request = tonic::Request::new(pb::GetCheckpointRequest {
        at_or_after_position: head + 1,
    });
    request.set_timeout(Duration::from_millis(300));
    let waited = client.get_checkpoint(request).await.unwrap_err();
    assert_eq!(waited.code(), tonic::Code::Unavailable, "{waited:?}");
}

/// Stops the harness's server and closes its log; returns the directory.
async fn stop(harness: Harness) -> tempfile::TempDir {
    let Harness { dir, log, server } = harness;
    server.shutdown().await.unwrap();
    drop(log);
    dir
}

/// Opens the stopped server's directory for the forger.
fn open_for_forgery(dir: &tempfile::TempDir) -> Log {
    Log::open(LogConfig::new(dir.path())).unwrap()
}

#[tokio::test]
async fn a_forged_record_answers_data_loss_and_verify_and_export_name_its_position() {
    let harness = started_with_events().await;
    let key = verifier(&harness);
    let (signed, _) = checkpoint(&mut audit(&harness).await, EVENTS as u64, &key).await;
    let dir = stop(harness).await;
    {
        let log = open_for_forgery(&dir);
        forge_record(&log, 10);
    }
    // The forged records check out on their own: only the tree tells.
    let harness = Harness::start_in(dir, ServerOptions::default()).await;
    let mut client = audit(&harness).await;
    let forged = client
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            position: 10,
            tree_size: signed.size,
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), tonic::Code::DataLoss, "{forged:?}");
    assert!(forged.message().contains("10"), "{}", forged.message());
    // The forged bytes, hashed, do not verify against the checkpoint signed before.
    let honest = client
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            position: 11,
            tree_size: signed.size,
        })
        .await
        .unwrap()
        .into_inner();
    let hashes: Vec<Hash> = honest.hashes.iter().map(|h| hash(h)).collect();
    merkle::verify_inclusion(10, signed.size, &hash(&honest.leaf_hash), &hashes, &signed.root).unwrap();
    let forged_leaf = *harness.log.read_event(10).unwrap().leaf_hash();
    let path_10: Vec<Hash> = {
        let mut all = leaves(&harness.log);
        all[9] = forged_leaf;
        merkle::inclusion_proof(&NaiveNodes(&all), 9, signed.size).unwrap()
    };
    assert!(merkle::verify_inclusion(9, signed.size, &forged_leaf, &path_10, &signed.root).is_err());
    let dir = stop(harness).await;
    let data_dir = dir.path().to_str().unwrap();
    let verify = dipledger(&["verify", "--data-dir", data_dir]);
    assert_eq!(verify.status.code(), Some(2), "{verify:?}");
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("damaged: position 10"),
        "{verify:?}"
    );
    let out = dir.path().join("export.jsonl");
    let export = dipledger(&["export", "--data-dir", data_dir, "--out", out.to_str().unwrap()]);
    assert!(!export.status.success());
    assert!(
        String::from_utf8_lossy(&export.stderr).contains("position 10"),
        "{export:?}"
    );
}

#[tokio::test]
async fn a_forged_tree_is_refused_a_signature_and_the_witness_reports_the_fork() {
    let harness = started_with_events().await;
    let key = verifier(&harness);
    let vkey = key.to_vkey();
    let state = harness.dir.path().join("witness.state");
    let state = state.to_str().unwrap().to_owned();
    let uri = harness.server.uri();
    let watch = |uri: String| {
        let args = [
            "audit", "watch", "--server", &uri, "--key", &vkey, "--state", &state, "--once",
        ];
        dipledger_async(&args.map(str::to_owned))
    };
    checkpoint(&mut audit(&harness).await, EVENTS as u64, &key).await;
    let first = watch(uri).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let dir = stop(harness).await;
    {
        let log = open_for_forgery(&dir);
        forge_record(&log, 10);
        forge_tile(&log, 0);
    }
    // Records and tree agree with each other now, but not with the last signed checkpoint.
    let harness = Harness::start_in(dir, ServerOptions::default()).await;
    let head = append_many(&harness.log, "party-FRA", 1, "party:FRA").await;
    let mut client = audit(&harness).await;
    let refused = client
        .get_checkpoint(pb::GetCheckpointRequest {
            at_or_after_position: head,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::DataLoss, "{refused:?}");
    assert!(
        refused.message().contains("refusing to sign"),
        "{}",
        refused.message()
    );
    // The forger also deletes the signed checkpoints: the server signs the forged tree anew,
    // and the witness, holding the checkpoint from before, sees the fork.
    let dir = stop(harness).await;
    forget_checkpoints(&open_for_forgery(&dir));
    let harness = Harness::start_in(dir, ServerOptions::default()).await;
    checkpoint(&mut audit(&harness).await, head, &key).await;
    let fork = watch(harness.server.uri()).await;
    assert_eq!(
        fork.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&fork.stdout)
    );
    assert!(
        String::from_utf8_lossy(&fork.stderr).contains("FORK"),
        "{}",
        String::from_utf8_lossy(&fork.stderr)
    );
}

#[tokio::test]
async fn after_a_key_rotation_the_first_checkpoint_is_cosigned_by_the_old_key() {
    let harness = started_with_events().await;
    let old = verifier(&harness);
    checkpoint(&mut audit(&harness).await, EVENTS as u64, &old).await;
    let dir = stop(harness).await;
    let new = LedgerKeys::rotate(dir.path()).unwrap();
    assert_ne!(new, old);
    let harness = Harness::start_in(dir, ServerOptions::default()).await;
    let head = append_many(&harness.log, "party-FRA", 1, "party:FRA").await;
    let (signed, note) = checkpoint(&mut audit(&harness).await, head, &new).await;
    let by_old = Checkpoint::open(&note, &old, Some(old.name())).expect("cosigned by the old key");
    assert_eq!(by_old, signed);
}

#[tokio::test]
async fn the_audit_verbs_prove_online_and_verify_offline_and_refuse_what_was_altered() {
    let harness = started_with_events().await;
    let data_dir = harness.dir.path().to_str().unwrap().to_owned();
    let uri = harness.server.uri();
    let key = dipledger_async(&["audit", "key", "--data-dir", &data_dir]).await;
    let vkey = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    assert_eq!(vkey, verifier(&harness).to_vkey());
    checkpoint(&mut audit(&harness).await, EVENTS as u64, &verifier(&harness)).await;
    let note = dipledger_async(&["audit", "checkpoint", "--server", &uri]).await;
    assert!(note.status.success(), "{note:?}");
    let note_path = harness.dir.path().join("cp.note");
    std::fs::write(&note_path, &note.stdout).unwrap();
    let proof = dipledger_async(&["audit", "prove-inclusion", "--server", &uri, "--position", "257"]).await;
    assert!(proof.status.success(), "{proof:?}");
    let proof_path = harness.dir.path().join("p.json");
    std::fs::write(&proof_path, &proof.stdout).unwrap();
    let proof_file = proof_path.to_str().unwrap();
    let ok = dipledger(&["audit", "verify-inclusion", "--key", &vkey, "--proof", proof_file]);
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        String::from_utf8_lossy(&ok.stdout).starts_with("OK: position 257 "),
        "{ok:?}"
    );
    // One flipped hex digit in the audit path: not verified, exit 3.
    let mut bundle: dipledger::audit::verify::InclusionBundle =
        serde_json::from_slice(&proof.stdout).unwrap();
    let first = bundle.hashes[0].clone();
    bundle.hashes[0] = format!(
        "{}{}",
        if first.starts_with('0') { "1" } else { "0" },
        &first[1..]
    );
    std::fs::write(&proof_path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let bad = dipledger(&["audit", "verify-inclusion", "--key", &vkey, "--proof", proof_file]);
    assert_eq!(bad.status.code(), Some(3), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).starts_with("NOT VERIFIED"),
        "{bad:?}"
    );
    let dir = stop(harness).await;
    let export_path = dir.path().join("all.jsonl");
    let export = dipledger(&[
        "export",
        "--data-dir",
        &data_dir,
        "--out",
        export_path.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{export:?}");
    let verify_export = |path: &std::path::Path| {
        dipledger(&[
            "audit",
            "verify-export",
            "--key",
            &vkey,
            "--checkpoint",
            note_path.to_str().unwrap(),
            "--export",
            path.to_str().unwrap(),
        ])
    };
    let verified = verify_export(&export_path);
    assert!(verified.status.success(), "{verified:?}");
    // A filtered export (line 2 left out) is refused, naming the position that is missing.
    let text = std::fs::read_to_string(&export_path).unwrap();
    let filtered: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    let filtered_path = dir.path().join("filtered.jsonl");
    std::fs::write(&filtered_path, filtered.join("\n") + "\n").unwrap();
    let refused = verify_export(&filtered_path);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("position 2") && message.contains("filtered"),
        "{message}"
    );
    // An altered line (another principal) is named.
    let altered = text.replacen("\"recorded_by\":\"tester\"", "\"recorded_by\":\"mallory\"", 1);
    let altered_path = dir.path().join("altered.jsonl");
    std::fs::write(&altered_path, altered).unwrap();
    let named = verify_export(&altered_path);
    assert_eq!(named.status.code(), Some(3), "{named:?}");
    assert!(
        String::from_utf8_lossy(&named.stderr).contains("position 1:"),
        "{named:?}"
    );
}

#[tokio::test]
async fn reads_return_the_leaf_input_on_request_the_same_bytes_the_proofs_are_over() {
    let harness = started_with_events().await;
    let mut store = harness.event_store().await;
    let page = store
        .read_all(pb::ReadAllRequest {
            from_position: Some(1),
            limit: 10,
            include_leaf_input: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.events.len(), 10);
    let mut client = audit(&harness).await;
    for event in &page.events {
        assert_eq!(merkle::leaf_hash(&event.leaf_input).to_vec(), event.leaf_hash);
        let proof = client
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                position: event.position,
                tree_size: EVENTS as u64,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(proof.leaf_input, event.leaf_input);
    }
    let plain = store
        .read_all(pb::ReadAllRequest {
            from_position: Some(1),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(plain.events[0].leaf_input.is_empty(), "only on request");
}

//! A careful forger's tools for the tests of verifiable history: rewrite a stored record and
//! everything that hashes it (its leaf and chain hashes and checksum, the chain and checksum of
//! every later record, the head), then, optionally, the Merkle tiles and the signed
//! checkpoints. Only what was handed out before (checkpoints, proofs) can still tell.

use dipledger::log::codec::{self, GENESIS_CHAIN_HASH};
use dipledger::log::keys::{self, META_HEAD_KEY};
use dipledger::log::keys::{tile_key, CHECKPOINT_PREFIX};
use dipledger::log::{recovery, Hash, Log};

/// Flips the last payload byte of the record at `position` and re-chains every record from
/// there and the head, so the records check out on their own (checksums, leaf and chain
/// hashes). Returns the forged record's new leaf hash.
pub fn forge_record(log: &Log, position: u64) -> Hash {
    let tree = log.raw_tree();
    let mut chain = match position {
        1 => GENESIS_CHAIN_HASH,
        _ => *log.read_event(position - 1).unwrap().chain_hash(),
    };
    let mut forged_leaf = None;
    let chunks: Vec<_> = tree
        .scan_prefix([keys::EVENT_PREFIX])
        .map(Result::unwrap)
        .collect();
    for (key, value) in chunks {
        let first = keys::position_of_event_key(&key).unwrap();
        let records = codec::split_chunk(first, &value).unwrap();
        if first + records.len() as u64 <= position {
            continue;
        }
        let mut chunk = Vec::with_capacity(value.len());
        for (offset, record) in records.iter().enumerate() {
            let at = first + offset as u64;
            if at < position {
                chunk.extend_from_slice(record);
                continue;
            }
            let mut record = record.to_vec();
            let body_len = u32::from_be_bytes(record[1..5].try_into().unwrap()) as usize;
            if at == position {
                record[5 + body_len - 1] ^= 1;
            }
            let leaf = codec::leaf_hash(&record[5..5 + body_len]);
            chain = codec::chain_hash(&chain, &leaf);
            record[5 + body_len..5 + body_len + 32].copy_from_slice(&leaf);
            record[5 + body_len + 32..5 + body_len + 64].copy_from_slice(&chain);
            let crc_at = record.len() - 4;
            let crc = crc32fast::hash(&record[..crc_at]);
            record[crc_at..].copy_from_slice(&crc.to_be_bytes());
            if at == position {
                forged_leaf = Some(leaf);
            }
            chunk.extend_from_slice(&record);
        }
        tree.insert(key, chunk).unwrap();
    }
    let mut head = recovery::load_head(tree).unwrap();
    head.chain_hash = chain;
    tree.insert(META_HEAD_KEY, keys::encode_checked(&head)).unwrap();
    tree.flush().unwrap();
    forged_leaf.expect("the position is in the log")
}

/// Rewrites level-0 tile `index` from the records' own leaf hashes (after `forge_record`, the
/// stored tree then agrees with the forged records).
pub fn forge_tile(log: &Log, index: u64) {
    let tree = log.raw_tree();
    let mut bytes = Vec::with_capacity(256 * 32);
    for position in index * 256 + 1..=(index + 1) * 256 {
        bytes.extend_from_slice(log.read_event(position).unwrap().leaf_hash());
    }
    tree.insert(tile_key(0, index), bytes).unwrap();
    tree.flush().unwrap();
}

/// Deletes every stored signed checkpoint, so the server signs the forged tree afresh.
pub fn forget_checkpoints(log: &Log) {
    let tree = log.raw_tree();
    let keys: Vec<_> = tree
        .scan_prefix([CHECKPOINT_PREFIX])
        .map(|entry| entry.unwrap().0)
        .collect();
    for key in keys {
        tree.remove(key).unwrap();
    }
    tree.flush().unwrap();
}

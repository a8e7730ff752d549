//! The RFC 6962 / Certificate Transparency reference vectors (the test data of the reference
//! implementations: 8 leaves, their roots, inclusion and consistency proofs) and properties
//! against a naive tree.

use super::tile::{TileSource, Tiled, TILE_WIDTH};
use super::*;
use proptest::prelude::*;

fn h(hex: &str) -> Hash {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf number from 1, tree size, proof)
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn vector_leaves() -> Vec<Hash> {
    LEAVES.iter().map(|leaf| leaf_hash(&unhex(leaf))).collect()
}

#[test]
fn the_empty_tree_is_the_hash_of_nothing() {
    assert_eq!(
        empty_root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(root(&NaiveNodes(&[]), 0).unwrap(), empty_root());
}

#[test]
fn roots_match_the_reference_vectors() {
    let leaves = vector_leaves();
    for (size, expected) in ROOTS.iter().enumerate() {
        let size = size as u64 + 1;
        assert_eq!(
            root(&NaiveNodes(&leaves), size).unwrap(),
            h(expected),
            "size {size}"
        );
    }
}

#[test]
fn inclusion_proofs_match_the_reference_vectors_and_verify() {
    let leaves = vector_leaves();
    for (leaf, size, expected) in INCLUSION {
        let proof = inclusion_proof(&NaiveNodes(&leaves), leaf - 1, size).unwrap();
        let expected: Vec<Hash> = expected.iter().map(|x| h(x)).collect();
        assert_eq!(proof, expected, "leaf {leaf} of {size}");
        let root = h(ROOTS[size as usize - 1]);
        verify_inclusion(leaf - 1, size, &leaves[leaf as usize - 1], &proof, &root).unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_reference_vectors_and_verify() {
    let leaves = vector_leaves();
    for (first, second, expected) in CONSISTENCY {
        let proof = consistency_proof(&NaiveNodes(&leaves), first, second).unwrap();
        let expected: Vec<Hash> = expected.iter().map(|x| h(x)).collect();
        assert_eq!(proof, expected, "{first} to {second}");
        let (r1, r2) = (h(ROOTS[first as usize - 1]), h(ROOTS[second as usize - 1]));
        verify_consistency(first, second, &proof, &r1, &r2).unwrap();
    }
}

#[test]
fn degenerate_consistency_cases_follow_the_rfc() {
    let (a, b) = (h(ROOTS[0]), h(ROOTS[1]));
    assert!(verify_consistency(0, 0, &[], &a, &a).is_ok());
    assert!(verify_consistency(0, 1, &[], &a, &b).is_ok());
    assert!(
        verify_consistency(1, 1, &[], &a, &b).is_err(),
        "same size, other root"
    );
    assert!(
        verify_consistency(1, 1, &[a], &a, &a).is_err(),
        "same size, a proof"
    );
    assert!(verify_consistency(2, 1, &[], &a, &b).is_err(), "time travel");
    assert!(verify_consistency(1, 2, &[], &a, &b).is_err(), "empty proof");
    assert!(verify_inclusion(0, 0, &a, &[], &a).is_err());
    assert!(verify_inclusion(1, 1, &a, &[], &a).is_err());
}

/// Leaves of a tree of `n` made from a seed.
fn leaves(n: u64, seed: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&(seed ^ i).to_le_bytes())).collect()
}

/// A tile source over all leaves: level L hashes computed naively.
struct AllTiles(Vec<Hash>);

impl TileSource for AllTiles {
    type Error = std::convert::Infallible;
    fn entries(&self, level: u32, start: u64, count: u64) -> Result<Vec<Hash>, Self::Error> {
        assert!(start / TILE_WIDTH == (start + count - 1) / TILE_WIDTH, "one tile");
        let span = 1u64 << (8 * level);
        Ok((start..start + count)
            .map(|i| root_of_hashes(&self.0[(i * span) as usize..((i + 1) * span) as usize]))
            .collect())
    }
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[bit / 8 % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tiled_proofs_equal_naive_proofs(n in 1u64..1500, i in 0u64..1500, m in 0u64..1500, seed: u64) {
        let (i, m) = (i % n, m % (n + 1));
        let all = leaves(n, seed);
        let tiled = Tiled(AllTiles(all.clone()));
        prop_assert_eq!(root(&tiled, n).unwrap(), root(&NaiveNodes(&all), n).unwrap());
        prop_assert_eq!(inclusion_proof(&tiled, i, n).unwrap(), inclusion_proof(&NaiveNodes(&all), i, n).unwrap());
        prop_assert_eq!(consistency_proof(&tiled, m, n).unwrap(), consistency_proof(&NaiveNodes(&all), m, n).unwrap());
    }

    #[test]
    fn inclusion_proofs_verify_and_fail_when_anything_changes(n in 1u64..300, i in 0u64..300, bit in 0usize..256, seed: u64) {
        let i = i % n;
        let all = leaves(n, seed);
        let nodes = NaiveNodes(&all);
        let root_n = root(&nodes, n).unwrap();
        let proof = inclusion_proof(&nodes, i, n).unwrap();
        prop_assert!(verify_inclusion(i, n, &all[i as usize], &proof, &root_n).is_ok());
        prop_assert!(verify_inclusion(i, n, &flip(&all[i as usize], bit), &proof, &root_n).is_err());
        prop_assert!(verify_inclusion(i, n, &all[i as usize], &proof, &flip(&root_n, bit)).is_err());
        for k in 0..proof.len() {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(verify_inclusion(i, n, &all[i as usize], &bad, &root_n).is_err());
        }
        for other in 0..n {
            if all[other as usize] != all[i as usize] {
                prop_assert!(verify_inclusion(i, n, &all[other as usize], &proof, &root_n).is_err());
            }
            if other != i {
                prop_assert!(verify_inclusion(other, n, &all[i as usize], &proof, &root_n).is_err());
            }
        }
        // Against any other tree (the same leaves and more, another size and its root).
        let more = leaves(n + 3, seed);
        for size in i + 1..=n + 3 {
            if size != n {
                let other_root = root(&NaiveNodes(&more), size).unwrap();
                prop_assert!(verify_inclusion(i, size, &all[i as usize], &proof, &other_root).is_err(), "size {}", size);
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_for_every_prefix_and_fail_when_the_old_tree_changes(n in 1u64..200, seed: u64, bit in 0usize..256) {
        let all = leaves(n, seed);
        let nodes = NaiveNodes(&all);
        let root_n = root(&nodes, n).unwrap();
        for m in 0..=n {
            let proof = consistency_proof(&nodes, m, n).unwrap();
            let root_m = root(&nodes, m).unwrap();
            prop_assert!(verify_consistency(m, n, &proof, &root_m, &root_n).is_ok(), "{} to {}", m, n);
            if m == 0 {
                continue;
            }
            // The older tree altered: one of its leaves changed.
            let mut altered = all.clone();
            altered[(seed % m) as usize] = flip(&altered[(seed % m) as usize], bit);
            let altered_root = root(&NaiveNodes(&altered), m).unwrap();
            prop_assert!(verify_consistency(m, n, &proof, &altered_root, &root_n).is_err());
            for k in 0..proof.len() {
                let mut bad = proof.clone();
                bad[k] = flip(&bad[k], bit);
                prop_assert!(verify_consistency(m, n, &bad, &root_m, &root_n).is_err());
            }
        }
    }
}

#[test]
fn a_compact_range_roots_every_size_like_the_naive_tree() {
    let mut range = CompactRange::default();
    let mut leaves = Vec::new();
    assert_eq!(range.root(), empty_root());
    for index in 0..300u32 {
        let leaf = leaf_hash(&index.to_be_bytes());
        range.push(leaf);
        leaves.push(leaf);
        assert_eq!(range.size(), leaves.len() as u64);
        assert_eq!(range.root(), root_of_hashes(&leaves), "size {}", leaves.len());
        assert!(range.subtrees.len() <= 64);
    }
}

"""An independent verifier of dipledger's history, written from docs/storage.md and docs/api.md
only: SHA-256 from hashlib and Ed25519 from the `cryptography` package, no dipledger code.

It fetches the latest signed checkpoint over gRPC, checks its signature against a verifier key
you obtained out of band (`dipledger audit key`), then checks an inclusion proof for every
position asked for (decoding the leaf input's position, stream and type) and the consistency
proof from an older checkpoint saved in a file, if given.

    pip install grpcio grpcio-tools cryptography
    python -m grpc_tools.protoc -I proto --python_out=/tmp/dl --grpc_python_out=/tmp/dl proto/dipledger/v1/*.proto
    PYTHONPATH=/tmp/dl python docs/examples/verify.py 127.0.0.1:50051 "$(dipledger audit key)" 1 2 3 [--old old.note]
    python docs/examples/verify.py --self-test     # RFC 6962 and Go sumdb note vectors, offline
    # with tokens: DIPLEDGER_TOKEN=dpl_...
"""
import base64
import hashlib
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class NotVerified(Exception):
    pass


# --- RFC 9162 section 2.1 -----------------------------------------------------------------

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        raise NotVerified("index %d is not in a tree of %d" % (index, size))
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise NotVerified("proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise NotVerified("inclusion proof does not lead to the root")


def verify_consistency(first, second, proof, first_root, second_root):
    """RFC 9162 2.1.4.2."""
    if first > second:
        raise NotVerified("first size past second")
    if first == second or first == 0:
        if proof or (first == second and first_root != second_root):
            raise NotVerified("trivial consistency does not hold")
        return
    if not proof:
        raise NotVerified("empty proof")
    path = ([first_root] if first & (first - 1) == 0 else []) + list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise NotVerified("proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise NotVerified("consistency proof does not lead to both roots")


# --- C2SP signed notes and checkpoints ----------------------------------------------------

def parse_vkey(vkey):
    name, keyhash, material = vkey.strip().split("+", 2)
    raw = base64.b64decode(material)
    if len(raw) != 33 or raw[0] != 1:
        raise NotVerified("not an Ed25519 verifier key")
    expected = hashlib.sha256(name.encode() + b"\n\x01" + raw[1:]).digest()[:4]
    if expected.hex() != keyhash:
        raise NotVerified("verifier key hash does not match")
    return name, expected, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, vkey):
    """The note's text if the key signed it."""
    name, keyhash, key = parse_vkey(vkey)
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            raise NotVerified("malformed signature line")
        signer, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob)
        if signer == name and blob[:4] == keyhash:
            try:
                key.verify(blob[4:], text.encode())
                return text
            except InvalidSignature:
                pass
    raise NotVerified("no valid signature by " + name)


def parse_checkpoint(text):
    origin, size, root = text.split("\n")[:3]
    return origin, int(size), base64.b64decode(root)


# --- the leaf input (docs/storage.md, "The leaf input") ------------------------------------

def read_varint(data, at):
    first = data[at]
    if first < 251:
        return first, at + 1
    width = {251: 2, 252: 4, 253: 8}[first]
    return int.from_bytes(data[at + 1:at + 1 + width], "little"), at + 1 + width


def read_string(data, at):
    length, at = read_varint(data, at)
    return data[at:at + length].decode(), at + length


def leaf_fields(data):
    """Position, stream id, stream version and event type: the first fields of the leaf input."""
    position, at = read_varint(data, 0)
    stream_id, at = read_string(data, at)
    version, at = read_varint(data, at)
    id_length, at = read_varint(data, at)
    at += id_length  # event id (16 bytes)
    event_type, at = read_string(data, at)
    return position, stream_id, version, event_type


# --- against a server -----------------------------------------------------------------------

def check_server(target, vkey, positions, old_note_path):
    import grpc
    from dipledger.v1 import audit_pb2, audit_pb2_grpc

    channel = grpc.insecure_channel(target)
    metadata = []
    if os.environ.get("DIPLEDGER_TOKEN"):
        metadata = [("authorization", "Bearer " + os.environ["DIPLEDGER_TOKEN"])]
    audit = audit_pb2_grpc.AuditServiceStub(channel)
    latest = audit.GetCheckpoint(audit_pb2.GetCheckpointRequest(), metadata=metadata)
    origin, size, root = parse_checkpoint(open_note(latest.note, vkey))
    print("checkpoint: %s, %d records, root %s: signature OK" % (origin, size, root.hex()))
    for position in positions:
        proof = audit.GetInclusionProof(
            audit_pb2.GetInclusionProofRequest(position=position, tree_size=size), metadata=metadata)
        at, stream_id, version, event_type = leaf_fields(proof.leaf_input)
        if at != position:
            raise NotVerified("the leaf input is position %d, not %d" % (at, position))
        verify_inclusion(position - 1, size, leaf_hash(proof.leaf_input), list(proof.hashes), root)
        print("position %d (%s v%d of %s): included" % (position, event_type, version, stream_id))
    if old_note_path:
        with open(old_note_path) as f:
            _, old_size, old_root = parse_checkpoint(open_note(f.read(), vkey))
        proof = audit.GetConsistencyProof(
            audit_pb2.GetConsistencyProofRequest(first_size=old_size, second_size=size), metadata=metadata)
        verify_consistency(old_size, size, list(proof.hashes), old_root, root)
        print("the tree of %d records extends the tree of %d: consistent" % (size, old_size))


# --- offline self-test: RFC 6962 / CT reference vectors and Go's sumdb note example ---------

def self_test():
    h = bytes.fromhex
    leaves = [leaf_hash(h(x)) for x in
              ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
    roots = [h(x) for x in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]]
    verify_inclusion(5, 8, leaves[5], [h(x) for x in [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]], roots[7])
    verify_consistency(6, 8, [h(x) for x in [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]], roots[5], roots[7])
    try:
        verify_consistency(6, 8, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a")],
                           roots[5], roots[7])
        raise SystemExit("a truncated proof verified")
    except NotVerified:
        pass
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    note = text + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    assert open_note(note, vkey) == text
    try:
        open_note(note.replace("cryptography", "cryptographY"), vkey)
        raise SystemExit("an altered note verified")
    except NotVerified:
        pass
    print("self-test OK: RFC 6962 inclusion and consistency vectors, Go sumdb note vector")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        sys.exit(0)
    args = sys.argv[1:]
    old = None
    if "--old" in args:
        i = args.index("--old")
        old = args[i + 1]
        del args[i:i + 2]
    try:
        check_server(args[0], args[1], [int(p) for p in args[2:]], old)
    except NotVerified as error:
        print("NOT VERIFIED:", error)
        sys.exit(3)

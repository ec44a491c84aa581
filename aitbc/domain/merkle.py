"""Merkle trees and inclusion proofs exactly as RFC 6962 (Certificate Transparency) defines them.

Hashes are domain-separated so a leaf can never pass for an inner node:
leaf = sha256(0x00 || data), node = sha256(0x01 || left || right). A tree of
n > 1 leaves splits at k, the largest power of two below n: the left subtree
is always full and an odd leaf is promoted, never duplicated (so no two leaf
lists share a root, unlike Bitcoin's tree). The empty tree's root is sha256("").
Proof verification follows RFC 9162 §2.1.3.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aitbc.domain.canonical import require_digest, require_int
from aitbc.domain.errors import invalid_argument

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# 2**64 leaves need 64 hashes: a longer path cannot be a proof in any tree.
MAX_PATH = 64


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root over the leaves' data (each leaf is hashed here, with the leaf prefix)."""
    if not leaves:
        return EMPTY_ROOT
    return _root_of_hashes([leaf_hash(leaf) for leaf in leaves])


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """That leaf `leaf_index` is in a tree of `tree_size` leaves: the sibling hashes, leaf to root."""

    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"leaf_index": self.leaf_index, "tree_size": self.tree_size, "path": [node.hex() for node in self.path]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, field: str = "proof") -> InclusionProof:
        path = data.get("path")
        if not isinstance(path, list) or len(path) > MAX_PATH:
            raise invalid_argument(f"{field}.path", f"must be a list of at most {MAX_PATH} sha256 hex digests")
        return cls(
            leaf_index=require_int(data.get("leaf_index"), field=f"{field}.leaf_index"),
            tree_size=require_int(data.get("tree_size"), field=f"{field}.tree_size", minimum=1),
            path=tuple(bytes.fromhex(require_digest(node, field=f"{field}.path[{i}]")) for i, node in enumerate(path)),
        )


def inclusion_proof(leaves: Sequence[bytes], index: int) -> InclusionProof:
    """The proof that `leaves[index]` is in the tree over `leaves` (RFC 6962 §2.1.1 PATH)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)} leaves")
    hashes = [leaf_hash(leaf) for leaf in leaves]
    path: list[bytes] = []
    # Walk down from the root; siblings are collected root-first, then reversed.
    low, high, target = 0, len(hashes), index
    while high - low > 1:
        k = _split(high - low)
        if target < k:
            path.append(_root_of_hashes(hashes[low + k : high]))
            high = low + k
        else:
            path.append(_root_of_hashes(hashes[low : low + k]))
            low, target = low + k, target - k
    return InclusionProof(leaf_index=index, tree_size=len(leaves), path=tuple(reversed(path)))


def root_from_proof(leaf: bytes, proof: InclusionProof) -> bytes | None:
    """The root that `proof` implies for `leaf`'s data, or None if the proof cannot be right for its tree size."""
    index, size = proof.leaf_index, proof.tree_size
    if not 0 <= index < size or len(proof.path) > MAX_PATH:
        return None
    fn, sn = index, size - 1
    root = leaf_hash(leaf)
    for sibling in proof.path:
        if sn == 0 or len(sibling) != HASH_BYTES:
            return None
        if fn & 1 or fn == sn:
            root = node_hash(sibling, root)
            # Skip the levels where this node has no right sibling: it was promoted unchanged.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            root = node_hash(root, sibling)
        fn >>= 1
        sn >>= 1
    return root if sn == 0 else None


def verify_inclusion(leaf: bytes, proof: InclusionProof, root: bytes) -> bool:
    return root_from_proof(leaf, proof) == root

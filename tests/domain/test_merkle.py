from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.errors import AitbcError
from aitbc.domain.merkle import (
    EMPTY_ROOT,
    InclusionProof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_inclusion,
)

# The Certificate Transparency test vectors (RFC 6962 reference implementations).
CT_LEAVES = [
    bytes.fromhex(text)
    for text in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size: int) -> None:
    assert merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size - 1]


def test_the_empty_tree_is_sha256_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_leaves_and_nodes_are_domain_separated() -> None:
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    # A two-leaf tree's root is not the root of a one-leaf tree whose leaf is the children's concatenation.
    assert merkle_root([b"a", b"b"]) != merkle_root([left + right])


def test_an_odd_leaf_is_promoted_not_duplicated() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert merkle_root([b"a", b"b", b"c"]) == node_hash(node_hash(a, b), c)
    assert merkle_root([b"a", b"b", b"c"]) != merkle_root([b"a", b"b", b"c", b"c"])


@pytest.mark.parametrize(
    ("index", "size", "path"),
    [
        (
            0,
            8,
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            [
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ],
)
def test_proofs_match_the_certificate_transparency_vectors(index: int, size: int, path: list[str]) -> None:
    proof = inclusion_proof(CT_LEAVES[:size], index)
    assert [node.hex() for node in proof.path] == path
    assert verify_inclusion(CT_LEAVES[index], proof, merkle_root(CT_LEAVES[:size]))


def test_a_proof_for_a_leaf_outside_the_tree_is_refused() -> None:
    with pytest.raises(IndexError):
        inclusion_proof([b"a"], 1)
    root = merkle_root([b"a", b"b"])
    good = inclusion_proof([b"a", b"b"], 1)
    assert not verify_inclusion(b"b", InclusionProof(2, 2, good.path), root)
    assert not verify_inclusion(b"b", InclusionProof(1, 2, (*good.path, good.path[0])), root)
    assert not verify_inclusion(b"b", InclusionProof(1, 2, ()), root)


def test_proofs_round_trip_through_json_and_bad_json_names_the_field() -> None:
    proof = inclusion_proof(CT_LEAVES, 3)
    assert InclusionProof.from_json(proof.to_json()) == proof
    with pytest.raises(AitbcError, match=r"proof\.path\[1\]"):
        InclusionProof.from_json({**proof.to_json(), "path": [proof.path[0].hex(), "zz"]})
    with pytest.raises(AitbcError, match=r"proof\.tree_size"):
        InclusionProof.from_json({**proof.to_json(), "tree_size": 0})


trees = st.lists(st.binary(max_size=12), min_size=1, max_size=40)


@given(trees)
def test_every_leaf_of_a_random_tree_has_a_proof_that_verifies(leaves: list[bytes]) -> None:
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        assert verify_inclusion(leaf, inclusion_proof(leaves, index), root)


def _flip(data: bytes, position: int, mask: int) -> bytes:
    position %= len(data)
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


@given(trees, st.data())
def test_changing_any_byte_of_the_leaf_the_proof_or_the_root_fails(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    leaf, proof, root = leaves[index], inclusion_proof(leaves, index), merkle_root(leaves)
    position, mask = data.draw(st.integers(0, 1_000)), data.draw(st.integers(1, 255))

    bad_leaf = _flip(leaf, position, mask) if leaf else bytes([mask])
    assert not verify_inclusion(bad_leaf, proof, root)
    assert not verify_inclusion(leaf, proof, _flip(root, position, mask))
    if proof.path:
        which = data.draw(st.integers(0, len(proof.path) - 1))
        path = list(proof.path)
        path[which] = _flip(path[which], position, mask)
        assert not verify_inclusion(leaf, InclusionProof(index, len(leaves), tuple(path)), root)
        assert not verify_inclusion(leaf, InclusionProof(index, len(leaves), proof.path[:-1]), root)


def test_a_proof_alone_does_not_bind_the_tree_size() -> None:
    # Why receipt verification checks the proof's tree size against the signed header's count.
    leaves = [b"a", b"b", b"c"]
    proof = inclusion_proof(leaves, 2)
    root = merkle_root(leaves)
    assert verify_inclusion(b"c", proof, root)
    assert verify_inclusion(b"c", InclusionProof(1, 2, proof.path), root)

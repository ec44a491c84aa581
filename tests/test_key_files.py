from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from aitbc.domain.signing import generate_seed
from aitbc.key_files import KeyFileError, load_or_create_private_key, read_private_key, write_private_key


def test_a_key_round_trips_through_a_pem_file_only_its_owner_can_read(tmp_path: Path) -> None:
    seed = generate_seed()
    path = tmp_path / "keys" / "coordinator.pem"
    write_private_key(path, seed)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert read_private_key(path) == seed


def test_an_existing_key_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "miner.pem"
    first, second = generate_seed(), generate_seed()
    write_private_key(path, first)
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_private_key(path, second)
    os.chmod(path, 0o644)
    write_private_key(path, second, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_private_key(path) == second


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "coordinator.pem"
    write_private_key(path, generate_seed())
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match="mode 0640 lets others read it; run chmod 600"):
        read_private_key(path)


def test_a_missing_garbled_or_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        read_private_key(tmp_path / "absent.pem")
    garbled = tmp_path / "garbled.pem"
    garbled.write_bytes(b"not a key")
    garbled.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
        read_private_key(garbled)
    ec = tmp_path / "ec.pem"
    ec.write_bytes(generate_private_key(SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    ec.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        read_private_key(ec)


def test_load_or_create_creates_once_then_reuses(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    first = load_or_create_private_key(path)
    assert load_or_create_private_key(path) == first

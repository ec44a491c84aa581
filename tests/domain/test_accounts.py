from __future__ import annotations

import hashlib

import pytest
from bech32 import bech32_encode, convertbits
from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.accounts import (
    ADDRESS_LENGTH,
    MINT_ACCOUNT_ID,
    NETWORK_FEE_ACCOUNT_ID,
    address_of,
    address_payload,
    is_address,
    parse_address,
)
from aitbc.domain.errors import AitbcError

ALICE = address_of("alice")


def test_an_address_is_bech32_of_the_first_20_bytes_of_sha256_of_the_account_id() -> None:
    assert ALICE == "ait190vqdjtlpcq27xslcveglfmr4ynfwg7gedja22"
    assert len(ALICE) == ADDRESS_LENGTH == 42
    assert address_payload(ALICE) == hashlib.sha256(b"alice").digest()[:20]


def test_well_known_accounts_have_fixed_addresses() -> None:
    assert address_of(MINT_ACCOUNT_ID) != address_of(NETWORK_FEE_ACCOUNT_ID)
    assert address_of(NETWORK_FEE_ACCOUNT_ID).startswith("ait1")


def test_parse_returns_the_lowercase_form_and_accepts_all_uppercase() -> None:
    assert parse_address(ALICE) == ALICE
    assert parse_address(ALICE.upper()) == ALICE


def _other_char(char: str) -> str:
    return "q" if char != "q" else "p"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "must be an ait1"),
        (ALICE[:10] + ALICE[10:].upper(), "mixes upper and lower case"),
        ("ait" + ALICE[4:], "has no '1' separator"),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "has prefix 'bc'; expected 'ait'"),
        (ALICE[:10] + "b" + ALICE[11:], "character 'b' at position 10 is not in the bech32 alphabet"),
        (ALICE[:-1], "has 37 characters after 'ait1'; expected 38"),
        (ALICE[:-1] + _other_char(ALICE[-1]), "checksum does not match"),
        (ALICE[:12] + _other_char(ALICE[12]) + ALICE[13:], "checksum does not match"),
    ],
)
def test_a_bad_address_is_refused_naming_the_problem_and_the_field(text: str, problem: str) -> None:
    with pytest.raises(AitbcError, match=problem) as raised:
        parse_address(text, field="client")
    assert raised.value.field == "client"
    assert not is_address(text)


def test_a_valid_checksum_over_the_wrong_length_is_refused() -> None:
    short = bech32_encode("ait", convertbits(b"\x01" * 19, 8, 5) or [])
    with pytest.raises(AitbcError, match="expected 38"):
        parse_address(short)


def test_an_account_id_must_be_text() -> None:
    with pytest.raises(AitbcError, match="account_id"):
        address_of("")


@given(st.text(min_size=1, max_size=64))
def test_every_account_id_has_a_valid_address_that_round_trips(account_id: str) -> None:
    address = address_of(account_id)
    assert parse_address(address) == address
    assert address_payload(address) == hashlib.sha256(account_id.encode()).digest()[:20]

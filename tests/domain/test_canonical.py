from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.canonical import (
    b64url_decode,
    b64url_encode,
    canonical_json,
    format_time,
    parse_time,
    require_int,
    text_hash,
)
from aitbc.domain.errors import AitbcError
from aitbc.domain.signing import generate_seed, public_key_of, sign, sign_b64, verify, verify_b64


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()


def test_text_hash_is_sha256_of_utf8() -> None:
    assert text_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert text_hash("é") == "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c"  # the bytes c3 a9


@given(st.binary(max_size=80))
def test_base64url_round_trips_without_padding(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text, field="x") == data


def test_base64url_refuses_padding_other_alphabets_and_non_canonical_spellings() -> None:
    with pytest.raises(AitbcError, match="sig: must be base64url without padding"):
        b64url_decode("AA==", field="sig")
    with pytest.raises(AitbcError, match="without padding"):
        b64url_decode("a+b/", field="sig")
    # "AB" and "AA" both decode to b"\x00" if the unused bits are ignored: only "AA" is accepted.
    assert b64url_decode("AA", field="sig") == b"\x00"
    with pytest.raises(AitbcError, match="canonical"):
        b64url_decode("AB", field="sig")
    with pytest.raises(AitbcError, match="must encode 2 bytes"):
        b64url_decode("AA", field="sig", length=2)


def test_times_have_one_spelling_and_parse_back() -> None:
    moment = datetime(2026, 2, 13, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-02-13T08:00:00.000000Z"
    assert parse_time("2026-02-13T08:00:00Z", field="t") == moment
    assert parse_time(format_time(moment), field="t") == moment
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 2, 13))


@pytest.mark.parametrize("text", ["2026-02-13 08:00:00Z", "2026-02-13T08:00:00+00:00", "2026-02-30T08:00:00Z", ""])
def test_times_that_are_not_rfc3339_utc_are_refused(text: str) -> None:
    with pytest.raises(AitbcError, match="started_at"):
        parse_time(text, field="started_at")


def test_integers_refuse_bools_floats_and_out_of_range() -> None:
    assert require_int(5, field="n") == 5
    for bad in (True, 1.0, "1", 2**53):
        with pytest.raises(AitbcError, match="n: must be"):
            require_int(bad, field="n")


def test_ed25519_matches_rfc8032_test_vector_1() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert public_key_of(seed).hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert sign(seed, b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_signatures_verify_only_for_their_key_and_message() -> None:
    seed, other = generate_seed(), generate_seed()
    signature = sign_b64(seed, b"message")
    assert verify_b64(public_key_of(seed), b"message", signature)
    assert not verify_b64(public_key_of(seed), b"messagE", signature)
    assert not verify_b64(public_key_of(other), b"message", signature)
    assert not verify_b64(public_key_of(seed), b"message", signature + "A")
    assert not verify(b"\x00" * 31, b"message", sign(seed, b"message"))
    with pytest.raises(ValueError, match="32-byte seed"):
        sign(b"short", b"message")


def test_format_time_of_now_parses() -> None:
    now = datetime.now(UTC)
    assert parse_time(format_time(now), field="t") == now

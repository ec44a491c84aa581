"""Stop strings on streamed text."""

from __future__ import annotations

import pytest

from miner.backends.stop_strings import StopStringScanner


def scan(stops: tuple[str, ...], pieces: list[str]) -> tuple[list[str], bool]:
    """What the scanner lets out for each piece, then the flushed rest unless a stop string was reached."""
    scanner = StopStringScanner(stops)
    emitted: list[str] = []
    for piece in pieces:
        text, stopped = scanner.feed(piece)
        emitted.append(text)
        if stopped:
            return emitted, True
    emitted.append(scanner.flush())
    return emitted, False


def test_without_stop_strings_text_passes_through() -> None:
    assert scan((), ["a", "b"]) == (["a", "b", ""], False)


def test_text_is_cut_before_a_stop_string_spread_over_pieces() -> None:
    assert scan(("END",), ["one E", "N", "D two"]) == (["one ", "", ""], True)


def test_a_possible_start_is_held_back_then_released() -> None:
    assert scan(("END",), ["one E", "N", "x"]) == (["one ", "", "ENx", ""], False)


def test_held_back_text_is_flushed_when_generation_ends_otherwise() -> None:
    assert scan(("END",), ["one EN"]) == (["one ", "EN"], False)


@pytest.mark.parametrize("stops", [("b", "abc"), ("abc", "b")])
def test_the_earliest_stop_string_wins(stops: tuple[str, ...]) -> None:
    assert scan(stops, ["xab", "c"]) == (["xa"], True)


def test_overlapping_prefixes_are_held_back_whole() -> None:
    assert scan(("abab",), ["xaba", "b"]) == (["x", ""], True)

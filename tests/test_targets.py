"""`--coordinator a:1,b:2`: replicas as one gRPC target (aitbc.targets)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import grpc
import grpc.aio
import pytest

from aitbc.cli import main
from aitbc.targets import TargetError, channel_target
from aitbc.tls import aio_channel


def test_a_single_address_is_left_alone() -> None:
    assert channel_target("127.0.0.1:50051") == ("127.0.0.1:50051", [])
    assert channel_target("dns:///coordinators.internal:50051") == ("dns:///coordinators.internal:50051", [])


def test_a_list_becomes_an_ipv4_list_target_with_the_first_entry_as_authority() -> None:
    target, options = channel_target("localhost:1, 127.0.0.2:2")
    assert target.startswith("ipv4:")
    assert sorted(target.removeprefix("ipv4:").split(",")) == ["127.0.0.1:1", "127.0.0.2:2"]
    assert options == [("grpc.default_authority", "localhost:1")]


def test_mixed_families_go_as_ipv6() -> None:
    target, _ = channel_target("127.0.0.1:1,[::1]:2")
    assert sorted(target.removeprefix("ipv6:").split(",")) == ["[::1]:2", "[::ffff:127.0.0.1]:1"]


@pytest.mark.parametrize(
    ("listed", "problem"),
    [("127.0.0.1:1,127.0.0.2", "no port"), ("127.0.0.1:1,no-such-host.invalid:2", "cannot resolve")],
)
def test_a_bad_entry_is_named(listed: str, problem: str) -> None:
    with pytest.raises(TargetError, match=problem):
        channel_target(listed)


async def test_a_channel_over_the_list_reaches_the_replica_that_is_up() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        with unserved_port() as dead_port:
            async with aio_channel(f"127.0.0.1:{dead_port},127.0.0.1:{port}", None) as channel:
                await channel.channel_ready()  # pick_first moves past the refused address
    finally:
        await server.stop(0)


@contextlib.contextmanager
def unserved_port() -> Iterator[int]:
    """A port nothing listens on (bound, never listening), for as long as the block runs."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])


def test_the_cli_names_a_bad_entry_in_the_coordinator_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client", "list", "--coordinator", "127.0.0.1:1,nowhere", "--api-key", "k"]) == 2
    assert "'nowhere' in the coordinator list has no port" in capsys.readouterr().err

"""Several coordinator addresses as one gRPC target (docs/scaling.md).

`--coordinator a:50051,b:50051` names replicas of one coordinator. gRPC's own list targets take IP literals
only (`ipv4:1.2.3.4:50051,…`), so the names are resolved once, here, and the list is shuffled: a miner's
channel (`pick_first`) then starts on a random replica and moves on to the next when its replica is gone, and
a balanced channel (`round_robin`, the gateway's) spreads calls over all of them. `dns:///name:port` is passed
to gRPC as is; gRPC resolves it and re-resolves when connections fail, which suits replicas behind one name.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from typing import Any

ROUND_ROBIN = ("grpc.lb_policy_name", "round_robin")


class TargetError(ValueError):
    """An address list that cannot be used: an entry without a port, or a name that does not resolve."""


def channel_target(target: str) -> tuple[str, list[tuple[str, Any]]]:
    """The gRPC target for `target` and the channel options it needs (none for a single address)."""
    entries = [entry.strip() for entry in target.split(",") if entry.strip()]
    if len(entries) < 2:
        return target, []
    addresses = [_resolve(entry) for entry in entries]
    random.shuffle(addresses)
    if all(isinstance(ip, ipaddress.IPv4Address) for ip, _ in addresses):
        listed = "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in addresses)
    else:
        # gRPC cannot mix families in one list target: IPv4 addresses go as IPv4-mapped IPv6 ones.
        listed = "ipv6:" + ",".join(f"[{_as_v6(ip)}]:{port}" for ip, port in addresses)
    # The authority (and the name TLS checks the certificate against) is the first entry as written.
    return listed, [("grpc.default_authority", entries[0])]


def _resolve(entry: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    host, sep, port_text = entry.rpartition(":")
    if not sep or not port_text.isdigit():
        raise TargetError(f"{entry!r} in the coordinator list has no port: write HOST:PORT")
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host), int(port_text)
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_STREAM)
    except OSError as error:
        raise TargetError(f"cannot resolve {host!r} in the coordinator list: {error}") from error
    return ipaddress.ip_address(found[0][4][0]), int(port_text)


def _as_v6(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return str(ip) if isinstance(ip, ipaddress.IPv6Address) else f"::ffff:{ip}"

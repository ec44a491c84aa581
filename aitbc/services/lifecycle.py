"""Running services until a signal: the shared shutdown plumbing of `aitbc coordinator` and `aitbc up`."""

from __future__ import annotations

import asyncio
import signal


async def wait_for_shutdown_signal() -> signal.Signals:
    """Return on the first SIGINT or SIGTERM (and stop handling them, so a second one kills)."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig)

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await received
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)

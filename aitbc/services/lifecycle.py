"""Running services until a signal: the shared shutdown plumbing of `aitbc coordinator` and `aitbc up`."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def wait_for_shutdown_signal() -> signal.Signals:
    """Return on the first SIGINT or SIGTERM; a second one ends the process at once.

    The graceful path lets running jobs finish, which can take a while; an
    operator who insists gets an immediate exit (the store is crash-safe).
    """
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if received.done():
            log.warning("%s again: exiting now", sig.name)
            os._exit(128 + sig.value)
        received.set_result(sig)

    for sig in _SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    sig = await received
    log.info("%s received: shutting down gracefully (send it again to exit at once)", sig.name)
    return sig

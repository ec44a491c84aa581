"""The gateway tests' fixtures (`gateway`, `http`, `miner`) for the web app's tests."""

from tests.gateway.conftest import gateway, http, miner

__all__ = ["gateway", "http", "miner"]

"""Screenshots of the web app's three areas for docs/web.md, taken against a local stack on loopback.

    PYTHONPATH=. .venv/bin/python tools/webapp_screenshots.py [OUT_DIR]   # default docs/images

Starts a coordinator (SQLite in a temp dir), a synthetic MinerAgent and the gateway on free ports, runs one job
from the marketplace in headless Chromium (Debian's `chromium`, or $AITBC_CHROMIUM), seals its block, and saves
marketplace.png, dashboard.png and explorer.png. Nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from playwright.async_api import async_playwright

from aitbc.coordinator.auth import create_api_key
from aitbc.domain.keys import Role
from aitbc.domain.money import MICRO_PER_CREDIT
from aitbc.services.server import start_coordinator
from gateway import create_app
from miner import MinerAgent, MinerConfig
from miner.backends.synthetic import SyntheticBackend

MODEL = "smollm2-135m-instruct"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


async def take(out: Path) -> None:
    chromium = os.environ.get("AITBC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no Chromium: apt-get install chromium, or set AITBC_CHROMIUM")
    with tempfile.TemporaryDirectory() as home:
        coordinator = await start_coordinator(Path(home) / "aitbc.db", "127.0.0.1:0")
        now = datetime.now(UTC)
        client, principal = await create_api_key(coordinator.store, Role.CLIENT, now)
        await coordinator.store.credit(principal.owner_id, 10 * MICRO_PER_CREDIT, tx_id="mint:screenshots", now=now)
        miner_key, _ = await create_api_key(coordinator.store, Role.MINER, now)
        target = f"127.0.0.1:{coordinator.port}"
        # The synthetic backend (made-up text, no weights) serves SmolLM2's catalog id: a priced model, so the job
        # is charged and gets a receipt to show (the free `synthetic` model gets none).
        backend = SyntheticBackend(models=[MODEL], tokens_per_second=200)
        agent = MinerAgent(MinerConfig(coordinator=target, api_key=miner_key, miner_id="synthetic-1"), backend)
        mining = asyncio.create_task(agent.run())
        server = uvicorn.Server(uvicorn.Config(create_app(target), host="127.0.0.1", port=0, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:  # uvicorn offers no event to wait on
                if serving.done():
                    raise SystemExit("the gateway did not start")
                await asyncio.sleep(0.05)
            base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
            async with async_playwright() as driver:
                browser = await driver.chromium.launch(executable_path=chromium, args=ARGS)
                page = await browser.new_page(viewport={"width": 1100, "height": 900})
                await page.goto(f"{base}/marketplace/")
                await page.fill("#api-key", client)
                await page.click("#sign-in button[type=submit]")
                await page.click(f"button:has-text('Choose {MODEL}')")
                await page.fill("#job-form textarea", "Explain machine learning in simple terms")
                await page.fill("input[name=max_tokens]", "48")
                await page.wait_for_selector("#estimate:has-text('Estimated maximum cost')")
                await page.click("#submit-job")
                await page.wait_for_selector("#job-status[data-state=completed]", timeout=30_000)
                await page.wait_for_selector("#receipt-link")
                await page.screenshot(path=str(out / "marketplace.png"), full_page=True)
                await page.goto(f"{base}/dashboard/")
                await page.wait_for_selector("#jobs-table")
                await page.wait_for_selector("#stats dl")
                await page.screenshot(path=str(out / "dashboard.png"), full_page=True)
                await coordinator.coordinator._blocks.seal_pending()
                await page.goto(f"{base}/explorer/")
                await page.wait_for_selector("#miners-table")
                await page.screenshot(path=str(out / "explorer.png"), full_page=True)
                await browser.close()
        finally:
            server.should_exit = True
            await serving
            mining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mining
            await coordinator.stop(grace=0.5)
    print(f"saved marketplace.png, dashboard.png and explorer.png in {out}")


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images")
    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(take(folder))

"""The web app in headless Chromium against a real coordinator, scripted miner and gateway on loopback.

Playwright for Python drives Debian's `chromium` (`executable_path`): no browser download. Without a Chromium
(or without playwright) these tests skip, saying why. Each waits on DOM conditions, never a fixed sleep, and
saves a screenshot on failure (its path is printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from aitbc.coordinator.auth import create_api_key
from aitbc.domain.keys import Role
from aitbc.services.server import RunningCoordinator
from miner import MinerAgent, MinerConfig
from miner.backends.synthetic import SyntheticBackend
from tests.conftest import Keys
from tests.gateway.conftest import assigned, cancel_acknowledged, run_to_completion
from tests.support.scripted_miner import ScriptedMiner

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
expect = playwright_api.expect
# Playwright's expect() polls in the page without eval, which the app's CSP forbids (wait_for_function needs it).
expect.set_options(timeout=10_000)


def find_chromium() -> str | None:
    """AITBC_CHROMIUM, else Debian's chromium (apt-get install chromium) or another on PATH."""
    candidates = [os.environ.get("AITBC_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"]
    return next((found for name in candidates if name and (found := shutil.which(name))), None)


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found: apt-get install chromium (make test does it as root), or set AITBC_CHROMIUM",
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODEL_ID = "llama-3.2-1b-instruct"  # what the scripted miner's "llama3.2" is in the catalog
WAIT_MS = 10_000
PROMPT = "<script>window.pwned = 1</script>Tell me about owls"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as driver:
        # A fresh user-data dir per test: launch_persistent_context would tie one context to it; launch() makes one.
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def base(gateway: str) -> str:
    return f"http://{gateway}"


@asynccontextmanager
async def page_of(browser: Any, name: str, tmp_path: Path) -> AsyncIterator[Any]:
    """A page in a fresh context that records every URL it asks for; a screenshot on failure."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.urls = []
    page.on("request", lambda request: page.urls.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        assert not errors, errors
    except BaseException:
        shot = tmp_path / f"{name}.png"
        await page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")
        raise
    finally:
        await context.close()


async def sign_in(page: Any, base: str, key: str, path: str = "/marketplace/") -> None:
    await page.goto(base + path)
    await page.fill("#api-key", key)
    await page.click("#sign-in button[type=submit]")
    await page.wait_for_selector("#signed-in:has-text('Signed in:')")


async def open_form(page: Any, prompt: str) -> None:
    await page.click(f"button:has-text('Choose {MODEL_ID}')")
    await page.fill("#job-form textarea", prompt)
    await page.wait_for_selector("#estimate:has-text('Estimated maximum cost')")


async def submitted_job_id(page: Any, miner: ScriptedMiner) -> str:
    await page.click("#submit-job")
    job_id = (await assigned(miner)).job_id
    await page.wait_for_selector(f"#job-status:has-text('{job_id}')")
    return str(job_id)


async def output_text(page: Any) -> str:
    return str(await page.text_content("#output"))


async def test_marketplace_streams_tokens_then_dashboard_and_explorer_show_the_job(
    browser: Any, base: str, keys: Keys, miner: ScriptedMiner, coordinator: RunningCoordinator, tmp_path: Path
) -> None:
    async with page_of(browser, "submit", tmp_path) as page:
        await sign_in(page, base, keys.client)
        await page.wait_for_selector(f"[data-model='{MODEL_ID}'] >> text=1 miner(s)")
        assert await page.is_visible("text=Unavailable: no miner serves it now")  # the catalog's other models
        await open_form(page, PROMPT)
        job_id = await submitted_job_id(page, miner)
        await miner.started(job_id, 1)
        # Two distinct updates of the output before the job completes.
        await miner.tokens(job_id, 1, "Owls ")
        await expect(page.locator("#output")).to_have_text("Owls ")
        await miner.tokens(job_id, 1, "hunt at night")
        await expect(page.locator("#output")).to_have_text("Owls hunt at night")
        assert await page.get_attribute("#job-status", "data-state") == "running"
        await miner.done(job_id, 1, "Owls hunt at night", completion_tokens=2)
        await page.wait_for_selector("#job-status[data-state=completed]")
        await page.wait_for_selector("#job-charge:has-text('cr')")
        assert "5 prompt + 2 generated" in str(await page.text_content("#job-tokens"))
        receipt_id = str(await page.text_content("#receipt-link"))
        charge = str(await page.text_content("#job-charge"))
        assert receipt_id.startswith("rcpt_")

        # The dashboard lists it; its page shows the <script> prompt as text, and nothing ran.
        await page.goto(f"{base}/dashboard/")
        await page.wait_for_selector(f"tr[data-job='{job_id}'] >> text=completed")
        await expect(page.locator(f"tr[data-job='{job_id}'] .cost")).to_have_text(charge)
        await page.click(f"a:has-text('{job_id}')")
        await page.wait_for_selector("#prompt")
        assert await page.text_content("#prompt") == PROMPT
        assert await page.evaluate("window.pwned") is None
        await page.wait_for_selector("#events li:has-text('completed')")
        await page.click("#verify")
        # Not sealed in a block yet: the signatures and this output's hash verify in the browser.
        await page.wait_for_selector("#verify-summary.ok:has-text('Signatures verified')")
        assert "output_hash (this output): passed" in str(await page.text_content("#action-result"))
        # The share link opens without a key, in a fresh context.
        await page.click("#share")
        share = str(await page.get_attribute("#share-link", "href"))
        async with page_of(browser, "shared", tmp_path) as anonymous:
            response = await anonymous.goto(share)
            assert response.status == 200
            assert "Owls hunt at night" in await anonymous.text_content("body")
        key_seen = [url for url in page.urls if keys.client in url]
        assert not key_seen
        assert keys.client not in page.url

    # The explorer, without a key: the job's receipt in its block, verified, and no prompt or output anywhere.
    await coordinator.coordinator._blocks.seal_pending()
    async with page_of(browser, "explorer", tmp_path) as page:
        await page.goto(f"{base}/explorer/")
        await page.wait_for_selector("#stats:has-text('Height')")
        await page.wait_for_selector("#miners:has-text('sign in')")
        await page.click("#blocks a:has-text('1')")
        await page.wait_for_selector("#block-title:has-text('Block 1')")
        assert "Receipts root (Merkle)" in str(await page.text_content("#block"))
        await page.click(f"a:has-text('{receipt_id}')")
        await page.wait_for_selector("#verification[data-verified=true]")
        assert "merkle_inclusion: passed" in str(await page.text_content("#checks"))
        for view in ("#/", "#/blocks/1", f"#/receipts/{receipt_id}"):
            await page.goto(f"{base}/explorer/{view}")
            await page.wait_for_selector("h2")
            body = str(await page.text_content("body"))
            assert "owls" not in body.lower()
            assert "Owls hunt" not in body


async def test_cancel_stops_the_job_and_keeps_its_tokens(
    browser: Any, base: str, keys: Keys, miner: ScriptedMiner, tmp_path: Path
) -> None:
    async with page_of(browser, "cancel", tmp_path) as page:
        await sign_in(page, base, keys.client)
        await open_form(page, "Count to a thousand")
        job_id = await submitted_job_id(page, miner)
        await miner.started(job_id, 1)
        await miner.tokens(job_id, 1, "one two")
        await expect(page.locator("#output")).to_have_text("one two")
        await page.click("#cancel-job")
        await cancel_acknowledged(miner, job_id, completion_tokens=1)
        await page.wait_for_selector("#job-status[data-state=canceled]")
        assert await output_text(page) == "one two"
        assert "1 generated" in str(await page.text_content("#job-tokens"))


async def test_errors_read_as_sentences(
    browser: Any, base: str, coordinator: RunningCoordinator, miner: ScriptedMiner, tmp_path: Path
) -> None:
    broke, _ = await create_api_key(coordinator.store, Role.CLIENT, datetime.now(UTC))  # no credits
    async with page_of(browser, "errors", tmp_path) as page:
        # A wrong key is refused in words, and not kept.
        await page.goto(f"{base}/")
        await page.fill("#api-key", "aitbc_sk_client_wrong")
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_selector("#sign-in .error:has-text('API key was not accepted')")
        assert await page.evaluate("sessionStorage.length") == 0

        await sign_in(page, base, broke)
        await page.click(f"button:has-text('Choose {MODEL_ID}')")
        await page.fill("#job-form textarea", "Hello")
        await page.click("#submit-job")
        alert = page.locator("#job-slot [role=alert]")
        await alert.wait_for()
        text = str(await alert.text_content())
        assert text.startswith("Insufficient funds"), text
        assert "{" not in text, text
        assert broke not in page.url
        assert not [url for url in page.urls if broke in url]


async def test_the_dashboard_follows_the_accounts_jobs_live(
    browser: Any, base: str, keys: Keys, http: httpx.AsyncClient, miner: ScriptedMiner, tmp_path: Path
) -> None:
    async with page_of(browser, "dashboard", tmp_path) as page:
        await sign_in(page, base, keys.client, "/dashboard/")
        await page.wait_for_selector("#jobs:has-text('No jobs match.')")
        await page.wait_for_selector("#balance-total:has-text('1,000 cr')")
        # A job submitted elsewhere (here over REST) appears, then changes, with no reload.
        response = await http.post("/v1/jobs", json={"prompt": "Hello", "model": "llama3.2"})
        job_id = response.json()["job_id"]
        row = page.locator(f"tr[data-job='{job_id}'] .state")
        await expect(row).to_have_text(re.compile("pending|assigned"))
        await assigned(miner)
        await run_to_completion(miner, job_id, "Hi", " there")
        await expect(row).to_have_text("completed")
        # The status filter.
        await page.select_option("select[name=status]", "failed")
        await page.wait_for_selector("#jobs:has-text('No jobs match.')")
        await page.select_option("select[name=status]", "completed")
        await expect(row).to_have_text("completed")


async def test_a_real_miner_agents_tokens_stream_into_the_page(
    browser: Any, base: str, target: str, keys: Keys, tmp_path: Path
) -> None:
    config = MinerConfig(coordinator=target, api_key=keys.miner, miner_id="synthetic-1", max_concurrency=1)
    agent = MinerAgent(config, SyntheticBackend(tokens_per_second=40))
    running = asyncio.create_task(agent.run())
    try:
        async with page_of(browser, "agent", tmp_path) as page:
            await sign_in(page, base, keys.client)
            await page.click("button:has-text('Choose synthetic')")
            await page.fill("#job-form textarea", "Explain machine learning")
            await page.fill("input[name=max_tokens]", "12")
            await page.wait_for_selector("#estimate:has-text('Estimated maximum cost')")
            # Record the output's length at each DOM change (CDP evaluation: the page's CSP forbids eval in it).
            await page.evaluate(
                """() => {
                    window.lengths = [];
                    new MutationObserver(() => {
                        const output = document.getElementById("output");
                        if (output) window.lengths.push(output.textContent.length);
                    }).observe(document.getElementById("job-slot"), {subtree: true, childList: true});
                }"""
            )
            await page.click("#submit-job")
            await page.wait_for_selector("#job-status[data-state=completed]", timeout=20_000)
            assert "12 generated" in str(await page.text_content("#job-tokens"))
            lengths = [length for length in await page.evaluate("window.lengths") if length]
            final = len(str(await page.text_content("#output")))
            assert len([length for length in set(lengths) if 0 < length < final]) >= 2, lengths
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_the_api_docs_page_works_offline(browser: Any, base: str, tmp_path: Path) -> None:
    async with page_of(browser, "docs", tmp_path) as page:
        asked_elsewhere: list[str] = []

        async def loopback_only(route: Any) -> None:
            if route.request.url.startswith(base):
                await route.continue_()
            else:
                asked_elsewhere.append(route.request.url)
                await route.abort()

        await page.route("**/*", loopback_only)
        await page.goto(f"{base}/docs")
        await page.wait_for_selector(".swagger-ui .opblock-summary-path:has-text('/v1/jobs')")
        assert not asked_elsewhere


async def test_api_errors_become_sentences(browser: Any, base: str, tmp_path: Path) -> None:
    bodies = {
        "no_miner": (
            503,
            {
                "detail": "no online miner serves tiny; set queue_if_unavailable to wait for one",
                "error_code": "NO_ELIGIBLE_MINER",
            },
        ),
        "rate_limited": (429, {"detail": "too many requests", "error_code": "RESOURCE_EXHAUSTED"}),
        "funds": (402, {"detail": "the job may cost up to 1 credits", "error_code": "INSUFFICIENT_FUNDS"}),
        "not_found": (404, {"detail": "job 'job_x' not found", "error_code": "JOB_NOT_FOUND"}),
        "no_body": (500, None),
    }
    async with page_of(browser, "sentences", tmp_path) as page:
        await page.goto(f"{base}/")
        words = await page.evaluate(
            """async (bodies) => {
                const { readable } = await import("/static/common.js");
                const words = Object.entries(bodies).map(([name, [status, body]]) => [name, readable(status, body)]);
                return Object.fromEntries(words);
            }""",
            bodies,
        )
    assert words == {
        "no_miner": "No miner can run this job now: no online miner serves tiny;"
        " set queue_if_unavailable to wait for one.",
        "rate_limited": "Too many requests: please wait a moment and try again.",
        "funds": "Insufficient funds: the job may cost up to 1 credits.",
        "not_found": "Job 'job_x' not found.",
        "no_body": "The request failed (HTTP 500).",
    }


async def test_a_queued_job_shows_its_place_then_runs(
    browser: Any, base: str, keys: Keys, http: httpx.AsyncClient, miner: ScriptedMiner, tmp_path: Path
) -> None:
    # The scripted miner's four slots are busy.
    busy = []
    for _ in range(4):
        busy.append((await http.post("/v1/jobs", json={"prompt": "Busy", "model": "llama3.2"})).json()["job_id"])
        await assigned(miner)
    async with page_of(browser, "queued", tmp_path) as page:
        await sign_in(page, base, keys.client)
        await open_form(page, "Wait your turn")
        await page.click("#submit-job")
        await page.wait_for_selector("#job-status[data-state=pending]:has-text('queue position 0')")
        await run_to_completion(miner, busy[0], "done")
        job_id = (await assigned(miner)).job_id
        await run_to_completion(miner, job_id, "My ", "turn")
        await page.wait_for_selector("#job-status[data-state=completed]")
        await expect(page.locator("#output")).to_have_text("My turn")
        assert not await page.is_visible("#cancel-job")

"""The web app's pages and assets over plain HTTP: types, security headers, and the explorer's JSON routes intact."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.webapp import PAGES, STATIC


@pytest.fixture
async def public(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{gateway}") as client:
        yield client


async def test_every_page_is_html_with_a_strict_content_security_policy(public: httpx.AsyncClient) -> None:
    for path in PAGES:
        response = await public.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "connect-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert '<script type="module" src="/static/' in response.text
        assert "<script>" not in response.text  # no inline script
    # The pages' paths without their slash redirect to them.
    for path in ("/marketplace", "/dashboard", "/explorer"):
        response = await public.get(path)
        assert (response.status_code, response.headers["location"]) == (308, f"{path}/")


async def test_assets_are_served_with_their_types(public: httpx.AsyncClient) -> None:
    types = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".html": "text/html",
        ".txt": "text/plain",
        "": "",
    }
    files = [file for file in STATIC.rglob("*") if file.is_file()]
    assert any(file.name == "swagger-ui-bundle.js" for file in files)
    for file in files:
        path = file.relative_to(STATIC).as_posix()
        response = await public.get(f"/static/{path}")
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(types[file.suffix]), path
        assert response.content == file.read_bytes()
    assert (await public.get("/static/missing.js")).status_code == 404
    assert (await public.get("/static/../__init__.py")).status_code == 404


async def test_the_app_is_small_and_needs_nothing_from_elsewhere() -> None:
    # The app's own files; Swagger UI (vendored for /docs, under vendor/) is not part of the app's pages.
    own = [file for file in STATIC.iterdir() if file.is_file()]
    assert sum(file.stat().st_size for file in own) < 200_000
    for file in own:
        text = file.read_text()
        for needle in ("http://", "https://", "innerHTML", "localStorage"):
            assert needle not in text, (file.name, needle)


async def test_the_explorer_api_routes_still_answer_json(public: httpx.AsyncClient) -> None:
    for path in ("/explorer/blocks", "/explorer/stats", "/explorer/transactions", "/explorer/receipts", "/v1/stats"):
        response = await public.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("application/json"), path
    block = await public.get("/explorer/blocks/0")
    assert block.headers["content-type"].startswith("application/json")
    # The API prefix serves no pages.
    assert (await public.get("/api/explorer/")).status_code == 404
    assert (await public.get("/api/explorer/stats")).status_code == 200


async def test_unknown_paths_are_still_json_404s(public: httpx.AsyncClient) -> None:
    response = await public.get("/no/such/page")
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"

"""The page's files are served at / and load without the gateway's token; the API does not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import PUBLIC_PATHS, STATIC_DIR, create_app
from gateway.settings import GatewaySettings

TOKEN = "static-test-token"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan: none of these requests reach a route that needs the hub.
    app = create_app(GatewaySettings(api_token=TOKEN))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as c:
        yield c


@pytest.mark.anyio
async def test_page_and_assets_load_without_token(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Every file the page references is served, with a type the browser accepts for it.
    types = {"app.js": "javascript", "audio.js": "javascript", "mic-worklet.js": "javascript"}
    types["style.css"] = "text/css"
    for name, kind in types.items():
        assert f"/{name}" in PUBLIC_PATHS
        r = await client.get(f"/{name}")
        assert r.status_code == 200, name
        assert kind in r.headers["content-type"], (name, r.headers["content-type"])
    assert 'src="app.js"' in page.text and 'href="style.css"' in page.text
    assert "mic-worklet.js" in (STATIC_DIR / "audio.js").read_text()


@pytest.mark.anyio
async def test_api_still_needs_the_token(client: httpx.AsyncClient) -> None:
    for path in ("/voices", "/metrics", "/nonexistent.js"):
        r = await client.get(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["type"] == "authentication_error"

"""The HTML pages load nothing from other hosts (no CDN, no basemap by default).

Every HTML page the API serves for a published layer is fetched from a real
server and parsed: what the browser *loads* (scripts, stylesheets, icons,
images, URLs in inline scripts such as tile layers) must be on the server
itself, and every ``/static`` file they name must be there. Then Debian's
Chromium, driven by Playwright, opens the map pages of the demo, records every
request (refusing those to other hosts) and checks that Leaflet drew the
features.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Route, sync_playwright

from sdi.demo import load_demo
from sdi.publish import load_base_config
from sdi.settings import Settings
from tests.api.conftest import Server
from tests.api.layerdata import Conn, buildings_layer

SLUG = "landsd_buildings"
OUTSIDE_TILES = "https://tiles.example.hk/basemap/{z}/{x}/{y}.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

#: ``<link rel=...>`` values that make the browser fetch the ``href``.
_LOADING_RELS = {
    "stylesheet",
    "icon",
    "apple-touch-icon",
    "mask-icon",
    "preload",
    "prefetch",
    "modulepreload",
    "manifest",
}
#: Elements and the attributes through which they load something.
_LOADING_ATTRS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "audio": ("src",),
    "video": ("src", "poster"),
    "input": ("src",),
    "track": ("src",),
}
_URL_IN_TEXT = re.compile(r"""(?:https?:)?//[^\s"'`<>)\\]+""")
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)""")


@dataclass
class PageResources:
    """What a page makes the browser load, as written in the page."""

    loaded: list[str] = field(default_factory=list)
    script_urls: list[str] = field(default_factory=list)


class _ResourceParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = PageResources()
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "link":
            rels = set(values.get("rel", "").lower().split())
            if rels & _LOADING_RELS and values.get("href"):
                self.found.loaded.append(values["href"])
        for name in _LOADING_ATTRS.get(tag, ()):
            if values.get(name):
                # srcset: "url 1x, url 2x"
                for part in values[name].split(","):
                    if part.strip():
                        self.found.loaded.append(part.split()[0])
        if "style" in values:
            self.found.loaded.extend(_CSS_URL.findall(values["style"]))
        if tag == "script" and not values.get("src"):
            self._in = "script"
        elif tag == "style":
            self._in = "style"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.found.script_urls.extend(_URL_IN_TEXT.findall(data))
        elif self._in == "style":
            self.found.loaded.extend(_CSS_URL.findall(data))


def page_resources(html: str) -> PageResources:
    """Parse ``html`` for the URLs a browser would load from it."""
    parser = _ResourceParser()
    parser.feed(html)
    parser.close()
    return parser.found


def foreign(urls: list[str], page_url: str) -> list[str]:
    """The URLs in ``urls`` that point to a host other than the page's own."""
    own = urlsplit(page_url).netloc
    outside = []
    for url in urls:
        if url.startswith(("data:", "blob:", "#")):
            continue
        parts = urlsplit(urljoin(page_url, url))
        if parts.scheme not in ("http", "https") or parts.netloc != own:
            outside.append(url)
    return outside


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=30)


def html_pages(server: Server, slug: str) -> list[str]:
    """Every HTML page the API serves about the published layer ``slug``."""
    items = get(f"{server.url}/collections/{slug}/items?f=json&limit=1").json()
    item_id = items["features"][0]["id"]
    collection = f"{server.url}/collections/{slug}"
    return [
        f"{server.url}/?f=html",
        f"{server.url}/conformance?f=html",
        f"{server.url}/collections?f=html",
        f"{collection}?f=html",
        f"{collection}/items?f=html",
        f"{collection}/items?f=html&limit=3&offset=3",
        f"{collection}/items/{item_id}?f=html",
        f"{collection}/queryables?f=html",
        f"{collection}/schema?f=html",
        f"{server.url}/openapi?f=html",
        f"{server.url}/openapi?f=html&ui=redoc",
        f"{server.url}/TileMatrixSets?f=html",
        f"{server.url}/TileMatrixSets/WebMercatorQuad?f=html",
        f"{server.url}/processes?f=html",
    ]


def fetch_html(url: str) -> str:
    response = get(url)
    assert response.status_code == 200, (url, response.text[:500])
    assert response.headers["Content-Type"].startswith("text/html"), url
    return response.text


@pytest.fixture
def api_settings(api_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """conftest's settings, with a basemap URL when a test passes one (indirect)."""
    basemap = getattr(request, "param", "")
    if basemap:
        return api_settings.with_(
            basemap_url=basemap, basemap_attribution="&copy; Example tiles"
        )
    return api_settings


@pytest.fixture
def layer(db: Conn) -> Conn:
    buildings_layer(db, SLUG, 25)
    return db


def test_pages_load_nothing_from_other_hosts(layer: Conn, server: Server) -> None:
    for url in html_pages(server, SLUG):
        found = page_resources(fetch_html(url))
        assert found.loaded, f"{url} loads no resources: is it our template?"
        assert foreign(found.loaded, url) == [], url
        assert foreign(found.script_urls, url) == [], url


def test_static_files_of_the_pages_are_served(layer: Conn, server: Server) -> None:
    static: set[str] = set()
    for url in html_pages(server, SLUG):
        for ref in page_resources(fetch_html(url)).loaded:
            absolute = urljoin(url, ref)
            if urlsplit(absolute).path.startswith("/static/"):
                static.add(absolute)
    assert any("/static/vendor/leaflet/leaflet.js" in u for u in static)
    assert any("/static/vendor/swagger-ui-dist/" in u for u in static)
    css_refs: set[str] = set()
    for url in sorted(static):
        response = get(url)
        assert response.status_code == 200, url
        assert response.content, url
        if url.endswith(".css"):
            for ref in _CSS_URL.findall(response.text):
                if not ref.startswith(("data:", "#")):
                    css_refs.add(urljoin(url, ref))
    # Images named by the stylesheets (Leaflet's markers and layer icons).
    assert foreign(sorted(css_refs), server.url) == []
    assert any(ref.endswith("marker-icon.png") for ref in css_refs)
    for ref in sorted(css_refs):
        assert get(ref).status_code == 200, ref


def test_no_tile_layer_without_a_basemap(layer: Conn, server: Server) -> None:
    html = fetch_html(f"{server.url}/collections/{SLUG}/items?f=html")
    # The map is drawn by /static/sdi/pages.js from the page's JSON block.
    assert "/static/sdi/pages.js" in html
    block = re.search(
        r'<script type="application/json" id="sdi-map">(.*?)</script>', html
    )
    assert block is not None
    spec = json.loads(block.group(1))
    assert spec["basemap"] == {"url": "", "attribution": ""}
    assert spec["kind"] == "items" and spec["features"]


@pytest.mark.parametrize("api_settings", [OUTSIDE_TILES], indirect=True)
def test_basemap_setting_reaches_the_maps(layer: Conn, server: Server) -> None:
    """SDI_BASEMAP_URL draws tiles (from wherever it points: the checker sees it)."""
    collection = f"{server.url}/collections/{SLUG}"
    items = get(f"{collection}/items?f=json&limit=1").json()
    for url in (
        f"{collection}?f=html",
        f"{collection}/items?f=html",
        f"{collection}/items/{items['features'][0]['id']}?f=html",
    ):
        found = page_resources(fetch_html(url))
        assert foreign(found.loaded, url) == [], url
        assert foreign(found.script_urls, url) == [OUTSIDE_TILES], url


def test_base_config_map_comes_from_the_settings(settings: Settings) -> None:
    server = load_base_config(settings)["server"]
    assert server["map"] == {"url": "", "attribution": ""}
    assert Path(server["templates"]["path"], "_base.html").is_file()
    custom = settings.with_(basemap_url=OUTSIDE_TILES, basemap_attribution="x")
    assert load_base_config(custom)["server"]["map"] == {
        "url": OUTSIDE_TILES,
        "attribution": "x",
    }


# -- in a real browser ---------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-deps")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Visit:
    """What the browser did on one page."""

    requests: list[str]
    refused: list[str]
    errors: list[str]
    drawn: int


def visit(
    browser: Browser, url: str, ready: str, screenshot: Path, *, count: str = ""
) -> Visit:
    """Open ``url``, wait for ``ready``, record requests; refuse other hosts."""
    own = urlsplit(url).netloc
    seen: list[str] = []
    refused: list[str] = []
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(route: Route) -> None:
        request_url = route.request.url
        seen.append(request_url)
        parts = urlsplit(request_url)
        if parts.scheme in ("data", "blob") or parts.netloc == own:
            route.continue_()
        else:
            refused.append(request_url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    try:
        page.goto(url, wait_until="load")
        try:
            # attached, not visible: a small building is a zero-area path
            page.wait_for_selector(ready, state="attached", timeout=15_000)
        except Exception as exc:
            page.screenshot(path=str(screenshot), full_page=True)
            raise AssertionError(
                f"{url}: {ready} not drawn (see {screenshot}); page errors: "
                f"{errors}, refused: {refused}"
            ) from exc
        page.wait_for_load_state("networkidle")
        drawn = page.locator(count).count() if count else 0
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return Visit(seen, refused, errors, drawn)


@pytest.fixture
def demo(db: Conn, api_settings: Settings) -> Conn:
    """The demo (buildings, bus stops, roads), small, ingested for real."""
    load_demo(db, api_settings, scale=0.02)
    return db


def test_demo_maps_draw_in_chromium_offline(
    demo: Conn, server: Server, browser: Browser, tmp_path: Path
) -> None:
    collections = f"{server.url}/collections"
    building = get(f"{collections}/landsd_buildings/items?f=json&limit=1").json()
    pages = {
        "buildings-items": f"{collections}/landsd_buildings/items?f=html&limit=100",
        "roads-items": f"{collections}/td_roads/items?f=html&limit=100",
        "bus-stops-items": f"{collections}/td_bus_stops/items?f=html&limit=100",
        "building": (
            f"{collections}/landsd_buildings/items/"
            f"{building['features'][0]['id']}?f=html"
        ),
        "collection": f"{collections}/landsd_buildings?f=html",
    }
    drawn = ".leaflet-overlay-pane path.leaflet-interactive"
    for name, url in pages.items():
        # Bus stops are points: Leaflet draws them as marker (or cluster) icons.
        shapes = ".leaflet-marker-icon" if name == "bus-stops-items" else drawn
        result = visit(browser, url, shapes, tmp_path / f"{name}.png", count=shapes)
        assert result.refused == [], (name, result.refused)
        assert result.errors == [], (name, result.errors)
        assert result.drawn > 0, name
        assert any("/static/vendor/leaflet/leaflet.js" in r for r in result.requests)


def test_pages_without_maps_render_offline(
    layer: Conn, server: Server, browser: Browser, tmp_path: Path
) -> None:
    landing = visit(
        browser,
        f"{server.url}/?f=html",
        "main h1",
        tmp_path / "landing.png",
        count="link[href*='/static/vendor/bootstrap/']",
    )
    assert landing.refused == [] and landing.errors == [], landing
    assert landing.drawn == 1
    swagger = visit(
        browser,
        f"{server.url}/openapi?f=html",
        ".swagger-ui .opblock",
        tmp_path / "swagger.png",
        count=".swagger-ui .opblock",
    )
    assert swagger.refused == [], swagger.refused
    assert swagger.errors == [], swagger.errors
    assert swagger.drawn > 5

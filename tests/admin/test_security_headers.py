"""Security headers of both apps, over real HTTP, and their pages in Chromium.

The combined app (``sdi.cli.serve.create_wsgi``: OGC API at ``/``, admin at
``/admin``, as ``sdi serve`` runs it) on werkzeug in a thread. Every response
carries a Content-Security-Policy (the admin's with ``frame-ancestors
'none'``), ``X-Content-Type-Options: nosniff`` and a ``Referrer-Policy``; HSTS
only when ``SDI_BASE_URL`` is https; never ``X-Powered-By``. A CORS preflight
for ``X-API-Key`` is allowed, checked with a bare ``OPTIONS`` and with a
real cross-origin ``fetch`` in Chromium. Then Debian's Chromium opens the admin
pages and the public pages and reports no CSP violation (the pages' scripts
still run: maps drawn, Swagger UI rendered).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from sdi import registry
from sdi.api import live_api
from sdi.cli.serve import create_wsgi
from sdi.ingest.raster import ingest_raster
from sdi.providers import close_pools
from sdi.providers.raster import close_datasets
from sdi.registry import apikeys
from sdi.settings import Settings
from tests.admin.conftest import PASSWORD, Conn, People
from tests.admin.layer_helpers import ingest
from tests.api.layerdata import add_version, buildings, create_layer
from tests.conftest import free_port
from tests.ingest import files
from tests.rasters.conftest import raster_layer
from tests.rasters.files import write_dem

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SLUG = "landsd_places"
DEM = "landsd_dem"
SECRET = "landsd_secret"


@dataclass
class Site:
    url: str
    settings: Settings
    key: str = ""

    def admin(self, path: str = "/") -> str:
        return f"{self.url}/admin{path}"


def serve(settings: Settings) -> Iterator[str]:
    """``create_wsgi(settings)`` over HTTP until the generator is closed."""
    wsgi = create_wsgi(settings)
    httpd = make_server(settings.host, settings.port, wsgi, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{settings.host}:{settings.port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        live_api(wsgi).close()
        close_pools()
        close_datasets()


@pytest.fixture
def site_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    assert settings.database_url is not None
    monkeypatch.setenv("SDI_DATABASE_URL", settings.database_url)
    return settings.with_(port=free_port())


@pytest.fixture
def site(
    site_settings: Settings, conn: Conn, people: People, tmp_path: Path
) -> Iterator[Site]:
    """Both apps with a published vector layer, a raster and a restricted layer."""
    registry.create_layer(
        conn,
        people.agency,
        registry.LayerInput(
            slug=SLUG,
            title_en="Places",
            title_zh="地方",
            licence_id=registry.get_licence(conn, "hk-csdi").id,
            key_column="ID",
        ),
    )
    ingest(
        conn, site_settings, SLUG, files.make_places_shapefile_zip(tmp_path, range(40))
    )
    registry.publish(conn, SLUG, 1)
    raster_layer(conn, DEM)
    dem = write_dem(tmp_path / "dem.tif", 120, 90)
    registry.publish(
        conn, DEM, ingest_raster(conn, site_settings, dem, layer=DEM).number
    )
    create_layer(conn, SECRET, visibility="restricted", title_en="Secret")
    add_version(conn, SECRET, buildings(range(3)))
    _, key = apikeys.create_key(conn, people.admin, people.agency.id, "web", [SECRET])
    server = serve(site_settings)
    url = next(server)
    try:
        yield Site(url, site_settings, key)
    finally:
        server.close()


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=30, allow_redirects=False, **kwargs)


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: [sources]}."""
    found = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            found[words[0]] = words[1:]
    return found


# -- headers over HTTP ---------------------------------------------------------


def test_every_response_carries_the_security_headers(site: Site) -> None:
    item = get(f"{site.url}/collections/{SLUG}/items?f=json&limit=1").json()
    public = [
        f"{site.url}/?f=html",
        f"{site.url}/collections/{SLUG}?f=html",
        f"{site.url}/collections/{SLUG}/items?f=json",
        f"{site.url}/collections/{SLUG}/items/{item['features'][0]['id']}?f=html",
        f"{site.url}/collections/{SLUG}/items?bbox=nonsense",  # a 400
        f"{site.url}/collections/nothing-here",  # a 404
        f"{site.url}/openapi?f=html",
        f"{site.url}/collections/{DEM}/coverage?f=html",
        f"{site.url}/static/sdi/pages.js",
        f"{site.url}/static/vendor/leaflet/leaflet.js",
    ]
    admin = [
        site.admin("/login"),
        site.admin("/"),  # a redirect to the sign-in page
        site.admin("/static/admin.css"),
        site.admin("/api/layers"),  # a 401 in JSON
        site.admin("/no-such-page"),
    ]
    for url in public + admin:
        response = get(url)
        headers = response.headers
        assert "X-Powered-By" not in headers, url
        assert headers["X-Content-Type-Options"] == "nosniff", url
        assert "Strict-Transport-Security" not in headers, url  # http base URL
        policy = directives(headers["Content-Security-Policy"])
        if url in public and "text/html" not in headers["Content-Type"]:
            # Data (JSON, scripts) is never a document: the short policy.
            assert policy == {
                "default-src": ["'none'"],
                "frame-ancestors": ["'none'"],
                "sandbox": [],
            }, url
            continue
        for directive in ("script-src", "style-src"):
            assert "'unsafe-inline'" not in policy[directive], (url, policy)
            assert "'unsafe-eval'" not in policy[directive], (url, policy)
        assert policy["object-src"] == ["'none'"], url
        if url in admin:
            assert policy["frame-ancestors"] == ["'none'"], url
            assert policy["script-src"] == ["'self'"], url
            assert headers["X-Frame-Options"] == "DENY", url
            assert headers["Referrer-Policy"] == "same-origin", url
        else:
            assert "'self'" in policy["script-src"], url
            assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert get(f"{site.url}/collections/{SLUG}/items?bbox=nonsense").status_code == 400


def test_the_session_cookie_stays_under_admin(site: Site, people: People) -> None:
    """The public pages share the origin: the admin session is never sent to them."""
    browser = requests.Session()
    page = browser.get(f"{site.url}/admin/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    response = browser.post(
        f"{site.url}/admin/login",
        data={
            "csrf_token": token[1],
            "email": people.admin.email,
            "password": PASSWORD,
        },
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text
    cookies = [c for c in browser.cookies if c.name == "session"]
    assert [c.path for c in cookies] == ["/admin"]
    assert "Path=/admin" in response.headers["Set-Cookie"]
    public = browser.get(f"{site.url}/collections", timeout=30)
    assert "session=" not in (public.request.headers.get("Cookie") or "")
    assert browser.get(f"{site.url}/admin/account", timeout=30).status_code == 200


def test_hsts_when_the_base_url_is_https(
    site_settings: Settings, conn: Conn, people: People
) -> None:
    behind_tls = site_settings.with_(base_url="https://sdi.example.hk")
    server = serve(behind_tls)
    url = next(server)
    try:
        for path in ("/?f=json", "/collections?f=html", "/admin/login"):
            response = get(f"{url}{path}")
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            # The public URL's origin is this server too (links are built from it).
            assert "https://sdi.example.hk" in response.headers[
                "Content-Security-Policy"
            ] or not path.endswith("f=html")
    finally:
        server.close()


@pytest.mark.parametrize(
    "site_settings_basemap",
    ["https://{s}.tiles.example.hk/base/{z}/{x}/{y}.png"],
)
def test_basemap_host_is_allowed_for_map_tiles(
    site_settings: Settings, conn: Conn, people: People, site_settings_basemap: str
) -> None:
    with_basemap = site_settings.with_(basemap_url=site_settings_basemap)
    server = serve(with_basemap)
    url = next(server)
    try:
        for path in ("/collections?f=html", "/admin/login"):
            policy = directives(get(f"{url}{path}").headers["Content-Security-Policy"])
            assert "https://*.tiles.example.hk" in policy["img-src"], path
            assert "https://*.tiles.example.hk" in policy["connect-src"], path
            assert "https://*.tiles.example.hk" not in policy["script-src"], path
    finally:
        server.close()


def test_cors_preflight_allows_the_api_key_header(site: Site) -> None:
    response = requests.options(
        f"{site.url}/collections/{SECRET}/items",
        headers={
            "Origin": "https://maps.example.org",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key",
        },
        timeout=30,
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "x-api-key" in {h.strip() for h in allowed.split(",")}
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


# -- in Chromium ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
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


class _MapApp(BaseHTTPRequestHandler):
    """Another origin's page (a web map of some agency): an empty document."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>map app</title><p>map app"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_page_of_another_origin_can_send_the_api_key(
    site: Site, browser: Browser
) -> None:
    """A real preflight: fetch() with X-API-Key from a page of another origin.

    Chromium sends ``OPTIONS`` first (a header outside the CORS-safelisted
    ones) and refuses the fetch unless the answer allows ``X-API-Key``.
    """
    other = ThreadingHTTPServer(("127.0.0.1", 0), _MapApp)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"http://localhost:{other.server_address[1]}/")
        result = page.evaluate(
            """async ([url, key]) => {
                const response = await fetch(url, {headers: {'X-API-Key': key}});
                const body = await response.json();
                return [response.status, body.numberMatched];
            }""",
            [f"{site.url}/collections/{SECRET}/items?f=json", site.key],
        )
    finally:
        context.close()
        other.shutdown()
        thread.join(timeout=10)
    assert result == [200, 3]


CSP_PROBE = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${where}`);
});
"""


@dataclass
class Visits:
    """CSP violations and errors seen on the pages a browser visited."""

    page: Page
    violations: dict[str, list[str]]
    console: dict[str, list[str]]

    def open(
        self, url: str, ready: str, check: Callable[[Page], None] | None = None
    ) -> None:
        messages: list[str] = []

        def record(msg: Any) -> None:
            if msg.type in ("error", "warning"):
                messages.append(msg.text)

        self.page.on("console", record)
        self.page.on("pageerror", lambda exc: messages.append(str(exc)))
        try:
            self.page.goto(url, wait_until="load")
            self.page.wait_for_selector(ready, state="attached", timeout=20_000)
            self.page.wait_for_load_state("networkidle")
            if check is not None:
                check(self.page)
            seen: list[str] = self.page.evaluate("window.__csp")
        finally:
            self.page.remove_listener("console", record)
        self.violations[url] = seen
        self.console[url] = [m for m in messages if "Content Security Policy" in m]


def _map_ready(page: Page) -> None:
    page.wait_for_selector("#map[data-ready='true']", timeout=30_000)


def test_pages_run_without_csp_violations(
    site: Site, browser: Browser, people: People
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(CSP_PROBE)
    visits = Visits(context.new_page(), {}, {})
    page = visits.page
    try:
        visits.open(site.admin("/login"), "input[name=email]")
        page.fill("input[name=email]", people.admin.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("header .who")).to_contain_text(people.admin.email)
        for path, ready, check in (
            ("/", "main", None),
            (f"/layers/{SLUG}", "#upload-file", None),
            (f"/layers/{SLUG}/versions/1", "#map", _map_ready),
            (f"/layers/{DEM}/versions/1", "#thumbnail", None),
            (f"/layers/{SLUG}/edit", "#title_en", None),
            ("/new-layer", "#slug", None),
            ("/users", "main", None),
            ("/keys", "main", None),
            ("/audit", "main", None),
            ("/account", "main", None),
        ):
            visits.open(site.admin(path), ready, check)
        item = get(f"{site.url}/collections/{SLUG}/items?f=json&limit=1").json()
        collection = f"{site.url}/collections/{SLUG}"
        drawn = ".leaflet-overlay-pane path.leaflet-interactive, .leaflet-marker-icon"
        for url, ready in (
            (f"{site.url}/?f=html", "main h1"),
            (f"{site.url}/collections?f=html", "main"),
            (f"{collection}?f=html", ".leaflet-overlay-pane path"),
            (f"{collection}/items?f=html", drawn),
            (f"{collection}/items/{item['features'][0]['id']}?f=html", drawn),
            (f"{collection}/queryables?f=html", "main"),
            (f"{site.url}/conformance?f=html", "main"),
            (f"{site.url}/TileMatrixSets?f=html", "main"),
            (f"{site.url}/collections/{DEM}/coverage?f=html", "#coverage-image"),
            (f"{site.url}/collections/{DEM}?f=html", ".leaflet-overlay-pane path"),
            (f"{site.url}/collections/catalog/items?f=html", drawn),
            (f"{site.url}/collections/catalog/items/{SLUG}?f=html", drawn),
            (f"{collection}/schema?f=html", "main"),
            (f"{site.url}/TileMatrixSets/WebMercatorQuad?f=html", "main"),
            (f"{site.url}/processes?f=html", "main"),
            (f"{site.url}/collections/no_such_layer?f=html", "body"),  # a 404 page
            (f"{site.url}/openapi?f=html", ".swagger-ui .opblock"),
            (f"{site.url}/openapi?f=html&ui=redoc", ".swagger-ui .opblock"),
        ):
            visits.open(url, ready)
        # The page-size selector (pages.js) still works.
        page.goto(f"{collection}/items?f=html")
        page.select_option("#limits", "100")
        page.wait_for_url("**limit=100**")
    finally:
        context.close()
    assert {u: v for u, v in visits.violations.items() if v} == {}
    assert {u: m for u, m in visits.console.items() if m} == {}
    assert len(visits.violations) == 29

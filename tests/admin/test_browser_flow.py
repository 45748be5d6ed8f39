"""The whole agency flow in Debian's Chromium, against a real server and worker.

The combined app (``sdi.cli.serve.create_wsgi``: OGC API at ``/``, admin at
``/admin``) runs on werkzeug in a thread, a job worker in another. An agency
editor signs in, registers a layer, uploads a zipped Shapefile (watching the
upload's progress bar, then the job's), reviews the version (stats, schema,
MapLibre map: screenshot taken, canvas checked for drawn features), publishes
it and finds it in the OGC API, drops a second version onto the page, reviews
its diff, publishes it and rolls back. Another agency's editor is refused
every page and action on that layer. Pages are checked at phone width (no
horizontal scrolling) and every request the browser makes stays on the server.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fiona
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from werkzeug.serving import make_server

from sdi import registry
from sdi.api import live_api
from sdi.cli.serve import create_wsgi
from sdi.providers import close_pools
from sdi.settings import Settings
from tests.admin.conftest import PASSWORD, Conn, People
from tests.conftest import free_port
from tests.ingest import files
from tests.jobs.conftest import fast_worker, running

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SLUG = "landsd_places"
PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    """The running server: its base URL and every URL a browser asked for."""

    url: str
    settings: Settings
    requests: list[str] = field(default_factory=list)

    def admin(self, path: str = "/") -> str:
        return f"{self.url}/admin{path}"


class _SlowInput:
    """A request body read at about 6 MB/s, like an upload over a slow line."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        time.sleep(0.01)
        data: bytes = self._stream.read(min(size, 65536) if size > 0 else 65536)
        return data

    def readinto(self, buffer: Any) -> int:
        time.sleep(0.01)
        view = memoryview(buffer)[:65536]
        count: int = self._stream.readinto(view)
        return count

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self._stream.readline(size)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _slow_uploads(app: Any) -> Any:
    """``app``, receiving uploads of new versions slowly (the browser's progress
    bar then has something to show on a local connection)."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith(
            "/versions"
        ):
            environ["wsgi.input"] = _SlowInput(environ["wsgi.input"])
        return app(environ, start_response)

    return wsgi


@pytest.fixture
def site(
    settings: Settings, people: People, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    """OGC API + admin app on a real server, and a worker, until the test ends."""
    assert settings.database_url is not None
    monkeypatch.setenv("SDI_DATABASE_URL", settings.database_url)
    settings = settings.with_(port=free_port())
    wsgi = create_wsgi(settings)
    httpd = make_server(
        settings.host, settings.port, _slow_uploads(wsgi), threaded=True
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with running(fast_worker(settings, "browser-test-worker")):
            yield Site(settings.public_url, settings)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        live_api(wsgi).close()
        close_pools()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def _context(browser: Browser, site: Site, **options: Any) -> BrowserContext:
    context = browser.new_context(**options)
    context.on("request", lambda request: site.requests.append(request.url))
    return context


def sign_in(page: Page, site: Site, email: str) -> None:
    page.goto(site.admin("/login"))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(email)


def wait_for_job(page: Page) -> str:
    """On a job page: wait until the job has finished; its final state."""
    page.wait_for_url("**/admin/jobs/*")
    # A function, not an expression: Playwright evals expressions in the page,
    # which the admin's Content-Security-Policy refuses.
    page.wait_for_function(
        "() => ['succeeded', 'failed']"
        ".includes(document.getElementById('job').dataset.status)",
        timeout=60_000,
    )
    return page.locator("#job-state").inner_text()


def map_drawn(page: Page) -> dict[str, Any]:
    """Wait for the preview map; what it drew (features, coloured pixels)."""
    page.wait_for_selector("#map[data-ready='true']", timeout=30_000)
    result: dict[str, Any] = page.evaluate(
        """() => {
            const map = window.sdiPreviewMap;
            const canvas = map.getCanvas();
            const copy = document.createElement('canvas');
            copy.width = canvas.width; copy.height = canvas.height;
            const ctx = copy.getContext('2d');
            ctx.drawImage(canvas, 0, 0);
            const px = ctx.getImageData(0, 0, copy.width, copy.height).data;
            let drawn = 0;  // pixels of the feature colour (#c2410c, blended)
            for (let i = 0; i < px.length; i += 4) {
                if (px[i] > 150 && px[i + 1] < 150 && px[i + 2] < 120) drawn++;
            }
            const layers = map.getStyle().layers.map(l => l.id)
                .filter(id => id.startsWith('preview'));
            return {
                loaded: map.loaded(),
                rendered: map.queryRenderedFeatures({layers}).length,
                source: map.querySourceFeatures('preview').length,
                drawn,
                dataUrl: canvas.toDataURL().length,
            };
        }"""
    )
    return result


def served_count(page: Page, site: Site, expected: int) -> int:
    """numberMatched of the layer's items in the OGC API, once it is ``expected``.

    The API follows publications within a second (it checks the publication
    generation at most every 0.5 s), so a moment's wait is allowed.
    """
    deadline = time.monotonic() + 5
    while True:
        response = page.request.get(
            f"{site.url}/collections/{SLUG}/items?f=json&limit=1"
        )
        count = int(response.json()["numberMatched"]) if response.ok else -1
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def no_horizontal_scroll(page: Page) -> int:
    width: int = page.evaluate("document.scrollingElement.scrollWidth")
    return width


def test_an_agency_publishes_and_rolls_back_a_layer(
    site: Site,
    browser: Browser,
    conn: Conn,
    people: People,
    tmp_path: Path,
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    v1_file = files.make_places_shapefile_zip(tmp_path / "v1", range(400))
    # Esri's spatial index rides along in many agency zips (ingest ignores it);
    # 24 MiB of it makes the upload last long enough to watch its progress.
    with zipfile.ZipFile(v1_file, "a") as zf:
        zf.writestr("places.sbn", os.urandom(24 * 1024 * 1024))
    v2_file = files.make_places_shapefile_zip(
        tmp_path / "v2", range(380), renamed={0: "中環（新）", 1: "旺角（新）"}
    )
    context = _context(browser, site, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # -- sign in and register the layer ---------------------------------------------
    sign_in(page, site, people.editor.email)
    page.click("text=Register a layer")
    page.fill("#slug", SLUG)
    page.fill("#title_en", "Places")
    page.fill("#title_zh", "地方")
    page.fill("#abstract_en", "Sample places of Hong Kong.")
    page.fill("#abstract_zh", "香港地方樣本。")
    page.fill("#keywords", "places, 地方")
    page.fill("#theme", "Boundaries")
    page.fill("#contact", "gis@landsd.gov.hk")
    page.select_option("#update_frequency", "monthly")
    hk_csdi = registry.get_licence(conn, "hk-csdi")
    page.select_option("#licence_id", value=str(hk_csdi.id))
    page.check("input[name=visibility][value=public]")
    page.fill("#key_column", "ID")
    page.click("button:has-text('Register')")
    page.wait_for_url(f"**/admin/layers/{SLUG}")
    expect(page.locator("#published-state")).to_have_text("Not published")
    layer = registry.get_layer(conn, SLUG)
    assert layer.title_zh == "地方" and layer.key_column == "ID"

    # -- upload v1 with the file picker (on a slow line: see the site fixture) ----
    page.set_input_files("#upload-file", str(v1_file))
    expect(page.locator("#upload-chosen")).to_contain_text("places.zip")
    # Remember every value the progress bar shows (the page leaves on success).
    page.evaluate(
        """() => {
            const bar = document.getElementById('upload-bar');
            const status = document.getElementById('upload-status');
            new MutationObserver(() => {
                const seen = JSON.parse(sessionStorage.getItem('bar') || '[]');
                seen.push([bar.getAttribute('value'), status.textContent]);
                sessionStorage.setItem('bar', JSON.stringify(seen));
            }).observe(bar, {attributes: true});
        }"""
    )
    page.click("#upload-button")
    page.wait_for_function(
        "() => (b => b !== null && b.value > 0 && b.value < 100)"
        "(document.getElementById('upload-bar'))",
        timeout=20_000,
    )
    page.screenshot(path=str(shots / "1-uploading.png"))
    assert wait_for_job(page) == "succeeded"
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('bar') || '[]')")
    partial = [(v, text) for v, text in seen if v is not None and 0 < float(v) < 100]
    assert partial, seen
    assert "Uploading places.zip: " in partial[0][1] and "%)" in partial[0][1]
    expect(page.locator("#job-bar")).to_have_attribute("value", "100")
    page.screenshot(path=str(shots / "2-job-done.png"))

    # -- review v1: stats, schema and the map ------------------------------------
    page.click("#review-link")
    page.wait_for_url(f"**/admin/layers/{SLUG}/versions/1")
    expect(page.locator("#stat-features")).to_have_text("400")
    expect(page.locator("#stat-added")).to_have_text("400")
    expect(page.locator("#stat-repaired")).to_have_text("0")
    expect(page.locator("#schema")).to_contain_text("NAME_TC")
    drawn = map_drawn(page)
    page.screenshot(path=str(shots / "3-review-v1.png"), full_page=True)
    page.locator("#map").screenshot(path=str(shots / "3-review-v1-map.png"))
    assert drawn["loaded"] and drawn["source"] > 0, drawn
    assert drawn["rendered"] > 100 and drawn["drawn"] > 500, drawn
    expect(page.locator("#map-note")).to_have_text("Showing all 400 features.")

    # -- publish v1 and find it in the OGC API -----------------------------------
    page.click("#publish-button")
    page.wait_for_url(f"**/admin/layers/{SLUG}")
    expect(page.locator("#published-state")).to_have_text("Published: version 1")
    assert served_count(page, site, 400) == 400
    items = page.request.get(f"{site.url}/collections/{SLUG}/items?f=json&limit=1000")
    body = items.json()
    assert "中環" in {f["properties"]["NAME_TC"] for f in body["features"]}
    page.goto(f"{site.url}/collections/{SLUG}")
    expect(page.locator("body")).to_contain_text("Places")

    # -- drop v2 onto the page ---------------------------------------------------
    page.goto(site.admin(f"/layers/{SLUG}"))
    page.evaluate(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: 'application/zip'}));
            const zone = document.getElementById('dropzone');
            const init = {dataTransfer: transfer, bubbles: true, cancelable: true};
            zone.dispatchEvent(new DragEvent('dragover', init));
            zone.dispatchEvent(new DragEvent('drop', init));
        }""",
        ["places-v2.zip", base64.b64encode(v2_file.read_bytes()).decode()],
    )
    expect(page.locator("#upload-chosen")).to_contain_text("places-v2.zip")
    page.click("#upload-button")
    assert wait_for_job(page) == "succeeded"
    page.click("#review-link")
    page.wait_for_url(f"**/admin/layers/{SLUG}/versions/2")
    expect(page.locator("#stat-features")).to_have_text("380")
    expect(page.locator("#stat-added")).to_have_text("0")
    expect(page.locator("#stat-changed")).to_have_text("2")
    expect(page.locator("#stat-removed")).to_have_text("20")
    expect(page.locator("#schema-same")).to_be_visible()
    assert map_drawn(page)["rendered"] > 100
    page.screenshot(path=str(shots / "4-review-v2.png"), full_page=True)

    # -- publish v2, then roll back to v1 ----------------------------------------
    page.click("#publish-button")
    expect(page.locator("#published-state")).to_have_text("Published: version 2")
    assert served_count(page, site, 380) == 380
    page.click("button:has-text('Roll back to v1')")
    expect(page.locator("#published-state")).to_have_text("Published: version 1")
    assert served_count(page, site, 400) == 400
    history = page.locator("#history")
    expect(history).to_contain_text("rollback version 1 (was 2)")
    expect(history).to_contain_text(people.editor.email)
    page.screenshot(path=str(shots / "5-layer-after-rollback.png"), full_page=True)

    # -- downloads of both versions ----------------------------------------------
    with page.expect_download() as download:
        page.click("#version-2 a:has-text('GeoPackage')")
    saved = tmp_path / "v2.gpkg"
    download.value.save_as(saved)
    with fiona.open(saved) as src:
        assert len(src) == 380

    assert errors == [], errors
    context.close()

    # -- another agency's editor is refused everything ----------------------------
    jobs = conn.execute("SELECT id FROM sdi.jobs ORDER BY id").fetchall()
    before = (
        registry.get_layer(conn, SLUG),
        len(registry.list_versions(conn, layer.id)),
        jobs,
    )
    other = _context(browser, site).new_page()
    sign_in(other, site, people.other_editor.email)
    expect(other.locator("main")).not_to_contain_text(SLUG)
    for path in (
        f"/layers/{SLUG}",
        f"/layers/{SLUG}/edit",
        f"/layers/{SLUG}/versions/1",
        f"/layers/{SLUG}/versions/1/preview.geojson",
        f"/layers/{SLUG}/versions/1/download?format=gpkg",
        f"/jobs/{jobs[0][0]}",
        f"/jobs/{jobs[0][0]}.json",
    ):
        response = other.goto(site.admin(path))
        assert response is not None and response.status == 404, path
    other.goto(site.admin("/account"))
    token = other.locator("input[name=csrf_token]").first.get_attribute("value")
    for path, data in (
        (f"/layers/{SLUG}/publish", {"version": "2"}),
        (f"/layers/{SLUG}/rollback", {}),
        (f"/layers/{SLUG}/unpublish", {}),
        (f"/layers/{SLUG}/edit", {"title_en": "Mine now", "licence_id": "1"}),
    ):
        response = other.request.post(
            site.admin(path), form={**data, "csrf_token": token or ""}
        )
        assert response.status == 404, path
    upload = other.request.post(
        site.admin(f"/layers/{SLUG}/versions"),
        multipart={
            "csrf_token": token or "",
            "file": {
                "name": "x.zip",
                "mimeType": "application/zip",
                "buffer": v2_file.read_bytes(),
            },
        },
        headers={"Accept": "application/json", "X-CSRFToken": token or ""},
    )
    assert upload.status == 404
    after = (
        registry.get_layer(conn, SLUG),
        len(registry.list_versions(conn, layer.id)),
        conn.execute("SELECT id FROM sdi.jobs ORDER BY id").fetchall(),
    )
    assert after == before

    # -- nothing came from other hosts --------------------------------------------
    origin = urlsplit(site.url).netloc
    foreign = [
        u
        for u in site.requests
        if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc != origin
    ]
    assert foreign == []


def test_pages_fit_a_phone(
    site: Site,
    browser: Browser,
    conn: Conn,
    people: People,
    tmp_path: Path,
) -> None:
    """At 390 px: no horizontal scrolling on any layer page; nothing external."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    context = _context(browser, site, viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    sign_in(page, site, people.editor.email)
    # A layer with a version and a job, made through the pages themselves.
    page.goto(site.admin("/new-layer"))
    page.fill("#slug", SLUG)
    page.fill("#title_en", "Places with a rather long English title for a phone")
    page.fill("#title_zh", "地方")
    page.click("button:has-text('Register')")
    page.wait_for_url(f"**/admin/layers/{SLUG}")
    page.set_input_files(
        "#upload-file", str(files.make_places_shapefile_zip(tmp_path, range(30)))
    )
    page.click("#upload-button")
    assert wait_for_job(page) == "succeeded"
    job_url = page.url
    # A file that breaks near its end: the job fails and says why.
    page.goto(site.admin(f"/layers/{SLUG}"))
    page.set_input_files(
        "#upload-file", str(files.make_truncated_shapefile_zip(tmp_path))
    )
    page.click("#upload-button")
    assert wait_for_job(page) == "failed"
    expect(page.locator("#job-error")).to_contain_text(
        "Feature 25 of truncated.shp could not be read"
    )
    expect(page.locator("#job-retry")).to_be_visible()
    failed_url = page.url

    pages = {
        "index": site.admin("/"),
        "register": site.admin("/new-layer"),
        "layer": site.admin(f"/layers/{SLUG}"),
        "edit": site.admin(f"/layers/{SLUG}/edit"),
        "job": job_url,
        "job-failed": failed_url,
        "review": site.admin(f"/layers/{SLUG}/versions/1"),
    }
    widths = {}
    for name, url in pages.items():
        page.goto(url)
        if name == "review":
            assert map_drawn(page)["rendered"] > 0
        widths[name] = no_horizontal_scroll(page)
        page.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)
    assert all(w <= PHONE["width"] for w in widths.values()), widths
    origin = urlsplit(site.url).netloc
    assert all(
        urlsplit(u).netloc == origin
        for u in site.requests
        if urlsplit(u).scheme in ("http", "https")
    ), site.requests
    context.close()

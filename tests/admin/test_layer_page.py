"""The layer page over HTTP: what its "About this layer" panel and upload box say."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from sdi.registry.models import Layer
from tests.admin.conftest import People
from tests.admin.layer_helpers import signed_in


def _fact(page: str, label: str) -> str:
    """The text of a fact (``<dt>label</dt><dd>...</dd>``) of the panel."""
    found = re.search(rf"<dt>{label}</dt><dd>(.*?)</dd>", page, re.S)
    assert found, f"no {label} in the panel"
    return html.unescape(re.sub(r"<[^>]+>", "", found[1])).strip()


def test_the_about_panel_names_the_agency(
    served: str, people: People, make_layer: Callable[..., Layer]
) -> None:
    layer = make_layer(people.other_agency, "td_stops")
    for user in (people.other_editor, people.platform):
        session, _ = signed_in(served, user)
        page = session.get(f"{served}/layers/{layer.slug}", timeout=30).text
        assert _fact(page, "Agency") == "Transport Department 運輸署"


def test_the_upload_box_lists_every_accepted_format(
    served: str, people: People, make_layer: Callable[..., Layer]
) -> None:
    layer = make_layer(people.agency, "landsd_dem")
    session, _ = signed_in(served, people.editor)
    page = session.get(f"{served}/layers/{layer.slug}", timeout=30).text
    hint = re.search(r'<span class="hint">([^<]+)</span>', page)
    assert hint
    for name in ("Shapefile", "GeoPackage", "GeoJSON", "CSV", "File Geodatabase"):
        assert name in hint[1]
    assert "GeoTIFF" in hint[1]
    spec = session.get(f"{served}/api/openapi.json", timeout=30).json()
    upload = spec["paths"]["/layers/{slug}/versions"]["post"]
    schema = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "GeoTIFF" in schema["properties"]["file"]["description"]

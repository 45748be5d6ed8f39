"""Deep offsets: pages read through a version's checkpoints equal plain OFFSET."""

from __future__ import annotations

import requests
from psycopg import sql

from tests.api.conftest import Server
from tests.api.layerdata import Conn, add_version, buildings, create_layer

SLUG = "landsd_deep"


def expected_ids(db: Conn, version: int, offset: int, limit: int) -> list[int]:
    rows = db.execute(
        sql.SQL(
            "SELECT _sdi_fid FROM {} WHERE _sdi_from <= %(v)s AND "
            "(_sdi_to IS NULL OR _sdi_to > %(v)s) ORDER BY _sdi_fid "
            "OFFSET %(o)s LIMIT %(l)s"
        ).format(sql.Identifier("sdi_data", SLUG)),
        {"v": version, "o": offset, "l": limit},
    ).fetchall()
    return [int(r[0]) for r in rows]


def page_ids(server: Server, **params: object) -> list[int]:
    response = requests.get(
        f"{server.url}/collections/{SLUG}/items",
        params={"f": "json", "skipGeometry": "true", **params},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return [int(f["id"]) for f in response.json()["features"]]


def test_deep_offsets_match_offset_in_every_version(db: Conn, server: Server) -> None:
    create_layer(db, SLUG)
    add_version(db, SLUG, buildings(range(9000)))
    # Version 2 drops the first 700, renames every 7th and adds 1200: ids of
    # the current rows are no longer contiguous, nor in version order.
    renamed = frozenset(range(0, 10200, 7))
    add_version(db, SLUG, buildings(range(700, 10200), renamed=renamed))
    cases = [(2, o) for o in (5000, 5001, 5999, 6000, 8999, 9490, 9495, 9500, 12000)]
    cases += [(1, o) for o in (5000, 7777, 8995, 9000)]
    for version, offset in cases:
        for _ in range(2):  # cold, then remembered
            got = page_ids(server, version=version, offset=offset, limit=10)
            assert got == expected_ids(db, version, offset, 10), (version, offset)

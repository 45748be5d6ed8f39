"""The deterministic Hong Kong demo: generated layers in EPSG:2326, loaded for real.

``generate_files`` writes the files (GeoPackage, Big5-HKSCS Shapefile, GeoJSON);
``load_demo`` registers the demo agencies, users and layers and ingests the
files through :func:`sdi.ingest.ingest_file`, idempotently.
"""

from sdi.demo.generate import (
    DEMO_EPSG,
    DemoCounts,
    Record,
    demo_counts,
    generate_files,
    iter_buildings,
    iter_bus_stops,
    iter_roads,
    write_layer,
)
from sdi.demo.load import (
    DEMO_AGENCIES,
    DEMO_LAYERS,
    DEMO_PASSWORD,
    DEMO_PASSWORD_ENV,
    DEMO_USERS,
    DemoSummary,
    demo_password,
    load_demo,
)

__all__ = [
    "DEMO_AGENCIES",
    "DEMO_EPSG",
    "DEMO_LAYERS",
    "DEMO_PASSWORD",
    "DEMO_PASSWORD_ENV",
    "DEMO_USERS",
    "DemoCounts",
    "DemoSummary",
    "Record",
    "demo_counts",
    "demo_password",
    "generate_files",
    "iter_buildings",
    "iter_bus_stops",
    "iter_roads",
    "load_demo",
    "write_layer",
]

"""Read one OGC API - Features collection with QGIS's OAPIF provider; print JSON.

Run by Debian's ``/usr/bin/python3`` (the one ``python3-qgis`` is built for),
not the project's virtual environment, with ``QT_QPA_PLATFORM=offscreen``::

    python3 qgis_read.py '{"uri": "url=... typename=...", "subset": "...",
                           "destination_crs": "EPSG:2326",
                           "extent": [minx, miny, maxx, maxy]}'

``uri`` is the provider's data source URI; ``subset`` (optional) a QGIS
expression given to ``setSubsetString``; ``destination_crs`` (optional) the
CRS to read features in: when the layer is in another one, QGIS reprojects as
it does on a map canvas; ``extent`` (optional) a filter rectangle in that CRS
(exact intersection). Prints one JSON object: whether the layer is valid, its
CRS, fields, feature count and every feature (attributes and vertices, x/y
as QGIS holds them).
"""

from __future__ import annotations

import json
import os
import sys


def _vertices(geometry) -> list[list[float]]:  # a QgsGeometry
    return [[v.x(), v.y()] for v in geometry.vertices()]


def _value(value):  # QVariant values as Python sees them
    from qgis.PyQt.QtCore import QVariant

    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return None
    return value


def main() -> None:
    spec = json.loads(sys.argv[1])
    from qgis.core import (
        QgsApplication,
        QgsCoordinateReferenceSystem,
        QgsFeatureRequest,
        QgsProject,
        QgsProviderRegistry,
        QgsRectangle,
        QgsVectorLayer,
    )

    app = QgsApplication([], False)
    app.setPrefixPath("/usr", True)
    app.initQgis()
    messages: list[str] = []

    def log(message: str, tag: str, level: int) -> None:
        messages.append(f"{tag}: {message}")

    QgsApplication.messageLog().messageReceived.connect(log)
    try:
        providers = QgsProviderRegistry.instance().providerList()
        layer = QgsVectorLayer(spec["uri"], "layer", "OAPIF")
        out: dict = {"providers": providers, "valid": layer.isValid()}
        if layer.isValid():
            subset = spec.get("subset")
            if subset:
                out["subset_accepted"] = layer.setSubsetString(subset)
            request = QgsFeatureRequest()
            target = spec.get("destination_crs")
            reprojected = bool(target) and layer.crs().authid() != target
            if reprojected:
                request.setDestinationCrs(
                    QgsCoordinateReferenceSystem(target),
                    QgsProject.instance().transformContext(),
                )
            if spec.get("extent"):
                # in the destination CRS when there is one; exact geometry test
                request.setFilterRect(QgsRectangle(*spec["extent"]))
                request.setFlags(QgsFeatureRequest.ExactIntersect)
            fields = [f.name() for f in layer.fields()]
            features = [
                {
                    "attributes": {name: _value(f.attribute(name)) for name in fields},
                    "geometry_type": f.geometry().wkbType(),
                    "vertices": _vertices(f.geometry()),
                }
                for f in layer.getFeatures(request)
            ]
            out |= {
                "crs": layer.crs().authid(),
                "reprojected_by_qgis": reprojected,
                "fields": {f.name(): f.typeName() for f in layer.fields()},
                "feature_count": layer.featureCount(),
                "features": features,
            }
        out["messages"] = messages
        del layer
        print(json.dumps(out, ensure_ascii=False, default=str), flush=True)
    finally:
        app.exitQgis()
    # QGIS 3.22 can crash while Python tears its objects down: the JSON is out
    os._exit(0)


if __name__ == "__main__":
    main()

"""Export of layer versions (GeoPackage, GeoJSON)."""

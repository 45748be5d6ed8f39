"""Interoperability: real GIS clients (GDAL, QGIS, OWSLib) read the demo layers."""

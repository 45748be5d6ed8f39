"""sdi: a Common Spatial Data Infrastructure server.

OGC APIs (through pygeoapi) over versioned PostGIS layers, an admin app for
agencies, and an ingestion pipeline built on fiona, rasterio, pyproj and psycopg.
"""

__version__ = "0.1.0"

"""Ingestion: unpack, read, reproject and load files as layer versions."""

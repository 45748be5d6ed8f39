"""Ingestion: unpack, read, reproject and load files as layer versions."""

from sdi.ingest.load import ingest_file
from sdi.ingest.read import open_source
from sdi.ingest.source import Batch, Field, Source, SourceInfo

__all__ = ["Batch", "Field", "Source", "SourceInfo", "ingest_file", "open_source"]

"""Landing file -> validated Iceberg tables: read, validate, write, reconcile."""

from sluiceway.ingest.run import IngestResult, ingest_file

__all__ = ["IngestResult", "ingest_file"]

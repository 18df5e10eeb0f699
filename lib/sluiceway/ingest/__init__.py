"""Landing file -> validated Iceberg tables: read, validate, write, reconcile.

`ingest_file`, `open_landing` and `IngestResult` are imported on first use, so the Spark-free parts
(`sluiceway check`, the tokenizer, the Arrow rules) import without pyspark installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluiceway.ingest.run import IngestResult, ingest_file, open_landing

__all__ = ["IngestResult", "ingest_file", "open_landing"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sluiceway.ingest import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

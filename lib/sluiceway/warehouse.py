"""The warehouse location, checked before Spark starts.

Why: a warehouse that is a file, cannot be written, or has a quote in its path otherwise
fails deep inside the JVM (or, for the quote, only later when DuckDB and the notebooks read
the tables with the path inside an SQL string). Checked up front it is one line naming the
problem, exit code 2.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from sluiceway.errors import ConfigurationError
from sluiceway.locations import is_s3, is_uri
from sluiceway.settings import Settings

# Table locations end up inside quoted SQL strings (DuckDB's iceberg_scan, Athena DDL).
UNSAFE_CHARACTERS = "'\"`\\\n\r\t"
NAMESPACE_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_warehouse(settings: Settings, writable: bool = True) -> None:
    """Raise `ConfigurationError` naming what is wrong with the warehouse or namespace.

    With `writable`, a missing local warehouse folder is created and a probe file is written
    and removed, so a read-only folder or file system is found before any work starts.
    """
    where = settings.warehouse
    unsafe = sorted({character for character in where if character in UNSAFE_CHARACTERS})
    if unsafe:
        shown = " ".join(repr(character) for character in unsafe)
        raise ConfigurationError(
            f"warehouse path {where} contains {shown}; table paths are quoted inside SQL "
            "(DuckDB, Athena), so choose a warehouse path without quotes or backslashes"
        )
    if not NAMESPACE_PATTERN.fullmatch(settings.namespace):
        raise ConfigurationError(
            f"namespace {settings.namespace!r} is not a plain name (letters, digits, "
            "underscores, not starting with a digit); it is the Glue database name"
        )
    if is_uri(where):
        if not is_s3(where):
            raise ConfigurationError(
                f"warehouse {where} is neither a local folder nor an s3:// URI"
            )
        return
    _check_local_folder(Path(where).resolve(), writable)


def _check_local_folder(folder: Path, writable: bool) -> None:
    try:
        for path in (folder, *folder.parents):
            if path.exists() and not path.is_dir():
                where = "is a file" if path == folder else f"is inside {path}, which is a file"
                raise ConfigurationError(
                    f"warehouse {folder} {where}, not a folder; point --warehouse "
                    "(or SLUICEWAY_WAREHOUSE) at a folder"
                )
        if writable:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".sluiceway-write-check-"):
                pass
    except OSError as error:
        problem = "not writable" if writable else "not readable"
        raise ConfigurationError(
            f"warehouse {folder} is {problem} ({error.strerror}); use a folder this user "
            "can use, or fix its permissions or mount"
        ) from error

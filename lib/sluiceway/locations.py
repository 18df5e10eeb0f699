"""Where things are: local paths and S3 URIs, told apart and opened one way everywhere.

Why one module: the warehouse, a landing file, its manifest, a staged copy and a job outcome
can each be a local path or an S3 URI, and deciding which used to be done five ways
(`"s3"`, `"s3://"`, `("s3://", "s3a://")`, `"://"`). A local folder named `s3cache` was an S3
warehouse to one check, and an `s3a://` warehouse was local to another.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyarrow import fs as pafs

# Hadoop's `s3a://` names the same objects as `s3://` (EMR and Spark users write either).
S3_SCHEMES = ("s3://", "s3a://")
FILE_SCHEME = "file://"
# The partner's manifest sits beside the landing file: NAME.manifest.json.
MANIFEST_SUFFIX = ".manifest.json"


def is_s3(location: str) -> bool:
    """True for an `s3://` or `s3a://` URI; a local path never is, whatever its name."""
    return location.startswith(S3_SCHEMES)


def is_uri(location: str) -> bool:
    """True for anything with a scheme (`s3://`, `file://`, ...), False for a plain path."""
    return "://" in location


def split_s3(location: str) -> tuple[str, str]:
    """Bucket and key of an S3 URI (either may be empty: the caller says what it needs)."""
    if not is_s3(location):
        raise ValueError(f"{location} is not an S3 URI (s3://bucket/key)")
    bucket, _, key = location.split("://", 1)[1].partition("/")
    return bucket, key


def local_path(location: str) -> Path:
    """The file-system path of a plain path or a `file://` URI, as given (not resolved)."""
    return Path(location.removeprefix(FILE_SCHEME))


def canonical_source(location: str) -> str:
    """The name recorded for a location (e.g. `source_file`): an absolute path or the URI."""
    return location if is_uri(location) else str(Path(location).resolve())


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow file system and the path inside it, for a local path or a URI."""
    from pyarrow import fs as pafs

    if is_s3(location):
        # pyarrow knows `s3://` only; `s3a://` is the same bucket and key.
        location = "s3://" + location.split("://", 1)[1]
    if is_uri(location):
        files, path = pafs.FileSystem.from_uri(location)
        return files, str(path)
    return pafs.LocalFileSystem(), str(Path(location).resolve())


def manifest_location(landing_file: str) -> str:
    """Where the manifest of a landing file is: beside it, NAME.manifest.json."""
    beside = f"{landing_file}{MANIFEST_SUFFIX}"
    return beside if is_uri(landing_file) else str(Path(beside))

"""pyiceberg's FileIO for s3://, opened the way the jobs' tasks open it (`locations.resolve`).

Why: pyiceberg builds its S3 file system from its own properties only (`s3.endpoint`, ...),
so it misses the endpoint in `AWS_ENDPOINT_URL_S3` that pyarrow's `FileSystem.from_uri` and
every other client of the jobs honour, and it first asks AWS for the bucket's region. With
this FileIO (pyiceberg's `py-io-impl`) the analyst backend reads an s3:// warehouse through
exactly the S3 configuration the tasks wrote it with: the local AWS stack, or AWS itself.
"""

from __future__ import annotations

from pyarrow import fs as pafs
from pyiceberg.io.pyarrow import PyArrowFileIO

from sluiceway.locations import resolve


class StandardS3FileIO(PyArrowFileIO):
    """PyArrowFileIO whose s3:// (and s3a://) file system comes from `locations.resolve`."""

    def _initialize_fs(self, scheme: str, netloc: str | None = None) -> pafs.FileSystem:
        if scheme in ("s3", "s3a"):
            return resolve(f"s3://{netloc}/")[0]
        return super()._initialize_fs(scheme, netloc)

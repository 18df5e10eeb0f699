"""The landing file on the driver: identity (sha256), header check, and record-aligned chunks.

One sequential pass reads the file once: it hashes it, checks the header, and places chunk
boundaries on newlines outside quoted fields (quote parity is even there), so executors can
tokenize chunks in parallel without ever splitting a record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs as pafs

from sluiceway.contract import COLUMN_NAMES, HEADER_LINE
from sluiceway.errors import LandingFileError

BLOCK_BYTES = 8 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class LandingChunk:
    """A byte range of whole records, and the file line number of its first byte."""

    path: str
    start: int
    end: int
    first_line_number: int


@dataclass(frozen=True)
class LandingScan:
    """What the driver learned in its one pass over the landing file."""

    source: str
    data_path: str
    sha256: str
    file_bytes: int
    chunks: tuple[LandingChunk, ...]
    staged: bool = False


def resolve(source: str) -> tuple[pafs.FileSystem, str]:
    """A filesystem and path for a local path or an s3:// URI."""
    if "://" in source:
        return pafs.FileSystem.from_uri(source)
    return pafs.LocalFileSystem(), str(Path(source).resolve())


def canonical_source(source: str) -> str:
    """The name recorded as source_file: an absolute path or the URI as given."""
    return source if "://" in source else str(Path(source).resolve())


class _BoundaryFinder:
    """Tracks quote parity and line count over a stream of blocks and places chunk boundaries."""

    def __init__(self, chunk_bytes: int) -> None:
        self.chunk_bytes = chunk_bytes
        self.offset = 0
        self.quotes_odd = False
        self.lines = 0
        self.header_end: int | None = None
        self.header_lines = 0
        self.boundaries: list[tuple[int, int]] = []
        self._target = 0

    def feed(self, block: bytes) -> None:
        position = 0
        while True:
            local = max(self._target - self.offset, position)
            if local >= len(block):
                break
            newline = block.find(b"\n", local)
            if newline == -1:
                self._target = self.offset + len(block)
                break
            odd = self.quotes_odd ^ (block.count(b'"', 0, newline) % 2 == 1)
            if odd:
                position = newline + 1
                self._target = self.offset + position
                continue
            boundary = self.offset + newline + 1
            lines_before = self.lines + block.count(b"\n", 0, newline + 1)
            if self.header_end is None:
                self.header_end, self.header_lines = boundary, lines_before
            else:
                self.boundaries.append((boundary, lines_before))
            self._target = boundary + self.chunk_bytes
            position = newline + 1
        self.quotes_odd ^= block.count(b'"') % 2 == 1
        self.lines += block.count(b"\n")
        self.offset += len(block)

    def chunks(self, path: str) -> tuple[LandingChunk, ...]:
        """Chunks after the header; line numbers are 1-based, the header being line 1."""
        if self.header_end is None or self.header_end >= self.offset:
            return ()
        edges = [(self.header_end, self.header_lines), *self.boundaries]
        if edges[-1][0] < self.offset:
            edges.append((self.offset, -1))
        return tuple(
            LandingChunk(path, start, end, lines + 1)
            for (start, lines), (end, _) in itertools.pairwise(edges)
            if end > start
        )


def _blocks(source: str) -> Iterator[bytes]:
    filesystem, path = resolve(source)
    try:
        stream = filesystem.open_input_stream(path, compression=None)
    except (FileNotFoundError, OSError) as error:
        raise LandingFileError(
            source, "file not found", str(error), "Check the path or S3 URI and permissions"
        ) from error
    with stream:
        while block := stream.read(BLOCK_BYTES):
            yield block


def check_header(source: str, first_record: bytes) -> None:
    """The first record must be exactly the contract's columns, in order (a BOM is allowed)."""
    try:
        text = first_record.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LandingFileError(
            source, "header is not UTF-8", str(error), "Ask the partner for a UTF-8 file"
        ) from error
    rows = list(csv.reader(io.StringIO(text.rstrip("\r\n"), newline="")))
    found = tuple(value.strip() for value in rows[0]) if rows else ()
    if found != COLUMN_NAMES:
        missing = [name for name in COLUMN_NAMES if name not in found]
        unexpected = [name for name in found if name not in COLUMN_NAMES]
        detail = f"line 1 is {','.join(found)!r}; expected {HEADER_LINE!r}"
        if missing or unexpected:
            detail += f" (missing: {missing or 'none'}; unexpected: {unexpected or 'none'})"
        else:
            detail += " (same columns, different order)"
        raise LandingFileError(
            source,
            "wrong header",
            detail,
            "Nothing was written. Fix the file's header or the contract, then re-run",
        )


def scan_landing_file(source: str, chunk_bytes: int, staging_dir: str) -> LandingScan:
    """Hash the file, check its header and plan chunks; a .gz file is unpacked to staging."""
    sha = hashlib.sha256()
    blocks = _blocks(source)
    first = next(blocks, b"")
    gzipped = first.startswith(GZIP_MAGIC)
    finder = _BoundaryFinder(chunk_bytes)
    header = bytearray()
    data_path = canonical_source(source)
    staging_writer = None
    if gzipped:
        data_path = canonical_source(f"{staging_dir.rstrip('/')}/{uuid.uuid4().hex}.csv")
        staging_fs, staged = resolve(data_path)
        staging_fs.create_dir(
            str(Path(staged).parent) if "://" not in data_path else staged.rsplit("/", 1)[0]
        )
        staging_writer = staging_fs.open_output_stream(staged)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    file_bytes = 0
    try:
        for block in _chain(first, blocks):
            sha.update(block)
            file_bytes += len(block)
            data = _inflate(inflater, block, source) if inflater else block
            if staging_writer is not None:
                staging_writer.write(data)
            if finder.header_end is None and len(header) < 1024 * 1024:
                header.extend(data)
            finder.feed(data)
        if inflater is not None:
            tail = inflater.flush()
            if tail:
                staging_writer.write(tail)
                finder.feed(tail)
    finally:
        if staging_writer is not None:
            staging_writer.close()
    if finder.offset == 0:
        return LandingScan(source, data_path, sha.hexdigest(), file_bytes, (), gzipped)
    header_end = finder.header_end if finder.header_end is not None else finder.offset
    check_header(source, bytes(header[:header_end]))
    return LandingScan(
        source, data_path, sha.hexdigest(), file_bytes, finder.chunks(data_path), gzipped
    )


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _inflate(inflater: zlib._Decompress, block: bytes, source: str) -> bytes:
    try:
        return inflater.decompress(block)
    except zlib.error as error:
        raise LandingFileError(
            source, "corrupt gzip", str(error), "Ask the partner to resend the file"
        ) from error


def read_range(path: str, start: int, end: int) -> bytes:
    """The bytes of one chunk, read by an executor (local disk or S3)."""
    filesystem, resolved = resolve(path)
    with filesystem.open_input_file(resolved) as handle:
        return handle.read_at(end - start, start)

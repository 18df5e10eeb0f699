"""The landing file on the driver: identity (sha256), header check, and record-aligned chunks.

One sequential pass reads the file once: it hashes it, unpacks gzip (every member; a
truncated stream or trailing bytes fail the file), checks the header, counts physical lines
(the unit of accounting) and places chunk boundaries on record starts found by the same
rules the tokenizer uses (`boundaries.quoted_records`), so executors can tokenize chunks in
parallel without ever splitting a record.
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

import numpy as np
from pyarrow import fs as pafs

from sluiceway.contract import COLUMN_NAMES, HEADER_LINE
from sluiceway.errors import LandingFileError
from sluiceway.ingest import source as landing_source
from sluiceway.ingest.boundaries import line_index, quoted_records
from sluiceway.locations import canonical_source, resolve

BLOCK_BYTES = 8 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# A first line longer than this is no header: the file is binary or has no line ends at all.
HEADER_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class LandingChunk:
    """A byte range of whole records, and the file line number of its first byte.

    `version` pins the S3 object version; `cr_line_ends` says the file ends its lines with a
    lone CR (read as LF).
    """

    path: str
    start: int
    end: int
    first_line_number: int
    version: str | None = None
    cr_line_ends: bool = False


@dataclass(frozen=True)
class LandingScan:
    """What the driver learned in its one pass over the landing file.

    `physical_lines` counts the lines after the header: every one of them must end up in
    exactly one accepted or rejected record.
    """

    source: str
    data_path: str
    sha256: str
    file_bytes: int
    chunks: tuple[LandingChunk, ...]
    physical_lines: int = 0
    staged: bool = False
    cr_line_ends: bool = False


class _Gunzip:
    """Inflates a gzip stream of one or more members; anything else after them is an error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.member: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.between = b""

    def feed(self, block: bytes) -> bytes:
        out: list[bytes] = []
        data = self.between + block
        self.between = b""
        while data:
            if self.member is None:
                if len(data) < len(GZIP_MAGIC):
                    self.between = data
                    break
                if not data.startswith(GZIP_MAGIC):
                    self._fail("trailing bytes after the gzip stream", f"{len(data)}+ bytes")
                self.member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out.append(self.member.decompress(data))
            except zlib.error as error:
                self._fail("corrupt gzip", str(error))
            if not self.member.eof:
                break
            data = self.member.unused_data
            self.member = None
        return b"".join(out)

    def finish(self) -> None:
        if self.between:
            self._fail("trailing bytes after the gzip stream", f"{len(self.between)} bytes")
        if self.member is not None:
            self._fail("truncated gzip", "the compressed stream ends before its end marker")

    def _fail(self, rule: str, detail: str) -> None:
        raise LandingFileError(
            self.source, rule, detail, "Nothing was written. Ask the partner to resend the file"
        )


class _ChunkPlanner:
    """Finds the header, counts lines and cuts chunks at record starts, one block at a time.

    Bytes from the first record whose end is not yet known are carried into the next block;
    the record-size cap bounds them.
    """

    def __init__(self, source: str, chunk_bytes: int, max_record_bytes: int) -> None:
        self.source = source
        self.chunk_bytes = chunk_bytes
        self.max_record_bytes = max_record_bytes
        self.header: bytes | None = None
        self.cr_line_ends = False
        self.carry = b""
        self.carry_offset = 0  # offset of carry[0] in the (unpacked) data
        self.carry_line = 0  # 0-based physical line of carry[0]; the header is line 0
        self.cuts: list[tuple[int, int]] = []  # (offset, 0-based line) of each chunk start
        self.target = 0

    def feed(self, block: bytes, at_end: bool = False) -> None:
        data = self.carry + block
        if self.header is None:
            data = self._take_header(data, at_end)
            if self.header is None:
                return
        if self.cr_line_ends:
            data = data.replace(b"\r", b"\n")
        self._plan(data, at_end)

    def _take_header(self, data: bytes, at_end: bool) -> bytes:
        end = data.find(b"\n")
        lone_cr = data.find(b"\r")
        waiting = not at_end and len(data) <= HEADER_MAX_BYTES
        if waiting and (end == -1 or lone_cr == len(data) - 1):
            # No line end yet, or a CR whose LF may come with the next block.
            self.carry = data
            return b""
        if lone_cr != -1 and (end == -1 or lone_cr < end - 1):
            self.cr_line_ends, end = True, lone_cr
        end = len(data) if end == -1 else end + 1
        self.header = data[:end]
        self.carry, self.carry_offset, self.carry_line = b"", end, 1
        self.cuts.append((end, 1))
        self.target = end + self.chunk_bytes
        return data[end:]

    def _plan(self, data: bytes, at_end: bool) -> None:
        lines = line_index(data)
        found = quoted_records(data, lines, self.max_record_bytes, at_end)
        decided = len(lines) if found.undecided_from is None else found.undecided_from
        starts = lines.starts[:decided] + self.carry_offset
        inside = np.zeros(decided, dtype=bool)
        for span in found.spans:
            if span.last_line > span.first_line:
                inside[span.first_line + 1 : span.last_line + 1] = True
        while True:
            index = int(np.searchsorted(starts, self.target))
            while index < decided and inside[index]:
                index += 1
            if index >= decided:
                break
            self.cuts.append((int(starts[index]), self.carry_line + index))
            self.target = int(starts[index]) + self.chunk_bytes
        self.carry = data[lines.starts[decided] :] if decided < len(lines) else b""
        consumed = int(lines.starts[decided]) if decided < len(lines) else len(data)
        self.carry_offset += consumed
        self.carry_line += decided

    @property
    def lines_after_header(self) -> int:
        return max(self.carry_line - 1, 0)

    def chunks(self, path: str, version: str | None) -> tuple[LandingChunk, ...]:
        """Chunks after the header; line numbers are 1-based, the header being line 1."""
        edges = [*self.cuts, (self.carry_offset, -1)]
        return tuple(
            LandingChunk(path, start, end, line + 1, version, self.cr_line_ends)
            for (start, line), (end, _) in itertools.pairwise(edges)
            if end > start
        )


def check_header(source: str, first_line: bytes) -> None:
    """The first line must be exactly the contract's columns, in order (a BOM is allowed)."""
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LandingFileError(
            source, "header is not UTF-8", str(error), "Ask the partner for a UTF-8 file"
        ) from error
    rows = list(csv.reader(io.StringIO(text.rstrip("\r\n"), newline="")))
    found = tuple(value.strip() for value in rows[0]) if rows else ()
    if found != COLUMN_NAMES:
        missing = [name for name in COLUMN_NAMES if name not in found]
        unexpected = [name for name in found if name not in COLUMN_NAMES]
        shown = text[:200].rstrip("\r\n")
        detail = f"line 1 is {shown!r}; expected {HEADER_LINE!r}"
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


def scan_landing_file(
    source: str,
    chunk_bytes: int,
    staging_dir: str,
    max_record_bytes: int,
    version: str | None = None,
) -> LandingScan:
    """Hash the file, check its header and plan chunks; a .gz file is unpacked to staging.

    Whole-file problems (no header, a wrong header, broken gzip) raise LandingFileError
    before anything is written; a staged copy is then removed again.
    """
    sha = hashlib.sha256()
    blocks = landing_source.open_blocks(source, version, BLOCK_BYTES)
    first = next(blocks, b"")
    gzipped = first.startswith(GZIP_MAGIC)
    planner = _ChunkPlanner(source, chunk_bytes, max_record_bytes)
    data_path = canonical_source(source)
    staging_writer = None
    if gzipped:
        data_path = canonical_source(f"{staging_dir.rstrip('/')}/{uuid.uuid4().hex}.csv")
        staging_fs, staged = resolve(data_path)
        staging_fs.create_dir(staged.rsplit("/", 1)[0])
        staging_writer = staging_fs.open_output_stream(staged)
    gunzip = _Gunzip(source) if gzipped else None
    file_bytes = 0
    try:
        for block in _chain(first, blocks):
            sha.update(block)
            file_bytes += len(block)
            data = gunzip.feed(block) if gunzip else block
            if staging_writer is not None:
                staging_writer.write(data)
            planner.feed(data)
        if gunzip is not None:
            gunzip.finish()
        planner.feed(b"", at_end=True)
        if planner.header is None or not planner.header.strip(b"\r\n"):
            raise LandingFileError(
                source,
                "no header",
                "the file is empty" if not planner.header else "the first line is empty",
                f"Nothing was written. The first line must be {HEADER_LINE!r}; "
                "a day without transactions is a file with only that line",
            )
        check_header(source, planner.header)
    except BaseException:
        if staging_writer is not None:
            staging_writer.close()
            staging_writer = None
            remove_staged(data_path)
        raise
    finally:
        if staging_writer is not None:
            staging_writer.close()
    return LandingScan(
        source,
        data_path,
        sha.hexdigest(),
        file_bytes,
        planner.chunks(data_path, None if gzipped else version),
        planner.lines_after_header,
        gzipped,
        planner.cr_line_ends,
    )


def remove_staged(data_path: str) -> None:
    """Delete an unpacked copy of a .gz landing file."""
    filesystem, staged = resolve(data_path)
    filesystem.delete_file(staged)


def remove_staged_folder(location: str) -> None:
    """Delete a folder of staged files (and the folder), if it exists."""
    filesystem, path = resolve(location)
    if filesystem.get_file_info(path).type == pafs.FileType.Directory:
        filesystem.delete_dir(path)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def read_chunk(chunk: LandingChunk) -> bytes:
    """The bytes of one chunk, read by an executor (local disk or S3), line ends as LF."""
    data = landing_source.read_range(chunk.path, chunk.version, chunk.start, chunk.end)
    return data.replace(b"\r", b"\n") if chunk.cr_line_ends else data

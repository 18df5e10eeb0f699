"""The landing file on the driver: identity (sha256), header layout, and record-aligned chunks.

The file is read once: a reader thread hashes it, unpacks gzip (every member; a truncated
stream or trailing bytes fail the file) and the header is matched to the contract
(`header.read_header`: the file's layout, or a whole-file error), while a planner thread counts
physical lines (the unit of accounting) and places chunk boundaries on record starts found by
the same rules the tokenizer uses (`boundaries.quoted_records`), so executors can tokenize
chunks in parallel without ever splitting a record. The ingest goes on once the identity is
known and hands chunks to the tasks as they are planned (`LandingScanner`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyarrow import fs as pafs

from sluiceway.contract import COLUMNS
from sluiceway.errors import LandingFileError
from sluiceway.ingest import source as landing_source
from sluiceway.ingest.boundaries import FIELD_COUNT, line_index, quoted_records
from sluiceway.ingest.header import (
    BY_NAME,
    FAIL,
    ContractColumn,
    HeaderLayout,
    header_field_count,
    read_header,
)
from sluiceway.ingest.parse import CONTRACT_LAYOUT
from sluiceway.locations import canonical_source, is_s3, local_path, resolve

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
    layout: HeaderLayout = CONTRACT_LAYOUT


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

    def __init__(
        self,
        source: str,
        chunk_bytes: int,
        max_record_bytes: int,
    ) -> None:
        self.source = source
        self.chunk_bytes = chunk_bytes
        self.max_record_bytes = max_record_bytes
        self.header: bytes | None = None
        # The header's number of fields: a record over several lines must have as many.
        self.field_count = FIELD_COUNT
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
        self.field_count = header_field_count(self.header) or FIELD_COUNT
        self.carry, self.carry_offset, self.carry_line = b"", end, 1
        self.cuts.append((end, 1))
        self.target = end + self.chunk_bytes
        return data[end:]

    def _plan(self, data: bytes, at_end: bool) -> None:
        lines = line_index(data)
        found = quoted_records(data, lines, self.max_record_bytes, at_end, self.field_count)
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


@dataclass(frozen=True)
class LandingIdentity:
    """What the ingest needs before it takes the lease: the delivered bytes' sha256 (the whole
    file read, gzip verified) and the header's layout, known before the chunk plan is complete."""

    source: str
    data_path: str
    sha256: str
    file_bytes: int
    staged: bool
    layout: HeaderLayout


_END = b""  # the end of the unpacked data, on the reader -> planner queue


class LandingScanner:
    """The driver's scan in two threads, so the ingest can go on before the plan is complete.

    The reader thread reads the file once: sha256, gzip (a staged copy), the byte count. The
    planner thread finds the header, counts lines and cuts chunks (`_ChunkPlanner`) from the
    unpacked bytes: straight from the local file (or its local staged copy) right behind the
    reader, or else handed over in a bounded queue. `identity()` returns once the whole file
    is read and its header matched, which is all the ingest needs to take the lease and write
    its ledger row; `planned()` hands out chunks while the planner still cuts them, and
    `result()` is the complete `LandingScan`, the same as the one-thread scan gave.

    Whole-file problems (no or wrong header, broken gzip) are raised by `identity()`; a
    staged copy is removed by `close()`, which every owner calls (it also stops the threads).
    `matching` and `unknown_columns` are the feed's header settings (`header.read_header`).
    """

    QUEUED_BLOCKS = 8

    def __init__(
        self,
        source: str,
        chunk_bytes: int,
        staging_dir: str,
        max_record_bytes: int,
        version: str | None = None,
        matching: str = BY_NAME,
        unknown_columns: str = FAIL,
        columns: Sequence[ContractColumn] = COLUMNS,
    ) -> None:
        self.source = source
        self.version = version
        self.opened = time.monotonic()  # the read's clock: it may begin before the ingest
        self.matching = matching
        self.unknown_columns = unknown_columns
        self.columns = columns
        self.planner = _ChunkPlanner(source, chunk_bytes, max_record_bytes)
        blocks = landing_source.open_blocks(source, version, BLOCK_BYTES)  # fails if missing
        first = next(blocks, b"")
        self.blocks = _chain(first, blocks)
        self.gzipped = first.startswith(GZIP_MAGIC)
        self.data_path = canonical_source(source)
        self.staging_writer: Any = None
        if self.gzipped:
            self.data_path = canonical_source(f"{staging_dir.rstrip('/')}/{uuid.uuid4().hex}.csv")
            staging_fs, staged = resolve(self.data_path)
            staging_fs.create_dir(staged.rsplit("/", 1)[0])
            self.staging_writer = staging_fs.open_output_stream(staged)
        # The planner reads a local file itself (no copy of the data in memory), else a queue.
        self.local_data = local_path(self.data_path) if not is_s3(self.data_path) else None
        self.queue: queue.Queue[bytes] = queue.Queue(self.QUEUED_BLOCKS)
        self.state = threading.Condition()
        self.readable = 0  # unpacked bytes the planner may read from `local_data`
        self.read_done = False
        self.plan_done = False
        self.stopping = False
        self.error: BaseException | None = None
        self.sha256 = ""
        self.file_bytes = 0
        self.chunk_count = 0  # chunks handed out by `planned()`
        self.threads = [
            threading.Thread(target=self._guarded, args=(self._read,), daemon=True),
            threading.Thread(target=self._guarded, args=(self._plan,), daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def identity(self) -> LandingIdentity:
        """The file's identity once it is read whole and its header is matched."""
        with self.state:
            self.state.wait_for(
                lambda: self.error is not None
                or (self.read_done and (self.planner.header is not None or self.plan_done))
            )
            self._raise_error()
        return LandingIdentity(
            self.source,
            self.data_path,
            self.sha256,
            self.file_bytes,
            self.gzipped,
            self._header_layout(),
        )

    def planned(self, at_least: int = 1) -> Iterator[tuple[LandingChunk, ...]]:
        """The chunks as the planner cuts them: a batch of at least `at_least` new chunks
        (fewer only at the end) whenever there are, until the plan is complete."""
        while True:
            with self.state:
                self.state.wait_for(
                    lambda: self.error is not None
                    or self.plan_done
                    or len(self.planner.cuts) - 1 - self.chunk_count >= at_least
                )
                self._raise_error()
                done = self.plan_done
                if done:
                    chunks = self._chunks()[self.chunk_count :]
                else:
                    chunks = self._complete_chunks()[self.chunk_count :]
                self.chunk_count += len(chunks)
            if chunks:
                yield chunks
            if done:
                return

    def result(self) -> LandingScan:
        """The complete scan: every chunk, the line count; raises what the scan found."""
        identity = self.identity()
        with self.state:
            self.state.wait_for(lambda: self.error is not None or self.plan_done)
            self._raise_error()
        return LandingScan(
            identity.source,
            identity.data_path,
            identity.sha256,
            identity.file_bytes,
            self._chunks(),
            self.planner.lines_after_header,
            identity.staged,
            self.planner.cr_line_ends,
            identity.layout,
        )

    def join(self) -> None:
        """Wait for the threads to end (they end by themselves once the plan is complete)."""
        for thread in self.threads:
            thread.join()

    def close(self) -> None:
        """Stop the threads (if they still run) and remove the staged copy, if any."""
        with self.state:
            self.stopping = True
            self.state.notify_all()
        self.join()
        if self.staging_writer is not None:
            self.staging_writer.close()
            self.staging_writer = None
        if self.gzipped:
            filesystem, staged = resolve(self.data_path)
            if filesystem.get_file_info(staged).type == pafs.FileType.File:
                remove_staged(self.data_path)

    def __enter__(self) -> LandingScanner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _chunks(self) -> tuple[LandingChunk, ...]:
        return self.planner.chunks(self.data_path, None if self.gzipped else self.version)

    def _complete_chunks(self) -> tuple[LandingChunk, ...]:
        """The chunks whose end is known while the planner still cuts: from each cut to the
        next; the planner only appends cuts, so these never change."""
        cuts = list(self.planner.cuts)
        version = None if self.gzipped else self.version
        return tuple(
            LandingChunk(self.data_path, start, end, line + 1, version, self.planner.cr_line_ends)
            for (start, line), (end, _) in itertools.pairwise(cuts)
        )

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error
        if self.stopping:
            raise LandingFileError(self.source, "scan stopped", "the scan was closed", "")

    def _header_layout(self) -> HeaderLayout:
        header = self.planner.header
        if header is None or not header.strip(b"\r\n"):
            expected = ",".join(column.name for column in self.columns)
            raise LandingFileError(
                self.source,
                "no header",
                "the file is empty" if not header else "the first line is empty",
                f"Nothing was written. The first line must be {expected!r}; "
                "a day without transactions is a file with only that line",
            )
        return read_header(self.source, header, self.columns, self.matching, self.unknown_columns)

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as error:  # handed to the thread that waits for the scan
            with self.state:
                if self.error is None:
                    self.error = error
                self.state.notify_all()
            if work == self._read:
                self._put(_END)

    def _put(self, block: bytes) -> None:
        if self.local_data is not None:
            return
        while True:
            try:
                self.queue.put(block, timeout=0.1)
                return
            except queue.Full:
                if self.stopping or self.error is not None:
                    return

    def _read(self) -> None:
        sha = hashlib.sha256()
        gunzip = _Gunzip(self.source) if self.gzipped else None
        for block in self.blocks:
            if self.stopping or self.error is not None:
                return
            sha.update(block)
            self.file_bytes += len(block)
            data = gunzip.feed(block) if gunzip else block
            if self.staging_writer is not None:
                self.staging_writer.write(data)
            if self.local_data is not None:
                with self.state:
                    self.readable += len(data)
                    self.state.notify_all()
            elif data:
                self._put(data)
        if gunzip is not None:
            gunzip.finish()
        if self.staging_writer is not None:
            self.staging_writer.close()
            self.staging_writer = None
        self.sha256 = sha.hexdigest()
        self._put(_END)
        with self.state:
            self.read_done = True
            self.state.notify_all()

    def _plan(self) -> None:
        for data in self._unpacked():
            self.planner.feed(data)  # not under the lock: the reader must not wait for it
            with self.state:
                self.state.notify_all()
        with self.state:
            self.planner.feed(b"", at_end=True)
            self.plan_done = True
            self.state.notify_all()

    def _unpacked(self) -> Iterator[bytes]:
        """The unpacked bytes, block by block, as the reader makes them available."""
        if self.local_data is None:
            while (data := self._take()) is not _END:
                yield data
            return
        with open(self.local_data, "rb", buffering=0) as handle:
            offset = 0
            while True:
                with self.state:
                    self.state.wait_for(functools.partial(self._readable_past, offset))
                    if self.stopping or self.error is not None:
                        return
                    available, finished = self.readable, self.read_done
                if available == offset and finished:
                    return
                data = os.pread(handle.fileno(), min(available - offset, BLOCK_BYTES), offset)
                if not data:
                    raise LandingFileError(
                        self.source,
                        "file changed during the scan",
                        f"{available} bytes read, but {offset} found",
                        "Nothing was written. Re-run the ingest once the file is complete",
                    )
                offset += len(data)
                yield data

    def _readable_past(self, offset: int) -> bool:
        """Whether the planner, at `offset` of the local file, has something to do."""
        return self.stopping or self.error is not None or self.readable > offset or self.read_done

    def _take(self) -> bytes:
        while True:
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                if self.stopping:
                    return _END


def scan_landing_file(
    source: str,
    chunk_bytes: int,
    staging_dir: str,
    max_record_bytes: int,
    version: str | None = None,
    matching: str = BY_NAME,
    unknown_columns: str = FAIL,
    columns: Sequence[ContractColumn] = COLUMNS,
) -> LandingScan:
    """Hash the file, match its header and plan chunks; a .gz file is unpacked to staging.

    Whole-file problems (no header, a wrong header, broken gzip) raise LandingFileError
    before anything is written; a staged copy is then removed again.
    """
    scanner = LandingScanner(
        source,
        chunk_bytes,
        staging_dir,
        max_record_bytes,
        version,
        matching,
        unknown_columns,
        columns,
    )
    try:
        scan = scanner.result()
    except BaseException:
        scanner.close()
        raise
    scanner.join()
    return scan


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

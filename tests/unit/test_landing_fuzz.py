"""Fuzz: random byte mutations of valid landing files never break the tokenizer's promises.

A seeded generator (no hypothesis: it is not a dependency) cuts windows out of generated
files with every defect, in LF, CRLF and CR-only line endings, and mutates them: bytes that
matter to CSV inserted, deleted or replaced, ranges duplicated or cut, garbage around the
file, and sometimes gzip (several members, truncated, corrupt, with trailing bytes). Each case
is scanned with a random chunk size, read block size and record-size cap. The scan either
fails the whole file (LandingFileError, no staged copy left) or its records cover every
physical line after the header exactly once, the same records whatever the chunking, and
its line count matches an independent count of the line ends.
"""

from __future__ import annotations

import gzip
import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from sluiceway.contract import MAX_RECORD_BYTES
from sluiceway.errors import LandingFileError
from sluiceway.generate import LINE_ENDINGS, generate_landing_file
from sluiceway.ingest import landing
from sluiceway.ingest.landing import LandingScan, read_chunk, remove_staged, scan_landing_file
from sluiceway.ingest.parse import RECORD_SCHEMA, tokenize

pytestmark = pytest.mark.unit

CASES = 300
SEED = 20261125
# Bytes with a meaning to the tokenizer or the decoder: quote, line ends, delimiter, bytes that
# are never UTF-8 (0xff), a lead byte without its continuation (0xc3), NUL.
HOSTILE_BYTES = b'"\r\n,\xff\xc3\x00'
# Short pieces of CSV structure: quoted fields that span lines, doubled quotes, empty fields.
SNIPPETS = (b'"', b'""', b'","', b',"', b'",', b'"\n', b'\n"', b'"a\nb"', b'"x""y"', b",,", b"\r\n")
BIG_CHUNK = 1 << 30


@dataclass(frozen=True)
class Case:
    """One mutated landing file and the knobs of its scan."""

    data: bytes
    chunk_bytes: int
    block_bytes: int
    max_record_bytes: int
    steps: tuple[str, ...]


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, list[bytes]]]:
    """Per line ending: the header line and the body's physical lines, each with its end."""
    folder = tmp_path_factory.mktemp("fuzz-base")
    files = {}
    for seed, ending in enumerate(LINE_ENDINGS):
        path = folder / f"base-{ending}.csv"
        generate_landing_file(path, 300, seed=seed, defect_rate=0.3, line_ending=ending)
        lines = path.read_bytes().splitlines(keepends=True)
        files[ending] = (lines[0], lines[1:])
    return files


def make_case(rng: random.Random, valid_files: dict[str, tuple[bytes, list[bytes]]]) -> Case:
    header, lines = valid_files[rng.choice(sorted(valid_files))]
    start = rng.randrange(len(lines))
    body = b"".join(lines[start : start + rng.randint(0, 40)])
    data, steps = header + body, []
    for _ in range(rng.randint(0, 4)):
        data, step = mutate(rng, data, len(header))
        steps.append(step)
    if rng.random() < 0.3:
        data, step = pack(rng, data)
        steps.append(step)
    return Case(
        data,
        chunk_bytes=rng.choice([1, rng.randint(2, 64), rng.randint(64, 2048)]),
        block_bytes=rng.choice([rng.randint(1, 32), rng.randint(32, 1024), landing.BLOCK_BYTES]),
        max_record_bytes=rng.choice([1, rng.randint(2, 300), MAX_RECORD_BYTES]),
        steps=tuple(steps),
    )


def mutate(rng: random.Random, data: bytes, header_bytes: int) -> tuple[bytes, str]:
    """One random change; most land after the header, so the file is not simply refused."""
    low = 0 if rng.random() < 0.05 else min(header_bytes, len(data))
    at = rng.randint(low, len(data))
    end = min(len(data), at + rng.randint(1, 24))
    kind = rng.choice(["insert", "insert", "snippet", "delete", "replace", "replace",
                       "duplicate", "truncate", "prepend", "append"])  # fmt: skip
    if kind == "insert":
        piece = bytes(rng.choice(HOSTILE_BYTES) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.2:
            piece = rng.randbytes(rng.randint(1, 8))
        return data[:at] + piece + data[at:], f"insert {piece!r} at {at}"
    if kind == "snippet":
        piece = rng.choice(SNIPPETS)
        return data[:at] + piece + data[at:], f"insert {piece!r} at {at}"
    if kind == "delete":
        return data[:at] + data[end:], f"delete {at}:{end}"
    if kind == "replace":
        piece = bytes([rng.choice(HOSTILE_BYTES) if rng.random() < 0.8 else rng.randrange(256)])
        return data[:at] + piece + data[at + 1 :], f"replace {at} with {piece!r}"
    if kind == "duplicate":
        source = rng.randint(low, len(data))
        piece = data[source : source + rng.randint(1, 400)]
        return data[:at] + piece + data[at:], f"duplicate {source}:+{len(piece)} at {at}"
    if kind == "truncate":
        return data[:at], f"truncate at {at}"
    garbage = rng.choice([rng.randbytes(rng.randint(1, 16)), b"\n", b"\r", b'"', b"\x1f\x8b"])
    if kind == "prepend":
        return garbage + data, f"prepend {garbage!r}"
    return data + garbage, f"append {garbage!r}"


def pack(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Gzip in 1-3 members split anywhere, sometimes damaged the way transfers damage it."""
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 2)))
    edges = [0, *cuts, len(data)]
    packed = b"".join(gzip.compress(data[a:b], mtime=0) for a, b in itertools.pairwise(edges))
    step = f"gzip {len(edges) - 1} members"
    damage = rng.choice(["none", "none", "truncate", "trailing", "flip"])
    if damage == "truncate":
        return packed[: rng.randrange(len(packed))], step + ", truncated"
    if damage == "trailing":
        extra = rng.choice([rng.randbytes(rng.randint(1, 12)), b"\x1f", b"\x1f\x8b", b"\x00"])
        return packed + extra, step + f", then {extra!r}"
    if damage == "flip":
        at = rng.randrange(len(packed))
        flipped = bytes([packed[at] ^ (1 << rng.randrange(8))])
        return packed[:at] + flipped + packed[at + 1 :], step + f", bit flipped at {at}"
    return packed, step


def records_of(scan: LandingScan, max_record_bytes: int) -> pa.Table:
    """Every chunk tokenized on its own, as the executors do, in line order."""
    tables = [
        tokenize(read_chunk(chunk), chunk.first_line_number, max_record_bytes)
        for chunk in scan.chunks
    ]
    return pa.concat_tables([RECORD_SCHEMA.empty_table(), *tables]).sort_by("line_number")


def unpacked(data: bytes) -> bytes:
    """The bytes the scan read, unpacked by the standard library rather than by the scan."""
    return gzip.decompress(data) if data.startswith(landing.GZIP_MAGIC) else data


def line_ends_after_header(data: bytes, cr_line_ends: bool) -> tuple[int, int]:
    """(offset after the header line, physical lines after it), counted without the scan."""
    text = data.replace(b"\r", b"\n") if cr_line_ends else data
    header_end = text.find(b"\n") + 1 or len(text)
    body = text[header_end:]
    return header_end, body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


def check(case: Case, path: Path, staging: Path, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether the file was scanned (True) or failed as a whole (False); the rest asserts."""
    path.write_bytes(case.data)
    monkeypatch.setattr(landing, "BLOCK_BYTES", case.block_bytes)
    try:
        scan = scan_landing_file(str(path), case.chunk_bytes, str(staging), case.max_record_bytes)
    except LandingFileError:
        assert not any(staging.iterdir()), "a failed scan left its staged copy behind"
        return False
    finally:
        monkeypatch.undo()
    try:
        records = records_of(scan, case.max_record_bytes)
        plain = unpacked(case.data)
        header_end, lines = line_ends_after_header(plain, scan.cr_line_ends)
        assert scan.physical_lines == lines
        starts = [chunk.start for chunk in scan.chunks]
        ends = [chunk.end for chunk in scan.chunks]
        assert [header_end, *ends] == [*starts, len(plain)], "chunks leave a gap or overlap"
        firsts = records.column("line_number").to_pylist()
        lasts = records.column("last_line_number").to_pylist()
        assert all(first <= last for first, last in zip(firsts, lasts, strict=True))
        assert firsts == [2, *(last + 1 for last in lasts[:-1])][: len(firsts)]
        assert (lasts[-1] if lasts else 1) == scan.physical_lines + 1
        whole = scan_landing_file(str(path), BIG_CHUNK, str(staging), case.max_record_bytes)
        try:
            assert len(whole.chunks) <= 1
            assert records_of(whole, case.max_record_bytes).equals(records)
        finally:
            if whole.staged:
                remove_staged(whole.data_path)
    finally:
        if scan.staged:
            remove_staged(scan.data_path)
    return True


def test_mutated_files_fail_whole_or_cover_every_line_once_whatever_the_chunking(
    valid_files: dict[str, tuple[bytes, list[bytes]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(SEED)
    staging = tmp_path / "staging"
    staging.mkdir()
    scanned = 0
    for number in range(CASES):
        case = make_case(rng, valid_files)
        try:
            scanned += check(case, tmp_path / f"case-{number}.csv", staging, monkeypatch)
        except Exception as error:
            raise AssertionError(
                f"case {number} ({'; '.join(case.steps) or 'unchanged'}; chunk {case.chunk_bytes},"
                f" block {case.block_bytes}, cap {case.max_record_bytes}) data={case.data!r}"
            ) from error
    # Most cases must get past the scan, or the fuzz would only test the header check.
    assert CASES // 2 < scanned < CASES

"""The driver's scan in threads: the same chunks and sha256 as one sequential pass, and the
file's identity before the plan is complete (issue 19, item 2)."""

import gzip
import hashlib
import threading
from pathlib import Path

import pytest

from sluiceway.contract import HEADER_LINE, MAX_RECORD_BYTES
from sluiceway.errors import LandingFileError
from sluiceway.generate import generate_landing_file
from sluiceway.ingest import landing
from sluiceway.ingest.landing import LandingChunk, LandingScanner, scan_landing_file

pytestmark = pytest.mark.unit

CAP = 4096  # small, so failed multi-line records are re-read across many blocks


def sequential_plan(path: Path, chunk_bytes: int, block_bytes: int) -> tuple[str, list]:
    """The one-thread scan as it was: hash and plan every block in turn."""
    raw = path.read_bytes()
    data = gzip.decompress(raw) if raw.startswith(b"\x1f\x8b") else raw
    planner = landing._ChunkPlanner(str(path), chunk_bytes, CAP)
    for at in range(0, len(data), block_bytes):
        planner.feed(data[at : at + block_bytes])
    planner.feed(b"", at_end=True)
    chunks = planner.chunks("data", None)
    return hashlib.sha256(raw).hexdigest(), [
        (c.start, c.end, c.first_line_number, c.cr_line_ends) for c in chunks
    ]


def shape(chunks: tuple[LandingChunk, ...] | list[LandingChunk]) -> list:
    return [(c.start, c.end, c.first_line_number, c.cr_line_ends) for c in chunks]


def hostile_file(tmp_path: Path, line_ending: str, compress: bool, seed: int) -> Path:
    """Defects of every kind (stray and unclosed quotes, quoted newlines, bad bytes)."""
    path = tmp_path / f"hostile-{line_ending}-{seed}.csv{'.gz' if compress else ''}"
    generate_landing_file(
        path,
        1500,
        seed=seed,
        defect_rate=0.08,
        line_ending=line_ending,
        compress=compress,
        gzip_members=3 if compress else 1,
    )
    return path


@pytest.mark.parametrize("through_queue", [False, True])
@pytest.mark.parametrize(
    ("line_ending", "compress"), [("lf", False), ("crlf", False), ("cr", False), ("lf", True)]
)
def test_threaded_scan_gives_the_chunks_and_sha256_of_one_sequential_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line_ending, compress, through_queue
):
    """Chunks handed out while the planner cuts, and the final scan, equal one sequential
    pass, on small blocks and chunks so quoted newlines straddle both."""
    if through_queue:  # as for an S3 landing object: blocks handed over, not re-read
        monkeypatch.setattr(landing, "is_s3", lambda location: True)
    for seed, (block, chunk) in enumerate([(997, 2048), (4096, 1500), (333, 700)]):
        path = hostile_file(tmp_path, line_ending, compress, seed)
        monkeypatch.setattr(landing, "BLOCK_BYTES", block)
        expected_sha, expected = sequential_plan(path, chunk, block)
        assert len(expected) > 10
        scanner = LandingScanner(str(path), chunk, str(tmp_path / "staging"), CAP)
        try:
            handed_out = [c for batch in scanner.planned(at_least=2) for c in batch]
            scan = scanner.result()
            assert scanner.identity().sha256 == expected_sha
            assert scan.sha256 == expected_sha
            assert shape(handed_out) == shape(scan.chunks) == expected
            again = scan_landing_file(str(path), chunk, str(tmp_path / "again"), CAP)
            assert (again.sha256, again.physical_lines, shape(again.chunks)) == (
                expected_sha,
                scan.physical_lines,
                expected,
            )
            if again.staged:
                landing.remove_staged(again.data_path)
        finally:
            scanner.close()
        if compress:
            assert not list((tmp_path / "staging").glob("*.csv")), "staged copy left behind"


def test_the_identity_is_known_before_the_plan_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The lease and the ledger row wait only for the sha256 and the header, not the plan."""
    path = tmp_path / "landing.csv"
    generate_landing_file(path, 2000, seed=5, defect_rate=0.02)
    monkeypatch.setattr(landing, "BLOCK_BYTES", 4096)
    planning = threading.Event()
    feed = landing._ChunkPlanner.feed

    def slow_feed(self, block: bytes, at_end: bool = False) -> None:
        if self.header is not None:
            planning.wait(timeout=30)  # held until the test has the identity
        feed(self, block, at_end)

    monkeypatch.setattr(landing._ChunkPlanner, "feed", slow_feed)
    with LandingScanner(str(path), 2048, str(tmp_path), MAX_RECORD_BYTES) as scanner:
        identity = scanner.identity()
        assert not scanner.plan_done
        assert identity.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert identity.file_bytes == path.stat().st_size
        planning.set()
        assert scanner.result().chunks[-1].end == path.stat().st_size


def test_a_broken_gzip_fails_the_identity_and_leaves_no_staged_copy(tmp_path: Path):
    path = tmp_path / "landing.csv.gz"
    generate_landing_file(path, 500, seed=2, compress=True)
    path.write_bytes(path.read_bytes()[:-20])
    staging = tmp_path / "staging"
    scanner = LandingScanner(str(path), 1024, str(staging), CAP)
    try:
        with pytest.raises(LandingFileError, match="truncated gzip"):
            scanner.identity()
    finally:
        scanner.close()
    assert not list(staging.glob("*.csv"))


def test_a_wrong_header_fails_the_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "landing.csv"
    path.write_text(HEADER_LINE.replace("amount", "amt") + "\n" + "x\n" * 5000)
    monkeypatch.setattr(landing, "BLOCK_BYTES", 512)
    with (
        LandingScanner(str(path), 1024, str(tmp_path), CAP) as scanner,
        pytest.raises(LandingFileError, match="wrong header"),
    ):
        scanner.identity()


def test_closing_an_unfinished_scan_stops_its_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An ingest that stops early (already ingested, the lease busy) stops the planner."""
    path = tmp_path / "landing.csv"
    generate_landing_file(path, 3000, seed=6)
    monkeypatch.setattr(landing, "BLOCK_BYTES", 256)
    monkeypatch.setattr(landing, "is_s3", lambda location: True)
    scanner = LandingScanner(str(path), 1024, str(tmp_path), CAP)
    scanner.identity()
    scanner.close()
    assert not any(thread.is_alive() for thread in scanner.threads)

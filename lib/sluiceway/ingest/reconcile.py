"""Reconciliation: what was read must equal what was written, and match the partner's manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from pyarrow import fs as pafs

from sluiceway.ingest.landing import resolve


@dataclass(frozen=True)
class Counts:
    """The figures of one ingest, as read back from the tables."""

    lines_read: int
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    accepted_amount_by_currency: dict[str, Decimal] = field(default_factory=dict)
    accepted_count_by_currency: dict[str, int] = field(default_factory=dict)
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None


def balance_problems(counts: Counts) -> list[str]:
    """Every record read is accepted or rejected, once: lines read = accepted + rejected."""
    if counts.lines_read == counts.accepted + counts.rejected:
        return []
    return [
        f"lines read {counts.lines_read} != accepted {counts.accepted} "
        f"+ rejected {counts.rejected} found in the tables"
    ]


def load_manifest(location: str) -> dict | None:
    """The manifest JSON at a local path or S3 URI, or None when there is none."""
    filesystem, path = resolve(location)
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return json.loads(stream.read().decode("utf-8"))


def default_manifest_location(source: str) -> str:
    """The manifest sits beside the landing file: NAME.manifest.json."""
    return f"{source}.manifest.json" if "://" in source else str(Path(f"{source}.manifest.json"))


def manifest_problems(counts: Counts, manifest: dict) -> list[str]:
    """Differences between the ingest's figures and the manifest's, each named."""
    problems = []
    for name in ("accepted", "rejected"):
        if int(manifest[name]) != getattr(counts, name):
            problems.append(f"{name}: manifest {manifest[name]}, ingest {getattr(counts, name)}")
    if int(manifest["records"]) != counts.lines_read:
        problems.append(f"records: manifest {manifest['records']}, ingest {counts.lines_read}")
    expected_reasons = {k: int(v) for k, v in manifest.get("rejected_by_reason", {}).items()}
    if expected_reasons != counts.rejected_by_reason:
        problems.append(
            f"rejected by reason: manifest {expected_reasons}, ingest {counts.rejected_by_reason}"
        )
    expected_amounts = {
        k: Decimal(v) for k, v in manifest.get("accepted_amount_by_currency", {}).items()
    }
    found_amounts = {
        k: v for k, v in counts.accepted_amount_by_currency.items() if v or k in expected_amounts
    }
    if expected_amounts != found_amounts:
        problems.append(
            f"accepted amount by currency: manifest {expected_amounts}, ingest {found_amounts}"
        )
    return problems

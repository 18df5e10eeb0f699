"""The demo day on the production stack, offline: a landing file uploaded to S3, ingested and
processed through Iceberg's GlueCatalog with S3FileIO under the DynamoDB lease, reported,
maintained, and read back by an independent reader through the same catalog and store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.aws_stack import StackNamespace, ids_once, upload_landing
from sluiceway.generate import Manifest, generate_landing_file
from sluiceway.statuses import COMPLETED

pytestmark = [pytest.mark.aws_stack, pytest.mark.integration]

RECORDS = 600


@dataclass(frozen=True)
class DemoDay:
    namespace: StackNamespace
    manifest: Manifest
    source: str
    version: str
    report: Path


@pytest.fixture(scope="module")
def demo_day(aws_stack, tmp_path_factory: pytest.TempPathFactory) -> DemoDay:
    """`sluiceway run` (ingest, then process) and `sluiceway report` on a generated file."""
    folder = tmp_path_factory.mktemp("demo-day")
    landing = folder / "transactions_2026-11-25.csv"
    manifest = generate_landing_file(landing, RECORDS, seed=11, defect_rate=0.03)
    source, version = upload_landing(aws_stack, landing, f"partner/{landing.name}")
    namespace = StackNamespace(aws_stack, "demo_day")
    run = namespace.sluiceway("run", source, *namespace.arguments())
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "reconciled" in run.stdout, run.stdout
    report = folder / "report.html"
    reported = namespace.sluiceway(
        "report", "--out", str(report), "--profile", "local-aws", "--namespace", namespace.name
    )
    assert reported.returncode == 0, reported.stdout + reported.stderr[-3000:]
    return DemoDay(namespace, manifest, source, version, report)


def test_each_record_is_accepted_or_rejected_once_and_processed_once(demo_day: DemoDay) -> None:
    namespace, manifest = demo_day.namespace, demo_day.manifest
    (ledger,) = namespace.read_table("ingest_ledger").to_pylist()
    assert (ledger["status"], ledger["source_file"]) == (COMPLETED, demo_day.source)
    assert ledger["source_version"] == demo_day.version
    assert (ledger["sha256"], ledger["lines_read"]) == (manifest.sha256, manifest.lines)
    assert ledger["accepted"] == manifest.accepted

    accepted = ids_once(namespace.read_table("transactions"))
    assert len(accepted) == manifest.accepted
    rejected = namespace.read_table("rejected_records")
    assert rejected.num_rows == manifest.records - manifest.accepted == ledger["rejected"]
    processed = ids_once(namespace.read_table("processed_transactions"))
    assert sorted(processed) == sorted(accepted)
    assert namespace.read_table("processing_failures").num_rows == 0


def test_the_report_reads_the_glue_catalog_and_reconciles(demo_day: DemoDay) -> None:
    page = demo_day.report.read_text(encoding="utf-8")
    (ledger,) = demo_day.namespace.read_table("ingest_ledger").to_pylist()
    assert ledger["ingest_id"] in page
    assert f"{demo_day.manifest.accepted:,}" in page


def test_the_data_files_are_in_the_s3_warehouse_and_the_catalog_is_glue(demo_day: DemoDay) -> None:
    stack, name = demo_day.namespace.stack, demo_day.namespace.name
    table = stack.client("glue").get_table(DatabaseName=name, Name="transactions")["Table"]
    assert table["Parameters"]["table_type"].upper() == "ICEBERG"
    location = table["Parameters"]["metadata_location"]
    assert location.startswith(f"{stack.warehouse}/{name}.db/transactions/metadata/")
    bucket, _, prefix = stack.warehouse.removeprefix("s3://").partition("/")
    listed = stack.client("s3").list_objects_v2(
        Bucket=bucket, Prefix=f"{prefix}/{name}.db/transactions/data/"
    )
    assert any(item["Key"].endswith(".parquet") for item in listed.get("Contents", []))


def test_maintain_keeps_every_record_once(demo_day: DemoDay) -> None:
    namespace = demo_day.namespace
    tables = ["--table", "transactions", "--table", "processed_transactions"]
    maintained = namespace.sluiceway("maintain", *tables, *namespace.arguments())
    assert maintained.returncode == 0, maintained.stderr[-2000:]
    assert len(ids_once(namespace.read_table("transactions"))) == demo_day.manifest.accepted
    assert len(ids_once(namespace.read_table("processed_transactions"))) == (
        demo_day.manifest.accepted
    )

"""An endpoint answering 503 to everything, then recovering: records wait, they are not poison.

Through the real `sluiceway process` command against the ledger server on 127.0.0.1.
"""

from __future__ import annotations

import re

import pytest

from sluiceway.cli import main
from sluiceway.errors import ExitCode
from sluiceway.processing.reconcile import reconcile
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

pytestmark = pytest.mark.reliability

RECORDS = 120
MAX_ATTEMPTS = 2
CONCURRENCY = 2


def test_an_outage_leaves_records_pending_and_exits_5_then_recovery_processes_all(
    spark, isolated_settings, seed, ledger_server, monkeypatch, capsys
) -> None:
    settings = isolated_settings
    state = ledger_server.state
    state.faults = ("none",)
    state.outage = True
    # The CLI builds its session from the environment; these match the shared test session.
    monkeypatch.setenv("SLUICEWAY_NAMESPACE", settings.namespace)
    monkeypatch.setenv("SLUICEWAY_SPARK_MASTER", settings.spark_master)
    monkeypatch.setenv("SLUICEWAY_SHUFFLE_PARTITIONS", str(settings.shuffle_partitions))
    ingest_id = seed(spark, settings, RECORDS, name="outage.csv", every_no_rate=0)
    arguments = [
        "process", "--ingest-id", ingest_id, "--warehouse", settings.warehouse,
        "--handler", "http", "--handler-option", f"endpoint={ledger_server.url}",
        "--handler-option", f"concurrency={CONCURRENCY}",
        "--batch-size", "10", "--max-attempts", str(MAX_ATTEMPTS),
        # Three waves of 40: the first trips the breaker, the other two are never started.
        "--commit-every", "40", "--partitions", "2",
    ]  # fmt: skip

    code = main(arguments)

    err = capsys.readouterr().err
    assert code == ExitCode.ENDPOINT_UNAVAILABLE == 5
    # One line for the person; the JSON log lines (also on stderr) are for machines.
    printed = [line for line in err.splitlines() if not line.startswith(("{", "..."))]
    lines = [line for line in printed if "endpoint unavailable" in line]
    assert len(lines) == 1, err[-3000:]
    assert re.match(
        rf"sluiceway process: error: endpoint unavailable: {RECORDS} records left pending "
        r"\(RetryableError: POST http://127\.0\.0\.1:\d+/ledger/batches .* answered 503",
        lines[0],
    ), lines[0]
    assert "Traceback" not in err
    # Per task: one batch's attempts (two batches in flight), then the breaker stops the rest.
    assert 0 < state.outage_requests <= 2 * CONCURRENCY * MAX_ATTEMPTS, state.outage_requests
    for table in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES):
        spark.sql(f"REFRESH TABLE {settings.table(table)}")
    assert spark.table(settings.table(PROCESSING_FAILURES)).count() == 0  # nothing is poison
    assert spark.table(settings.table(PROCESSED_TRANSACTIONS)).count() == 0
    assert not state.effects

    state.outage = False
    code = main(arguments)

    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{RECORDS:,} records pending" in out and ": reconciled" in out
    [check] = reconcile(spark, settings, (ingest_id,))
    assert (check.accepted, check.processed, check.failed, check.duplicates) == (
        RECORDS, RECORDS, 0, 0,
    )  # fmt: skip
    assert len(state.effects) == RECORDS and state.applied_once()

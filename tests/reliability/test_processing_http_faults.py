"""The http handler against a real misbehaving ledger on 127.0.0.1: each effect exactly once."""

from __future__ import annotations

import json

import pytest

from fixtures.http_server import FAULT_CYCLE
from sluiceway.processing import ProcessOptions, process_records
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

pytestmark = pytest.mark.reliability

POISONED = {"TX00000013", "TX00000101"}


def test_faults_are_retried_poison_records_isolated_and_every_effect_applied_once(
    spark, isolated_settings, seed, ledger_server
) -> None:
    settings = isolated_settings
    state = ledger_server.state
    state.poisoned = frozenset(POISONED)
    state.stall_seconds = 1.0
    ingest_id = seed(spark, settings, 160, name="http.csv", every_no_rate=0)
    options = ProcessOptions(
        handler="http",
        handler_options={
            "endpoint": ledger_server.url,
            "timeout_seconds": "0.4",
            "concurrency": "2",
            "rate_per_second": "100",
        },
        batch_size=16,
        base_delay_seconds=0.05,
        max_delay_seconds=0.2,
    )

    result = process_records(spark, settings, options, ingest_id=ingest_id)

    assert result.reconciled, result.reconciliation
    # Every fault kind was injected, and the run still finished every record.
    assert set(FAULT_CYCLE) <= set(state.injected), state.injected
    assert result.metrics.records_retried > 0
    # Exactly once: one effect per transaction, none for the poisoned ones.
    assert set(state.effects) == {f"TX{i:08d}" for i in range(160)} - POISONED
    assert state.applied_once(), {t: k for t, k in state.effects.items() if len(k) > 1}
    # "Applied, then timed out": the retry came back as a duplicate, not a second booking.
    processed = spark.table(settings.table(PROCESSED_TRANSACTIONS)).collect()
    statuses = {json.loads(row.result)["status"] for row in processed}
    assert statuses == {"applied", "duplicate"}
    assert len(processed) == 160 - len(POISONED)
    # Poison records are dead letters; their batch-mates went through.
    failures = spark.table(settings.table(PROCESSING_FAILURES)).collect()
    assert {f.transaction_id for f in failures} == POISONED
    assert {f.error_class for f in failures} == {"PermanentError"}
    assert all("answered 422" in f.error_message for f in failures)
    mates = [row for row in processed if row.batch_id in {f.batch_id for f in failures}]
    assert len(mates) >= 2 * (16 - 1) - 1
    # Retry-After was honoured, and connections were reused across batches.
    assert state.retry_gaps and min(state.retry_gaps) >= 0.95, state.retry_gaps
    assert state.connections < state.requests / 2, (state.connections, state.requests)

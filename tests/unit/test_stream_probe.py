"""The stream's lag probe and offset report are gauges: a broker that cannot answer, or a
stop interrupting them, never fails a batch that is already published."""

from __future__ import annotations

import pytest

from sluiceway.orchestration.metrics import STREAM_LAG, stream_metric_data
from sluiceway.stream.offsets import OffsetRanges
from sluiceway.stream.run import _lag_if_known, _report_offsets, stopped_mid_batch

pytestmark = pytest.mark.unit

INTERRUPTED = (
    "An error occurred while calling o54935.endOffsets.\n"
    ": org.apache.kafka.common.errors.InterruptException: java.lang.InterruptedException"
)


class Broker:
    """A KafkaProbe stand-in: end offsets and commits, or the error a call raises."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.committed: list[OffsetRanges] = []

    def end_offsets(self) -> dict[int, int]:
        if self.error:
            raise self.error
        return {0: 120, 1: 80}

    def commit(self, ranges: OffsetRanges) -> None:
        if self.error:
            raise self.error
        self.committed.append(ranges)


RANGES = OffsetRanges("t", {0: (0, 100), 1: (0, 80)})


def test_the_lag_is_the_records_beyond_the_batch_when_the_broker_answers():
    broker = Broker()
    assert _lag_if_known(broker, RANGES, 7) == 20
    _report_offsets(broker, RANGES, 7)
    assert broker.committed == [RANGES]


@pytest.mark.parametrize("error", [RuntimeError(INTERRUPTED), TimeoutError("no broker")])
def test_an_interrupted_or_unanswered_probe_leaves_the_lag_unknown(error: Exception):
    broker = Broker(error)
    assert _lag_if_known(broker, RANGES, 7) is None
    _report_offsets(broker, RANGES, 7)  # does not raise
    assert broker.committed == []


def test_an_unknown_lag_is_a_missing_metric_point_not_zero():
    assert STREAM_LAG not in {item["MetricName"] for item in stream_metric_data(1.5, None, "n")}
    assert STREAM_LAG in {item["MetricName"] for item in stream_metric_data(1.5, 0, "n")}


def test_only_an_interruption_counts_as_a_stop_mid_batch():
    assert stopped_mid_batch(RuntimeError(INTERRUPTED))
    assert not stopped_mid_batch(
        RuntimeError("org.apache.iceberg.exceptions.CommitFailedException")
    )

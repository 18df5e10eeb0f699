"""Run metrics: records ok / retried / failed / pending, attempts, batch latencies, records/s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RunMetrics:
    """Accumulated over the waves of one run; `summary()` is what the logs and the CLI show."""

    records_ok: int = 0
    records_failed: int = 0
    # Left without an outcome because an endpoint outage outlasted the retries.
    records_pending: int = 0
    records_retried: int = 0
    attempts: int = 0
    batch_latencies_ms: list[float] = field(default_factory=list)
    # The run's own wall time, from its start to its reconciliation (what `job_runs` records).
    seconds: float = 0.0
    # The waves' own time: the handler's bind, the engine in the tasks, the outcome files.
    wave_seconds: float = 0.0

    def add(self, wave: RunMetrics) -> None:
        """Count a wave's records, attempts and batch latencies into the run's."""
        self.records_ok += wave.records_ok
        self.records_failed += wave.records_failed
        self.records_pending += wave.records_pending
        self.records_retried += wave.records_retried
        self.attempts += wave.attempts
        self.batch_latencies_ms.extend(wave.batch_latencies_ms)

    @property
    def records(self) -> int:
        return self.records_ok + self.records_failed

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def latency_percentile(self, percent: float) -> float:
        if not self.batch_latencies_ms:
            return 0.0
        return float(np.percentile(self.batch_latencies_ms, percent))

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "records_ok": self.records_ok,
            "records_retried": self.records_retried,
            "records_failed": self.records_failed,
            "records_pending": self.records_pending,
            "attempts": self.attempts,
            "batches": len(self.batch_latencies_ms),
            "batch_latency_ms_p50": round(self.latency_percentile(50), 1),
            "batch_latency_ms_p95": round(self.latency_percentile(95), 1),
            "batch_latency_ms_p99": round(self.latency_percentile(99), 1),
            "batch_latency_ms_max": round(max(self.batch_latencies_ms, default=0.0), 1),
            "seconds": round(self.seconds, 2),
            "wave_seconds": round(self.wave_seconds, 2),
            "records_per_second": round(self.records_per_second, 1),
        }

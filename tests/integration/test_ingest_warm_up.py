"""A local ingest starts the Python workers while its JVM does the metadata work
(ingest/warm_up.py): a job in the warm-up group runs beside the ingest, one task per core,
and leaves nothing running, even when the file turns out to be ingested already: it is left
to finish then, not killed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sluiceway.generate import generate_landing_file
from sluiceway.ingest import ingest_file, warm_up
from sluiceway.ingest.warm_up import WARM_UP_GROUP
from sluiceway.statuses import COMPLETED, SKIPPED

pytestmark = pytest.mark.integration


def warm_up_jobs(spark) -> list:  # type: ignore[no-untyped-def]
    tracker = spark.sparkContext.statusTracker()
    return [tracker.getJobInfo(job) for job in tracker.getJobIdsForGroup(WARM_UP_GROUP)]


def warm_up_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "ingest-warm-up"]


def test_an_ingest_warms_one_worker_per_core_and_leaves_nothing_running(
    spark, isolated_settings, tmp_path: Path
) -> None:
    landing_file = tmp_path / "landing.csv"
    generate_landing_file(landing_file, 2_000, seed=23, defect_rate=0.02)
    before = {job.jobId for job in warm_up_jobs(spark)}

    assert ingest_file(spark, isolated_settings, str(landing_file)).status == COMPLETED
    (job,) = [job for job in warm_up_jobs(spark) if job.jobId not in before]
    assert job.status == "SUCCEEDED"
    (stage,) = job.stageIds
    tasks = spark.sparkContext.statusTracker().getStageInfo(stage).numTasks
    assert tasks == spark.sparkContext.defaultParallelism
    assert warm_up_threads() == []

    seen = {job.jobId for job in warm_up_jobs(spark)}
    assert ingest_file(spark, isolated_settings, str(landing_file)).status == SKIPPED
    assert len(warm_up_jobs(spark)) == len(seen) + 1  # finished, not left
    assert warm_up_threads() == []


def slow_warm_up(spark, tasks: int) -> None:  # type: ignore[no-untyped-def]
    """A warm-up that is still running when a quick body ends (workers are warm in a test)."""
    spark.sparkContext.setJobGroup(WARM_UP_GROUP, "a slow warm-up")
    slow = spark.sparkContext.parallelize(range(tasks), tasks).map(lambda n: time.sleep(1.5) or n)
    try:
        slow.collect()
    except Exception:  # cancelled, as the real warm-up may be
        return


def test_a_warm_up_still_running_at_the_end_is_waited_for_not_killed(
    spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed task makes Spark print a warning (and, as the session stops, a stack trace)
    on the console of a run that skipped its file: the warm-up is left to finish instead."""
    monkeypatch.setattr(warm_up, "_warm_up", slow_warm_up)
    before = {job.jobId for job in warm_up_jobs(spark)}
    with warm_up.workers_warming(spark):
        pass
    (job,) = [job for job in warm_up_jobs(spark) if job.jobId not in before]
    assert job.status == "SUCCEEDED"
    assert warm_up_threads() == []

    before = {job.jobId for job in warm_up_jobs(spark)}
    with warm_up.workers_warming(spark, wait_seconds=0.1):  # past the wait: cancelled
        pass
    (job,) = [job for job in warm_up_jobs(spark) if job.jobId not in before]
    assert job.status == "FAILED"
    assert warm_up_threads() == []

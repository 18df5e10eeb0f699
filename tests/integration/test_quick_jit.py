"""A local driver that only ingests a file runs with C1 only (spark.QUICK_JIT); the rest keep
C2 (processing's JVM sorts the day and needs it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluiceway import pipeline, spark
from sluiceway.settings import load_settings
from sluiceway.spark import QUICK_JIT, spark_conf

pytestmark = pytest.mark.integration

# A session as `sluiceway ingest` builds it; prints the JVM's own input arguments.
JVM_ARGUMENTS_OF_AN_INGEST_SESSION = textwrap.dedent(
    """
    import sys
    from sluiceway import pipeline
    from sluiceway.settings import Settings

    settings = Settings(spark_master="local[1]", warehouse=sys.argv[1])
    session = pipeline._session(pipeline.INGEST_JOB, settings, None)
    runtime = session._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    print("\\n".join(runtime.getInputArguments()))
    """
)


def test_only_an_ingest_only_driver_gets_the_quick_jit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(arguments={"warehouse": str(tmp_path)})
    quick = spark_conf(settings, quick_jit=True)["spark.driver.extraJavaOptions"]
    assert QUICK_JIT in quick.split()
    assert QUICK_JIT not in spark_conf(settings).get("spark.driver.extraJavaOptions", "")
    # A cluster's driver is started by Glue or EMR: no Java options of ours at all.
    assert "spark.driver.extraJavaOptions" not in spark_conf(load_settings("glue"), quick_jit=True)

    asked: dict[str, bool] = {}
    monkeypatch.setattr(  # records what each job asks for; starts no JVM
        spark,
        "build_session",
        lambda _settings, app_name, quick_jit=False: asked.__setitem__(app_name, quick_jit),
    )
    for job in ("ingest", "run", "process", "maintain", "stream"):
        pipeline._session(job, settings, None)
    assert asked == {
        "sluiceway-ingest": True,
        "sluiceway-run": False,
        "sluiceway-process": False,
        "sluiceway-maintain": False,
        "sluiceway-stream": False,
    }


def test_the_ingest_drivers_jvm_runs_with_c1_only(tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-c", JVM_ARGUMENTS_OF_AN_INGEST_SESSION, str(tmp_path / "warehouse")],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert QUICK_JIT in shown.stdout.splitlines(), shown.stdout

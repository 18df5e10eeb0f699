"""The class archive's training run (`python -m sluiceway.class_archive_training ARCHIVE
SCRATCH`, started by `class_archive.build_archive`): a small file ingested and processed in a
scratch warehouse by a JVM that writes the classes it loaded to ARCHIVE when it exits."""

from __future__ import annotations

import sys
from pathlib import Path

# What the training run feeds through ingest and processing: enough records for every
# reason code and handler path, few enough to finish in seconds.
TRAINING_RECORDS = 2_000


def train(archive: Path, scratch: Path) -> None:
    """Load what a day's run loads, then stop the JVM and wait while it writes the archive."""
    from pyspark import SparkContext

    from sluiceway.generate import generate_landing_file
    from sluiceway.ingest import ingest_file
    from sluiceway.processing import process_records
    from sluiceway.processing.run import ProcessOptions
    from sluiceway.settings import Settings
    from sluiceway.spark import LOG4J_CONF, build_session

    settings = Settings(
        warehouse=str(scratch / "warehouse"),
        spark_master="local[2]",
        driver_memory="1g",
        shuffle_partitions=2,
        staging_dir=str(scratch / "staging"),
        extra_spark_conf={
            "spark.driver.extraJavaOptions": (
                f"-Dlog4j2.configurationFile={LOG4J_CONF} -XX:ArchiveClassesAtExit={archive}"
            )
        },
    )
    landing = scratch / "landing.csv"
    generate_landing_file(landing, TRAINING_RECORDS, seed=1, defect_rate=0.05)
    spark = build_session(settings, app_name="sluiceway-class-archive")
    ingested = ingest_file(spark, settings, str(landing))
    process_records(spark, settings, ProcessOptions(), ingest_id=ingested.ingest_id)
    gateway = SparkContext._gateway
    spark.stop()
    assert gateway is not None
    gateway.shutdown()
    # The JVM exits when its stdin closes; it writes the archive on the way out.
    gateway.proc.stdin.close()
    gateway.proc.wait(timeout=600)


if __name__ == "__main__":
    train(Path(sys.argv[1]), Path(sys.argv[2]))

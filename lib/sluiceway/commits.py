"""Every commit of a writer, fenced: the lease confirmed right before it, and Iceberg's own
check that `main` is still where this run left it (docs/adr/0008-writer-lease.md).

Why not a plain Iceberg append: Iceberg's commits are optimistic per table, and an append
that meets a newer `main` simply re-applies itself on top of it (its retry). A writer paused
past its lease (a zombie) would so add its rows on top of the rows of the writer that took
over, and both would count them as theirs. Here every change is made in two commits: it is
staged as a snapshot that `main` does not reference, tagged with this run's lease token and a
commit id of its own; its parent is compared with where this run left `main`; then `main` is
fast-forwarded to it in one metadata commit (a temporary branch, `fastForwardBranch`, the
branch removed), which Iceberg refuses when `main` is no longer an ancestor of the staged
snapshot, that is, when anyone else committed in between. The lease is confirmed right
before (`Fence.check`): the zombie stops there, and if it slipped past (paused between the
check and the commit), Iceberg's check stops it. Either way it raises `LeaseLostError`
(exit code 6) and changes nothing more.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sluiceway.iceberg_files import (
    WrittenFile,
    data_file,
    data_files,
    iceberg_table,
    jvm,
    read_columns,
    without_file_scheme,
    write_parquet,
    write_target,
)
from sluiceway.logs import get_logger, log_event

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.lease import Fence
    from sluiceway.settings import Settings

LOGGER = get_logger(__name__)
# Snapshot summary keys: which lease wrote a snapshot, and which of its commits it is.
LEASE_TOKEN_PROPERTY = "sluiceway.lease-token"
COMMIT_PROPERTY = "sluiceway.commit"
# Iceberg's refusals of an optimistic commit: a validation failed or `main` moved.
REFUSALS = ("ValidationException", "CommitFailedException")
FAST_FORWARD_REFUSAL = "Cannot fast-forward"


class TableCommits:
    """The commits of one writer run: where it left each table's `main`, and the fence."""

    def __init__(self, spark: SparkSession, settings: Settings, fence: Fence) -> None:
        self.spark = spark
        self.settings = settings
        self.fence = fence
        self.heads: dict[str, int | None] = {}

    def observe(self, names: tuple[str, ...]) -> None:
        """Remember where `main` of each table is now: this run's decisions are based on it,
        so a commit on any other `main` is refused."""
        for name in names:
            table = iceberg_table(self.spark, self.settings, name)
            table.refresh()
            current = table.currentSnapshot()
            self.heads[name] = None if current is None else int(current.snapshotId())

    def stage_append(
        self, name: str, files: list[WrittenFile], properties: dict[str, str]
    ) -> int | None:
        """Append the files as a snapshot `main` does not reference yet; its id, or None."""
        if not files:
            return None
        table = iceberg_table(self.spark, self.settings, name)
        table.refresh()
        append = table.newAppend()
        for described in data_files(self.spark, table, files):
            append.appendFile(described)
        return self._stage(table, append, properties)

    def append(self, name: str, files: list[WrittenFile], properties: dict[str, str]) -> None:
        """Append the files to `main` (nothing for no files), fenced."""
        staged = self.stage_append(name, files, properties)
        if staged is not None:
            self.publish(name, staged, f"{len(files)} files of {name}")

    def replace_row(
        self, name: str, key_column: str, key: str, row: pa.Table, properties: dict[str, str]
    ) -> None:
        """Make `row` the only row of `name` whose `key_column` is `key`, fenced.

        The files that may hold the key are rewritten without it (copy-on-write, as the
        ledger's table properties say), so this works after compaction too.
        """
        table = iceberg_table(self.spark, self.settings, name)
        table.refresh()
        expressions = jvm(self.spark).org.apache.iceberg.expressions.Expressions
        old_files = []
        tasks = table.newScan().filter(expressions.equal(key_column, key)).planFiles()
        try:
            iterator = tasks.iterator()
            while iterator.hasNext():
                task = iterator.next()
                if not task.deletes().isEmpty():
                    raise RuntimeError(f"{name} has delete files; run `sluiceway maintain`")
                old_files.append(task.file())
        finally:
            tasks.close()
        target = write_target(self.spark, self.settings, name)
        kept = read_columns([without_file_scheme(str(f.path())) for f in old_files], row.schema)
        kept = kept.filter(pc.invert(pc.fill_null(pc.equal(kept[key_column], key), False)))
        written = write_parquet(
            pa.concat_tables([kept, row.cast(row.schema)]),
            target,
            None,
            f"{key}-{uuid.uuid4().hex}",
        )
        overwrite = table.newOverwrite()
        for old in old_files:
            overwrite.deleteFile(old)
        overwrite.addFile(data_file(self.spark, table, written))
        staged = self._stage(table, overwrite, properties)
        self.publish(name, staged, f"the {name} row of {key}")

    def publish(self, name: str, snapshot_id: int, what: str) -> None:
        """Fast-forward `main` to this run's staged snapshot; refused (LeaseLostError) when
        `main` is not where this run left it."""
        table = iceberg_table(self.spark, self.settings, name)
        table.refresh()
        parent = table.snapshot(snapshot_id).parentId()
        expected = self.heads[name]
        if (None if parent is None else int(parent)) != expected:
            raise self.fence.lost_error(
                f"{what} was not published",
                f"main of {name} moved since this run last saw it ({expected} -> {parent}): "
                "another writer committed, so the writer lease",
            )
        self.fence.check(what)
        self._fast_forward(table, name, snapshot_id, what)

    def roll_forward(self, name: str, snapshot_id: int, what: str) -> int:
        """Publish a snapshot staged by an earlier, interrupted run whose publication was
        decided (the ledger's `publishing`); the id `main` then points at.

        Nothing when it is on `main` already; a fast-forward when `main` is its parent; a
        cherry-pick (its files added once, on top) when `main` moved on without it.
        """
        table = iceberg_table(self.spark, self.settings, name)
        table.refresh()
        current = table.currentSnapshot()
        util = jvm(self.spark).org.apache.iceberg.util.SnapshotUtil
        if current is not None and util.isAncestorOf(table, current.snapshotId(), snapshot_id):
            return int(current.snapshotId())
        self.fence.check(what)
        parent = table.snapshot(snapshot_id).parentId()
        if current is None or (parent is not None and int(parent) == current.snapshotId()):
            self._fast_forward(table, name, snapshot_id, what)
            return snapshot_id
        log_event(LOGGER, "main moved past an interrupted publish: cherry-picked", table=name,
                  snapshot_id=snapshot_id, main=int(current.snapshotId()))  # fmt: skip
        try:
            table.manageSnapshots().cherrypick(snapshot_id).commit()
        except Exception as error:
            raise self._refused(error, name, what) from error
        return self._moved(table, name)

    def _stage(self, table: Any, update: Any, properties: dict[str, str]) -> int:
        """Commit `update` as a staged snapshot tagged with the lease token and a commit id."""
        self.fence.check(f"a staged snapshot of {table.name()}")
        commit = uuid.uuid4().hex
        for key, value in {
            **properties,
            LEASE_TOKEN_PROPERTY: self.fence.token,
            COMMIT_PROPERTY: commit,
        }.items():
            update.set(key, value)
        update.stageOnly().commit()
        table.refresh()
        # Newest first: the staged snapshot is at (or near) the end of the table's list.
        snapshots = table.snapshots()
        for index in range(snapshots.size() - 1, -1, -1):
            snapshot = snapshots.get(index)
            if snapshot.summary().get(COMMIT_PROPERTY) == commit:
                return int(snapshot.snapshotId())
        raise RuntimeError(f"the staged snapshot of commit {commit} is not in the table")

    def _fast_forward(self, table: Any, name: str, snapshot_id: int, what: str) -> None:
        branch = f"sluiceway-publish-{uuid.uuid4().hex}"
        try:
            (
                table.manageSnapshots()
                .createBranch(branch, snapshot_id)
                .fastForwardBranch("main", branch)
                .removeBranch(branch)
                .commit()
            )
        except Exception as error:
            raise self._refused(error, name, what) from error
        self._moved(table, name)

    def _moved(self, table: Any, name: str) -> int:
        table.refresh()
        head = int(table.currentSnapshot().snapshotId())
        self.heads[name] = head
        self.spark.sql(f"REFRESH TABLE {self.settings.table(name)}")
        return head

    def _refused(self, error: Exception, name: str, what: str) -> Exception:
        """Iceberg's refusal (a failed validation, a commit conflict, `main` no longer an
        ancestor of the snapshot to fast-forward to) as a fenced writer's error; anything
        else unchanged."""
        java = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
        kind = java.getClass().getName() if java is not None else type(error).__name__
        text = str(error)
        if any(refusal in kind for refusal in REFUSALS) or FAST_FORWARD_REFUSAL in text:
            return self.fence.lost_error(
                f"{what} was not published",
                f"Iceberg refused the commit ({text.splitlines()[0][:200]}): main of {name} "
                "moved, another writer committed, so the writer lease",
            )
        return error

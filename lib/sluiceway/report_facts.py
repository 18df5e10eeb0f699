"""What the run report says about one ingest, read from the tables.

Everything comes through the query helper (Athena for an s3:// warehouse, DuckDB locally),
with every query written once in Athena's dialect (REPORT_SQL), so the report describes what
was committed, not logs. `report` turns these facts into the HTML page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluiceway.errors import SluicewayError
from sluiceway.query import existing_tables, is_athena, query
from sluiceway.query_athena import AthenaClient
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED

if TYPE_CHECKING:
    import pandas as pd

# AWS Glue price per DPU-hour (us-east-1, Spark jobs, Glue 2.0+), source:
# https://aws.amazon.com/glue/pricing/ (checked 2026). Glue bills per second, 1-minute minimum.
GLUE_DPU_HOUR_USD = 0.44
GLUE_MINIMUM_SECONDS = 60
# infra/cloudformation/pipeline.yaml defaults: 10 G.1X workers (1 DPU each) for ingest and
# processing.
DEFAULT_JOB_DPUS = 10


@dataclass(frozen=True)
class ReportQuery:
    """One query of the report, in Athena's (Trino) dialect; run on DuckDB via sqlglot locally.

    `{ingest_id}` stands for the ingest (quotes doubled); the query is skipped while `table`
    does not exist yet.
    """

    table: str
    sql: str

    def render(self, ingest_id: str) -> str:
        return self.sql.replace("{ingest_id}", ingest_id.replace("'", "''"))


_BY_INGEST = "WHERE ingest_id = '{ingest_id}'"

# Every query the report runs, one text for Athena and (transpiled) DuckDB.
REPORT_SQL: dict[str, ReportQuery] = {
    # An empty ingest id means the latest completed ingest.
    "ledger": ReportQuery(
        "ingest_ledger",
        f"SELECT * FROM ingest_ledger WHERE status = '{COMPLETED}' "
        "AND ('{ingest_id}' = '' OR ingest_id = '{ingest_id}') ORDER BY finished_at DESC LIMIT 1",
    ),
    # Records and the physical lines they cover (a quoted field can span lines).
    "transactions_rows": ReportQuery(
        "transactions",
        "SELECT COUNT(*) AS records, COALESCE(SUM(last_line_number - line_number + 1), 0) "
        f"AS lines FROM transactions {_BY_INGEST}",
    ),
    "rejected_rows": ReportQuery(
        "rejected_records",
        "SELECT COUNT(*) AS records, COALESCE(SUM(last_line_number - line_number + 1), 0) "
        f"AS lines FROM rejected_records {_BY_INGEST}",
    ),
    "rejects_by_reason": ReportQuery(
        "rejected_records",
        "SELECT reason, COUNT(*) AS records FROM rejected_records "
        f"CROSS JOIN UNNEST(reasons) AS r(reason) {_BY_INGEST} GROUP BY 1 ORDER BY 2 DESC, 1",
    ),
    "outcomes": ReportQuery(
        "processed_transactions",
        f"SELECT result, COUNT(*) AS records FROM processed_transactions {_BY_INGEST} "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    ),
    "failures_by_class": ReportQuery(
        "processing_failures",
        f"SELECT error_class, COUNT(*) AS records FROM processing_failures {_BY_INGEST} "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    ),
    "attempts": ReportQuery(
        "processed_transactions",
        "SELECT CAST(attempts AS VARCHAR) AS attempts, COUNT(*) AS records "
        f"FROM processed_transactions {_BY_INGEST} GROUP BY attempts ORDER BY attempts",
    ),
    "processing_seconds": ReportQuery(
        "processed_transactions",
        "SELECT to_unixtime(MAX(processed_at)) - to_unixtime(MIN(processed_at)) AS seconds "
        f"FROM processed_transactions {_BY_INGEST}",
    ),
    # Iceberg metadata tables, Athena's syntax (pyiceberg provides them locally).
    "transactions_snapshots": ReportQuery(
        "transactions",
        'SELECT snapshot_id, committed_at FROM "transactions$snapshots" ORDER BY committed_at',
    ),
    "rejected_records_snapshots": ReportQuery(
        "rejected_records",
        'SELECT snapshot_id, committed_at FROM "rejected_records$snapshots" ORDER BY committed_at',
    ),
}


@dataclass(frozen=True)
class RunFacts:
    """The numbers the report shows, gathered once so tests can check them directly."""

    ingest_id: str
    ledger: dict[str, Any]
    transactions_rows: int
    rejected_rows: int
    transactions_lines: int
    rejected_lines: int
    rejects_by_reason: list[tuple[str, int]]
    outcomes: list[tuple[str, int]]
    failures_by_class: list[tuple[str, int]]
    attempts: list[tuple[str, int]]
    processing_seconds: float
    snapshots: list[dict[str, Any]]

    @property
    def reconciled(self) -> bool:
        """Every physical line is in one accepted or rejected record, and both tables hold
        exactly the records and lines the ledger says."""
        led = self.ledger
        return (
            led["lines_read"] == led["accepted_lines"] + led["rejected_lines"]
            and (self.transactions_rows, self.transactions_lines)
            == (led["accepted"], led["accepted_lines"])
            and (self.rejected_rows, self.rejected_lines)
            == (led["rejected"], led["rejected_lines"])
        )

    @property
    def processed(self) -> int:
        return sum(count for _, count in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(count for _, count in self.failures_by_class)

    def estimated_cost_usd(self, dpus: int = DEFAULT_JOB_DPUS) -> float:
        """Glue cost of the ingest and processing jobs at `dpus` each."""
        billed = [
            max(float(self.ledger["duration_seconds"] or 0), GLUE_MINIMUM_SECONDS),
            max(self.processing_seconds, GLUE_MINIMUM_SECONDS) if self.processed else 0.0,
        ]
        return sum(billed) / 3600 * dpus * GLUE_DPU_HOUR_USD


class _Reader:
    """Runs the report's queries for one ingest, skipping those whose table is absent."""

    def __init__(self, settings: Settings, athena: AthenaClient | None) -> None:
        self.settings = settings
        self.athena = athena
        self.tables = existing_tables(settings, athena)

    def frame(self, name: str, ingest_id: str) -> pd.DataFrame | None:
        report_query = REPORT_SQL[name]
        if report_query.table not in self.tables:
            return None
        return query(self.settings, report_query.render(ingest_id), athena=self.athena)

    def pairs(self, name: str, ingest_id: str) -> list[tuple[str, int]]:
        frame = self.frame(name, ingest_id)
        if frame is None:
            return []
        return [(str(row[0]), int(row[1])) for row in frame.itertuples(index=False)]

    def numbers(self, name: str, ingest_id: str, width: int) -> list[float]:
        """The first row's `width` values of a one-row aggregate; zeros for an absent table."""
        import pandas as pd

        frame = self.frame(name, ingest_id)
        if frame is None or frame.empty:
            return [0.0] * width
        return [float(v) if pd.notna(v) else 0.0 for v in frame.iloc[0, :width]]


def gather(
    settings: Settings, ingest_id: str | None = None, athena: AthenaClient | None = None
) -> RunFacts:
    """Read the facts of one ingest (default: the latest completed one) from the tables.

    Local warehouses are read with DuckDB, s3:// ones through Athena (`athena` replaces the
    awswrangler client, for tests).
    """
    reader = _Reader(settings, athena)
    where = (
        settings.warehouse if not is_athena(settings) else (f"Athena database {settings.namespace}")
    )
    if "ingest_ledger" not in reader.tables:
        raise SluicewayError(f"no ingest_ledger in {where}; run `sluiceway ingest FILE` first")
    ledger = reader.frame("ledger", ingest_id or "")
    if ledger is None or ledger.empty:
        raise SluicewayError(
            f"no completed ingest {ingest_id or ''} in {where}; list them with "
            '`sluiceway query "SELECT ingest_id, status FROM ingest_ledger"`'
        )
    row = ledger.iloc[0].to_dict()
    ident = str(row["ingest_id"])
    transactions_rows, transactions_lines = map(int, reader.numbers("transactions_rows", ident, 2))
    rejected_rows, rejected_lines = map(int, reader.numbers("rejected_rows", ident, 2))
    (processing_seconds,) = reader.numbers("processing_seconds", ident, 1)
    return RunFacts(
        ingest_id=ident,
        ledger=row,
        transactions_rows=transactions_rows,
        rejected_rows=rejected_rows,
        transactions_lines=transactions_lines,
        rejected_lines=rejected_lines,
        rejects_by_reason=reader.pairs("rejects_by_reason", ident),
        outcomes=reader.pairs("outcomes", ident),
        failures_by_class=reader.pairs("failures_by_class", ident),
        attempts=reader.pairs("attempts", ident),
        processing_seconds=processing_seconds,
        snapshots=_snapshots(reader, row),
    )


def _snapshots(reader: _Reader, ledger: dict[str, Any]) -> list[dict[str, Any]]:
    """Every snapshot of the two ingest tables, marking the ones this ingest committed."""
    mine = {ledger.get("transactions_snapshot_id"), ledger.get("rejected_snapshot_id")}
    rows = []
    for table in ("transactions", "rejected_records"):
        frame = reader.frame(f"{table}_snapshots", str(ledger["ingest_id"]))
        if frame is None:
            continue
        for snapshot_id, committed_at in frame.itertuples(index=False):
            rows.append(
                {
                    "table": table,
                    "snapshot_id": int(snapshot_id),
                    "committed_at": utc_text(committed_at),
                    "this_ingest": int(snapshot_id) in mine,
                }
            )
    return rows


def utc_text(stamp: object) -> str:
    import pandas as pd

    moment = pd.Timestamp(stamp)
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC")
    text: str = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[:-3] + " UTC"

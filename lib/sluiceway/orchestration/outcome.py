"""The machine-readable outcome a job leaves for the state machine.

A failed Glue, EMR Serverless or Batch run reaches Step Functions as a bare `States.TaskFailed`:
the exit code is lost. So each job writes `{"exit_code", "name", "kind"}` to the URI the state
machine passes as `--outcome-uri` (an S3 object under the warehouse's `_outcomes/` prefix, or a
local file offline), and after a failure the definition reads it back to choose: data errors
fail at once, a busy namespace or an unavailable endpoint waits and tries again, anything else
(including no outcome at all: the job never got to its end) is infrastructure and falls back
to AWS Batch. Writing the outcome never changes the job's exit code.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from sluiceway.errors import ExitCode
from sluiceway.locations import is_s3, local_path, split_s3
from sluiceway.logs import get_logger

OUTCOME_OPTION = "--outcome-uri"
DATA_ERROR = "data"
RETRY_LATER = "retry-later"
INFRASTRUCTURE = "infrastructure"
SUCCEEDED = "succeeded"
# The sorting the state machine's *FailureKind choices apply (pipeline.asl.json names the codes).
KINDS: dict[ExitCode, str] = {
    ExitCode.OK: SUCCEEDED,
    ExitCode.UNEXPECTED: INFRASTRUCTURE,
    ExitCode.BAD_INPUT: DATA_ERROR,
    ExitCode.RECONCILIATION_FAILED: DATA_ERROR,
    ExitCode.BUSY: RETRY_LATER,
    ExitCode.ENDPOINT_UNAVAILABLE: RETRY_LATER,
    # Fenced: another writer ran in this run's place; a retry would only see its result and
    # end green, so a person looks at the two runs instead.
    ExitCode.LEASE_LOST: DATA_ERROR,
    # No job returns it (only `sluiceway status`); a missing file is the partner's to send.
    ExitCode.FEED_LATE: DATA_ERROR,
}

LOGGER = get_logger(__name__)


def outcome_of(exit_code: int) -> dict[str, Any]:
    """The outcome document of an exit code; a code sluiceway does not name is unexpected."""
    try:
        code = ExitCode(exit_code)
    except ValueError:
        code = ExitCode.UNEXPECTED
    return {"exit_code": exit_code, "name": code.name, "kind": KINDS[code]}


def outcome_uri(argv: Sequence[str]) -> str | None:
    """The `--outcome-uri` among a job's arguments (the job's own parser ignores it)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(OUTCOME_OPTION, dest="outcome_uri")
    known, _rest = parser.parse_known_args(list(argv))
    return known.outcome_uri or None


def record_outcome(exit_code: int, argv: Sequence[str]) -> int:
    """Write the outcome where `--outcome-uri` says (if given) and return `exit_code` unchanged.

    A failure to write is logged, not raised: without an outcome the state machine treats the
    failure as infrastructure and falls back to Batch, the behaviour before outcomes existed.
    """
    uri = outcome_uri(argv)
    if uri is None:
        return exit_code
    body = json.dumps(outcome_of(exit_code))
    try:
        _write(uri, body)
    except Exception as error:  # any failure to report must not change the exit code
        LOGGER.warning("could not write the job outcome to %s: %s", uri, error)
    return exit_code


def _write(uri: str, body: str) -> None:
    if is_s3(uri):
        import boto3

        bucket, key = split_s3(uri)
        boto3.client("s3").put_object(
            Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json"
        )
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")

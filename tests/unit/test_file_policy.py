"""The file policy (issue 21): when a landing file fails as a whole instead of publishing its
rejects. The decision is pure (`judge_file`); `sluiceway check` applies it to a real file
without Spark, and the ingest command takes `--max-rejected-share`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.cli import main
from sluiceway.errors import ConfigurationError, ExitCode
from sluiceway.ingest.check import check_landing_file
from sluiceway.ingest.file_policy import (
    FAIL_FILE_RULE,
    SHARE_RULE,
    TRANSACTIONS_FILE_POLICY,
    FilePolicy,
    judge_file,
)
from sluiceway.ingest.rejected_lines import first_lines_by_reason
from sluiceway.job_arguments import IngestArgs
from sluiceway.logs import mask_text
from sluiceway.settings import Settings

pytestmark = pytest.mark.unit

ROW = "T{number:06d},DE89001,M1,{amount},EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,x"
LINES = {"wrong_field_count": [2, 3, 4], "bad_amount_format": [9]}


def lines_of(reasons: Collection[str]) -> dict[str, list[int]]:
    return {reason: LINES[reason] for reason in reasons if reason in LINES}


def never_asked(_reasons: Collection[str]) -> dict[str, list[int]]:
    raise AssertionError("a file that passes must not have its rejected records read")


def judge(policy: FilePolicy, lines: int, rejected: int, by_reason: dict[str, int]):
    return judge_file(policy, "day.csv", lines, rejected, by_reason, lines_of)


def test_the_transactions_default_is_5_percent_from_1000_rejected_lines() -> None:
    policy = TRANSACTIONS_FILE_POLICY
    assert (policy.max_rejected_share, policy.min_rejected_lines) == (0.05, 1000)
    assert policy.fail_file_reasons == frozenset()


@pytest.mark.parametrize(("rejected", "refused"), [(1000, False), (1001, True)])
def test_the_share_must_exceed_the_limit(rejected: int, refused: bool) -> None:
    policy = FilePolicy(max_rejected_share=0.05, min_rejected_lines=10)
    verdict = judge(policy, 20_000, rejected, {"wrong_field_count": rejected})
    assert (verdict is not None) == refused


@pytest.mark.parametrize(("rejected", "refused"), [(999, False), (1000, True)])
def test_the_share_applies_from_the_minimum_of_rejected_lines(rejected: int, refused: bool) -> None:
    verdict = judge(TRANSACTIONS_FILE_POLICY, rejected, rejected, {"wrong_field_count": rejected})
    assert (verdict is not None) == refused


@pytest.mark.parametrize("bad", [1, 2, 10, 20])
def test_a_small_file_is_never_refused_for_its_share(bad: int) -> None:
    verdict = judge_file(
        TRANSACTIONS_FILE_POLICY, "small.csv", 20, bad, {"bad_amount_format": bad}, never_asked
    )
    assert verdict is None


def test_a_limit_of_1_accepts_any_share() -> None:
    everything = FilePolicy(max_rejected_share=1.0, min_rejected_lines=0)
    assert judge(everything, 5000, 5000, {"wrong_field_count": 5000}) is None


def test_a_passing_file_reads_no_rejected_records() -> None:
    policy = FilePolicy(max_rejected_share=0.05, min_rejected_lines=0)
    by_reason = {"bad_amount_format": 50}
    assert judge_file(policy, "day.csv", 2000, 50, by_reason, never_asked) is None


def test_the_share_refusal_names_share_limit_top_reasons_counts_and_first_lines() -> None:
    by_reason = {
        "wrong_field_count": 1180,
        "bad_amount_format": 20,
        "unknown_currency": 3,
        "bad_mcc": 1,
    }
    verdict = judge(TRANSACTIONS_FILE_POLICY, 1200, 1200, by_reason)
    assert verdict is not None and verdict.rule == SHARE_RULE
    assert verdict.message.startswith(
        "refused: day.csv: 1,200 of 1,200 lines rejected (100.00%), above the feed's "
        "max_rejected_share of 5% (applied from 1,000 rejected lines); top reasons: "
        "wrong_field_count 1,180 (first lines 2, 3, 4), bad_amount_format 20 (line 9), "
        "unknown_currency 3 (lines not known); nothing was published."
    )
    assert "bad_mcc" not in verdict.message  # the top three only
    assert "--max-rejected-share" in verdict.message


def test_a_fail_file_reason_refuses_the_file_whatever_its_share() -> None:
    policy = FilePolicy(fail_file_reasons=frozenset({"bad_amount_format", "bad_mcc"}))
    verdict = judge(policy, 1_000_000, 1, {"bad_amount_format": 1})
    assert verdict is not None and verdict.rule == FAIL_FILE_RULE
    assert verdict.message.startswith(
        "refused: day.csv: line 9 was rejected for bad_amount_format, a rule that fails the "
        "whole file (fail_file); bad_amount_format: 1 records (line 9); nothing was published."
    )


def test_line_numbers_in_a_refusal_survive_the_log_s_masking() -> None:
    """A refusal is logged; without thousands separators line 12345678 would be printed as
    ****5678 there (`logs.mask_text` takes it for an account number)."""
    policy = FilePolicy(fail_file_reasons=frozenset({"bad_mcc"}))
    found = {"bad_mcc": [12_345_678, 23_456_789]}
    verdict = judge_file(policy, "day.csv", 30_000_000, 2, {"bad_mcc": 2}, lambda _: found)
    assert verdict is not None
    assert "line 12,345,678 was rejected for bad_mcc" in verdict.message
    assert "(first lines 12,345,678, 23,456,789)" in verdict.message
    assert mask_text(verdict.message) == verdict.message


def test_a_fail_file_reason_nobody_broke_changes_nothing() -> None:
    policy = FilePolicy(fail_file_reasons=frozenset({"bad_mcc"}))
    assert judge(policy, 2000, 1, {"bad_amount_format": 1}) is None


@pytest.mark.parametrize(
    ("share", "minimum"), [(-0.01, 0), (1.01, 0), (float("nan"), 0), (0.05, -1)]
)
def test_a_policy_out_of_range_is_a_configuration_error(share: float, minimum: int) -> None:
    with pytest.raises(ConfigurationError, match="must be"):
        FilePolicy(max_rejected_share=share, min_rejected_lines=minimum)


def test_first_lines_are_the_smallest_per_reason_over_every_table() -> None:
    schema = pa.schema([("line_number", pa.int64()), ("reasons", pa.list_(pa.string()))])
    later = pa.Table.from_pylist(
        [
            {"line_number": 90, "reasons": ["a"]},
            {"line_number": 40, "reasons": ["a", "b"]},
            {"line_number": 70, "reasons": ["c"]},
        ],
        schema,
    )
    earlier = pa.Table.from_pylist(
        [
            {"line_number": 12, "reasons": ["b"]},
            {"line_number": 30, "reasons": ["a"]},
            {"line_number": 5, "reasons": ["a"]},
        ],
        schema,
    )
    found = first_lines_by_reason([later, schema.empty_table(), earlier], ["a", "b", "x"], 3)
    assert found == {"a": [5, 30, 40], "b": [12, 40]}


def test_max_rejected_share_argument_sets_the_ingest_policy() -> None:
    from sluiceway.job_arguments import job_parser

    args = job_parser("ingest").parse_args(["--source", "day.csv", "--max-rejected-share", "0.3"])
    request = IngestArgs.from_namespace(args, {})
    assert request.file_policy == FilePolicy(max_rejected_share=0.3)
    default = IngestArgs.from_namespace(job_parser("ingest").parse_args(["--source", "x"]), {})
    assert default.file_policy == TRANSACTIONS_FILE_POLICY


def test_a_max_rejected_share_above_1_exits_2_before_spark(capsys) -> None:
    assert main(["ingest", "day.csv", "--max-rejected-share", "5"]) == ExitCode.BAD_INPUT
    assert "max_rejected_share must be between 0 and 1" in capsys.readouterr().err


def write_rows(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([c.HEADER_LINE, *rows]) + "\n")
    return path


def test_check_says_a_file_with_a_shifted_column_would_be_refused(tmp_path: Path) -> None:
    # An empty field after the id: every line has one field too many.
    rows = [ROW.format(number=n, amount="1.00").replace(",", ",,", 1) for n in range(1200)]
    landing = write_rows(tmp_path / "shifted.csv", rows)
    result = check_landing_file(str(landing), Settings(), workers=1)
    assert (result.passed, result.exit_code, result.failed_rule) == (False, 2, SHARE_RULE)
    assert result.rejected_lines == 1200
    assert result.problem is not None and result.problem.startswith(
        f"refused: {landing}: 1,200 of 1,200 lines rejected (100.00%)"
    )
    assert "wrong_field_count 1,200 (first lines 2, 3, 4)" in result.problem
    assert main(["check", str(landing), "--format", "json"]) == ExitCode.BAD_INPUT


def test_check_names_the_line_of_a_fail_file_reason(tmp_path: Path) -> None:
    rows = [ROW.format(number=n, amount="1.00") for n in range(50)]
    rows[7] = ROW.format(number=7, amount="12.5O")
    landing = write_rows(tmp_path / "comma.csv", rows)
    policy = FilePolicy(fail_file_reasons=frozenset({c.BAD_AMOUNT_FORMAT}))
    result = check_landing_file(str(landing), Settings(), workers=1, policy=policy)
    assert (result.passed, result.failed_rule) == (False, FAIL_FILE_RULE)
    assert result.problem is not None and result.problem.startswith(
        f"refused: {landing}: line 9 was rejected for bad_amount_format"
    )
    assert json.dumps(result.to_json())  # the report still serialises
    assert check_landing_file(str(landing), Settings(), workers=1).passed  # default: a record

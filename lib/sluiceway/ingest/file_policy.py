"""The file policy: when a landing file fails as a whole instead of publishing its rejects.

Why: a broken export (a wrong delimiter, a shifted column) rejects every line; published,
it is millions of `rejected_records` rows and a day with no transactions, where one refused
file says what happened. Two rules, judged after the audit on the staged figures
(`ingest/audit.py`) and by `sluiceway check` on the same figures:

- the share rule: more than `max_rejected_share` of the file's physical lines after the
  header are rejected, once at least `min_rejected_lines` lines are. The floor keeps real
  small files (20 lines, 1 bad = 5 %) from failing on noise and bounds what a broken small
  file can publish; docs/ingest.md says why 1,000;
- the fail_file rule: any record rejected for a reason in `fail_file_reasons`, whatever the
  share (a reason the feed declares serious enough to stop the file).

A refused file publishes nothing and its ledger row says `refused` with the message below;
the ingest exits 2 (bad input), so the state machine fails at once, without the Batch
fallback. Streams apply neither rule (docs/adr/0013-streaming-ingestion.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from sluiceway.contract import TRANSACTIONS_FEED
from sluiceway.errors import ConfigurationError
from sluiceway.feeds import Feed

SHARE_RULE = "max_rejected_share"
FAIL_FILE_RULE = "fail_file"
# How many reasons and first lines per reason a refusal names.
TOP_REASONS = 3
FIRST_LINES = 3

# The first rejected lines of each given reason, in line order (at most `FIRST_LINES` each).
FirstLines = Callable[[Collection[str]], Mapping[str, Sequence[int]]]


@dataclass(frozen=True)
class FilePolicy:
    """A feed's whole-file rules; the default is the transactions feed's."""

    max_rejected_share: float = 0.05
    min_rejected_lines: int = 1000
    fail_file_reasons: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_rejected_share <= 1.0:
            raise ConfigurationError(
                f"max_rejected_share must be between 0 and 1 (0.05 = 5 %), got "
                f"{self.max_rejected_share!r}"
            )
        if self.min_rejected_lines < 0:
            raise ConfigurationError(
                f"min_rejected_lines must be 0 or more, got {self.min_rejected_lines!r}"
            )

    def with_max_rejected_share(self, share: float | None) -> FilePolicy:
        """This policy with an operator's threshold (`--max-rejected-share`), when given."""
        return self if share is None else replace(self, max_rejected_share=share)


def feed_policy(feed: Feed) -> FilePolicy:
    """A feed's policy from its file: `[feed] max_rejected_share` (none: no share limit) and
    the codes of its `fail_file` rules."""
    share = 1.0 if feed.max_rejected_share is None else feed.max_rejected_share
    return FilePolicy(max_rejected_share=share, fail_file_reasons=feed.fail_file_reasons)


# The transactions feed's (lib/sluiceway/data/feeds/transactions.toml): 5 %, no fail_file rule.
TRANSACTIONS_FILE_POLICY = feed_policy(TRANSACTIONS_FEED)


@dataclass(frozen=True)
class FileRefusal:
    """Why a file fails as a whole: the rule it broke and a message a person can act on."""

    rule: str
    message: str


def judge_file(
    policy: FilePolicy,
    source: str,
    lines_read: int,
    rejected_lines: int,
    rejected_by_reason: Mapping[str, int],
    first_lines: FirstLines,
) -> FileRefusal | None:
    """None when the file may be published; else the refusal. `first_lines` is asked only
    for a refused file (reading the rejected records costs time)."""
    fatal = sorted(
        (reason for reason in policy.fail_file_reasons if rejected_by_reason.get(reason)),
        key=lambda reason: (-rejected_by_reason[reason], reason),
    )
    if fatal:
        return _fail_file_refusal(source, fatal, rejected_by_reason, first_lines(fatal))
    share = rejected_lines / lines_read if lines_read else 0.0
    if rejected_lines < policy.min_rejected_lines or share <= policy.max_rejected_share:
        return None
    top = sorted(rejected_by_reason, key=lambda reason: (-rejected_by_reason[reason], reason))
    top = top[:TOP_REASONS]
    found = first_lines(top)
    reasons = ", ".join(
        f"{reason} {rejected_by_reason[reason]:,} ({_lines(found.get(reason, ()))})"
        for reason in top
    )
    return FileRefusal(
        SHARE_RULE,
        f"refused: {source}: {rejected_lines:,} of {lines_read:,} lines rejected "
        f"({share:.2%}), above the feed's max_rejected_share of "
        f"{policy.max_rejected_share * 100:g}% (applied from {policy.min_rejected_lines:,} "
        f"rejected lines); top reasons: {reasons}; nothing was published. Most lines failing "
        "alike is a broken export (a wrong delimiter, a shifted column): have the file "
        "exported again. If these rejects are expected, re-run with a higher "
        "--max-rejected-share (docs/ingest.md)",
    )


def _fail_file_refusal(
    source: str,
    fatal: list[str],
    rejected_by_reason: Mapping[str, int],
    found: Mapping[str, Sequence[int]],
) -> FileRefusal:
    first_reason = min(fatal, key=lambda reason: (_first(found.get(reason, ())), reason))
    first = found.get(first_reason, ())
    where = f"line {first[0]:,}" if first else "a line"
    others = "; ".join(
        f"{reason}: {rejected_by_reason[reason]:,} records ({_lines(found.get(reason, ()))})"
        for reason in fatal
    )
    return FileRefusal(
        FAIL_FILE_RULE,
        f"refused: {source}: {where} was rejected for {first_reason}, a rule that fails the "
        f"whole file (fail_file); {others}; nothing was published. Correct those lines "
        "(`sluiceway check FILE` shows each one's problem) and send the file again",
    )


def _first(lines: Sequence[int]) -> int:
    return lines[0] if lines else 1 << 62


def _lines(lines: Sequence[int]) -> str:
    """With thousands separators, as every number in a message the log masks: line 12345678
    would look like an account number there and be printed as ****5678."""
    if not lines:
        return "lines not known"
    return ("line " if len(lines) == 1 else "first lines ") + ", ".join(f"{n:,}" for n in lines)

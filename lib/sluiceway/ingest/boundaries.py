"""Where records begin and end: RFC 4180 as a state machine whose damage stays in one line.

The chunk planner on the driver and the tokenizer on the executors both call
`quoted_records`, so they always agree on record boundaries. The rules:

- A physical line ends at LF (CRs right before it belong to the line end; a CR anywhere else
  is content). A UTF-8 byte order mark at the start of a line belongs to the line start, not
  to the first field (files concatenated from exports carry one per part); a BOM anywhere else
  is content.
- A line without quotes is one record. Nearly every line is like that, and numpy finds them
  all at once. So are the usual quote-bearing records: one line with one quoted field
  (escaped quotes in it doubled), or two lines joined by a line end inside one quoted field.
  The Python state machine below visits only the rest.
- A quote opens a quoted field only at the start of a field. A quote anywhere else
  (`12" pizza`), or text after a closing quote (`"a"b`), makes that physical line
  `bad_quoting`.
- A quoted field may run over several lines (a description with a newline). If such a
  record does not end cleanly — its quote never closes within `max_record_bytes` or before
  the end of the data, it closes into stray text, or it ends with the wrong number of fields
  — only its FIRST line is rejected as `unterminated_quote`, and parsing resumes at the next
  physical line. A stray quote therefore costs one line, never the rest of the file, and the
  work stays linear: a failed record is re-read at most `max_record_bytes` far.
"""

from __future__ import annotations

import bisect
import codecs
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sluiceway.contract import BAD_QUOTING, COLUMN_NAMES, UNTERMINATED_QUOTE

NEWLINE = 10
CARRIAGE_RETURN = 13
QUOTE = 34
COMMA = 44
FIELD_COUNT = len(COLUMN_NAMES)
BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class LineIndex:
    """Physical lines of a buffer: start offsets and end offsets (the end excludes the LF)."""

    starts: NDArray[np.int64]
    ends: NDArray[np.int64]
    terminated: int  # how many lines end in LF (all but possibly the last)

    def __len__(self) -> int:
        return len(self.ends)


def line_index(data: bytes) -> LineIndex:
    """Every physical line of `data`, the last one possibly without a terminating LF."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
    ends = newlines if (not data or data.endswith(b"\n")) else np.append(newlines, len(data))
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.empty(0, np.int64)
    return LineIndex(starts.astype(np.int64), ends.astype(np.int64), len(newlines))


def carriage_returns(data: bytes) -> NDArray[np.int64]:
    """The offsets of every CR in `data`. Most files have none, and one memchr pass over a
    16 MB chunk (~1 ms) says so, where comparing every byte costs ~8 ms."""
    if data.find(b"\r") < 0:
        return np.empty(0, np.int64)
    return np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == CARRIAGE_RETURN)


def starts_with_bom(
    buffer: NDArray[np.uint8], starts: NDArray[np.int64], ends: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Which of the lines `starts`..`ends` (ends exclude the LF) begin with a BOM."""
    flags = np.zeros(len(starts), dtype=bool)
    candidates = np.flatnonzero(ends - starts >= len(BOM))
    candidates = candidates[buffer[starts[candidates]] == BOM[0]]
    first = starts[candidates]
    flags[candidates] = (buffer[first + 1] == BOM[1]) & (buffer[first + 2] == BOM[2])
    return flags


@dataclass(frozen=True)
class RecordSpan:
    """A record that involves quotes: its first and last line (0-based) and its quoting error."""

    first_line: int
    last_line: int
    error: str | None = None


@dataclass(frozen=True)
class QuotedRecords:
    """The quote-bearing records of a buffer; every line not covered is a plain record.

    `undecided_from` is set when the data ends inside a record that may still close (the
    planner then carries the bytes from that line into its next block); it is None when
    every line is decided.
    """

    spans: list[RecordSpan]
    undecided_from: int | None


class _Pending(Exception):
    """The data ends before the record's fate is known (only when more data follows)."""


def quoted_records(
    data: bytes,
    lines: LineIndex,
    max_record_bytes: int,
    at_end: bool,
    field_count: int = FIELD_COUNT,
) -> QuotedRecords:
    """Records of `data` that hold quotes, by the module's rules; `data` starts at a record.

    `at_end` says no data follows: an open quote then fails instead of waiting for more.
    `field_count` is the file's number of fields (its header's), which a record over several
    lines must have.
    """
    # Without a final LF the last line may still grow, unless nothing follows.
    complete_lines = len(lines) if at_end else lines.terminated
    undecided = complete_lines if complete_lines < len(lines) else None
    buffer = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(buffer == QUOTE)
    if not len(quotes):
        return QuotedRecords([], undecided)
    quote_line = np.searchsorted(lines.ends, quotes)
    quote_lines = np.unique(quote_line)
    counts = np.bincount(quote_line, minlength=len(lines))
    first_quote = np.searchsorted(quotes, lines.starts)
    # Where a line's first field starts: after its BOM, if any (only quote lines need it).
    field_starts = lines.starts.copy()
    field_starts[quote_lines] += len(BOM) * starts_with_bom(
        buffer, lines.starts[quote_lines], lines.ends[quote_lines]
    )
    shape = _Shape(buffer, lines, quotes, counts, first_quote, field_starts, max_record_bytes)
    badly_quoted = shape.badly_quoted()
    # The last line of the record each quote line starts, when numpy could tell; else -1.
    shaped_last = np.where(
        shape.one_line_records() | badly_quoted,
        np.arange(len(lines)),
        np.where(
            shape.two_line_records(data, complete_lines, field_count),
            np.arange(1, len(lines) + 1),
            -1,
        ),
    )[quote_lines]
    shaped_errors = np.where(badly_quoted, BAD_QUOTING, "")[quote_lines].tolist()
    machine: _Machine | None = None
    spans: list[RecordSpan] = []
    resume = 0
    for line, last, error in zip(
        quote_lines.tolist(), shaped_last.tolist(), shaped_errors, strict=True
    ):
        if line < resume:
            continue
        if line >= complete_lines:
            break
        if last >= 0:
            spans.append(RecordSpan(line, last, error or None))
            resume = last + 1
            continue
        if machine is None:
            machine = _Machine(
                data, quotes.tolist(), lines.ends.tolist(), max_record_bytes, at_end, field_count
            )
        try:
            span = machine.record_at(int(field_starts[line]), line)
        except _Pending:
            return QuotedRecords(spans, line)
        spans.append(span)
        resume = span.last_line + 1
    return QuotedRecords(spans, undecided)


@dataclass(frozen=True)
class _Shape:
    """The quote-bearing records the state machine would accept whole, found with numpy.

    Each test holds for a line that starts a record (the caller makes sure); whatever they
    do not decide, the machine does, so they only ever save work: `test_record_boundaries`
    checks them against the machine on random hostile data.
    """

    buffer: NDArray[np.uint8]
    lines: LineIndex
    quotes: NDArray[np.int64]
    counts: NDArray[np.int64]  # quotes per line
    first_quote: NDArray[np.int64]  # index in `quotes` of each line's first quote
    field_starts: NDArray[np.int64]  # each line's start, after its BOM
    cap: int

    def _opens_field(self, line: NDArray[np.int64], quote: NDArray[np.int64]) -> NDArray[np.bool_]:
        """A quote at the start of a field of `line` (the machine's bad_quoting otherwise)."""
        before = self.buffer[np.maximum(quote - 1, 0)]
        opens: NDArray[np.bool_] = (quote == self.field_starts[line]) | (
            (quote > self.field_starts[line]) & (before == COMMA)
        )
        return opens

    def _closes_field(
        self, quote: NDArray[np.int64], line_end: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """A quote followed by a delimiter or the line end (more CRs: the machine decides)."""
        size = len(self.buffer)
        after = self.buffer[np.minimum(quote + 1, size - 1)]
        closes: NDArray[np.bool_] = (
            (quote + 1 == line_end)
            | ((quote + 1 < size) & (after == COMMA))
            | ((after == CARRIAGE_RETURN) & (quote + 2 == line_end))
        )
        return closes

    def badly_quoted(self) -> NDArray[np.bool_]:
        """Lines whose first quote is inside a field (`12" pizza`): the machine stops at that
        quote, and the line alone is `bad_quoting`."""
        quoted = np.flatnonzero(self.counts > 0)
        flags = np.zeros(len(self.lines), dtype=bool)
        flags[quoted] = ~self._opens_field(quoted, self.quotes[self.first_quote[quoted]])
        return flags

    def one_line_records(self) -> NDArray[np.bool_]:
        """Lines with one well-formed quoted field (`a,"b, ""c"" d",e`): an opening quote at a
        field start, a closing one at the field's end, and every quote between them doubled."""
        counts, quotes = self.counts, self.quotes
        candidates = np.flatnonzero((counts >= 2) & (counts % 2 == 0))
        first = self.first_quote[candidates]
        last = first + counts[candidates] - 1
        opening, closing = quotes[first], quotes[last]
        fits = closing - self.field_starts[candidates] <= self.cap
        well_formed = (
            self._opens_field(candidates, opening)
            & self._closes_field(closing, self.lines.ends[candidates])
            & fits
            & self._doubled_between(first, counts[candidates])
        )
        flags = np.zeros(len(self.lines), dtype=bool)
        flags[candidates[well_formed]] = True
        return flags

    def _doubled_between(
        self, first: NDArray[np.int64], counts: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """Whether the quotes after each line's first one pair up as escapes (`""`) up to
        its last one, as the machine reads them: quote i+1 right after quote i, i = 1, 3, ..."""
        pairs = (counts - 2) // 2
        doubled = np.ones(len(first), dtype=bool)
        if not pairs.any():
            return doubled
        owner = np.repeat(np.arange(len(first)), pairs)
        rank = np.arange(len(owner)) - np.repeat(np.cumsum(pairs) - pairs, pairs)
        index = first[owner] + 1 + 2 * rank
        broken = self.quotes[index + 1] != self.quotes[index] + 1
        doubled[owner[broken]] = False
        return doubled

    def two_line_records(
        self, data: bytes, complete_lines: int, field_count: int
    ) -> NDArray[np.bool_]:
        """Lines whose one quote opens a field that the next line's one quote closes (a line
        end inside a quoted field), within the cap, with the file's number of fields."""
        counts, quotes, ends = self.counts, self.quotes, self.lines.ends
        flags = np.zeros(len(self.lines), dtype=bool)
        ones = counts == 1
        candidates = np.flatnonzero(ones[:-1] & ones[1:])
        candidates = candidates[candidates + 1 < complete_lines]
        opening = quotes[self.first_quote[candidates]]
        closing = quotes[self.first_quote[candidates + 1]]
        shaped = (
            self._opens_field(candidates, opening)
            & self._closes_field(closing, ends[candidates + 1])
            & (closing - self.field_starts[candidates] <= self.cap)
        )
        chosen = candidates[shaped]
        for line, start, open_at, close_at, end in zip(
            chosen.tolist(),
            self.field_starts[chosen].tolist(),
            opening[shaped].tolist(),
            closing[shaped].tolist(),
            ends[chosen + 1].tolist(),
            strict=True,
        ):
            # Delimiters outside the quoted field: before it on the first line, after it on
            # the second (a record over several lines must have every field).
            fields = 1 + data.count(b",", start, open_at) + data.count(b",", close_at, end)
            flags[line] = fields == field_count
        return flags


class _Machine:
    """The character-level rules, jumping from quote to quote (never byte by byte)."""

    def __init__(
        self,
        data: bytes,
        quotes: list[int],
        line_ends: list[int],
        cap: int,
        at_end: bool,
        field_count: int,
    ) -> None:
        self.data = data
        self.quotes = quotes
        self.line_ends = line_ends
        self.cap = cap
        self.at_end = at_end
        self.field_count = field_count

    def _line_of(self, offset: int) -> int:
        return bisect.bisect_left(self.line_ends, offset)

    def _failed(self, first_line: int, last_offset: int, single_line_error: str) -> RecordSpan:
        """A record that broke the rules: one line if it is one line, else its first line."""
        if self._line_of(last_offset) == first_line:
            return RecordSpan(first_line, first_line, single_line_error)
        return RecordSpan(first_line, first_line, UNTERMINATED_QUOTE)

    def record_at(self, start: int, first_line: int) -> RecordSpan:
        """The record whose first field starts at `start` (after the line's BOM, if any)."""
        data, quotes, size = self.data, self.quotes, len(self.data)
        position = start
        fields = 1
        next_quote = bisect.bisect_left(quotes, start)
        while True:
            line_end = data.find(b"\n", position)
            if line_end == -1:
                if not self.at_end:
                    raise _Pending
                line_end = size
            quote = quotes[next_quote] if next_quote < len(quotes) else size + 1
            if quote > line_end:
                fields += data.count(b",", position, line_end)
                last_line = self._line_of(line_end)
                if last_line != first_line and fields != self.field_count:
                    return RecordSpan(first_line, first_line, UNTERMINATED_QUOTE)
                return RecordSpan(first_line, last_line)
            fields += data.count(b",", position, quote)
            if quote != start and data[quote - 1] != COMMA:
                return self._failed(first_line, quote, BAD_QUOTING)
            closing, next_quote = self._closing_quote(start, first_line, next_quote + 1)
            if closing is None:
                return RecordSpan(first_line, first_line, UNTERMINATED_QUOTE)
            after = closing + 1
            follower = data[after] if after < size else None
            if follower == COMMA:
                fields += 1
                position = after + 1
                continue
            if follower is None or follower == NEWLINE:
                position = after
                continue
            if follower == CARRIAGE_RETURN:
                # CRs right before the LF (or the end) belong to the line end.
                line_end = after
                while line_end < size and data[line_end] == CARRIAGE_RETURN:
                    line_end += 1
                if line_end == size and not self.at_end:
                    raise _Pending
                if line_end == size or data[line_end] == NEWLINE:
                    position = line_end
                    continue
            return self._failed(first_line, closing, BAD_QUOTING)

    def _closing_quote(self, start: int, first_line: int, index: int) -> tuple[int | None, int]:
        """The quote that closes a quoted field (doubled quotes are content), and the index
        of the quote after it; None when it does not close within the cap or the data."""
        data, quotes, size = self.data, self.quotes, len(self.data)
        while True:
            if index >= len(quotes):
                if self.at_end or size - start > self.cap:
                    return None, index
                raise _Pending
            quote = quotes[index]
            if quote - start > self.cap:
                return None, index
            if quote + 1 == size and not self.at_end:
                raise _Pending
            if quote + 1 < size and data[quote + 1] == QUOTE:
                index += 2
                continue
            return quote, index + 1

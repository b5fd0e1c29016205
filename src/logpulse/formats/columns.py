"""A chunk's lines as columns: one regular expression over the whole chunk gives each line's fields
(one list per field, one entry per line), and the accepted lines become the chunk's
`RequestColumns` (one column per field across all customers, a customer number per line).

Why: in a loop of one Python step per line, the step (five groups taken from a match, a time and
a customer looked up in caches, four appends) cost as much as matching the line. Here the match
is `Pattern.split` over the chunk, which returns every line's groups in one flat list without a
match object or a tuple per line; the columns are slices of that list; values that repeat
(customers, statuses, paths) are converted once per distinct value; times are converted as a
column (`bulk_times`); and the columns stay in line order across customers, so nothing is done
per customer. Only a line the expression refuses, or whose values a converter refuses, takes the
per-line path of its format, which explains the refusal.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from logpulse.formats.lines import reject
from logpulse.model import Chunk, ParsedChunk, Reject, RequestColumns

Request = tuple[str, int, str, str, str]
"""One accepted line: (stored customer id, point time, path, status, duration)."""

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]


def rows_pattern(line_body: str) -> re.Pattern[str]:
    """The expression `split_lines` runs: `line_body` (a whole line's expression with its groups,
    without anchors) or, for a line it refuses, the whole line in one more group. It only ever
    reads ASCII text, where `\\d` is `[0-9]` and `\\s` the ASCII whitespace: written so
    (`ascii_classes`), it matches the same a fifth faster (`\\d`) and another ~10 % faster (`\\s`
    in the nginx fleet's expression)."""
    return re.compile(rf"^(?:{ascii_classes(line_body)}\r?$|(.*))", re.MULTILINE)


_ASCII_SPACE = r"\x09-\x0d\x1c-\x1f "
"""What `\\s` matches on ASCII text (`str.isspace`): tab to carriage return, the four separators, space."""
_IN_CLASS = {"\\d": "0-9", "\\s": _ASCII_SPACE}
_OUTSIDE = {"\\d": "[0-9]", "\\s": f"[{_ASCII_SPACE}]", "\\S": f"[^{_ASCII_SPACE}]"}


def ascii_classes(pattern: str) -> str:
    """`pattern` with each `\\d` written `0-9` (inside a character class) or `[0-9]` (outside), and
    each `\\s` (and `\\S` outside a class) written as the ASCII whitespace it matches there: the same
    expression on ASCII text (on other text they also match other scripts' digits and spaces). A
    `\\S` inside a class is kept: its complement cannot be written as items of the class."""
    out: list[str] = []
    class_from = -1  # where the open character class's items start (-1: outside a class)
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            escape = pattern[i : i + 2]
            out.append((_IN_CLASS if class_from >= 0 else _OUTSIDE).get(escape, escape))
            i += 2
            continue
        if class_from < 0 and ch == "[":
            class_from = i + 2 if pattern.startswith("^", i + 1) else i + 1
        elif class_from >= 0 and ch == "]" and i > class_from:  # a `]` first in a class is literal
            class_from = -1
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass
class LineColumns:
    """The lines of a chunk's text as columns (see `split_lines`)."""

    text: str
    fields: list[list[str | None]]
    """One list per group of the line's expression: the group's text on each line (None on a line
    the expression refused, or where the group did not take part)."""
    refused: list[str | None]
    """Per line: None when the expression matched it, else the whole line."""
    starts: npt.NDArray[np.int64]
    """Per line: the offset of its first character in `text` (= its byte offset in the chunk:
    the text is ASCII)."""

    def __len__(self) -> int:
        return len(self.refused)

    def matched(self) -> Mask | None:
        """Which lines the expression matched; None when it matched them all."""
        if self.refused.count(None) == len(self.refused):
            return None
        return np.fromiter((r is None for r in self.refused), np.bool_, len(self.refused))

    def line(self, i: int) -> str:
        """Line i's text, without its newline (with the `\\r` of a CRLF line end)."""
        refused = self.refused[i]
        if refused is not None:
            return refused
        start = int(self.starts[i])
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)]


def split_lines(pattern: re.Pattern[str], data: bytes, groups: int) -> LineColumns | None:
    """The lines of `data` (complete lines) split by `pattern` (from `rows_pattern`, whose line
    expression has `groups` groups). None when `data` is not ASCII (byte and character offsets would
    differ) or empty, or when the split is not one row per line (an expression that crosses a line
    end): the caller then takes its per-line path."""
    if not data or not data.isascii():
        return None
    text = data.decode("ascii")
    parts = pattern.split(text)
    width = groups + 2  # the groups, the refused line, then the text up to the next match (a newline)
    lines = text.count("\n") + (not text.endswith("\n"))
    rows = (len(parts) - 1) // width
    if text.endswith("\n"):  # the end of the text is a line start, and its empty line one more row
        rows -= 1
    if rows != lines or len(parts) - 1 != width * (rows + text.endswith("\n")) or parts[0] != "":
        return None
    separators = parts[width : width * rows : width]
    if separators.count("\n") != len(separators):
        return None
    end = 1 + rows * width
    columns = [parts[1 + j : end : width] for j in range(groups + 1)]
    newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    starts = np.zeros(rows, dtype=np.int64)
    starts[1:] = newlines[: rows - 1] + 1
    return LineColumns(text, columns[:groups], columns[groups], starts)


def present(column: list[str | None], matched: Mask | None) -> list[str | None]:
    """The entries of the matched lines (`LineColumns.matched`): all when None."""
    return column if matched is None else list(itertools.compress(column, matched))


def spread(got: tuple[Ints, Mask], matched: Mask | None) -> tuple[Ints, Mask]:
    """Values and validity of the matched lines (from `present` columns) back at their lines; the
    lines not matched are invalid."""
    if matched is None:
        return got
    values, valid = np.zeros(len(matched), dtype=np.int64), np.zeros(len(matched), dtype=np.bool_)
    values[matched], valid[matched] = got
    return values, valid


def converted(values: list[str | None], convert: Callable[[str], str | None]) -> tuple[list[str | None], set[str]]:
    """`convert` of each value, called once per distinct value; and the values it refused (None)."""
    seen: dict[str | None, str | None] = {None: None}
    refused = set()
    for value in dict.fromkeys(values):
        if value is not None:
            seen[value] = convert(value)
            if seen[value] is None:
                refused.add(value)
    return list(map(seen.__getitem__, values)), refused


def among(values: Iterable[str | None], chosen: set[str], n: int) -> Mask:
    """Which of the n values are in `chosen`."""
    return np.fromiter((v in chosen for v in values), np.bool_, n)


class Customers:
    """Stored customer ids numbered in the order they are met, and each line's number."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def number(self, customer: str) -> int:
        return self.ids.setdefault(customer, len(self.ids))

    def codes(self, raw: list[str | None], resolve: Callable[[str], str | None]) -> npt.NDArray[np.int64]:
        """Each line's customer number from its raw field text; -1 where `resolve` (called once per
        distinct text) refuses it or the line has no text."""
        number: dict[str | None, int] = {None: -1}
        for value in dict.fromkeys(raw):
            if value is not None:
                stored = resolve(value)
                number[value] = -1 if stored is None else self.number(stored)
        return np.fromiter(map(number.__getitem__, raw), np.int64, len(raw))

    def codes_as_written(self, raw: list[str | None]) -> npt.NDArray[np.int64]:
        """Each line's customer number when the field's text is the stored id itself, in C-level passes
        (no Python step per distinct customer: a chunk of a large fleet holds thousands); -1 where
        the line has no text. Numbers continue those already given."""
        distinct: dict[str | None, int] = dict.fromkeys(raw, -1)
        distinct.pop(None, None)
        new = [c for c in distinct if c not in self.ids] if self.ids else list(distinct)
        self.ids.update(zip(cast(list[str], new), range(len(self.ids), len(self.ids) + len(new)), strict=True))
        number = cast(dict[str | None, int], dict(self.ids))
        number[None] = -1
        return np.fromiter(map(number.__getitem__, raw), np.int64, len(raw))


def accepted_columns(
    accepted: Mask,
    codes: npt.NDArray[np.int64],
    customers: Customers,
    times: npt.NDArray[np.int64] | list[int],
    paths: list[str | None] | list[str],
    statuses: list[str | None],
    durations: list[str | None],
    *,
    numbered_in_order: bool,
) -> RequestColumns:
    """The accepted lines' requests as columns, in line order, customers numbered again in the order
    of their first accepted line. `numbered_in_order`: `codes` already number customers so and every
    line is accepted (the usual chunk), then the columns are taken as they are."""
    if numbered_in_order:
        names = list(customers.ids)
        all_times: list[int] = times.tolist() if isinstance(times, np.ndarray) else times
        return RequestColumns(names, codes, all_times, *_text_columns(paths, statuses, durations))
    lines = np.flatnonzero(accepted)
    if not len(lines):
        return RequestColumns()
    kept = codes[lines]
    present, first = np.unique(kept, return_index=True)
    by_first = present[np.argsort(first, kind="stable")]
    number = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    number[by_first] = np.arange(len(by_first))
    names_by_code = {code: name for name, code in customers.ids.items()}
    names = [names_by_code[c] for c in by_first.tolist()]
    ordered = lines.tolist()
    if isinstance(times, np.ndarray):
        time_column: list[int] = times[lines].tolist()
    else:
        time_column = [times[i] for i in ordered]
    pick = operator.itemgetter(*ordered) if len(ordered) > 1 else (lambda column: (column[ordered[0]],))
    return RequestColumns(
        names, number[kept], time_column, *_text_columns(list(pick(paths)), list(pick(statuses)), list(pick(durations)))
    )


def _text_columns(*columns: list[str | None] | list[str]) -> list[list[str]]:
    """Columns of accepted lines only, which hold no None (for the type checker)."""
    return cast(list[list[str]], list(columns))


@dataclass
class ChunkColumns:
    """A chunk's lines as columns of stored values, and which lines are accepted so far."""

    chunk: Chunk
    lines: LineColumns
    accepted: Mask
    codes: npt.NDArray[np.int64]
    customers: Customers
    times: Ints
    paths: list[str | None]
    statuses: list[str | None]
    durations: list[str | None]

    def parsed(self, one_line: Callable[[str, int], Request | str]) -> ParsedChunk:
        """The requests and rejects: each line not accepted so far is given to `one_line` (its text
        and byte offset in the file), the format's per-line path, which accepts it or says why not."""
        rejects: list[Reject] = []
        offsets = self.lines.starts + self.chunk.offset
        times: Ints | list[int] = self.times
        refused = np.flatnonzero(~self.accepted).tolist()
        for i in refused:
            line = self.lines.line(i)
            got = one_line(line, int(offsets[i]))
            if isinstance(got, str):
                reject(rejects, self.chunk, int(offsets[i]), line, got)
                continue
            customer, t, self.paths[i], self.statuses[i], self.durations[i] = got
            self.codes[i] = self.customers.number(customer)
            if isinstance(times, np.ndarray) and not -(2**63) <= t < 2**63:
                times = times.tolist()  # a time beyond int64 (refused later, by formats.validate)
            times[i] = t
            self.accepted[i] = True
        requests = accepted_columns(
            self.accepted,
            self.codes,
            self.customers,
            times,
            self.paths,
            self.statuses,
            self.durations,
            numbered_in_order=not refused,
        )
        return ParsedChunk(requests, rejects, len(self.lines))

"""``read_table``: CSV/TSV tables read with pandas, with errors that name the file and line.

pandas (``pandas.read_csv``) does the parsing: quoting, quoted separators and line breaks inside
quoted fields, a byte-order mark. What pandas does not give, this module adds, because a user
fixing a file needs it:

- the **file line** of every row (the returned frame's index), counted across blank lines and
  quoted line breaks, so a reader can say ``train.csv:17: label 'x' was not seen in training``;
- rows with **too many or too few fields** caught, not padded or silently cut: an error naming
  the line (``on_bad: error``), or dropped with one warning and the count (``on_bad: skip``);
- a quote that is **never closed**, which pandas' Python engine reads to the end of the file and
  drops, reported at the line where that field starts;
- invalid UTF-8 reported at its line; an empty file said so; a missing column named, with the
  columns the file has.

Every cell is a string, exactly as written (``dtype=str``, no NA conversion): what counts as a
missing value or a number is the caller's policy (``pandas.to_numeric`` turns columns into
numbers). Blank lines (and lines of nothing but separators and spaces) are skipped.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from typing import Optional, Union

from lightning.pytorch.utilities import rank_zero_warn

from seqkit.data import OnBad, require_file
from seqkit.errors import DataError

Column = Union[str, int]
"""A column given by its header name or by its 0-based index (a string of digits that is not a
header name counts as an index: ``"1"`` from a command line)."""

_BAD = "\x00seqkit-bad-row:"  # marks a row with too many fields; pandas hands it to our callable
_LEADING_BLANK = re.compile(r"\A(?:[ \t]*\r?\n)+")


def default_separator(path: str) -> str:
    """Tab for ``.tsv``/``.tab`` files, comma otherwise."""
    return "\t" if str(path).lower().endswith((".tsv", ".tab")) else ","


def _decode(path: str) -> str:
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # decoded here, not by pandas, to know the line
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return text[1:] if text.startswith("\ufeff") else text


def _physical_lines(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def _resolve(col: Column, names: list[str], path: str, header: bool) -> int:
    if isinstance(col, bool):
        raise DataError(f"{path}: {col!r} is not a column name or index")
    width = len(names)
    if isinstance(col, int) or (isinstance(col, str) and col.lstrip("-").isdigit() and col not in names):
        i = int(col)
        if not -width <= i < width:
            raise DataError(f"{path}: no column {i} (it has {width} columns, 0 to {width - 1})")
        return i % width
    if not header:
        raise DataError(f"{path}: column {col!r} is a name, but the file is read without a header row; "
                        "give a 0-based index")
    if col not in names:
        raise DataError(f"{path}: no column {col!r} (columns: {', '.join(names)})")
    return names.index(col)


def read_table(
    path: Union[str, os.PathLike],
    columns: Optional[Sequence[Column]] = None,
    *,
    sep: Optional[str] = None,
    header: bool = True,
    on_bad: OnBad = "error",
    what: str = "data file",
):
    """Read a CSV/TSV file into a ``pandas.DataFrame`` of strings whose index is each row's line
    in the file (``frame.index.name == "line"``).

    :param path: The file (UTF-8).
    :param columns: Columns to return, in this order (header names or 0-based indices); a missing
        one is an error ``FILE: no column 'x' (columns: ...)``. None: every column.
    :param sep: Field separator; None: tab for ``.tsv``/``.tab``, comma otherwise.
    :param header: Whether the first row names the columns; without it columns are labelled 0..n-1.
    :param on_bad: A row with more or fewer fields than the header (or than the first row):
        ``error`` raises ``FILE:LINE: expected N fields ...``; ``skip`` drops it, warning once
        with the count.
    :param what: What the file is, for the "not found" message (``data.init_args.train_file``).
    :raises seqkit.DataError: naming the file and, where there is one, the line.
    """
    import pandas as pd

    path = require_file(path, what)
    if on_bad not in ("error", "skip"):
        raise DataError(f"on_bad: unknown policy {on_bad!r}; choose error or skip")
    sep = sep or default_separator(path)
    text = _decode(path)
    lead = _LEADING_BLANK.match(text)
    skipped_lines = lead.group().count("\n") if lead else 0  # pandas would take a blank line as the header
    body = text[lead.end():] if lead else text
    if not body.strip():
        raise DataError(f"{path}: empty file" + (" (expected a header row, then data rows)" if header else ""))

    def bad_row(fields: list[str]) -> list[str]:
        # keep a marker in place of the row, so the rows after it keep their line numbers
        return [f"{_BAD}{len(fields)}:{sum(f.count(chr(10)) for f in fields)}"]

    # header=None and names=range(width): every record is a row, the header too (so pandas never
    # guesses an index column from a long first row); shorter rows are padded with NaN (python
    # engine), longer ones go to bad_row.
    opts = dict(sep=sep, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False,
                engine="python", index_col=False, quotechar='"')
    try:
        width = pd.read_csv(io.StringIO(body), nrows=1, **opts).shape[1]
        frame = pd.read_csv(io.StringIO(body), names=list(range(width)), on_bad_lines=bad_row, **opts)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))  # pandas counts records, which is the line unless a
        where = f":{int(found.group(1)) + skipped_lines}" if found else ""  # quoted field spans lines
        raise DataError(f"{path}{where}: cannot parse the table ({str(exc).strip()})") from None

    first = frame[0].astype(object)
    is_bad = first.map(lambda v: isinstance(v, str) and v.startswith(_BAD)).to_numpy(bool)
    present = frame.notna()
    counts = present.sum(axis=1).to_numpy().copy()  # fields in each row (missing ones are NaN)
    breaks = frame.apply(lambda col: col.str.count("\n")).fillna(0).sum(axis=1).to_numpy().astype(int)
    for k in is_bad.nonzero()[0]:
        n, nl = first.iloc[k][len(_BAD):].split(":")
        counts[k], breaks[k] = int(n), int(nl)
    spans = 1 + breaks  # physical lines of each record
    starts = skipped_lines + 1 + spans.cumsum() - spans
    accounted = skipped_lines + int(spans.sum())
    if accounted < skipped_lines + _physical_lines(body):
        # pandas' python engine reads an unclosed quote to the end of the file and drops it
        raise DataError(f"{path}:{accounted + 1}: a quoted field starts on this line and is never closed "
                        f"(a stray '\"'?)")

    blank = ~is_bad & frame.apply(lambda col: col.fillna("").str.strip() == "").all(axis=1).to_numpy(bool)
    names: list = list(range(width))
    rows = list(range(len(frame)))
    if header:
        names = [str(v).strip() for v in frame.iloc[0]]
        rows = rows[1:]
    rows = [r for r in rows if not blank[r]]
    wrong = [r for r in rows if counts[r] != width]
    if wrong:
        r = wrong[0]
        like = "like the header" if header else f"like line {starts[0]}"
        hint = f" (quote a field that contains the separator {sep!r})" if counts[r] > width else ""
        if on_bad == "error":
            raise DataError(f"{path}:{starts[r]}: expected {width} fields {like}, found {counts[r]}{hint} "
                            "(on_bad: skip drops such rows)")
        n = len(wrong)
        rank_zero_warn(f"{path}: skipped {n} row{'s' if n > 1 else ''} whose number of fields is not {width} "
                       f"(first at line {starts[r]}; on_bad: skip)")
        rows = [r for r in rows if counts[r] == width]
    out = frame.iloc[rows].copy()
    out.columns = names
    out.index = pd.Index([int(starts[r]) for r in rows], name="line")
    if columns is not None:
        out = out.iloc[:, [_resolve(c, names, path, header) for c in columns]]
    return out

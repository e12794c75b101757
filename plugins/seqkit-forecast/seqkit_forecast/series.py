"""Reading a time series from CSV, the missing-value policy, the scaler fit on the training part,
and extending a time column past the end of the data.

The file is parsed by pandas (through :func:`seqkit.read_table`, which keeps the line of every
row for error messages); the cells are turned into numbers by ``pandas.to_numeric``. Missing
values (an empty cell, ``NA``, ``NaN``, ``null`` or ``?``) are an error naming the file and line by
default; ``missing="interpolate"`` fills them linearly between the neighbouring observations (the
first/last known value at the edges) with pandas' ``interpolate(limit_direction="both")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional, Sequence, Union

import numpy as np

from seqkit import DataError, read_table

Column = Union[str, int]
MISSING = {"", "na", "nan", "null", "none", "?", "n/a"}
# a first column with one of these names is the time column even when its values are numbers
TIME_NAMES = {"t", "time", "date", "datetime", "timestamp", "ds", "year", "month", "day", "step", "period"}


@dataclass
class Series:
    """A multivariate series read from a file: ``values`` is (N, C) float64, column order
    ``targets + covariates``; ``lines`` is the file line of each row (for error messages)."""

    path: str
    times: Optional[list[str]]
    values: np.ndarray
    targets: list[str]
    covariates: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _resolve(col: Column, header: list[str], path: str, key: str) -> int:
    if isinstance(col, int) or (isinstance(col, str) and col.lstrip("-").isdigit() and col not in header):
        i = int(col)
        if not -len(header) <= i < len(header):
            raise DataError(f"data.init_args.{key}: column index {i} is out of range; {path} has {len(header)} columns")
        return i % len(header)
    if col not in header:
        raise DataError(f"data.init_args.{key}: no column {col!r} in {path} (columns: {', '.join(header)})")
    return header.index(col)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_series(
    path: str,
    time_column: Optional[Column] = "auto",
    target_columns: Optional[Sequence[Column]] = None,
    covariate_columns: Sequence[Column] = (),
    delimiter: Optional[str] = None,
    missing: str = "error",
    on_bad: str = "error",
) -> Series:
    """Read a CSV/TSV with a header row into a :class:`Series`.

    ``time_column="auto"`` takes the first column as time when its first value is not a number or
    its name is a usual time name (time, date, t, ds, year, ...);
    ``target_columns=None`` makes every column but time and covariates a target. ``on_bad``
    decides what a row with the wrong number of fields does (``error`` or ``skip``).
    """
    import pandas as pd

    if missing not in ("error", "interpolate"):
        raise DataError(f"data.init_args.missing: unknown policy {missing!r}; choose error or interpolate")
    table = read_table(path, sep=delimiter, on_bad=on_bad, what="data.init_args.csv_path")
    if table.empty:
        raise DataError(f"{path}: no data rows after the header")
    header = [str(c) for c in table.columns]
    lines = [int(n) for n in table.index]

    t_idx = None
    if time_column == "auto":
        first = table.iat[0, 0].strip()
        if header[0].lower() in TIME_NAMES or (not _is_number(first) and first.lower() not in MISSING):
            t_idx = 0
    elif time_column is not None:
        t_idx = _resolve(time_column, header, path, "time_column")
    cov_idx = [_resolve(c, header, path, "covariate_columns") for c in covariate_columns]
    if target_columns:
        tgt_idx = [_resolve(c, header, path, "target_columns") for c in target_columns]
    else:
        tgt_idx = [i for i in range(len(header)) if i != t_idx and i not in cov_idx]
    if not tgt_idx:
        raise DataError(f"{path}: no target column left (columns: {', '.join(header)}); set data.init_args.target_columns")
    overlap = set(tgt_idx) & (set(cov_idx) | ({t_idx} if t_idx is not None else set()))
    if overlap:
        raise DataError(f"{path}: column {header[min(overlap)]!r} is both a target and a time/covariate column")

    cols = tgt_idx + cov_idx
    cells = table.iloc[:, cols].apply(lambda c: c.str.strip())  # (N, C) strings
    numbers = cells.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    absent = cells.apply(lambda c: c.str.lower().isin(MISSING)).to_numpy(bool)
    not_number = np.isnan(numbers) & ~absent
    infinite = np.isinf(numbers)
    problems = not_number | infinite | (absent if missing == "error" else np.zeros_like(absent))
    if problems.any():  # the first problem in file order, as a reader going row by row meets it
        r, c = (int(v) for v in np.argwhere(problems)[0])
        name, raw = header[cols[c]], table.iat[r, cols[c]]
        if not_number[r, c]:
            raise DataError(f"{path}:{lines[r]}: column {name!r}: {raw!r} is not a number")
        if infinite[r, c]:
            raise DataError(f"{path}:{lines[r]}: column {name!r}: {raw!r} is not a finite number")
        raise DataError(f"{path}:{lines[r]}: missing value in column {name!r} "
                        "(set data.init_args.missing: interpolate to fill gaps linearly)")
    values = np.where(absent, np.nan, numbers)
    if missing == "interpolate":
        values = _interpolate(values, [header[i] for i in cols], path)

    times = [t.strip() for t in table.iloc[:, t_idx].tolist()] if t_idx is not None else None
    if times is not None:
        _check_order(times, lines, path)
    return Series(path, times, values, [header[i] for i in tgt_idx], [header[i] for i in cov_idx], lines)


def _interpolate(values: np.ndarray, names: list[str], path: str) -> np.ndarray:
    import pandas as pd

    frame = pd.DataFrame(values)
    empty = [names[c] for c in range(values.shape[1]) if frame[c].isna().all()]
    if empty:
        raise DataError(f"{path}: column {empty[0]!r} has no values at all")
    return frame.interpolate(method="linear", limit_direction="both").to_numpy(dtype=np.float64)


_YM = re.compile(r"^(\d{4})-(\d{1,2})$")


def _parse_time(text: str):
    """A number, a date or a datetime for ``text``, or None when it is none of these."""
    try:
        return float(text)
    except ValueError:
        pass
    m = _YM.match(text)
    if m:
        return date(int(m.group(1)), int(m.group(2)), 1)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _check_order(times: list[str], lines: list[int], path: str) -> None:
    parsed = [_parse_time(t) for t in times]
    if any(p is None for p in parsed) or len({type(p) for p in parsed}) > 1:
        return  # free-form labels: the file order is the time order
    for k in range(1, len(parsed)):
        if not parsed[k] > parsed[k - 1]:
            raise DataError(
                f"{path}:{lines[k]}: time {times[k]!r} does not come after {times[k - 1]!r} (line {lines[k - 1]}); "
                "rows must be in time order"
            )


def _add_months(d, months: int):
    y, m = divmod(d.month - 1 + months, 12)
    return d.replace(year=d.year + y, month=m + 1)


def extend_times(times: list[str], count: int) -> list[str]:
    """``count`` time labels after ``times``, continuing its regular step (numbers, monthly or
    fixed-interval dates); ``<last>+k`` when the step is irregular or the labels are free-form."""
    fallback = [f"{times[-1]}+{k}" for k in range(1, count + 1)]
    if len(times) < 2:
        return fallback
    parsed = [_parse_time(t) for t in times]
    if any(p is None for p in parsed) or len({type(p) for p in parsed}) > 1:
        return fallback
    first = parsed[0]
    if isinstance(first, float):
        steps = {round(b - a, 9) for a, b in zip(parsed, parsed[1:])}
        if len(steps) != 1:
            return fallback
        step = steps.pop()
        ints = all(re.fullmatch(r"-?\d+", t.strip()) for t in times)
        return [str(int(parsed[-1] + k * step)) if ints else f"{parsed[-1] + k * step:g}" for k in range(1, count + 1)]
    month_steps = {(b.year - a.year) * 12 + b.month - a.month for a, b in zip(parsed, parsed[1:])}
    same_day = len({(p.day, p.time() if isinstance(p, datetime) else None) for p in parsed}) == 1
    if len(month_steps) == 1 and same_day and min(month_steps) > 0:  # monthly, quarterly, yearly...
        step = month_steps.pop()
        return [_like(times[-1], _add_months(parsed[-1], k * step)) for k in range(1, count + 1)]
    deltas = {b - a for a, b in zip(parsed, parsed[1:])}
    if len(deltas) == 1:
        step = deltas.pop()
        return [_like(times[-1], parsed[-1] + k * step) for k in range(1, count + 1)]
    return fallback


def _like(sample: str, value) -> str:
    """``value`` written the way the time label ``sample`` is written."""
    sample = sample.strip()
    if _YM.match(sample):
        return value.strftime("%Y-%m")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", sample):
        return value.strftime("%Y-%m-%d")
    return value.isoformat(sep=" " if " " in sample else "T")


class Scaler:
    """Per-column scaling fit on the training part of the series only: ``standard`` (zero mean,
    unit variance), ``minmax`` ([0, 1]) or ``none``.

    A constant column has zero spread; it is scaled by 1 instead, so nothing divides by zero.
    """

    def __init__(self, method: str = "standard", shift=None, scale=None) -> None:
        if method not in ("standard", "minmax", "none"):
            raise DataError(f"data.scale: unknown scaling {method!r}; choose standard, minmax or none")
        self.method = method
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)

    def fit(self, x: np.ndarray) -> Scaler:
        """Fit on (N, C) values of the training part."""
        if self.method == "standard":
            shift, scale = x.mean(0), x.std(0)
        elif self.method == "minmax":
            shift, scale = x.min(0), x.max(0) - x.min(0)
        else:
            shift, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
        self.shift, self.scale = shift, np.where(scale > 1e-12 * np.maximum(1.0, np.abs(shift)), scale, 1.0)
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.shift) / self.scale

    def state_dict(self) -> dict:
        return {"method": self.method, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> Scaler:
        return cls(state["method"], state["shift"], state["scale"])
